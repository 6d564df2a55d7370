"""Shifted-window attention blocks shared by Swin (image) and Video Swin.

Follows "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows" (Liu et al.,
arXiv 2103.14030): Sec. 3.2 (window attention, the cyclic shift with an attention mask, and the
relative position bias of eq. 4) and Sec. 3.1 (patch merging).  The same code serves 2-D windows
``(M, M)`` and the 3-D windows ``(P, M, M)`` of "Video Swin Transformer" (Liu et al., arXiv
2106.13230, Sec. 3.2).  Parameter names are those of the authors' code and timm
(``relative_position_bias_table``, ``qkv``, ``proj``, ``reduction``, ``norm``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "window_partition",
    "window_reverse",
    "relative_position_index",
    "shifted_window_mask",
    "WindowAttention",
    "PatchMerging",
    "swin_trunc_normal_init",
]


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Cut a feature map into non-overlapping windows.

    Args:
        x: ``(B, H, W, C)`` with ``H``, ``W`` divisible by the window.
        window: ``(Mh, Mw)``.

    Returns:
        ``(B * nW, Mh * Mw, C)``, windows in row-major order of their position.
    """
    b, h, w, c = x.shape
    mh, mw = window
    x = x.view(b, h // mh, mh, w // mw, mw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, mh * mw, c)


def window_reverse(windows: torch.Tensor, window: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, Mh * Mw, C)`` -> ``(B, H, W, C)``."""
    mh, mw = window
    c = windows.shape[-1]
    x = windows.view(-1, h // mh, w // mw, mh, mw, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(window: tuple[int, ...]) -> torch.Tensor:
    """Index into the relative-position-bias table for every pair of tokens in a window.

    Works for 2-D ``(Mh, Mw)`` and 3-D ``(Md, Mh, Mw)`` windows: the relative offset along each
    axis, ``d_i in [-(M_i - 1), M_i - 1]``, is shifted to ``[0, 2 M_i - 2]`` and the axes are
    combined in mixed radix ``(2 M_i - 1)``, so the table has ``prod(2 M_i - 1)`` rows.

    Returns:
        ``(N, N)`` long tensor with ``N = prod(window)``.
    """
    grids = torch.meshgrid(*[torch.arange(m) for m in window], indexing="ij")
    coords = torch.stack([g.flatten() for g in grids])  # (D, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (D, N, N): query minus key
    index = torch.zeros(rel.shape[1:], dtype=torch.long)
    for axis, m in enumerate(window):
        index = index * (2 * m - 1) + (rel[axis] + m - 1)
    return index


def _region_labels(size: int, window: int, shift: int) -> torch.Tensor:
    """Label positions ``0..size-1`` of one axis by the sub-window they came from before the roll."""
    pos = torch.arange(size)
    if shift == 0:
        return torch.zeros(size, dtype=torch.long)
    return (pos >= size - window).long() + (pos >= size - shift).long()


def shifted_window_mask(size: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...],
                        neg: float = -100.0) -> torch.Tensor:
    """Additive attention mask of shifted-window attention (paper Sec. 3.2, Fig. 4).

    After the cyclic shift by ``-shift``, a window at the border holds tokens from up to
    ``2^D`` regions that were not adjacent in the original map; tokens may only attend to tokens
    of the same region.

    Args:
        size: Feature-map size per axis, e.g. ``(H, W)`` or ``(T, H, W)``, divisible by ``window``.
        window: Window size per axis.
        shift: Shift per axis (0 = no shift on that axis).
        neg: Value added to forbidden pairs (the authors use -100).

    Returns:
        ``(nW, N, N)`` float tensor of 0 and ``neg``, ``N = prod(window)``.
    """
    labels = torch.zeros(size, dtype=torch.long)
    for axis, (s, m, sh) in enumerate(zip(size, window, shift)):
        shape = [1] * len(size)
        shape[axis] = s
        labels = labels * 3 + _region_labels(s, m, sh).view(shape)
    # partition the label map exactly like the tokens
    d = len(size)
    view = []
    for s, m in zip(size, window):
        view += [s // m, m]
    perm = list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2))
    lw = labels.view(view).permute(perm).reshape(-1, math.prod(window))
    diff = lw[:, None, :] != lw[:, :, None]
    return torch.zeros(diff.shape).masked_fill(diff, neg)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with relative position bias (paper eq. 4).

    Args:
        dim: Channels ``C``.
        window: Window size per axis (2-D here; the same class is reused by Video Swin in 3-D).
        num_heads: Number of heads (``C`` must be divisible by it).
        qkv_bias: Bias of the q/k/v projection.
    """

    def __init__(self, dim: int, window: tuple[int, ...], num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window = tuple(window)
        table_rows = 1
        for m in self.window:
            table_rows *= 2 * m - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_rows, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(self.window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def relative_bias(self, n: int) -> torch.Tensor:
        """Bias ``B`` of eq. (4) for the first ``n`` tokens of the window: ``(heads, n, n)``."""
        idx = self.relative_position_index[:n, :n]
        return self.relative_position_bias_table[idx.reshape(-1)].view(n, n, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention within each window.

        Args:
            x: ``(B * nW, N, C)`` tokens of each window.
            mask: ``(nW, N, N)`` additive mask of shifted windows, or ``None``.

        Returns:
            ``(B * nW, N, C)``.
        """
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.relative_bias(n).unsqueeze(0)  # (1, heads, N, N)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias.unsqueeze(1) + mask.to(x.dtype)[None, :, None]).expand(bw // nw, -1, -1, -1, -1)
            bias = bias.reshape(bw, self.num_heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class PatchMerging(nn.Module):
    """Patch merging (Sec. 3.1): 2x2 neighbouring tokens concatenated (4C), LayerNorm, linear to 2C.

    Works on any leading dimensions: ``(..., H, W, C) -> (..., H/2, W/2, 2C)``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # order of the four neighbours as in the authors' code: (0,0), (1,0), (0,1), (1,1) in (row, col)
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x))


def swin_trunc_normal_init(m: nn.Module, std: float = 0.02) -> None:
    """Initialise one module as the Swin and Video Swin releases do; use with ``model.apply``.

    ``nn.Linear``: weight ~ timm's ``trunc_normal_(std=std)``, whose cut is at +-2 absolute (so, at
    std 0.02, practically an untruncated normal; :func:`videozoo.layers.init.trunc_normal_init` cuts
    at +-2 std), bias 0;
    ``nn.LayerNorm``: weight 1, bias 0.  Other modules keep their own initialisation.
    """
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
