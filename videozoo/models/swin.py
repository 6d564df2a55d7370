"""Swin Transformer (image model).

Paper: Ze Liu, Yutong Lin, Yue Cao, Han Hu, Yixuan Wei, Zheng Zhang, Stephen Lin, Baining Guo,
"Swin Transformer: Hierarchical Vision Transformer using Shifted Windows", ICCV 2021,
arXiv 2103.14030.

What this file follows:

* Sec. 3.1 "Overall architecture": patch partition into 4x4 patches + linear embedding
  (implemented, as usual, as one strided convolution followed by LayerNorm), four stages of
  Swin Transformer blocks, patch merging between stages (concatenate each 2x2 group of
  neighbouring tokens, LayerNorm, linear 4C -> 2C), final LayerNorm, global average pooling and a
  linear classifier.
* Sec. 3.2 "Shifted window based self-attention": multi-head self-attention inside
  non-overlapping M x M windows (W-MSA); consecutive blocks alternate regular windows and
  windows shifted by (M/2, M/2) (SW-MSA), eq. (3).  The shift is done as a *cyclic shift*
  (``torch.roll``) and an additive attention mask (-100 between tokens that were not neighbours
  before the roll) keeps attention inside the original sub-windows ("efficient batch
  computation for shifted configuration").
* Sec. 3.2 "Relative position bias", eq. (4): ``softmax(Q K^T / sqrt(d) + B) V`` with ``B``
  gathered from a learned table of size ``(2M-1)^2`` per head.
* Sec. 3.3 architecture variants Swin-T/S/B/L (Table 1 of the paper reports 28 M parameters
  and 4.5 GFLOPs for Swin-T at 224x224).

Conventions copied from the authors' code (and timm), so that weights can be exchanged: when
a stage's resolution is not larger than the window, the window shrinks to the resolution and
the shift is switched off.  Simplification: the feature map must be divisible by the window
(true for all paper configurations); a :class:`ValueError` is raised otherwise instead of
padding.

Video use in videozoo: Swin is an image model; :func:`middle_frame` feeds it the middle frame
of a clip, so it cannot see motion (``temporal=False``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.registry import Reported, register_check, register_model

__all__ = [
    "SwinConfig",
    "SwinTransformer",
    "WindowAttention",
    "SwinBlock",
    "PatchMerging",
    "window_partition",
    "window_reverse",
    "relative_position_index",
    "shifted_window_mask",
    "middle_frame",
    "load_state_dict_from",
    "reference_model",
]


@dataclass
class SwinConfig:
    """Hyper-parameters of a Swin Transformer (paper Sec. 3.3).

    Attributes:
        num_classes: Number of output classes.
        img_size: Input height = width in pixels.
        patch_size: Side of the square patches of the patch partition (paper: 4).
        in_chans: Input channels.
        embed_dim: Channel number ``C`` of stage 1 (doubles at each patch merging).
        depths: Number of blocks per stage.
        num_heads: Attention heads per stage.
        window_size: Window side ``M`` in tokens (paper: 7).
        mlp_ratio: Hidden width of the MLP relative to the channels.
        qkv_bias: Whether the q/k/v projection has a bias.
        drop_path_rate: Maximum stochastic-depth rate (linearly increasing over blocks).
    """

    num_classes: int = 1000
    img_size: int = 224
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.2

    @classmethod
    def paper(cls) -> "SwinConfig":
        """Swin-T, 224x224, ImageNet-1K head (paper Sec. 3.3 / Table 1)."""
        return cls()

    @classmethod
    def small(cls) -> "SwinConfig":
        """Swin-S: C=96, depths (2, 2, 18, 2)."""
        return cls(depths=(2, 2, 18, 2), drop_path_rate=0.3)

    @classmethod
    def base(cls) -> "SwinConfig":
        """Swin-B: C=128, depths (2, 2, 18, 2), heads (4, 8, 16, 32)."""
        return cls(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5)

    @classmethod
    def large(cls) -> "SwinConfig":
        """Swin-L: C=192, depths (2, 2, 18, 2), heads (6, 12, 24, 48)."""
        return cls(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), drop_path_rate=0.5)

    @classmethod
    def tiny(cls) -> "SwinConfig":
        """A two-stage toy Swin for 32x32 inputs (16x16 tokens, 4x4 windows, ~30 k params)."""
        return cls(num_classes=8, img_size=32, patch_size=2, embed_dim=16, depths=(2, 2), num_heads=(2, 4),
                   window_size=4, drop_path_rate=0.0)

    def input_shape(self) -> tuple[int, int, int]:
        """Per-sample input shape ``(C, H, W)``."""
        return (self.in_chans, self.img_size, self.img_size)


# ----------------------------------------------------------------------------- window helpers


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


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of whole samples with probability ``p`` (train only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, ...)`` -> same shape."""
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class Mlp(nn.Module):
    """Two-layer MLP with GELU (the FFN of a transformer block): ``(..., C) -> (..., C)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


# ----------------------------------------------------------------------------- modules


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


class SwinBlock(nn.Module):
    """One Swin Transformer block, eq. (3): (S)W-MSA and MLP, each pre-LayerNorm with a residual.

    Args:
        dim: Channels ``C``.
        resolution: ``(H, W)`` of the token map this block works on.
        num_heads: Attention heads.
        window_size: Window side ``M``; shrinks to the resolution when that is smaller.
        shift: ``True`` for SW-MSA (shift by ``M // 2``).
        mlp_ratio, qkv_bias, drop_path: As in :class:`SwinConfig`.

    Raises:
        ValueError: if the resolution is not divisible by the window.
    """

    def __init__(self, dim: int, resolution: tuple[int, int], num_heads: int, window_size: int, shift: bool,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0) -> None:
        super().__init__()
        self.window = tuple(min(window_size, r) for r in resolution)
        self.shift = tuple(0 if (not shift or r <= window_size) else window_size // 2 for r in resolution)
        if any(r % m for r, m in zip(resolution, self.window)):
            raise ValueError(f"resolution {resolution} not divisible by window {self.window}")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(resolution, self.window, self.shift) if any(self.shift) else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, H, W, C)`` -> ``(B, H, W, C)``."""
        b, h, w, c = x.shape
        y = self.norm1(x)
        if any(self.shift):  # cyclic shift towards the top-left (Sec. 3.2)
            y = torch.roll(y, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), self.attn_mask)
        y = window_reverse(y, self.window, h, w)
        if any(self.shift):
            y = torch.roll(y, shifts=self.shift, dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


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


class SwinStage(nn.Module):
    """Optional patch merging followed by ``depth`` blocks alternating W-MSA and SW-MSA."""

    def __init__(self, dim_in: int, dim: int, resolution: tuple[int, int], depth: int, num_heads: int,
                 cfg: SwinConfig, drop_paths: list[float], downsample: bool) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim_in) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[
            SwinBlock(dim, resolution, num_heads, cfg.window_size, shift=(i % 2 == 1), mlp_ratio=cfg.mlp_ratio,
                      qkv_bias=cfg.qkv_bias, drop_path=drop_paths[i])
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C_in) -> (B, H', W', C)``."""
        return self.blocks(self.downsample(x))


class SwinTransformer(nn.Module):
    """Swin Transformer classifier (paper Sec. 3, Fig. 3a).

    Input ``(B, 3, H, W)`` with ``H = W = config.img_size``; output logits ``(B, num_classes)``.
    """

    def __init__(self, config: SwinConfig) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.img_size % cfg.patch_size:
            raise ValueError("img_size must be divisible by patch_size")
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.patch_size)
        self.patch_embed.norm = nn.LayerNorm(cfg.embed_dim)
        res = cfg.img_size // cfg.patch_size
        total = sum(cfg.depths)
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, dim, start = [], cfg.embed_dim, 0
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            dim_in = dim
            if i > 0:
                dim, res = dim * 2, res // 2
            stages.append(SwinStage(dim_in, dim, (res, res), depth, heads, cfg, rates[start:start + depth], i > 0))
            start += depth
        self.layers = nn.Sequential(*stages)
        self.num_features = dim
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` -> normalised last-stage tokens ``(B, H/32, W/32, 8C)`` (for patch 4)."""
        x = self.patch_embed.proj(x).permute(0, 2, 3, 1)
        x = self.patch_embed.norm(x)
        return self.norm(self.layers(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` in the model's normalisation -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x).mean(dim=(1, 2)))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def middle_frame(config: SwinConfig, clip: torch.Tensor) -> torch.Tensor:
    """Turn a clip ``(B, 3, T, H, W)`` into the image ``(B, 3, S, S)`` Swin sees: its middle frame.

    The frame is bilinearly resized to ``config.img_size`` when the clip's size differs.
    """
    frame = clip[:, :, clip.shape[2] // 2]
    if frame.shape[-2:] != (config.img_size, config.img_size):
        frame = F.interpolate(frame, size=(config.img_size, config.img_size), mode="bilinear", align_corners=False)
    return frame


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference implementation's state dict into this module's key names.

    Args:
        library: ``"timm"`` (``timm.models.swin_transformer.SwinTransformer``, timm >= 0.9 layout
            with the patch merging at the start of stages 2-4 and the classifier at ``head.fc``).
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A new dict loadable with ``SwinTransformer.load_state_dict`` (buffers recomputed here,
        such as ``relative_position_index`` and ``attn_mask``, are dropped).

    Raises:
        ValueError: for an unknown library.
    """
    if library != "timm":
        raise ValueError(f"unknown library {library!r}; supported: 'timm'")
    out = {}
    for key, value in state_dict.items():
        if key.endswith(("relative_position_index", "attn_mask")):
            continue
        out[re.sub(r"^head\.fc\.", "head.", key)] = value
    return out


@register_model(
    "liu2021swin",
    alias="swin",
    stage=2,
    config=SwinConfig,
    reported=(Reported("params_m", 28.0, "paper, Table 1", note="Swin-T, ImageNet-1K, 224x224",
                       kind="paper", tolerance_pct=3.6),
              Reported("gmacs", 4.5, "paper, Table 1",
                       note="Swin-T at 224x224; the paper's FLOPs count multiply-adds (1 MAC = 1 FLOP)",
                       kind="paper", tolerance_pct=2.2)),
    temporal=False,
    clip_to_input=middle_frame,
)
def swin(config: SwinConfig) -> SwinTransformer:
    """Build a Swin Transformer image classifier from ``config``."""
    return SwinTransformer(config)


def reference_model(config: SwinConfig):
    """A randomly initialised timm ``SwinTransformer`` with ``config``'s shape (eval mode).

    Its ``state_dict()`` loads into ours through ``load_state_dict_from("timm", ...)``; used by
    the reference check and by ``scripts/bench_zoo.py --vs-reference``.

    Raises:
        ImportError: timm is not installed.
    """
    from timm.models.swin_transformer import SwinTransformer as TimmSwin

    return TimmSwin(img_size=config.img_size, patch_size=config.patch_size, embed_dim=config.embed_dim,
                    depths=config.depths, num_heads=config.num_heads, window_size=config.window_size,
                    drop_path_rate=config.drop_path_rate, num_classes=config.num_classes).eval()


@register_check("liu2021swin", "reference", evidence="self-consistency")
def _swin_matches_timm() -> dict:
    """Same weights in ``timm.models.swin_transformer.SwinTransformer`` and ours: compare logits."""
    torch.manual_seed(0)
    cfg = SwinConfig(num_classes=10, img_size=64, patch_size=4, embed_dim=24, depths=(2, 2, 2), num_heads=(2, 3, 6),
                     window_size=4, drop_path_rate=0.0)
    try:
        ref = reference_model(cfg)
    except ImportError:  # pragma: no cover - depends on the environment
        return {"passed": False, "summary": "timm is not installed", "reference": "timm SwinTransformer"}
    with torch.no_grad():  # make the relative-position tables non-trivial
        for name, p in ref.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 1.0)
    ours = SwinTransformer(cfg).eval()
    ours.load_state_dict(load_state_dict_from("timm", ref.state_dict()))
    x = torch.randn(2, 3, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
    tol = 1e-5
    return {
        "passed": diff <= tol,
        "summary": f"logits vs timm SwinTransformer (same weights, 3 stages, shifted windows): max abs diff {diff:.2e}",
        "max_abs_diff": diff,
        "tolerance": tol,
        "reference": "timm.models.swin_transformer.SwinTransformer",
    }
