"""LaIAR's video and language models and transfer terms restated with plain tensor operations.

Paper: Ning Wang, Guangming Zhu, HS Li, Liang Zhang, Syed Afaq Ali Shah, Mohammed Bennamoun,
"Language Model Guided Interpretable Video Action Reasoning", CVPR 2024, arXiv 2404.01591.
No model code is released, so the equations as :mod:`videozoo.models.laiar`'s docstring reads
them (shared DT-Former, the two InfoNCE terms, joint embedding, token-selection supervision and
cross-modal transfer) are the reference: written here with explicit LayerNorm, QuickGELU,
per-head matmul attention and the KL / InfoNCE definitions over the parameter tensors.
"""

from __future__ import annotations

import torch


def restated_loss(state: dict, patches: torch.Tensor, phrases: torch.Tensor, descriptions: torch.Tensor,
                  classes: torch.Tensor, scale: torch.Tensor, num_heads: int, weights: tuple[float, float, float]) -> dict:
    """The module docstring's equations written out with plain tensor operations.

    Explicit LayerNorm, QuickGELU and per-head matmul attention over the parameter tensors of
    ``state`` (``visual_proj.*``, ``dtformer.*``), loops over clips and frames, the InfoNCE and
    KL terms written from their definitions; no module of this package.

    Args:
        state: The model's ``state_dict()``.
        patches: ``(B, T, N, D)`` patch tokens; ``phrases``: ``(P, D)`` phrase embeddings;
            ``descriptions``: ``(B, T)``; ``classes``: ``(B, D)`` caption embeddings.
        scale: CLIP's temperature scale; ``num_heads``: DT-Former heads; ``weights``: ``(w_joint,
            w_select, w_transfer)``.

    Returns:
        The video model's logits ``(B, B)`` and every loss term, and their weighted total.
    """
    B, T, N, D = patches.shape
    d = D // num_heads

    def ln(x, p, eps=1e-5):
        mu = x.mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps) * state[p + ".weight"] + state[p + ".bias"]

    def lin(x, p):
        return x @ state[p + ".weight"].t() + state[p + ".bias"]

    def mha(q, kv_q, kv_k, p, fused):
        """Per-head attention; ``fused``: one qkv weight (self-attention), else q and kv weights."""
        if fused:
            qkv = lin(q, p + ".qkv")
            qq, kk, vv = qkv[:, :D], qkv[:, D:2 * D], qkv[:, 2 * D:]
        else:
            qq, kv = lin(q, p + ".q"), lin(kv_k, p + ".kv")
            kk, vv = kv[:, :D], kv[:, D:]
        heads = [torch.softmax(qq[:, j * d:(j + 1) * d] @ kk[:, j * d:(j + 1) * d].t() / d ** 0.5, -1) @ vv[:, j * d:(j + 1) * d]
                 for j in range(num_heads)]
        return lin(torch.cat(heads, -1), p + ".proj")

    def gelu(x):
        return x * torch.sigmoid(1.702 * x)

    def dtformer(tokens):                       # tokens: (T, R, D) of one clip
        frames = []
        for t in range(T):
            q = state["dtformer.query"].view(1, D)
            q = q + mha(ln(q, "dtformer.pool.norm_q"), None, ln(tokens[t], "dtformer.pool.norm_m"), "dtformer.pool.attn", False)
            q = q + lin(gelu(lin(ln(q, "dtformer.pool.norm2"), "dtformer.pool.mlp.fc1")), "dtformer.pool.mlp.fc2")
            frames.append(q[0])
        f = torch.stack(frames)                                                  # (T, D)
        g = torch.softmax(lin(f, "dtformer.select")[:, 0], dim=0)
        h = f + state["dtformer.temporal.frame_position_embeddings.weight"][:T]
        i = 0
        while f"dtformer.temporal.blocks.{i}.attn.qkv.weight" in state:
            p = f"dtformer.temporal.blocks.{i}"
            h = h + mha(ln(h, p + ".norm1"), None, None, p + ".attn", True)
            h = h + lin(gelu(lin(ln(h, p + ".norm2"), p + ".mlp.fc1")), p + ".mlp.fc2")
            i += 1
        h = h + f
        return ln((g[:, None] * h).sum(0), "dtformer.norm"), f, g

    unit = lambda x: x / x.norm(dim=-1, keepdim=True)     # noqa: E731
    outs_v, outs_l, frames_v, frames_l, sel_v, sel_l = [], [], [], [], [], []
    for b in range(B):
        o, f, g = dtformer(lin(patches[b], "visual_proj"))
        outs_v.append(o), frames_v.append(f), sel_v.append(g)
        o, f, g = dtformer(phrases[descriptions[b]].unsqueeze(1))
        outs_l.append(o), frames_l.append(f), sel_l.append(g)
    logits_v = scale * unit(torch.stack(outs_v)) @ unit(classes).t()
    logits_l = scale * unit(torch.stack(outs_l)) @ unit(classes).t()

    def info_nce(z):
        lv = -torch.stack([torch.log_softmax(z[i], 0)[i] for i in range(B)]).mean()
        lt = -torch.stack([torch.log_softmax(z[:, i], 0)[i] for i in range(B)]).mean()
        return (lv + lt) / 2

    def kl_rows(p, q):                          # sum_b KL(p_b || q_b) / B
        return sum((p[b] * (p[b].log() - q[b].log())).sum() for b in range(B)) / B

    terms = {
        "video": info_nce(logits_v),
        "language": info_nce(logits_l),
        "joint": torch.stack([torch.stack([1 - unit(frames_v[b][t]) @ unit(frames_l[b][t]) for t in range(T)])
                              for b in range(B)]).mean(),
        "select": kl_rows(torch.stack(sel_l), torch.stack(sel_v)),
        "transfer": kl_rows(torch.softmax(logits_l, -1), torch.softmax(logits_v, -1)),
    }
    w_joint, w_select, w_transfer = weights
    total = terms["video"] + terms["language"] + w_joint * terms["joint"] + w_select * terms["select"] \
        + w_transfer * terms["transfer"]
    return {"logits": logits_v, **terms, "total": total}
