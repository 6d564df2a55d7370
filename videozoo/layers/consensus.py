"""Segmental consensus: aggregate per-segment class scores into one video-level score.

Temporal Segment Networks (Wang et al., arXiv 1608.00859), Sec. 3.1, eq. (1): the video
prediction is ``H(G(F(T_1), ..., F(T_N)))`` where ``F`` scores one snippet and the
aggregation (consensus) function ``G`` combines the N segment scores; the paper uses
evenly weighted averaging in its experiments and also studies max pooling (Sec. 4).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SegmentConsensus"]


class SegmentConsensus(nn.Module):
    """Aggregation over the segment axis.

    Args:
        mode: ``"avg"`` (mean over segments), ``"max"`` (element-wise max over segments) or
            ``"identity"`` (no aggregation; returns the input unchanged).
        dim: The segment axis (default 1).

    Shapes:
        ``(B, N, K) -> (B, K)`` for ``avg``/``max``; ``(B, N, K)`` unchanged for ``identity``.
        Extra trailing dimensions are kept.

    Raises:
        ValueError: for an unknown mode.
    """

    def __init__(self, mode: str = "avg", dim: int = 1) -> None:
        super().__init__()
        if mode not in ("avg", "max", "identity"):
            raise ValueError(f"consensus mode must be 'avg', 'max' or 'identity', got {mode!r}")
        self.mode, self.dim = mode, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, K)
        if self.mode == "avg":
            return x.mean(dim=self.dim)
        if self.mode == "max":
            return x.amax(dim=self.dim)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, dim={self.dim}"
