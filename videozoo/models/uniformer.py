"""UniFormer (video).

Paper: Kunchang Li, Yali Wang, Peng Gao, Guanglu Song, Yu Liu, Hongsheng Li, Yu Qiao,
"UniFormer: Unified Transformer for Efficient Spatiotemporal Representation Learning",
ICLR 2022, arXiv 2201.04676.

What this file follows (paper Sec. 3, Fig. 2, eqs. 1-7):

* A UniFormer block is ``X = DPE(X_in) + X_in`` (eq. 1), ``Y = MHRA(Norm(X)) + X`` (eq. 2),
  ``Z = FFN(Norm(Y)) + Y`` (eq. 3).
* Dynamic position encoding DPE (eq. 7): a 3x3x3 depth-wise 3-D convolution (zero padding) added
  as a residual, so the position information depends on the token's neighbourhood.
* Multi-Head Relation Aggregator MHRA (eqs. 4-6): ``R_n(X) = A_n V_n(X)``, heads concatenated
  and projected by ``U``.  In the *local* MHRA (shallow stages 1-2) the affinity ``A_n`` is a
  learnable per-channel parameter over a 5x5x5 neighbourhood that does not depend on the
  content; this is exactly a depth-wise 3-D convolution between two point-wise (1x1x1)
  convolutions ``V`` and ``U``, with BatchNorm as Norm.  In the *global* MHRA (deep stages 3-4)
  the affinity is the content-based attention ``softmax(Q K^T / sqrt(d))`` over all
  spatio-temporal tokens, i.e. standard multi-head self-attention, with LayerNorm as Norm.
* Sec. 3.3: four stages with channels (64, 128, 320, 512); the stem is a 3x4x4 convolution with
  stride 2x4x4 (time is halved once), later stages downsample space by 2 with 1x2x2
  convolutions, each followed by LayerNorm; UniFormer-S has depths (3, 4, 8, 3), UniFormer-B
  (5, 8, 20, 7); head dimension 64, MLP ratio 4.  Classification: BatchNorm, global average
  pooling, linear layer.

The survey "A Survey on Backbones for Deep Video Action Recognition" (Table 1) lists "UniFormer 49.8 M" params: that is
UniFormer-B, which :meth:`UniFormerConfig.paper` builds.  Simplifications: no dropout; the
temporal stride of the stem is a config field (``stem_temporal_stride``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.drop import DropPath
from videozoo.registry import Reported, register_check, register_model

__all__ = ["UniFormerConfig", "UniFormer", "DPE", "LocalMHRA", "GlobalMHRA", "LocalBlock", "GlobalBlock"]


@dataclass
class UniFormerConfig:
    """Hyper-parameters of UniFormer (paper Sec. 3.3, Table 1 of the appendix).

    Attributes:
        num_classes: Output classes.
        num_frames: Input frames ``T``.
        img_size: Input height = width.
        in_chans: Input channels.
        dims: Channels of the four stages.
        depths: Blocks per stage; stages 1-2 use local MHRA, stages 3-4 global MHRA.
        head_dim: Channels per attention head in the global stages.
        mlp_ratio: FFN width relative to the channels.
        local_kernel: Side of the local MHRA neighbourhood (paper: 5x5x5).
        stem_temporal_stride: Temporal stride of the stem convolution (paper: 2, kernel 3).
        drop_path_rate: Maximum stochastic-depth rate.
    """

    num_classes: int = 400
    num_frames: int = 16
    img_size: int = 224
    in_chans: int = 3
    dims: tuple[int, int, int, int] = (64, 128, 320, 512)
    depths: tuple[int, int, int, int] = (5, 8, 20, 7)
    head_dim: int = 64
    mlp_ratio: float = 4.0
    local_kernel: int = 5
    stem_temporal_stride: int = 2
    drop_path_rate: float = 0.3

    @classmethod
    def paper(cls) -> "UniFormerConfig":
        """UniFormer-B, 16x224x224, Kinetics-400 head (the survey's 49.8 M model)."""
        return cls()

    @classmethod
    def small(cls) -> "UniFormerConfig":
        """UniFormer-S: depths (3, 4, 8, 3)."""
        return cls(depths=(3, 4, 8, 3), drop_path_rate=0.1)

    @classmethod
    def tiny(cls) -> "UniFormerConfig":
        """One block per stage, narrow, for 8x32x32 clips (stem as in the paper: 4 time steps kept)."""
        return cls(num_classes=8, num_frames=8, img_size=32, dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), head_dim=16,
                   local_kernel=3, drop_path_rate=0.0)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W)``."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)


class DPE(nn.Module):
    """Dynamic position encoding (eq. 7): depth-wise 3x3x3 conv; the block adds it to its input.

    ``x: (B, C, T, H, W)`` -> ``(B, C, T, H, W)`` (the encoding only, without the residual).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LocalMHRA(nn.Module):
    """Local MHRA (eq. 5): ``U(A * V(x))`` with a learned, content-independent local affinity.

    ``V`` and ``U`` are point-wise linear maps (1x1x1 convs); ``A`` aggregates each channel over a
    ``k x k x k`` neighbourhood with its own learned weights (a depth-wise 3-D convolution).

    ``x: (B, C, T, H, W)`` (already normalised) -> ``(B, C, T, H, W)``.
    """

    def __init__(self, dim: int, kernel: int = 5) -> None:
        super().__init__()
        self.v = nn.Conv3d(dim, dim, 1)
        self.affinity = nn.Conv3d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.u = nn.Conv3d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.u(self.affinity(self.v(x)))


class GlobalMHRA(nn.Module):
    """Global MHRA (eq. 6): multi-head self-attention over all ``T*H*W`` tokens.

    ``x: (B, N, C)`` (already normalised) -> ``(B, N, C)``.
    """

    def __init__(self, dim: int, head_dim: int = 64) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"dim {dim} not divisible by head_dim {head_dim}")
        self.num_heads = dim // head_dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LocalBlock(nn.Module):
    """UniFormer block of the shallow stages: DPE, local MHRA (BatchNorm), conv FFN (BatchNorm).

    ``x: (B, C, T, H, W)`` -> same shape.
    """

    def __init__(self, dim: int, cfg: UniFormerConfig, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dpe = DPE(dim)
        self.norm1 = nn.BatchNorm3d(dim)
        self.mhra = LocalMHRA(dim, cfg.local_kernel)
        self.norm2 = nn.BatchNorm3d(dim)
        hidden = int(dim * cfg.mlp_ratio)
        self.ffn = nn.Sequential(nn.Conv3d(dim, hidden, 1), nn.GELU(), nn.Conv3d(hidden, dim, 1))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dpe(x)  # eq. 1
        x = x + self.drop_path(self.mhra(self.norm1(x)))  # eq. 2
        return x + self.drop_path(self.ffn(self.norm2(x)))  # eq. 3


class GlobalBlock(nn.Module):
    """UniFormer block of the deep stages: DPE, global MHRA (LayerNorm), MLP FFN (LayerNorm).

    ``x: (B, C, T, H, W)`` -> same shape.
    """

    def __init__(self, dim: int, cfg: UniFormerConfig, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dpe = DPE(dim)
        self.norm1 = nn.LayerNorm(dim)
        self.mhra = GlobalMHRA(dim, cfg.head_dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * cfg.mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dpe(x)
        b, c, t, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, T*H*W, C)
        tokens = tokens + self.drop_path(self.mhra(self.norm1(tokens)))
        tokens = tokens + self.drop_path(self.ffn(self.norm2(tokens)))
        return tokens.transpose(1, 2).reshape(b, c, t, h, w)


class ConvEmbed(nn.Module):
    """Strided 3-D convolution followed by LayerNorm over channels: ``(B, C, T, H, W) -> (B, C', T', H', W')``."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
                 padding: tuple[int, int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv3d(c_in, c_out, kernel, stride, padding)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


class UniFormer(nn.Module):
    """UniFormer video classifier: input ``(B, 3, T, H, W)``, output logits ``(B, num_classes)``."""

    def __init__(self, config: UniFormerConfig) -> None:
        super().__init__()
        self.config = cfg = config
        st = cfg.stem_temporal_stride
        kt = 3 if st > 1 else 1
        self.embeds = nn.ModuleList([ConvEmbed(cfg.in_chans, cfg.dims[0], (kt, 4, 4), (st, 4, 4), (kt // 2, 0, 0))])
        for i in range(1, 4):
            self.embeds.append(ConvEmbed(cfg.dims[i - 1], cfg.dims[i], (1, 2, 2), (1, 2, 2), (0, 0, 0)))
        total = sum(cfg.depths)
        rates = iter([cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)])
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(cfg.dims, cfg.depths)):
            block = LocalBlock if i < 2 else GlobalBlock
            self.stages.append(nn.Sequential(*[block(dim, cfg, next(rates)) for _ in range(depth)]))
        self.norm = nn.BatchNorm3d(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], cfg.num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> last-stage map ``(B, C4, T/s, H/32, W/32)`` after the final BatchNorm."""
        for embed, stage in zip(self.embeds, self.stages):
            x = stage(embed(x))
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x).flatten(2).mean(-1))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@register_model(
    "li2022uniformer",
    alias="uniformer",
    stage=2,
    config=UniFormerConfig,
    reported=(Reported("params_m", 49.8132,
                       "Sense-X/UniFormer at 52a0415, video_classification/slowfast/models/uniformer.py Uniformer "
                       "with video_classification/exp/uniformer_b8x8_k400/config.yaml, on CPU with random weights",
                       note="the authors' code; UniFormer-B, 8x224x224, 400 classes", kind="release", tolerance_pct=0.5),
              Reported("params_m", 49.8, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       note="'UniFormer' row; 49.8 M corresponds to UniFormer-B (= paper() config)",
                       kind="survey", tolerance_pct=0.5)),
    temporal=True,
    motion={"max_steps": 1500},
)
def uniformer(config: UniFormerConfig) -> UniFormer:
    """Build a UniFormer video classifier from ``config``."""
    return UniFormer(config)


# ----------------------------------------------------------------------------- piece-by-piece checks


def check_local_mhra(seed: int = 0) -> float:
    """Max abs diff between :class:`LocalMHRA` and eq. 4-5 written as explicit sums
    (:func:`videozoo.references.uniformer.local_mhra`)."""
    from videozoo.references.uniformer import local_mhra

    torch.manual_seed(seed)
    m = LocalMHRA(6, kernel=5).eval()
    x = torch.randn(2, 6, 4, 5, 6)
    with torch.no_grad():
        ref = local_mhra(x, m.v.weight[:, :, 0, 0, 0], m.v.bias, m.affinity.weight, m.affinity.bias,
                         m.u.weight[:, :, 0, 0, 0], m.u.bias)
        return (m(x) - ref).abs().max().item()


def check_global_mhra(seed: int = 0) -> float:
    """Max abs diff between :class:`GlobalMHRA` and ``torch.nn.MultiheadAttention`` with the same weights."""
    torch.manual_seed(seed)
    m = GlobalMHRA(32, head_dim=8).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(m.qkv.weight)
        ref.in_proj_bias.copy_(m.qkv.bias)
        ref.out_proj.weight.copy_(m.proj.weight)
        ref.out_proj.bias.copy_(m.proj.bias)
        x = torch.randn(2, 3 * 4 * 4, 32)
        return (m(x) - ref(x, x, x, need_weights=False)[0]).abs().max().item()


def check_dpe(seed: int = 0) -> float:
    """Max abs diff between ``DPE(x)`` and the explicit 3x3x3 per-channel neighbourhood sum
    (:func:`videozoo.references.uniformer.neighbourhood_sum`)."""
    from videozoo.references.uniformer import neighbourhood_sum

    torch.manual_seed(seed)
    m = DPE(5).eval()
    x = torch.randn(2, 5, 3, 4, 4)
    with torch.no_grad():
        return (m(x) - neighbourhood_sum(x, m.conv.weight, m.conv.bias)).abs().max().item()


@register_check("li2022uniformer", "reference", evidence="independent-reference")
def _uniformer_pieces() -> dict:
    """Piece-by-piece check against independent code: the local MHRA and DPE against the paper's
    equations written as sums (:mod:`videozoo.references.uniformer`), the global MHRA against
    ``torch.nn.MultiheadAttention``.  The pieces, not the assembled network."""
    diffs = {"local_mhra": check_local_mhra(), "global_mhra": check_global_mhra(), "dpe": check_dpe()}
    tol = 1e-5
    worst = max(diffs.values())
    return {
        "passed": worst <= tol,
        "summary": ("local MHRA vs explicit per-channel 5x5x5 neighbourhood sum, DPE vs explicit 3x3x3 sum, "
                    f"global MHRA vs torch.nn.MultiheadAttention: max abs diff {worst:.2e}"),
        "max_abs_diff": worst,
        "max_abs_diff_by_piece": diffs,
        "tolerance": tol,
        "reference": "videozoo.references.uniformer (eq. 2, 4-5 as sums); torch.nn.MultiheadAttention",
    }
