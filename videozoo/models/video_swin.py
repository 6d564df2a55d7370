"""Video Swin Transformer.

Paper: Ze Liu, Jia Ning, Yue Cao, Yixuan Wei, Zheng Zhang, Stephen Lin, Han Hu,
"Video Swin Transformer", CVPR 2022, arXiv 2106.13230.

What this file follows (paper Sec. 3):

* Sec. 3.1 "Overall architecture": 3-D patch partition into 2x4x4 tubelets with a linear
  embedding (a strided Conv3d + LayerNorm), four stages of Video Swin blocks, and *spatial-only*
  patch merging between stages (2x2 neighbours in H, W; time is never downsampled), final
  LayerNorm, global average pooling over (T, H, W) and a linear classifier.
* Sec. 3.2 "3D shifted window based MSA": self-attention inside non-overlapping P x M x M
  windows (8x7x7); every second block shifts the windows by (P/2, M/2, M/2) with a cyclic shift
  of the token volume plus an additive attention mask, so that attention never mixes tokens that
  were not neighbours before the shift.
* Sec. 3.2 "3D relative position bias": a learned table of ``(2P-1)(2M-1)(2M-1)`` entries per
  head, added to ``Q K^T / sqrt(d)``.
* Sec. 3.3 architecture variants: Swin-T (C=96, depths 2-2-6-2), Swin-S, Swin-B, Swin-L
  (C=192, depths 2-2-18-2).

Conventions taken from the authors' code (shared by ``torchvision.models.video.swin3d_t``) so
that weights can be exchanged: the window shrinks to the token volume along an axis where the
volume is not larger than the window, with no shift on that axis; in that case the relative
position bias is read from the first ``N x N`` entries of the full window's index (a quirk kept
for weight compatibility).  Simplification: the token volume must be divisible by the window
(true for the paper configurations); :class:`ValueError` otherwise, instead of padding.

Reported figures: the paper's Table 1 gives 28 M parameters and 88 GFLOPs per 32x224x224 view
for Swin-T.  The survey "A Survey on Backbones for Deep Video Action Recognition" (Table 1) lists "Swin-L 200.0 M"; that figure
refers to :meth:`VideoSwinConfig.large`, whereas ``paper()`` is Swin-T, so it is registered
with a note and is not expected to match the paper configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from videozoo.layers.attention import Mlp
from videozoo.layers.checkpoint import run_block
from videozoo.layers.drop import DropPath
from videozoo.layers.window_attention import (PatchMerging, WindowAttention, shifted_window_mask,
                                              swin_trunc_normal_init)
from videozoo.registry import Reported, register_check, register_model

__all__ = ["VideoSwinConfig", "VideoSwinTransformer", "VideoSwinBlock", "window_partition_3d",
           "window_reverse_3d", "load_state_dict_from", "reference_model"]


@dataclass
class VideoSwinConfig:
    """Hyper-parameters of a Video Swin Transformer (paper Sec. 3.3).

    Attributes:
        num_classes: Number of classes (Kinetics-400: 400).
        num_frames: Input frames ``T``.
        img_size: Input height = width.
        patch_size: Tubelet size ``(t, h, w)`` of the 3-D patch partition (paper: 2x4x4).
        in_chans: Input channels.
        embed_dim: Channels ``C`` of stage 1.
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: 3-D window ``(P, M, M)`` in tokens (paper: 8x7x7).
        mlp_ratio: MLP width relative to the channels.
        qkv_bias: Bias of the q/k/v projection.
        drop_path_rate: Maximum stochastic-depth rate.
    """

    num_classes: int = 400
    num_frames: int = 32
    img_size: int = 224
    patch_size: tuple[int, int, int] = (2, 4, 4)
    in_chans: int = 3
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: tuple[int, int, int] = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.1

    @classmethod
    def paper(cls) -> "VideoSwinConfig":
        """Swin-T at 32x224x224 (paper Table 1: 28 M parameters, 88 GFLOPs per view)."""
        return cls()

    @classmethod
    def large(cls) -> "VideoSwinConfig":
        """Swin-L (C=192, depths 2-2-18-2, heads 6-12-24-48): the model of the survey's "Swin-L 200.0 M"."""
        return cls(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), drop_path_rate=0.2)

    @classmethod
    def tiny(cls) -> "VideoSwinConfig":
        """Two stages for 8x32x32 clips: 2x4x4 tubelets (4 time steps, 8x8 positions), 2x4x4 windows."""
        return cls(num_classes=8, num_frames=8, img_size=32, patch_size=(2, 4, 4), embed_dim=16, depths=(2, 2),
                   num_heads=(2, 4), window_size=(2, 4, 4), drop_path_rate=0.0)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W)``."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)


def window_partition_3d(x: torch.Tensor, window: tuple[int, int, int]) -> torch.Tensor:
    """``(B, T, H, W, C)`` -> ``(B * nW, P * M * M, C)``, windows in (t, h, w) row-major order."""
    b, t, h, w, c = x.shape
    p, mh, mw = window
    x = x.view(b, t // p, p, h // mh, mh, w // mw, mw, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, p * mh * mw, c)


def window_reverse_3d(windows: torch.Tensor, window: tuple[int, int, int], t: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition_3d`: ``(B * nW, N, C)`` -> ``(B, T, H, W, C)``."""
    p, mh, mw = window
    c = windows.shape[-1]
    x = windows.view(-1, t // p, h // mh, w // mw, p, mh, mw, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(-1, t, h, w, c)


class VideoSwinBlock(nn.Module):
    """Video Swin block: 3-D (shifted) window MSA and MLP, each pre-LayerNorm with a residual.

    Args:
        dim: Channels ``C``.
        resolution: Token volume ``(T', H', W')`` this block works on.
        num_heads: Attention heads.
        window_size: Configured window ``(P, M, M)``.
        shift: ``True`` for the shifted-window block (shift by half the window).
        mlp_ratio, qkv_bias, drop_path: As in :class:`VideoSwinConfig`.

    Raises:
        ValueError: if the token volume is not divisible by the (possibly shrunk) window.
    """

    def __init__(self, dim: int, resolution: tuple[int, int, int], num_heads: int, window_size: tuple[int, int, int],
                 shift: bool, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0) -> None:
        super().__init__()
        self.window = tuple(min(w, r) for w, r in zip(window_size, resolution))
        self.shift = tuple(0 if (not shift or r <= w) else w // 2 for w, r in zip(window_size, resolution))
        if any(r % m for r, m in zip(resolution, self.window)):
            raise ValueError(f"token volume {resolution} not divisible by window {self.window}")
        self.norm1 = nn.LayerNorm(dim)
        # the table is sized for the configured window (authors' convention, see module docstring)
        self.attn = WindowAttention(dim, tuple(window_size), num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(resolution, self.window, self.shift) if any(self.shift) else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, T, H, W, C)`` -> ``(B, T, H, W, C)``."""
        b, t, h, w, c = x.shape
        y = self.norm1(x)
        if any(self.shift):
            y = torch.roll(y, shifts=tuple(-s for s in self.shift), dims=(1, 2, 3))
        y = self.attn(window_partition_3d(y, self.window), self.attn_mask)
        y = window_reverse_3d(y, self.window, t, h, w)
        if any(self.shift):
            y = torch.roll(y, shifts=self.shift, dims=(1, 2, 3))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VideoSwinStage(nn.Module):
    """Optional spatial patch merging, then ``depth`` blocks alternating regular and shifted 3-D windows."""

    def __init__(self, dim_in: int, dim: int, resolution: tuple[int, int, int], depth: int, num_heads: int,
                 cfg: VideoSwinConfig, drop_paths: list[float], downsample: bool) -> None:
        super().__init__()
        self.downsample = PatchMerging(dim_in) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[
            VideoSwinBlock(dim, resolution, num_heads, cfg.window_size, shift=(i % 2 == 1), mlp_ratio=cfg.mlp_ratio,
                           qkv_bias=cfg.qkv_bias, drop_path=drop_paths[i])
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W, C_in) -> (B, T, H', W', C)``."""
        return self.blocks(self.downsample(x))


class VideoSwinTransformer(nn.Module):
    """Video Swin Transformer classifier (paper Sec. 3.1, Fig. 1).

    Input clip ``(B, 3, T, H, W)``; output logits ``(B, num_classes)``.
    """

    def __init__(self, config: VideoSwinConfig) -> None:
        super().__init__()
        self.config = cfg = config
        pt, ph, pw = cfg.patch_size
        if cfg.num_frames % pt or cfg.img_size % ph or cfg.img_size % pw:
            raise ValueError("input size must be divisible by patch_size")
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.patch_size)
        self.patch_embed.norm = nn.LayerNorm(cfg.embed_dim)
        res = [cfg.num_frames // pt, cfg.img_size // ph, cfg.img_size // pw]
        total = sum(cfg.depths)
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, dim, start = [], cfg.embed_dim, 0
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            dim_in = dim
            if i > 0:  # spatial-only patch merging
                dim, res = dim * 2, [res[0], res[1] // 2, res[2] // 2]
            stages.append(VideoSwinStage(dim_in, dim, tuple(res), depth, heads, cfg, rates[start:start + depth], i > 0))
            start += depth
        self.layers = nn.Sequential(*stages)
        self.num_features = dim
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, cfg.num_classes)
        self.grad_checkpointing = False
        self.apply(swin_trunc_normal_init)  # linear layers trunc_normal(0.02), zero biases (the authors' code)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them
        (less memory for the ``T' H' W'`` tokens of a clip; same outputs and gradients)."""
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> normalised last-stage tokens ``(B, T', H', W', C_last)``."""
        x = self.patch_embed.norm(self.patch_embed.proj(x).permute(0, 2, 3, 4, 1))
        for stage in self.layers:
            x = stage.downsample(x)
            for blk in stage.blocks:
                x = run_block(blk, x, enabled=self.grad_checkpointing)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)`` (average over all tokens, then linear)."""
        return self.head(self.forward_features(x).mean(dim=(1, 2, 3)))


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference state dict into this module's key names.

    Args:
        library: ``"torchvision"`` (``torchvision.models.video.SwinTransformer3d``: stages and
            patch-merging layers interleaved in ``features``, MLP as ``mlp.0``/``mlp.3``).
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A dict for ``VideoSwinTransformer.load_state_dict`` (``relative_position_index`` dropped:
        it is recomputed here).

    Raises:
        ValueError: for an unknown library or an unexpected key.
    """
    if library != "torchvision":
        raise ValueError(f"unknown library {library!r}; supported: 'torchvision'")
    out = {}
    for key, value in state_dict.items():
        if key.endswith("relative_position_index"):
            continue
        m = re.match(r"^features\.(\d+)\.(.*)$", key)
        if m:
            idx, rest = int(m.group(1)), m.group(2)
            if idx % 2 == 0:  # a stage: "<block>.<param>"
                rest = re.sub(r"^(\d+)\.mlp\.0\.", r"\1.mlp.fc1.", rest)
                rest = re.sub(r"^(\d+)\.mlp\.3\.", r"\1.mlp.fc2.", rest)
                key = f"layers.{idx // 2}.blocks.{rest}"
            else:  # patch merging after stage idx // 2 = before stage idx // 2 + 1
                key = f"layers.{idx // 2 + 1}.downsample.{rest}"
        elif not key.startswith(("patch_embed.", "norm.", "head.")):
            raise ValueError(f"unexpected key {key!r}")
        out[key] = value
    return out


@register_model(
    "liu2022video",
    alias="video_swin",
    stage=2,
    config=VideoSwinConfig,
    reported=(
        Reported("params_m", 28.0, "paper, Table 1", note="Swin-T, 32x224x224 (= paper() config)",
                 kind="paper", tolerance_pct=3.6),
        Reported("gmacs", 88.0, "paper, Table 1",
                 note="Swin-T, per 32x224x224 view; the paper counts multiply-adds as FLOPs",
                 kind="paper", tolerance_pct=1.1),
        Reported("params_m", 200.0, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                 note="Swin-L (VideoSwinConfig.large()), not the Swin-T paper() config: not expected to match",
                 kind="survey", tolerance_pct=None),
    ),
    temporal=True,
    motion={"lr": 1e-3, "max_steps": 6000, "n_train": 8000},
)
def video_swin(config: VideoSwinConfig) -> VideoSwinTransformer:
    """Build a Video Swin Transformer from ``config``."""
    return VideoSwinTransformer(config)


def reference_model(config: VideoSwinConfig):
    """A randomly initialised torchvision ``SwinTransformer3d`` with ``config``'s shape (eval mode).

    Its ``state_dict()`` loads into ours through ``load_state_dict_from("torchvision", ...)``;
    used by the reference check and by ``scripts/bench_zoo.py --vs-reference``.
    """
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    return SwinTransformer3d(patch_size=list(config.patch_size), embed_dim=config.embed_dim,
                             depths=list(config.depths), num_heads=list(config.num_heads),
                             window_size=list(config.window_size), stochastic_depth_prob=config.drop_path_rate,
                             num_classes=config.num_classes).eval()


@register_check("liu2022video", "reference", evidence="independent-reference")
def _video_swin_matches_torchvision() -> dict:
    """Same weights in ``torchvision.models.video.SwinTransformer3d`` and ours: compare logits."""
    torch.manual_seed(0)
    cfg = VideoSwinConfig(num_classes=10, num_frames=8, img_size=64, patch_size=(2, 4, 4), embed_dim=24,
                          depths=(2, 2, 2), num_heads=(2, 3, 6), window_size=(2, 4, 4), drop_path_rate=0.0)
    ref = reference_model(cfg)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 1.0)
    ours = VideoSwinTransformer(cfg).eval()
    ours.load_state_dict(load_state_dict_from("torchvision", ref.state_dict()))
    x = torch.randn(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
    tol = 1e-5
    return {
        "passed": diff <= tol,
        "summary": f"logits vs torchvision SwinTransformer3d (same weights, 3 stages, 3-D shifted windows): "
                   f"max abs diff {diff:.2e}",
        "max_abs_diff": diff,
        "tolerance": tol,
        "reference": "torchvision.models.video.swin_transformer.SwinTransformer3d",
    }
