"""ALT's entity-to-region alignment and adapter restated with plain tensor operations.

Paper: Yifei Chen, Dapeng Chen, Ruijin Liu, Sai Zhou, Wenyuan Xue, Wei Peng, "Align before
Adapt: Leveraging Entity-to-Region Alignments for Generalizable Video Action Recognition",
CVPR 2024, arXiv 2311.15619.  No official code is released, so the equations as
:mod:`videozoo.models.alt`'s docstring reads them (soft k-means region tokens, entity-to-region
alignment, entity-query adapter) are the reference: written here with explicit loops over
frames, cells and patches, per-head matmul attention and LayerNorm over the parameter tensors.
"""

from __future__ import annotations

import torch


def restated_embedding(state: dict, frames: torch.Tensor, patches: torch.Tensor, entity_emb: torch.Tensor,
                       grid: int, iters: int, temperature: float, k: int, num_heads: int) -> torch.Tensor:
    """The equations of the module docstring written out with plain tensor operations.

    Region grouping by explicit loops over frames, cells and patches; alignment by explicit
    cosines; the adapter's cross-attention per head by matmul, LayerNorm and QuickGELU written
    out; only the parameter tensors of ``state`` are used, no module of this package.

    Args:
        state: The model's ``state_dict()``.
        frames: ``(B, T, D)``; ``patches``: ``(B, T, N, D)``; ``entity_emb``: ``(E, D)`` entity
            embeddings (not normalised).
        grid, iters, temperature, k, num_heads: As in :class:`ALTConfig`.

    Returns:
        ``(B, D)`` clip embeddings.
    """
    B, T, N, D = patches.shape
    h = int(round(N ** 0.5))
    cell = h // grid
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)       # noqa: E731
    ent = unit(entity_emb)

    def ln(x, p):
        mu = x.mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + 1e-5) * state[p + ".weight"] + state[p + ".bias"]

    out = []
    for b in range(B):
        regions = []
        for t in range(T):
            grid_xy = patches[b, t].view(h, h, D)
            centres = torch.stack([grid_xy[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].reshape(-1, D).mean(0)
                                   for i in range(grid) for j in range(grid)])
            for _ in range(iters):
                assign = torch.softmax(unit(patches[b, t]) @ unit(centres).t() / temperature, dim=1)
                centres = torch.stack([(assign[:, r:r + 1] * patches[b, t]).sum(0) / assign[:, r].sum()
                                       for r in range(centres.shape[0])])
            regions.append(centres)
        regions = torch.stack(regions)                                          # (T, R, D)
        relevance = torch.stack([max((unit(regions[t, r]) @ ent[e]) for t in range(T) for r in range(regions.shape[1]))
                                 for e in range(ent.shape[0])])
        q = ent[torch.argsort(relevance, descending=True)[:k]]
        mem = torch.cat([frames[b] + state["temporal_position"][:T],
                         (regions + state["temporal_position"][:T, None]).reshape(-1, D)])
        i = 0
        while f"adapter.{i}.attn.q.weight" in state:
            p = f"adapter.{i}."
            qn, mn = ln(q, p + "norm_q"), ln(mem, p + "norm_m")
            qq = qn @ state[p + "attn.q.weight"].t() + state[p + "attn.q.bias"]
            kv = mn @ state[p + "attn.kv.weight"].t() + state[p + "attn.kv.bias"]
            kk, vv = kv[:, :D], kv[:, D:]
            d = D // num_heads
            heads = [torch.softmax(qq[:, s] @ kk[:, s].t() / d ** 0.5, dim=-1) @ vv[:, s]
                     for s in (slice(j * d, (j + 1) * d) for j in range(num_heads))]
            q = q + torch.cat(heads, -1) @ state[p + "attn.proj.weight"].t() + state[p + "attn.proj.bias"]
            hid = ln(q, p + "norm2") @ state[p + "mlp.fc1.weight"].t() + state[p + "mlp.fc1.bias"]
            q = q + (hid * torch.sigmoid(1.702 * hid)) @ state[p + "mlp.fc2.weight"].t() + state[p + "mlp.fc2.bias"]
            i += 1
        out.append(frames[b].mean(0) + q.mean(0) @ state["adapter_proj.weight"].t() + state["adapter_proj.bias"])
    return torch.stack(out)
