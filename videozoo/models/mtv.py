"""Multiview Transformers for Video Recognition (MTV).

Paper: Shen Yan, Xuehan Xiong, Anurag Arnab, Zhichao Lu, Mi Zhang, Chen Sun, Cordelia Schmid,
"Multiview Transformers for Video Recognition", CVPR 2022, arXiv 2201.04288.

What this file follows (paper Sec. 3, Fig. 2):

* Sec. 3.1 "Multiview tokenization": the same clip is tokenised several times, each *view* with
  its own tubelet size ``t_i x p x p`` (a strided Conv3d = linear projection of each tubelet)
  and its own hidden size; views with longer tubelets have fewer tokens.  A view is written
  ``X/t``: encoder size X (Ti, S, B, L) and tubelet length t.  MTV-B is ``B/2 + S/4 + Ti/8``.
* Sec. 3.2 "Multiview transformer": one transformer encoder per view (pre-norm ViT blocks).
  *Cross-view attention* (CVA) fuses adjacent views at selected layers: the tokens of view
  ``i+1`` are the queries, the tokens of view ``i`` (layer-normalised and linearly projected to
  the hidden size of view ``i+1``) are the keys and values, and the result is added to view
  ``i+1`` as a residual; views are fused in order, ``i = 1 .. V-1``.  Views are ordered by
  increasing tubelet length, so the queries come from the view with fewer tokens.
* Sec. 3.3 "Global encoder": the class token of each view is linearly projected to a common
  width and a global transformer encoder aggregates them; the classifier reads its output.

Simplifications (documented, not hidden): each view encoder attends jointly over all of its
spatio-temporal tokens with one class token per view; the global encoder takes the ``V``
projected view tokens plus its own class token.

Sizes of ``paper()``: the authors' JAX config for MTV-B on Kinetics-400 (scenic,
``projects/mtv/configs/kinetics/k400_mtv_b2_cva.py``) agrees with them: views
``Ti/8 + S/4 + B/2`` of 12 layers each, cross-view fusion at 0-based layers 5 and 11, a global
encoder of 12 layers, hidden size 768, MLP 3072 (it uses 8 heads there, we use 12; the
parameter count does not depend on it).  ``paper()`` builds 207 M parameters against the
survey's 310 M; the gap is not explained by these sizes.  That config also merges the views
along the channel axis before the global encoder (``merge_axis='channel'``), which our
simplified global encoder does not do.  There is no public PyTorch implementation to compare
against; the checks below test the pieces against explicit computations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Block
from videozoo.registry import Reported, register_check, register_model

__all__ = ["MTVConfig", "MTV", "TubeletEmbed", "CrossViewAttention", "explicit_cross_view_attention"]

_ViT_SIZES = {"Ti": (192, 3), "S": (384, 6), "B": (768, 12), "L": (1024, 16)}


@dataclass
class MTVConfig:
    """Hyper-parameters of MTV (paper Sec. 3-4).

    Attributes:
        num_classes: Output classes.
        num_frames: Input frames ``T``.
        img_size: Input height = width.
        in_chans: Input channels.
        patch_size: Spatial side ``p`` of every tubelet.
        tubelet_t: Temporal length of the tubelets of each view, increasing (MTV-B: 2, 4, 8).
        view_dims: Hidden size of each view's encoder (MTV-B: 768, 384, 192).
        view_heads: Attention heads of each view's encoder.
        depth: Layers of every view encoder.
        fusion_layers: 0-based indices of the layers before which CVA fuses the views.
        global_dim, global_heads, global_depth: The global encoder.
        mlp_ratio: FFN width relative to the hidden size.
    """

    num_classes: int = 400
    num_frames: int = 32
    img_size: int = 224
    in_chans: int = 3
    patch_size: int = 16
    tubelet_t: tuple[int, ...] = (2, 4, 8)
    view_dims: tuple[int, ...] = (768, 384, 192)
    view_heads: tuple[int, ...] = (12, 6, 3)
    depth: int = 12
    fusion_layers: tuple[int, ...] = (5, 11)
    global_dim: int = 768
    global_heads: int = 12
    global_depth: int = 12
    mlp_ratio: float = 4.0

    @classmethod
    def paper(cls) -> "MTVConfig":
        """MTV-B (B/2 + S/4 + Ti/8) at 32x224x224, Kinetics-400 head."""
        return cls()

    @classmethod
    def tiny(cls) -> "MTVConfig":
        """Two views (tubelets 2x8x8 and 4x8x8) of widths 32 and 24 on 8x32x32 clips, 2 layers each."""
        return cls(num_classes=8, num_frames=8, img_size=32, patch_size=8, tubelet_t=(2, 4), view_dims=(32, 24),
                   view_heads=(2, 2), depth=2, fusion_layers=(1,), global_dim=32, global_heads=2, global_depth=1)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W)``."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)


class TubeletEmbed(nn.Module):
    """Tubelet tokenisation of one view: non-overlapping ``t x p x p`` tubelets, linearly projected.

    ``x: (B, C, T, H, W)`` -> ``(B, (T/t) * (H/p) * (W/p), D)`` tokens ordered (time, row, column).
    """

    def __init__(self, in_chans: int, dim: int, tubelet: tuple[int, int, int]) -> None:
        super().__init__()
        self.tubelet = tubelet
        self.proj = nn.Conv3d(in_chans, dim, tubelet, tubelet)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class CrossViewAttention(nn.Module):
    """CVA from view ``i`` (keys/values) to view ``i+1`` (queries), paper Sec. 3.2.

    Args:
        dim_src: Hidden size of view ``i``.
        dim_dst: Hidden size of view ``i+1`` (output width).
        num_heads: Heads (of view ``i+1``).

    ``forward(dst (B, Lq, dim_dst), src (B, Lk, dim_src)) -> dst + CVA`` of shape ``(B, Lq, dim_dst)``.
    """

    def __init__(self, dim_src: int, dim_dst: int, num_heads: int) -> None:
        super().__init__()
        if dim_dst % num_heads:
            raise ValueError(f"dim {dim_dst} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm_dst = nn.LayerNorm(dim_dst)
        self.norm_src = nn.LayerNorm(dim_src)
        self.src_proj = nn.Linear(dim_src, dim_dst)
        self.q = nn.Linear(dim_dst, dim_dst)
        self.kv = nn.Linear(dim_dst, 2 * dim_dst)
        self.proj = nn.Linear(dim_dst, dim_dst)

    def forward(self, dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        b, lq, d = dst.shape
        lk = src.shape[1]
        hd = d // self.num_heads
        q = self.q(self.norm_dst(dst)).view(b, lq, self.num_heads, hd).transpose(1, 2)
        k, v = self.kv(self.src_proj(self.norm_src(src))).view(b, lk, 2, self.num_heads, hd).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return dst + self.proj(out.transpose(1, 2).reshape(b, lq, d))


class MTV(nn.Module):
    """Multiview transformer classifier: clip ``(B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""

    def __init__(self, config: MTVConfig) -> None:
        super().__init__()
        self.config = cfg = config
        v = len(cfg.tubelet_t)
        if not (len(cfg.view_dims) == len(cfg.view_heads) == v):
            raise ValueError("tubelet_t, view_dims and view_heads must have one entry per view")
        n_sp = (cfg.img_size // cfg.patch_size) ** 2
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.embeds = nn.ModuleList()
        self.cls_tokens = nn.ParameterList()
        self.pos_embeds = nn.ParameterList()
        self.encoders = nn.ModuleList()
        for t, d, h in zip(cfg.tubelet_t, cfg.view_dims, cfg.view_heads):
            if cfg.num_frames % t or cfg.img_size % cfg.patch_size:
                raise ValueError(f"input {cfg.num_frames}x{cfg.img_size} not divisible by tubelet {t}x{cfg.patch_size}")
            self.embeds.append(TubeletEmbed(cfg.in_chans, d, (t, cfg.patch_size, cfg.patch_size)))
            self.cls_tokens.append(nn.Parameter(torch.zeros(1, 1, d)))
            self.pos_embeds.append(nn.Parameter(torch.randn(1, 1 + (cfg.num_frames // t) * n_sp, d) * 0.02))
            self.encoders.append(nn.ModuleList([Block(d, h, cfg.mlp_ratio, norm_layer=norm) for _ in range(cfg.depth)]))
        self.view_norms = nn.ModuleList([norm(d) for d in cfg.view_dims])
        # one CVA per (fusion layer, adjacent view pair)
        self.cva = nn.ModuleDict({
            str(layer): nn.ModuleList([CrossViewAttention(cfg.view_dims[i], cfg.view_dims[i + 1], cfg.view_heads[i + 1])
                                       for i in range(v - 1)])
            for layer in cfg.fusion_layers
        })
        self.global_proj = nn.ModuleList([nn.Linear(d, cfg.global_dim) for d in cfg.view_dims])
        self.global_cls = nn.Parameter(torch.zeros(1, 1, cfg.global_dim))
        self.global_pos = nn.Parameter(torch.randn(1, 1 + v, cfg.global_dim) * 0.02)
        self.global_encoder = nn.ModuleList([Block(cfg.global_dim, cfg.global_heads, cfg.mlp_ratio, norm_layer=norm)
                                             for _ in range(cfg.global_depth)])
        self.global_norm = norm(cfg.global_dim)
        self.head = nn.Linear(cfg.global_dim, cfg.num_classes)

    def tokenize(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Multiview tokenisation: ``(B, 3, T, H, W)`` -> per view ``(B, 1 + (T/t_i)(H/p)(W/p), D_i)``."""
        out = []
        for embed, cls, pos in zip(self.embeds, self.cls_tokens, self.pos_embeds):
            tok = embed(x)
            out.append(torch.cat([cls.expand(tok.shape[0], -1, -1), tok], dim=1) + pos)
        return out

    def encode_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run the view encoders with CVA fusion; returns the normalised tokens of every view."""
        views = self.tokenize(x)
        for layer in range(self.config.depth):
            if str(layer) in self.cva:
                for i, cva in enumerate(self.cva[str(layer)]):
                    views[i + 1] = cva(views[i + 1], views[i])
            views = [enc[layer](z) for enc, z in zip(self.encoders, views)]
        return [n(z) for n, z in zip(self.view_norms, views)]

    def global_input(self, views: list[torch.Tensor]) -> torch.Tensor:
        """Global-encoder input ``(B, 1 + V, global_dim)``: its class token and the projected view class tokens."""
        b = views[0].shape[0]
        toks = [proj(z[:, :1]) for proj, z in zip(self.global_proj, views)]
        return torch.cat([self.global_cls.expand(b, -1, -1)] + toks, dim=1) + self.global_pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        z = self.global_input(self.encode_views(x))
        for blk in self.global_encoder:
            z = blk(z)
        return self.head(self.global_norm(z[:, 0]))


@register_model(
    "yan2022multiview",
    alias="mtv",
    stage=2,
    config=MTVConfig,
    reported=(Reported("params_m", 310.0, "survey 003_cde90359197f8a1e.txt, Table 1",
                       note="MTV-B; our paper() config makes assumptions on depths and the global encoder "
                            "(see mtv.py docstring), so a gap is expected", kind="survey", tolerance_pct=3.0),),
    temporal=True,
    # from scratch a transformer needs more clips and steps than the CNNs (600 steps at 2e-3: 12.5 %)
    motion={"lr": 1e-3, "max_steps": 3000, "n_train": 4000},
)
def mtv(config: MTVConfig) -> MTV:
    """Build an MTV classifier from ``config``."""
    return MTV(config)


# ----------------------------------------------------------------------------- piece-by-piece checks


def explicit_cross_view_attention(cva: CrossViewAttention, dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """CVA written out head by head with an explicit softmax (no SDPA, no fused reshapes).

    ``dst: (B, Lq, D_dst)``, ``src: (B, Lk, D_src)`` -> ``(B, Lq, D_dst)``.
    """
    d = dst.shape[-1]
    h = cva.num_heads
    hd = d // h
    qn = F.layer_norm(dst, (d,), cva.norm_dst.weight, cva.norm_dst.bias, cva.norm_dst.eps)
    sn = F.layer_norm(src, (src.shape[-1],), cva.norm_src.weight, cva.norm_src.bias, cva.norm_src.eps)
    s = sn @ cva.src_proj.weight.T + cva.src_proj.bias
    q = qn @ cva.q.weight.T + cva.q.bias
    wk, wv = cva.kv.weight[:d], cva.kv.weight[d:]
    bk, bv = cva.kv.bias[:d], cva.kv.bias[d:]
    k = s @ wk.T + bk
    v = s @ wv.T + bv
    heads = []
    for j in range(h):
        sl = slice(j * hd, (j + 1) * hd)
        logits = torch.einsum("bqd,bkd->bqk", q[..., sl], k[..., sl]) / math.sqrt(hd)
        heads.append(torch.einsum("bqk,bkd->bqd", torch.softmax(logits, dim=-1), v[..., sl]))
    return dst + torch.cat(heads, dim=-1) @ cva.proj.weight.T + cva.proj.bias


def check_cva(seed: int = 0) -> float:
    """Max abs diff between :class:`CrossViewAttention` and :func:`explicit_cross_view_attention`."""
    torch.manual_seed(seed)
    cva = CrossViewAttention(12, 16, 4).eval()
    with torch.no_grad():
        for p in cva.parameters():
            p.normal_(0, 0.5)
        dst, src = torch.randn(2, 5, 16), torch.randn(2, 9, 12)
        return (cva(dst, src) - explicit_cross_view_attention(cva, dst, src)).abs().max().item()


def check_tokenization(seed: int = 0) -> float:
    """Max abs diff between :class:`TubeletEmbed` and flattening tubelets by hand then a matrix product."""
    torch.manual_seed(seed)
    t, p = 2, 4
    emb = TubeletEmbed(3, 10, (t, p, p)).eval()
    x = torch.randn(2, 3, 4, 8, 12)
    b, c, tt, hh, ww = x.shape
    tubes = x.view(b, c, tt // t, t, hh // p, p, ww // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
    tubes = tubes.reshape(b, (tt // t) * (hh // p) * (ww // p), c * t * p * p)
    with torch.no_grad():
        ref = tubes @ emb.proj.weight.reshape(10, -1).T + emb.proj.bias
        return (emb(x) - ref).abs().max().item()


@register_check("yan2022multiview", "reference", evidence="self-consistency")
def _mtv_pieces() -> dict:
    """Piece-by-piece check: tubelet tokenisation and CVA against explicit computations."""
    diffs = {"tokenization": check_tokenization(), "cross_view_attention": check_cva()}
    worst = max(diffs.values())
    tol = 1e-5
    return {
        "passed": worst <= tol,
        "summary": ("tubelet embedding vs hand-flattened tubelets @ weight; CVA vs per-head explicit softmax "
                    f"attention (queries view i+1, keys/values view i): max abs diff {worst:.2e}"),
        "max_abs_diff": worst,
        "max_abs_diff_by_piece": diffs,
        "tolerance": tol,
        "reference": "explicit einsum/softmax computations (no public PyTorch MTV)",
    }
