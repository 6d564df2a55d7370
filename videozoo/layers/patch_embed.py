"""Non-overlapping patch embedding of images (ViT, arXiv 2010.11929, Sec. 3.1, eq. 1).

Shared by the image ViT and the video transformers that embed each frame the same way
(TimeSformer, arXiv 2102.05095, Sec. 3).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchEmbed"]


class PatchEmbed(nn.Module):
    """Cut an image into ``P x P`` patches and project each to ``D``: ``(B, C, H, W) -> (B, N, D)``.

    Implemented as a ``P x P`` convolution with stride ``P``; ``N = H W / P^2`` tokens in raster
    (row-major) order.  Parameter name ``proj`` as in timm.

    Args:
        img_size: Input height = width in pixels.
        patch_size: Patch side ``P`` in pixels.
        in_chans: Input channels.
        embed_dim: Token width ``D``.

    Raises:
        ValueError: if ``img_size`` is not divisible by ``patch_size``.
    """

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} not divisible by patch_size {patch_size}")
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, H, W)`` -> ``(B, N, D)`` in raster (row-major) patch order."""
        return self.proj(x).flatten(2).transpose(1, 2)
