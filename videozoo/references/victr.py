"""VicTR's video-conditioned text representations restated with plain tensor operations.

Paper: Kumara Kahatapitiya, Anurag Arnab, Arsha Nagrani, Michael S. Ryoo, "VicTR:
Video-conditioned Text Representations for Activity Recognition", CVPR 2024, arXiv 2304.02560.
No official code is released, so the equations as :mod:`videozoo.models.victr`'s docstring
reads them (token boosting by frame-text affinity, cross-modal and temporal attention blocks,
affinity logits averaged over frames) are the reference: written here with explicit loops,
per-head matmul attention, LayerNorm and QuickGELU over the model's parameter tensors.
"""

from __future__ import annotations

import torch


def restated_logits(state: dict, frames: torch.Tensor, class_emb: torch.Tensor, aux_emb: torch.Tensor,
                    num_heads: int, scale: torch.Tensor) -> torch.Tensor:
    """The equations of the module docstring written out with plain tensor operations.

    Uses only the parameter tensors (``state``: ``temporal_position``, ``blocks.i.*``, ``norm.*``),
    explicit per-head attention (``softmax(q k^T / sqrt(d)) v`` by matmul), explicit LayerNorm
    and QuickGELU, and loops over frames and tokens; no module of this package.

    Args:
        state: The model's ``state_dict()``.
        frames: ``(B, T, D)`` frame embeddings; ``class_emb``: ``(K, D)``; ``aux_emb``: ``(A, D)``.
        num_heads: Heads of both attentions.
        scale: CLIP's temperature scale.

    Returns:
        ``(B, K)`` logits.
    """
    B, T, D = frames.shape
    K = class_emb.shape[0]
    texts = torch.cat([class_emb, aux_emb])
    J = texts.shape[0]

    def ln(x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * state[p + ".weight"] + state[p + ".bias"]

    def attend(x, p):          # x: (S, D) one sequence
        qkv = x @ state[p + ".qkv.weight"].t() + state[p + ".qkv.bias"]
        q, k, v = qkv.split(D, dim=-1)
        d = D // num_heads
        heads = []
        for h in range(num_heads):
            sl = slice(h * d, (h + 1) * d)
            w = torch.softmax(q[:, sl] @ k[:, sl].t() / d ** 0.5, dim=-1)
            heads.append(w @ v[:, sl])
        return torch.cat(heads, -1) @ state[p + ".proj.weight"].t() + state[p + ".proj.bias"]

    tokens = torch.zeros(B, T, 1 + J, D, dtype=frames.dtype)
    for b in range(B):
        for t in range(T):
            tokens[b, t, 0] = frames[b, t]
            for j in range(J):
                aff = frames[b, t] @ texts[j] / (frames[b, t].norm() * texts[j].norm())
                tokens[b, t, 1 + j] = aff * texts[j]
            tokens[b, t] = tokens[b, t] + state["temporal_position"][t]
    i = 0
    while f"blocks.{i}.cross.qkv.weight" in state:
        p = f"blocks.{i}."
        new = tokens.clone()
        for b in range(B):
            for t in range(T):
                new[b, t] = tokens[b, t] + attend(ln(tokens[b, t], p + "norm_cross"), p + "cross")
        tokens, new = new, new.clone()
        for b in range(B):
            for s in range(1 + J):
                new[b, :, s] = tokens[b, :, s] + attend(ln(tokens[b, :, s], p + "norm_time"), p + "temporal")
        tokens = new
        hidden = ln(tokens, p + "norm_mlp") @ state[p + "mlp.fc1.weight"].t() + state[p + "mlp.fc1.bias"]
        hidden = hidden * torch.sigmoid(1.702 * hidden)
        tokens = tokens + hidden @ state[p + "mlp.fc2.weight"].t() + state[p + "mlp.fc2.bias"]
        i += 1
    tokens = ln(tokens, "norm")
    logits = torch.zeros(B, K, dtype=frames.dtype)
    for b in range(B):
        for k in range(K):
            per_frame = [torch.dot(tokens[b, t, 0], tokens[b, t, 1 + k])
                         / (tokens[b, t, 0].norm() * tokens[b, t, 1 + k].norm()) for t in range(T)]
            logits[b, k] = scale * torch.stack(per_frame).mean()
    return logits
