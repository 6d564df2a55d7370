"""A learnable channel-wise temporal convolution that starts as a temporal shift.

TSM (Lin et al., arXiv 1811.08383, Sec. 3) moves 1/8 of the channels of the segment
features one segment back in time and 1/8 one segment forward, with zeros at the ends; the
shift has no parameters. The released code of TEA (Li et al., arXiv 2004.01398;
Phoenix1327/tea-action-recognition, ``ops/tea50_8f.py`` ``ShiftModule``) and of TDN (Wang et
al., arXiv 2012.10071; MCG-NJU/TDN, ``ops/base_module.py`` ``ShiftModule``) make that shift
learnable: a depthwise ``Conv1d`` with kernel 3 over the segment axis, zero padded, whose
weights are *initialised* as the shift and then trained. :class:`TemporalShiftConv` is that
layer, shared by :mod:`videozoo.models.tdn` and :mod:`videozoo.models.tea`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TemporalShiftConv"]


class TemporalShiftConv(nn.Module):
    """Channel-wise temporal convolution over segments, initialised as a temporal shift.

    ``y[t, c] = w[c, 0] * x[t-1, c] + w[c, 1] * x[t, c] + w[c, 2] * x[t+1, c]`` with
    ``x[-1] = x[N] = 0``: the same as ``nn.Conv1d(C, C, 3, padding=1, groups=C, bias=False)``
    run along the N segments of every pixel (``weight`` has that layer's shape ``(C, 1, 3)``),
    computed as a sum of three shifted copies, which is much faster on a CPU than a grouped
    ``Conv1d`` over ``B*H*W`` short sequences.

    Initial weights: channels ``[0, fold_next)`` read the next segment (tap 2),
    ``[fold_next, fold_next + fold_prev)`` the previous segment (tap 0), the others the current
    one (tap 1). ``fold_next = fold_prev = C // 8`` is TSM's shift (TDN's L-TDM shift),
    ``C // 2`` each is TEA's "half/half" shift of the passed-on fragment, ``0`` is identity.

    Args:
        channels: C.
        n_segment: N, segments per video.
        fold_next: Channels that start by reading segment ``t + 1``.
        fold_prev: Channels that start by reading segment ``t - 1``.

    Shapes:
        x: ``(B*N, C, H, W)`` -> ``(B*N, C, H, W)``.

    Raises:
        ValueError: if ``fold_next + fold_prev > channels`` or a fold is negative.
    """

    def __init__(self, channels: int, n_segment: int, fold_next: int = 0, fold_prev: int = 0) -> None:
        super().__init__()
        if fold_next < 0 or fold_prev < 0 or fold_next + fold_prev > channels:
            raise ValueError(f"folds {fold_next} + {fold_prev} must be >= 0 and fit in {channels} channels")
        self.n_segment = n_segment
        self.weight = nn.Parameter(torch.zeros(channels, 1, 3))
        self.reset_to_shift(fold_next, fold_prev)

    def reset_to_shift(self, fold_next: int, fold_prev: int) -> None:
        """Set the weights to the shift described in the class docstring."""
        with torch.no_grad():
            self.weight.zero_()
            self.weight[:fold_next, 0, 2] = 1.0
            self.weight[fold_next:fold_next + fold_prev, 0, 0] = 1.0
            self.weight[fold_next + fold_prev:, 0, 1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        nt, c, h, w = x.shape
        n = self.n_segment
        v = x.view(nt // n, n, c, h, w)
        padded = F.pad(v, (0, 0, 0, 0, 0, 0, 1, 1))  # a zero segment at both ends
        y = sum(self.weight[:, 0, k].view(1, 1, c, 1, 1) * padded[:, k:k + n] for k in range(3))
        return y.reshape(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.weight.shape[0]}, n_segment={self.n_segment}"
