"""Stochastic depth ("drop path"), shared by the Swin, Video Swin, UniFormer and UniFormerV2 models.

Follows "Deep Networks with Stochastic Depth" (Huang et al., arXiv 1603.09382, Sec. 3) in the
per-sample form used by timm and the authors' releases of those models: during training the
residual branch of each sample is dropped with probability ``p`` and the kept ones are scaled
by ``1 / (1 - p)``; at evaluation it is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath"]


class DropPath(nn.Module):
    """Drop the residual branch of whole samples with probability ``p`` (training only).

    Args:
        p: Drop probability in ``[0, 1)``.

    Shapes: ``(B, ...) -> (B, ...)``.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, ...)`` -> same shape."""
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)
