"""UniFormer's relation aggregators restated from the paper's equations, as explicit sums.

Paper: Kunchang Li, Yali Wang, Peng Gao, Guanglu Song, Yu Liu, Hongsheng Li, Yu Qiao,
"UniFormer: Unified Transformer for Efficient Spatiotemporal Representation Learning",
ICLR 2022, arXiv 2201.04676, Sec. 3: the dynamic position embedding (eq. 2, a ``3x3x3``
depth-wise convolution) and the local multi-head relation aggregator (eq. 4-5: a learnable
affinity ``A_n`` over a ``5x5x5`` neighbourhood, applied per channel to ``V(X)`` and
projected by ``U``).  Written as sums over the neighbourhood, not as convolutions.
"""

from __future__ import annotations

import torch


def neighbourhood_sum(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Per-channel weighted sum over a cubic neighbourhood, zeros outside the volume.

    ``out[b, c, t, h, w] = bias[c] + sum_{i,j,l} weight[c, 0, i, j, l] * x[b, c, t+i-r, h+j-r, w+l-r]``
    with ``r = k // 2``.

    Args:
        x: ``(B, C, T, H, W)``.
        weight: ``(C, 1, k, k, k)`` per-channel affinities.
        bias: ``(C,)`` or ``None``.

    Returns:
        ``(B, C, T, H, W)``.
    """
    k = weight.shape[-1]
    r = k // 2
    b, c, t, h, w = x.shape
    xp = torch.zeros(b, c, t + 2 * r, h + 2 * r, w + 2 * r, dtype=x.dtype)
    xp[:, :, r:r + t, r:r + h, r:r + w] = x
    out = torch.zeros_like(x)
    for i in range(k):
        for j in range(k):
            for l in range(k):
                out += weight[:, 0, i, j, l].view(1, c, 1, 1, 1) * xp[:, :, i:i + t, j:j + h, l:l + w]
    if bias is not None:
        out += bias.view(1, c, 1, 1, 1)
    return out


def local_mhra(x: torch.Tensor, v_weight: torch.Tensor, v_bias: torch.Tensor, affinity: torch.Tensor,
               affinity_bias: torch.Tensor | None, u_weight: torch.Tensor, u_bias: torch.Tensor) -> torch.Tensor:
    """Local MHRA (eq. 4-5): ``U(A * V(x))`` with token-wise linear maps ``V``, ``U``.

    Args:
        x: ``(B, C, T, H, W)``.
        v_weight, u_weight: ``(C, C)`` linear maps applied to every token; ``v_bias``, ``u_bias``: ``(C,)``.
        affinity: ``(C, 1, k, k, k)``; ``affinity_bias``: ``(C,)`` or ``None``.

    Returns:
        ``(B, C, T, H, W)``.
    """
    v = torch.einsum("oc,bcthw->bothw", v_weight, x) + v_bias.view(1, -1, 1, 1, 1)
    a = neighbourhood_sum(v, affinity, affinity_bias)
    return torch.einsum("oc,bcthw->bothw", u_weight, a) + u_bias.view(1, -1, 1, 1, 1)
