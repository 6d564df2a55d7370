"""TEA's motion excitation (ME) restated segment by segment from the paper and the release.

Paper: Yan Li, Bin Ji, Xintian Shi, Jianguo Zhang, Bin Kang, Limin Wang, "TEA: Temporal
Excitation and Aggregation for Action Recognition", CVPR 2020, arXiv 2004.01398, Sec. 3.1,
eqs. 1-4. For the features ``X(t)`` of segment ``t`` of ``N``:

* ``Xr(t) = BN(conv_red(X(t)))`` (eq. 1, channel reduction),
* ``M(t) = conv_trans(Xr(t + 1)) - Xr(t)`` for ``t < N - 1`` and ``M(N - 1) = 0`` (eq. 2, a
  channel-wise 3x3 conv),
* ``Ms(t) = mean over H, W of M(t)`` and ``A(t) = 2 sigmoid(conv_exp(Ms(t))) - 1`` (eqs. 3-4),
* ``out(t) = X(t) + X(t) * A(t)`` (the residual form of Sec. 3.1).

The authors' release (Phoenix1327/tea-action-recognition, ``MEModule``) computes
``A(t) = sigmoid(BN(conv_exp(Ms(t)))) - 1/2`` instead: ``formula="released"``.  Written with
explicit loops over the B*N segments (slow, for checks only); weights come in as plain tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_norm_eval(y: torch.Tensor, stats: tuple[torch.Tensor, ...], eps: float = 1e-5) -> torch.Tensor:
    """Eval-mode batch norm from ``(running_mean, running_var, weight, bias)``."""
    mean, var, weight, bias = stats
    return F.batch_norm(y, mean, var, weight, bias, False, 0.0, eps)


def motion_excitation(x: torch.Tensor, n_segment: int, squeeze_w: torch.Tensor, bn: tuple[torch.Tensor, ...],
                      transform_w: torch.Tensor, expand_w: torch.Tensor, formula: str = "paper",
                      expand_bn: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """ME of one block, segment by segment.

    Args:
        x: ``(B * N, C, H, W)``, the N segments of each clip consecutive.
        n_segment: N.
        squeeze_w: ``(C/r, C, 1, 1)`` reduction conv weight. bn: its BN's
            ``(running_mean, running_var, weight, bias)``.
        transform_w: ``(C/r, 1, 3, 3)`` channel-wise conv weight.
        expand_w: ``(C, C/r, 1, 1)`` expansion conv weight.
        formula: ``"paper"`` (eq. 4) or ``"released"`` (needs ``expand_bn``).

    Returns:
        ``(B * N, C, H, W)``.

    Raises:
        ValueError: unknown formula, or ``"released"`` without ``expand_bn``.
    """
    if formula not in ("paper", "released") or (formula == "released" and expand_bn is None):
        raise ValueError(f"formula must be 'paper' or 'released' (with expand_bn), got {formula!r}")
    xr = batch_norm_eval(F.conv2d(x, squeeze_w), bn)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        if i % n_segment < n_segment - 1:
            m = F.conv2d(xr[i + 1:i + 2], transform_w, padding=1, groups=xr.shape[1]) - xr[i:i + 1]
        else:
            m = torch.zeros_like(xr[i:i + 1])
        a = F.conv2d(m.mean((2, 3), keepdim=True), expand_w)
        a = 2 * torch.sigmoid(a) - 1 if formula == "paper" else torch.sigmoid(batch_norm_eval(a, expand_bn)) - 0.5
        out[i] = x[i] + x[i] * a[0]
    return out
