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
* Sec. 3.3 architecture variants: ``paper()`` is Swin-T; Swin-T, -S and -B are registered as
  ``swin_t``, ``swin_s`` and ``swin_b`` (:data:`SIZES`, the recipes
  ``configs/swin/swin_{tiny,small,base}_patch4_window7_224.yaml`` of microsoft/Swin-Transformer at
  commit f82860b), each with the paper's Table 1(a) figures (29 / 50 / 88 M parameters, 4.5 / 8.7 /
  15.4 GFLOPs at 224x224; the repository's README lists Swin-T as 28 M).

Conventions copied from the authors' code (and timm), so that weights can be exchanged: when
a stage's resolution is not larger than the window, the window shrinks to the resolution and
the shift is switched off.  Simplification: the feature map must be divisible by the window
(true for all paper configurations); a :class:`ValueError` is raised otherwise instead of
padding.

Video use in videozoo: Swin is an image model; :func:`middle_frame` feeds it the middle frame
of a clip, so it cannot see motion (``temporal=False``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Mlp
from videozoo.layers.drop import DropPath
from videozoo.layers.window_attention import (
    PatchMerging,
    WindowAttention,
    shifted_window_mask,
    swin_trunc_normal_init,
    window_partition,
    window_reverse,
)
from videozoo.registry import Reported, register_check, register_model, register_variant

__all__ = ["SwinConfig", "SwinTransformer", "SwinBlock", "SwinStage", "middle_frame", "load_state_dict_from",
           "reference_model", "SIZES"]


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
        """Swin-T, 224x224, ImageNet-1K head (paper Sec. 3.3 and Table 1(a); :data:`SIZES` has S and B)."""
        return cls()

    @classmethod
    def tiny(cls) -> "SwinConfig":
        """A two-stage toy Swin for 32x32 inputs (16x16 tokens, 4x4 windows, ~30 k params)."""
        return cls(num_classes=8, img_size=32, patch_size=2, embed_dim=16, depths=(2, 2), num_heads=(2, 4),
                   window_size=4, drop_path_rate=0.0)

    def input_shape(self) -> tuple[int, int, int]:
        """Per-sample input shape ``(C, H, W)``."""
        return (self.in_chans, self.img_size, self.img_size)


SIZES: dict[str, dict] = {
    "swin_t": {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "drop_path_rate": 0.2},
    "swin_s": {"embed_dim": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24), "drop_path_rate": 0.3},
    "swin_b": {"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32), "drop_path_rate": 0.5},
}
"""Config fields of the paper's sizes (Sec. 3.3): channels ``C``, blocks per stage, heads per stage, and
the stochastic-depth rate of the authors' ImageNet-1K recipes (microsoft/Swin-Transformer,
``configs/swin/swin_{tiny,small,base}_patch4_window7_224.yaml``).  Swin-L (C 192) is pre-trained on
ImageNet-22K only and is not registered."""


# ----------------------------------------------------------------------------- modules


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
        self.apply(swin_trunc_normal_init)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` -> normalised last-stage tokens ``(B, H/32, W/32, 8C)`` (for patch 4)."""
        x = self.patch_embed.proj(x).permute(0, 2, 3, 1)
        x = self.patch_embed.norm(x)
        return self.norm(self.layers(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` in the model's normalisation -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x).mean(dim=(1, 2)))


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


_PAPER = "paper (arXiv 2103.14030), Table 1(a), ImageNet-1K, 224x224"
_README = "microsoft/Swin-Transformer README (commit f82860b), ImageNet-1K model table"
_FLOPS_NOTE = "the paper's FLOPs count multiply-adds (1 MAC = 1 FLOP)"


@register_model(
    "liu2021swin",
    alias="swin",
    stage=2,
    config=SwinConfig,
    reported=(Reported("params_m", 29.0, _PAPER, note="Swin-T", kind="paper", tolerance_pct=3.4),
              Reported("params_m", 28.0, _README, note="Swin-T (rounded to 1 M)", kind="release",
                       tolerance_pct=3.6),
              Reported("gmacs", 4.5, _PAPER, note="Swin-T; " + _FLOPS_NOTE, kind="paper", tolerance_pct=2.2)),
    temporal=False,
    clip_to_input=middle_frame,
)
def swin(config: SwinConfig) -> SwinTransformer:
    """Build a Swin Transformer image classifier from ``config`` (``paper()``: Swin-T)."""
    return SwinTransformer(config)


def _last_digit_pct(value: float, unit: float) -> float:
    """Tolerance (%) of a rounded figure: one unit of its last digit, at least 0.5 % (see ``Reported``)."""
    return max(0.5, round(100 * unit / value, 1))


def _register_size(name: str, title: str, recipe: str, paper_params: float, readme_params: float,
                   gmacs: float) -> None:
    register_variant(
        name, of="liu2021swin", paper_overrides=SIZES[name],
        reported=(Reported("params_m", paper_params, _PAPER, note=title, kind="paper",
                           tolerance_pct=_last_digit_pct(paper_params, 1.0)),
                  Reported("params_m", readme_params, _README, note=f"{title} (rounded to 1 M)", kind="release",
                           tolerance_pct=_last_digit_pct(readme_params, 1.0)),
                  Reported("gmacs", gmacs, _PAPER, note=f"{title}; {_FLOPS_NOTE}", kind="paper",
                           tolerance_pct=_last_digit_pct(gmacs, 0.1))),
        description=f"{title} at 224x224 (paper Sec. 3.3, Table 1(a); recipe configs/swin/{recipe}.yaml)",
    )


_register_size("swin_t", "Swin-T", "swin_tiny_patch4_window7_224", 29.0, 28.0, 4.5)
_register_size("swin_s", "Swin-S", "swin_small_patch4_window7_224", 50.0, 50.0, 8.7)
_register_size("swin_b", "Swin-B", "swin_base_patch4_window7_224", 88.0, 88.0, 15.4)


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


def _layer_table_gap(name: str) -> dict:
    """Our ``paper()`` config of size ``name`` vs timm's model of that size, both built on the meta device.

    Returns the parameter counts and the keys whose name or shape differ after
    :func:`load_state_dict_from` (an empty list when the two layer tables agree).
    """
    cfg = SwinConfig(**SIZES[name])
    with torch.device("meta"):
        ours = SwinTransformer(cfg)
        ref = reference_model(cfg)
    mapped = {k: tuple(v.shape) for k, v in load_state_dict_from("timm", ref.state_dict()).items()}
    own = {k: tuple(v.shape) for k, v in ours.state_dict().items() if not k.endswith(("relative_position_index",
                                                                                      "attn_mask"))}
    differ = sorted(k for k in mapped.keys() | own.keys() if mapped.get(k) != own.get(k))
    return {"params": sum(p.numel() for p in ours.parameters()), "timm_params": sum(p.numel() for p in ref.parameters()),
            "differing_keys": differ}


@register_check("liu2021swin", "reference", evidence="independent-reference")
def _swin_matches_timm() -> dict:
    """Ours vs ``timm.models.swin_transformer.SwinTransformer``: logits with the same weights, and layer tables.

    A 3-stage model with shifted windows gets timm's random weights (relative-position tables drawn
    with std 1 so that the bias matters) and both compute logits; then Swin-T, -S and -B are built by
    both libraries and their (name, shape) tables are compared after the key mapping.
    """
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
    tables = {name: _layer_table_gap(name) for name in SIZES}
    same_tables = all(not t["differing_keys"] and t["params"] == t["timm_params"] for t in tables.values())
    counts = ", ".join(f"{n} {t['params'] / 1e6:.2f} M (timm {t['timm_params'] / 1e6:.2f} M)" for n, t in tables.items())
    return {
        "passed": diff <= tol and same_tables,
        "summary": (f"logits vs timm SwinTransformer (same weights, 3 stages, shifted windows): max abs diff {diff:.2e}; "
                    f"layer tables {'equal' if same_tables else 'DIFFER'} at {counts}"),
        "max_abs_diff": diff,
        "tolerance": tol,
        "layer_tables": tables,
        "reference": "timm.models.swin_transformer.SwinTransformer",
    }
