"""A transformer over per-frame embeddings: learned frame positions, pre-norm blocks, a residual.

The "temporal transformer" that CLIP-based video models put on top of CLIP's frame embeddings
(the sequential-transformer similarity calculator ``seqTransf`` of CLIP4Clip, Luo et al., arXiv
2104.08860, which BIKE's release reuses as its ``Transf`` video header, Wu et al., arXiv
2301.00182): ``y = x + Blocks(x + P[:T])``, where ``P`` holds one learned position embedding per
frame index.  Because of ``P`` the output depends on the order of the frames, which a mean over
frame embeddings does not.

Used by :mod:`videozoo.models.bike` (the video header) and :mod:`videozoo.models.laiar` (the
temporal part of the DT-Former).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from videozoo.layers.attention import Block

__all__ = ["FrameTransformer"]


class FrameTransformer(nn.Module):
    """Temporal transformer over ``T`` frame embeddings of width ``D``.

    ``y = x + Blocks(x + P[:T])`` (``residual=True``) or ``Blocks(x + P[:T])``.

    Args:
        dim: Embedding width ``D``.
        depth: Number of pre-norm blocks (:class:`videozoo.layers.attention.Block`).
        num_heads: Attention heads (``D`` must be divisible by it).
        max_frames: Rows of the frame position table ``P`` (the most frames a clip may have).
        mlp_ratio: MLP hidden width / ``D``.
        act: MLP activation class (CLIP's QuickGELU in BIKE).
        norm_eps: LayerNorm epsilon (BIKE's header uses 1e-12, TensorFlow style).
        residual: Add the input to the output (BIKE's ``x + x_original``).

    Initialisation (BIKE's ``video_header.init_weights``, from CLIP4Clip): every linear layer and
    the position table ``N(0, 0.02^2)``, biases zero, LayerNorm gains one.

    Shapes: ``(B, T, D) -> (B, T, D)``.
    """

    def __init__(self, dim: int, depth: int, num_heads: int, max_frames: int, mlp_ratio: float = 4.0,
                 act: Callable[[], nn.Module] = nn.GELU, norm_eps: float = 1e-5, residual: bool = True):
        super().__init__()
        self.max_frames = max_frames
        self.residual = residual
        self.frame_position_embeddings = nn.Embedding(max_frames, dim)
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=norm_eps), act=act)
            for _ in range(depth))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks over the frames of each clip.

        Args:
            x: ``(B, T, D)`` frame embeddings, ``T <= max_frames``.

        Returns:
            ``(B, T, D)``.

        Raises:
            ValueError: ``x`` is not 3-D or has more frames than ``max_frames``.
        """
        if x.dim() != 3:
            raise ValueError(f"frame embeddings must be (B, T, D), got shape {tuple(x.shape)}")
        T = x.shape[1]
        if T > self.max_frames:
            raise ValueError(f"{T} frames; the frame position table holds max_frames={self.max_frames}")
        h = x + self.frame_position_embeddings.weight[:T].to(x.dtype)
        for blk in self.blocks:
            h = blk(h)
        return h + x if self.residual else h
