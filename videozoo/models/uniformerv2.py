"""UniFormerV2: an image ViT armed with video UniFormer blocks.

Paper: Kunchang Li, Yali Wang, Yinan He, Yizhuo Li, Yi Wang, Limin Wang, Yu Qiao,
"UniFormerV2: Spatiotemporal Learning by Arming Image ViTs with Video UniFormer", ICCV 2023,
arXiv 2211.09552.

What this file follows (paper Sec. 3, Fig. 3):

* Local UniBlock (Sec. 3.2, eqs. 1-3), one per ViT block:
  ``X^T = LT_MHRA(Norm(X)) + X`` -- local *temporal* relation aggregation: a point-wise
  reduction, a depth-wise convolution along time only (kernel 3x1x1) and a point-wise
  expansion, with BatchNorm as Norm -- applied to the patch tokens of each spatial position;
  then the image ViT's own block: ``X^S = GS_MHSA(LN(X^T)) + X^T`` (global *spatial*
  self-attention inside each frame) and ``X^L = FFN(LN(X^S)) + X^S``.  The last point-wise
  convolution of LT_MHRA is zero-initialised, so at initialisation every local UniBlock is the
  image ViT block and the backbone computes exactly the image features of each frame
  (the "inflation" check below measures this).
* Global UniBlock (Sec. 3.2, eqs. 4-6), attached to the last ``K`` ViT layers:
  ``X^C = DPE(X^L) + X^L`` (3x3x3 depth-wise conv on the patch tokens of all frames), then a
  learnable query token attends to all tokens of all frames with cross multi-head relation
  aggregation ``q' = q + C_MHRA(LN(q), LN(X^C))`` and ``q'' = q' + FFN(LN(q'))``.  The query
  leaves each global block and enters the next one (multi-stage fusion, sequential form).
* Fusion with the ViT class token (Sec. 3.2, "multi-stage fusion"): the final video token is
  ``LN((1 - a) * q + a * cls)`` with ``a = sigmoid(w)`` learned and ``cls`` the ViT's final
  class token averaged over frames, followed by the linear classifier.

Paper configuration: ViT-B/16 at 8x224x224, LT_MHRA in all 12 blocks, global UniBlocks on the
last 4.  Simplifications: the image backbone is a timm-style ViT (no CLIP ``ln_pre``), one
LT_MHRA per block (the authors' code can add a second one before the FFN), no dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Attention, Mlp
from videozoo.registry import register_check, register_model

__all__ = ["UniFormerV2Config", "UniFormerV2", "LocalTemporalMHRA", "LocalUniBlock", "GlobalUniBlock",
           "CrossAttention", "load_state_dict_from"]


@dataclass
class UniFormerV2Config:
    """Hyper-parameters of UniFormerV2 (paper Sec. 3-4).

    Attributes:
        num_classes: Output classes.
        num_frames: Input frames ``T`` (each frame is a ViT image).
        img_size: Input height = width.
        patch_size: ViT patch side.
        in_chans: Input channels.
        embed_dim: ViT width ``D``.
        depth: Number of ViT blocks.
        num_heads: ViT heads (also used by the global UniBlocks).
        mlp_ratio: FFN width relative to ``D``.
        lmhra_reduction: LT_MHRA inner width is ``D / lmhra_reduction`` (authors: 1.5).
        temporal_kernel: Kernel of the depth-wise temporal convolution of LT_MHRA.
        num_global: Number ``K`` of global UniBlocks, fed by the last ``K`` ViT blocks.
    """

    num_classes: int = 400
    num_frames: int = 8
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    lmhra_reduction: float = 1.5
    temporal_kernel: int = 3
    num_global: int = 4

    @classmethod
    def paper(cls) -> "UniFormerV2Config":
        """UniFormerV2-B/16, 8x224x224, Kinetics-400 head."""
        return cls()

    @classmethod
    def tiny(cls) -> "UniFormerV2Config":
        """A 3-block ViT of width 32 on 8x32x32 clips (8x8 patches), 2 global UniBlocks."""
        return cls(num_classes=8, num_frames=8, img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2,
                   num_global=2)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W)``."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)


class LocalTemporalMHRA(nn.Module):
    """LT_MHRA: BatchNorm, point-wise reduce, depth-wise temporal conv (k x 1 x 1), point-wise expand.

    The expanding convolution is zero-initialised (output 0 at initialisation).

    ``x: (B, D, T, h, w)`` patch tokens as a volume -> ``(B, D, T, h, w)`` (the residual branch only).
    """

    def __init__(self, dim: int, reduction: float = 1.5, kernel: int = 3) -> None:
        super().__init__()
        inner = max(int(dim // reduction), 1)
        self.norm = nn.BatchNorm3d(dim)
        self.reduce = nn.Conv3d(dim, inner, 1)
        self.temporal = nn.Conv3d(inner, inner, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=inner)
        self.expand = nn.Conv3d(inner, dim, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.temporal(self.reduce(self.norm(x))))


class LocalUniBlock(nn.Module):
    """Local UniBlock = LT_MHRA residual + the image ViT block (timm parameter names).

    Args:
        cfg: Config: ViT block sizes (``embed_dim``, ``num_heads``, ``mlp_ratio``), ``num_frames``
            (to regroup the per-frame token sequences into clips) and the LT_MHRA sizes.

    ``forward(x, grid)``: ``x: (B*T, 1 + h*w, D)`` (class token first), ``grid = (h, w)`` -> same shape.
    """

    def __init__(self, cfg: UniFormerV2Config) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.num_frames = cfg.num_frames
        self.lmhra = LocalTemporalMHRA(d, cfg.lmhra_reduction, cfg.temporal_kernel)
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, int(d * cfg.mlp_ratio))

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        bt, n1, d = x.shape
        t = self.num_frames
        h, w = grid
        patches = x[:, 1:].reshape(bt // t, t, h, w, d).permute(0, 4, 1, 2, 3)  # (B, D, T, h, w)
        local = self.lmhra(patches).permute(0, 2, 3, 4, 1).reshape(bt, h * w, d)
        x = torch.cat([x[:, :1], x[:, 1:] + local], dim=1)  # eq. 1 (class token untouched)
        x = x + self.attn(self.norm1(x))  # eq. 2: spatial MHSA within each frame
        return x + self.mlp(self.norm2(x))  # eq. 3


class CrossAttention(nn.Module):
    """Multi-head cross-attention (C_MHRA): queries ``(B, Lq, D)`` attend to keys/values ``(B, Lk, D)``.

    Returns ``(B, Lq, D)``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, lq, d = q.shape
        lk = kv.shape[1]
        hd = d // self.num_heads
        qh = self.q(q).view(b, lq, self.num_heads, hd).transpose(1, 2)
        k, v = self.kv(kv).view(b, lk, 2, self.num_heads, hd).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qh, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, lq, d))


class GlobalUniBlock(nn.Module):
    """Global UniBlock: DPE on the patch tokens, query cross-attention to all tokens, FFN.

    ``forward(query (B, 1, D), tokens (B*T, 1 + h*w, D), grid) -> query (B, 1, D)``.
    """

    def __init__(self, cfg: UniFormerV2Config) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.num_frames = cfg.num_frames
        self.dpe = nn.Conv3d(d, d, 3, padding=1, groups=d)
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attn = CrossAttention(d, cfg.num_heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = Mlp(d, int(d * cfg.mlp_ratio))

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        bt, n1, d = tokens.shape
        t = self.num_frames
        b = bt // t
        h, w = grid
        patches = tokens[:, 1:].reshape(b, t, h, w, d).permute(0, 4, 1, 2, 3)  # (B, D, T, h, w)
        patches = patches + self.dpe(patches)  # eq. 4
        patches = patches.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, d)
        kv = torch.cat([tokens[:, :1].reshape(b, t, 1, d), patches], dim=2).reshape(b, t * n1, d)
        query = query + self.attn(self.norm_q(query), self.norm_kv(kv))  # eq. 5
        return query + self.mlp(self.norm2(query))  # eq. 6


class UniFormerV2(nn.Module):
    """UniFormerV2 video classifier: clip ``(B, 3, T, H, W)`` -> logits ``(B, num_classes)``.

    The image ViT lives in ``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks`` (plus their
    ``lmhra``) and ``norm``, with timm's names (see :func:`load_state_dict_from`).
    """

    def __init__(self, config: UniFormerV2Config) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.img_size % cfg.patch_size:
            raise ValueError("img_size must be divisible by patch_size")
        if not 0 < cfg.num_global <= cfg.depth:
            raise ValueError("num_global must be in 1..depth")
        d = cfg.embed_dim
        self.grid = (cfg.img_size // cfg.patch_size,) * 2
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(cfg.in_chans, d, cfg.patch_size, cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid[0] * self.grid[1], d) * 0.02)
        self.blocks = nn.ModuleList([LocalUniBlock(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        self.global_blocks = nn.ModuleList([GlobalUniBlock(cfg) for _ in range(cfg.num_global)])
        self.fusion_weight = nn.Parameter(torch.zeros(1))
        self.fc_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.query, std=0.02)

    def forward_backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the (armed) image ViT on every frame.

        Args:
            x: ``(B, 3, T, H, W)``.

        Returns:
            ``(tokens, feats)``: the final normalised tokens ``(B*T, 1 + h*w, D)`` and the outputs of
            the last ``num_global`` blocks, each ``(B*T, 1 + h*w, D)``.
        """
        b, c, t, h, w = x.shape
        if t != self.config.num_frames:
            raise ValueError(f"expected {self.config.num_frames} frames, got {t}")
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        tok = self.patch_embed.proj(frames).flatten(2).transpose(1, 2)  # (B*T, h*w, D)
        tok = torch.cat([self.cls_token.expand(b * t, -1, -1), tok], dim=1) + self.pos_embed
        feats = []
        first_global = len(self.blocks) - len(self.global_blocks)
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, self.grid)
            if i >= first_global:
                feats.append(tok)
        return self.norm(tok), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        b = x.shape[0]
        tokens, feats = self.forward_backbone(x)
        query = self.query.repeat(b, 1, 1)  # a copy, not a view: module hooks need a real autograd node
        for blk, f in zip(self.global_blocks, feats):
            query = blk(query, f, self.grid)
        cls = tokens[:, 0].reshape(b, -1, tokens.shape[-1]).mean(1)  # ViT class token, averaged over frames
        a = torch.sigmoid(self.fusion_weight)
        return self.head(self.fc_norm((1 - a) * query[:, 0] + a * cls))


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Take the image-ViT weights of a reference ViT into UniFormerV2 ("inflation" from an image model).

    Args:
        library: ``"timm"`` (``timm.models.vision_transformer.VisionTransformer`` with a class token,
            no register tokens, no layer scale).
        state_dict: The ViT's ``state_dict()``.

    Returns:
        The subset of keys UniFormerV2 shares with the ViT (the image classifier ``head`` and
        parameter-free entries are dropped); load it with ``strict=False`` -- the LT_MHRA, global
        UniBlocks and the video head keep their initialisation.

    Raises:
        ValueError: unknown library, or a ViT key this model has no place for.
    """
    if library != "timm":
        raise ValueError(f"unknown library {library!r}; supported: 'timm'")
    out = {}
    for key, value in state_dict.items():
        if key.startswith(("head.", "fc_norm.")):
            continue
        if not key.startswith(("cls_token", "pos_embed", "patch_embed.proj.", "blocks.", "norm.")):
            raise ValueError(f"ViT key {key!r} has no counterpart in UniFormerV2")
        if ".ls1." in key or ".ls2." in key or ".q_norm." in key or ".k_norm." in key:
            raise ValueError(f"ViT key {key!r} (layer scale / qk-norm) is not supported")
        out[key] = value
    return out


@register_model("li2023uniformerv2", alias="uniformerv2", stage=2, config=UniFormerV2Config, temporal=True,
                motion={"lr": 1e-3, "max_steps": 3000, "n_train": 4000})  # 600 steps at 2e-3: 12.5 %
def uniformerv2(config: UniFormerV2Config) -> UniFormerV2:
    """Build UniFormerV2 from ``config`` (randomly initialised; see :func:`load_state_dict_from`)."""
    return UniFormerV2(config)


@register_check("li2023uniformerv2", "inflation", evidence="self-consistency")
def _uniformerv2_inflation() -> dict:
    """ViT weights + zero-initialised LT_MHRA: per-frame backbone features equal the image ViT's.

    A random timm ViT is loaded into a UniFormerV2 of the same size; on a clip made of one
    repeated frame, the backbone's final tokens for every frame are compared with timm's
    ``forward_features`` of that frame.
    """
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:  # pragma: no cover
        return {"passed": False, "summary": "timm is not installed", "reference": "timm VisionTransformer"}
    torch.manual_seed(0)
    cfg = UniFormerV2Config(num_classes=5, num_frames=4, img_size=32, patch_size=8, embed_dim=48, depth=3,
                            num_heads=3, num_global=2)
    vit = VisionTransformer(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim, depth=cfg.depth,
                            num_heads=cfg.num_heads, num_classes=10).eval()
    model = UniFormerV2(cfg).eval()
    missing, unexpected = model.load_state_dict(load_state_dict_from("timm", vit.state_dict()), strict=False)
    vit_missing = [k for k in missing if not k.startswith(("blocks.", "query", "global_blocks.", "fusion_weight",
                                                            "fc_norm.", "head."))
                   or (k.startswith("blocks.") and ".lmhra." not in k)]
    frame = torch.rand(2, 3, cfg.img_size, cfg.img_size)
    clip = frame[:, :, None].expand(-1, -1, cfg.num_frames, -1, -1).contiguous()
    with torch.no_grad():
        tokens, _ = model.forward_backbone(clip)
        ref = vit.forward_features(frame)  # (B, 1 + N, D)
        tokens = tokens.reshape(2, cfg.num_frames, *tokens.shape[1:])
        diff = (tokens - ref[:, None]).abs().max().item()
    tol = 1e-5
    passed = diff <= tol and not unexpected and not vit_missing
    return {
        "passed": passed,
        "summary": (f"timm ViT weights loaded, LT_MHRA zero-initialised: per-frame backbone tokens vs timm "
                    f"ViT.forward_features on a repeated-frame clip, max abs diff {diff:.2e}"),
        "max_abs_diff": diff,
        "tolerance": tol,
        "reference": "timm.models.vision_transformer.VisionTransformer",
        "unloaded_vit_keys": list(unexpected) + vit_missing,
    }


# --------------------------------------------------------------------------- piece-by-piece reference


def check_lt_mhra(seed: int = 0) -> float:
    """Max abs diff between :class:`LocalTemporalMHRA` and eq. 1 written out by hand.

    The hand-written version: BatchNorm from its running statistics, the point-wise
    reduction and expansion as ``einsum``, and the depth-wise temporal convolution as an
    explicit sum over the ``k`` neighbouring frames (zeros outside the clip). The expansion
    gets random weights (it is zero-initialised in the model).
    """
    torch.manual_seed(seed)
    m = LocalTemporalMHRA(6, reduction=1.5, kernel=3).eval()
    with torch.no_grad():
        for p in (m.expand.weight, m.expand.bias, m.norm.weight, m.norm.bias):
            p.normal_()
        m.norm.running_mean.normal_()
        m.norm.running_var.uniform_(0.5, 2.0)
        x = torch.randn(2, 6, 5, 3, 4)  # (B, D, T, h, w)
        bn = m.norm
        y = ((x - bn.running_mean.view(1, -1, 1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1, 1) + bn.eps)
             * bn.weight.view(1, -1, 1, 1, 1) + bn.bias.view(1, -1, 1, 1, 1))
        r = torch.einsum("oc,bcthw->bothw", m.reduce.weight[:, :, 0, 0, 0], y) + m.reduce.bias.view(1, -1, 1, 1, 1)
        k = m.temporal.weight.shape[2]
        t = r.shape[2]
        conv = m.temporal.bias.view(1, -1, 1, 1, 1).expand_as(r).clone()
        for ti in range(t):
            for j in range(k):
                src = ti + j - k // 2
                if 0 <= src < t:
                    conv[:, :, ti] += m.temporal.weight[:, 0, j, 0, 0].view(1, -1, 1, 1) * r[:, :, src]
        ref = torch.einsum("oc,bcthw->bothw", m.expand.weight[:, :, 0, 0, 0], conv) + m.expand.bias.view(1, -1, 1, 1, 1)
        return (m(x) - ref).abs().max().item()


def check_c_mhra(seed: int = 0) -> float:
    """Max abs diff between :class:`CrossAttention` and ``torch.nn.MultiheadAttention`` (same weights)."""
    torch.manual_seed(seed)
    m = CrossAttention(32, 4).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([m.q.weight, m.kv.weight]))
        ref.in_proj_bias.copy_(torch.cat([m.q.bias, m.kv.bias]))
        ref.out_proj.weight.copy_(m.proj.weight)
        ref.out_proj.bias.copy_(m.proj.bias)
        q, kv = torch.randn(2, 1, 32), torch.randn(2, 3 * 17, 32)
        return (m(q, kv) - ref(q, kv, kv, need_weights=False)[0]).abs().max().item()


def check_global_uniblock(seed: int = 0) -> float:
    """Max abs diff between :class:`GlobalUniBlock` and eqs. 4-6 composed from independent pieces.

    DPE (eq. 4) as the explicit 3x3x3 per-channel neighbourhood sum, C_MHRA (eq. 5) as
    ``torch.nn.MultiheadAttention`` with the block's weights, then the FFN (eq. 6).
    """
    from videozoo.references.uniformer import neighbourhood_sum

    torch.manual_seed(seed)
    cfg = UniFormerV2Config(num_frames=3, embed_dim=16, num_heads=2)
    blk = GlobalUniBlock(cfg).eval()
    mha = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([blk.attn.q.weight, blk.attn.kv.weight]))
        mha.in_proj_bias.copy_(torch.cat([blk.attn.q.bias, blk.attn.kv.bias]))
        mha.out_proj.weight.copy_(blk.attn.proj.weight)
        mha.out_proj.bias.copy_(blk.attn.proj.bias)
        b, t, (h, w), d = 2, 3, (4, 5), 16
        query, tokens = torch.randn(b, 1, d), torch.randn(b * t, 1 + h * w, d)
        vol = tokens[:, 1:].reshape(b, t, h, w, d).permute(0, 4, 1, 2, 3)
        vol = vol + neighbourhood_sum(vol, blk.dpe.weight, blk.dpe.bias)  # eq. 4
        patches = vol.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, d)
        kv = torch.cat([tokens[:, :1].reshape(b, t, 1, d), patches], dim=2).reshape(b, -1, d)
        q = query + mha(blk.norm_q(query), blk.norm_kv(kv), blk.norm_kv(kv), need_weights=False)[0]  # eq. 5
        ref = q + blk.mlp(blk.norm2(q))  # eq. 6
        return (blk(query, tokens, (h, w)) - ref).abs().max().item()


@register_check("li2023uniformerv2", "reference", evidence="self-consistency")
def _uniformerv2_pieces() -> dict:
    """Piece-by-piece check of the paper's block definitions (mmaction2 is not installed beside our torch)."""
    diffs = {"lt_mhra": check_lt_mhra(), "c_mhra": check_c_mhra(), "global_uniblock": check_global_uniblock()}
    tol = 1e-5
    worst = max(diffs.values())
    return {
        "passed": worst <= tol,
        "summary": ("LT_MHRA vs eq. 1 written out (BatchNorm, einsum, explicit temporal sum), C_MHRA vs "
                    "torch.nn.MultiheadAttention, global UniBlock vs eqs. 4-6 from independent pieces: "
                    f"max abs diff {worst:.2e}"),
        "max_abs_diff": worst,
        "max_abs_diff_by_piece": diffs,
        "tolerance": tol,
        "reference": "explicit loops/einsum; torch.nn.MultiheadAttention",
    }
