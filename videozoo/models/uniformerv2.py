"""UniFormerV2: an image ViT (CLIP) armed with video UniFormer blocks.

Paper: Kunchang Li, Yali Wang, Yinan He, Yizhuo Li, Yi Wang, Limin Wang, Yu Qiao,
"UniFormerV2: Spatiotemporal Learning by Arming Image ViTs with Video UniFormer", ICCV 2023,
arXiv 2211.09552.  Authors' code: github.com/OpenGVLab/UniFormerV2 at commit
``722a43440fc5b9662cc2a8f23b86caa205e45ebc`` (``slowfast/models/uniformerv2_model.py``); the
configurations below are its released recipes, parameter for parameter.

What this file follows (paper Sec. 3.2, Fig. 3, and the release):

* The backbone is CLIP's image ViT (Radford et al., arXiv 2103.00020): a patch convolution
  without bias, a class token, a position embedding over the ``1 + h*w`` tokens of a frame, a
  LayerNorm before the blocks (``norm_pre``, CLIP's ``ln_pre``), pre-norm blocks with QuickGELU
  MLPs, and no final LayerNorm (UniFormerV2 does not use CLIP's ``ln_post``).  Every frame is a
  separate image for the spatial self-attention.  With ``temporal_downsample`` the patch
  convolution is ``3 x P x P`` with temporal stride 2 (the release's ``TEMPORAL_DOWNSAMPLE``).
* Local UniBlock (Sec. 3.2, eq. 1-3): LT_MHRA -- BatchNorm, point-wise reduction to
  ``D / 1.5`` channels, a depth-wise ``3 x 1 x 1`` convolution along time, point-wise expansion,
  zero-initialised -- added to the patch tokens of every spatial position (the class token is
  left alone).  ``lmhra`` selects where: ``"none"`` (the release's ``NO_LMHRA: True``),
  ``"single"`` (before the spatial attention, the paper's eq. 1), ``"double"`` (before the
  attention and again before the MLP, the release's ``DOUBLE_LMHRA: True``).
* Global UniBlock (Sec. 3.2, eq. 4-6), attached to the outputs of the last ``num_global`` ViT
  blocks: DPE (a ``3 x 3 x 3`` depth-wise convolution, bias 0) added to the patch tokens of all
  frames; a learnable query (zero at initialisation) attends to the class and patch tokens of
  all frames (``q + C_MHRA(LN(q), LN(X))``, the release's ``ln_1`` / ``ln_3``), then an MLP with
  QuickGELU and dropout; the attention's output projection and the MLP's second layer start at
  zero, so every global block starts as the identity.  The query goes through the global
  blocks in turn (multi-stage fusion).
* Fusion and head (Sec. 3.2 "multi-stage fusion"; the release's ``balance``): the video token is
  ``(1 - w) * q + w * cls`` with ``w = sigmoid(balance)`` per channel (``balance`` starts at 0)
  and ``cls`` the last block's class token averaged over frames, without a LayerNorm; then
  LayerNorm, dropout and the linear classifier.

Configurations (exp/*/config.yaml of the release):

* ``paper()`` = ``uniformerv2_b16_k400``: ``exp/k400/k400_b16_f8x224/config.yaml`` -- ViT-B/16,
  8x224x224, no local UniBlocks, 4 global blocks on layers 8-11, 400 classes.  It trains the
  release's Kinetics-400 UniFormerV2-B/16 (MODEL_ZOO.md: CLIP-400M, 84.4 % top-1 with 8x3x4
  views), and the K710-pretrained Kinetics recipes use the same architecture, so it is
  ``paper()``; the released code builds 114.55 M parameters.
* ``uniformerv2_b16_ssv2``: ``exp/sthv2/ssv2_b16_f16x224/config.yaml`` -- 16x224x224, double
  LT_MHRA in all 12 blocks, temporal downsampling, 8 global blocks on layers 4-11, 174 classes,
  stochastic depth 0.2 (backbone) / 0.4 (global blocks): 162.99 M parameters in the release.

Initialisation follows the release's constructors (they are used with CLIP weights, see
:func:`load_state_dict_from`): class and position embeddings ``~ D^-1/2 N(0, 1)``, attention input
projections Xavier-uniform with zero bias, the zero initialisations above, PyTorch defaults
elsewhere.  Names: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``norm_pre``,
``blocks.i.{lmhra1, norm1, attn, lmhra2, norm2, mlp}``, ``query``,
``global_blocks.j.{dpe, norm_q, norm_kv, attn, norm2, mlp}``, ``balance``, ``fc_norm``, ``head``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Attention, Mlp, QuickGELU
from videozoo.layers.drop import DropPath
from videozoo.registry import Reported, make_config, register_check, register_model, register_variant

__all__ = ["UniFormerV2Config", "UniFormerV2", "LocalTemporalMHRA", "LocalUniBlock", "GlobalUniBlock",
           "CrossAttention", "load_state_dict_from", "LMHRA_PLACES"]

LMHRA_PLACES = ("none", "single", "double")


@dataclass
class UniFormerV2Config:
    """Hyper-parameters of UniFormerV2 (the release's ``UNIFORMERV2`` config section in brackets).

    Attributes:
        num_classes: Output classes.
        num_frames: Input frames ``T``.
        img_size: Input height = width in pixels.
        patch_size: ViT patch side ``P``.
        in_chans: Input channels.
        embed_dim: ViT width ``D`` (also the global blocks' width, ``N_DIM``).
        depth: Number of ViT blocks.
        num_heads: Heads of the ViT and of the global blocks (``N_HEAD``).
        mlp_ratio: MLP width relative to ``D`` (``MLP_FACTOR``).
        lmhra: Where the ViT blocks get LT_MHRA: one of :data:`LMHRA_PLACES` (``NO_LMHRA``,
            ``DOUBLE_LMHRA``).
        lmhra_reduction: LT_MHRA inner width is ``int(D // lmhra_reduction)`` (``DW_REDUCTION``).
        temporal_kernel: Kernel of LT_MHRA's depth-wise temporal convolution.
        temporal_downsample: ``3 x P x P`` patch convolution with temporal stride 2
            (``TEMPORAL_DOWNSAMPLE``); the blocks then see ``T / 2`` frames.
        num_global: Number of global blocks, fed by the last ``num_global`` ViT blocks
            (``N_LAYERS``, ``RETURN_LIST``).
        global_mlp_dropout: Dropout inside the global blocks' MLP (``MLP_DROPOUT``).
        head_dropout: Dropout before the classifier (``CLS_DROPOUT``).
        drop_path_rate: Largest stochastic-depth rate of the global blocks, linear from 0 (``DROP_PATH_RATE``).
        backbone_drop_path_rate: The same for the ViT blocks (``BACKBONE_DROP_PATH_RATE``).
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
    lmhra: str = "none"
    lmhra_reduction: float = 1.5
    temporal_kernel: int = 3
    temporal_downsample: bool = False
    num_global: int = 4
    global_mlp_dropout: float = 0.5
    head_dropout: float = 0.5
    drop_path_rate: float = 0.0
    backbone_drop_path_rate: float = 0.0

    @classmethod
    def paper(cls) -> "UniFormerV2Config":
        """UniFormerV2-B/16, recipe ``exp/k400/k400_b16_f8x224/config.yaml`` (8x224x224, Kinetics-400 head)."""
        return cls()

    @classmethod
    def tiny(cls) -> "UniFormerV2Config":
        """A 3-block ViT of width 32 on 8x32x32 clips (8x8 patches), 2 global blocks, no dropout."""
        return cls(num_classes=8, num_frames=8, img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2,
                   num_global=2, global_mlp_dropout=0.0, head_dropout=0.0)

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
        inner = int(dim // reduction)
        self.norm = nn.BatchNorm3d(dim)
        self.reduce = nn.Conv3d(dim, inner, 1)
        self.temporal = nn.Conv3d(inner, inner, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=inner)
        self.expand = nn.Conv3d(inner, dim, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.temporal(self.reduce(self.norm(x))))


def _xavier_self_attention(attn: nn.Module) -> None:
    """Initialise a fused-qkv attention as ``torch.nn.MultiheadAttention`` does (the release's blocks)."""
    nn.init.xavier_uniform_(attn.qkv.weight)
    nn.init.zeros_(attn.qkv.bias)
    nn.init.zeros_(attn.proj.bias)


class LocalUniBlock(nn.Module):
    """CLIP ViT block with optional LT_MHRA before the attention (``lmhra1``) and before the MLP (``lmhra2``).

    Args:
        cfg: Sizes (``embed_dim``, ``num_heads``, ``mlp_ratio``) and the LT_MHRA settings.
        drop_path: Stochastic-depth rate of this block's residual branches.

    ``forward(x, t, grid)``: ``x: (B*t, 1 + h*w, D)`` (class token first, frames of a clip
    consecutive), ``grid = (h, w)`` -> same shape.
    """

    def __init__(self, cfg: UniFormerV2Config, drop_path: float = 0.0) -> None:
        super().__init__()
        if cfg.lmhra not in LMHRA_PLACES:
            raise ValueError(f"lmhra must be one of {LMHRA_PLACES}, got {cfg.lmhra!r}")
        d = cfg.embed_dim
        lmhra = lambda: LocalTemporalMHRA(d, cfg.lmhra_reduction, cfg.temporal_kernel)  # noqa: E731
        self.lmhra1 = lmhra() if cfg.lmhra != "none" else None
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, cfg.num_heads)
        _xavier_self_attention(self.attn)
        self.lmhra2 = lmhra() if cfg.lmhra == "double" else None
        self.norm2 = nn.LayerNorm(d)
        self.mlp = Mlp(d, int(d * cfg.mlp_ratio), act=QuickGELU)
        self.drop_path = DropPath(drop_path)

    def _local(self, lmhra: LocalTemporalMHRA, x: torch.Tensor, t: int, grid: tuple[int, int]) -> torch.Tensor:
        bt, _, d = x.shape
        h, w = grid
        patches = x[:, 1:].reshape(bt // t, t, h, w, d).permute(0, 4, 1, 2, 3)  # (B, D, t, h, w)
        local = self.drop_path(lmhra(patches)).permute(0, 2, 3, 4, 1).reshape(bt, h * w, d)
        return torch.cat([x[:, :1], x[:, 1:] + local], dim=1)  # eq. 1 (class token untouched)

    def forward(self, x: torch.Tensor, t: int, grid: tuple[int, int]) -> torch.Tensor:
        if self.lmhra1 is not None:
            x = self._local(self.lmhra1, x, t, grid)
        x = x + self.drop_path(self.attn(self.norm1(x)))  # eq. 2: spatial MHSA within each frame
        if self.lmhra2 is not None:
            x = self._local(self.lmhra2, x, t, grid)
        return x + self.drop_path(self.mlp(self.norm2(x)))  # eq. 3


class CrossAttention(nn.Module):
    """Multi-head cross-attention (C_MHRA): queries ``(B, Lq, D)`` attend to keys/values ``(B, Lk, D)``.

    ``q`` and ``kv`` together are the release's ``in_proj_weight`` (rows q, k, v), Xavier-uniform
    initialised as one ``(3D, D)`` matrix, biases 0.  Returns ``(B, Lq, D)``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        with torch.no_grad():
            in_proj = nn.init.xavier_uniform_(torch.empty(3 * dim, dim))
            self.q.weight.copy_(in_proj[:dim])
            self.kv.weight.copy_(in_proj[dim:])
        for b in (self.q.bias, self.kv.bias):
            nn.init.zeros_(b)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, lq, d = q.shape
        lk = kv.shape[1]
        hd = d // self.num_heads
        qh = self.q(q).view(b, lq, self.num_heads, hd).transpose(1, 2)
        k, v = self.kv(kv).view(b, lk, 2, self.num_heads, hd).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qh, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, lq, d))


class GlobalUniBlock(nn.Module):
    """Global UniBlock: DPE on the patch tokens, query cross-attention to all tokens, MLP.

    Args:
        cfg: Sizes and ``global_mlp_dropout``.
        drop_path: Stochastic-depth rate of this block.

    ``forward(query (B, 1, D), tokens (B*t, 1 + h*w, D), t, grid) -> query (B, 1, D)``.
    """

    def __init__(self, cfg: UniFormerV2Config, drop_path: float = 0.0) -> None:
        super().__init__()
        d = cfg.embed_dim
        hidden = round(cfg.mlp_ratio * d)
        self.dpe = nn.Conv3d(d, d, 3, padding=1, groups=d)
        nn.init.zeros_(self.dpe.bias)
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attn = CrossAttention(d, cfg.num_heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(d, hidden)
        self.mlp.act = QuickGELU()
        self.mlp.drop = nn.Dropout(cfg.global_mlp_dropout)
        self.mlp.fc2 = nn.Linear(hidden, d)
        self.drop_path = DropPath(drop_path)
        nn.init.xavier_uniform_(self.mlp.fc1.weight)
        for p in (self.attn.proj.weight, self.attn.proj.bias, self.mlp.fc2.weight, self.mlp.fc2.bias):
            nn.init.zeros_(p)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, t: int, grid: tuple[int, int]) -> torch.Tensor:
        bt, n1, d = tokens.shape
        b = bt // t
        h, w = grid
        patches = tokens[:, 1:].reshape(b, t, h, w, d).permute(0, 4, 1, 2, 3)  # (B, D, t, h, w)
        patches = patches + self.dpe(patches)  # eq. 4
        patches = patches.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, d)
        kv = torch.cat([tokens[:, :1].reshape(b, t, 1, d), patches], dim=2).reshape(b, t * n1, d)
        query = query + self.drop_path(self.attn(self.norm_q(query), self.norm_kv(kv)))  # eq. 5
        return query + self.drop_path(self.mlp(self.norm2(query)))  # eq. 6


class UniFormerV2(nn.Module):
    """UniFormerV2 video classifier: clip ``(B, 3, T, H, W)`` -> logits ``(B, num_classes)``.

    Raises:
        ValueError: for sizes that do not divide, ``num_global`` outside ``1..depth`` or an
            unknown ``lmhra``.
    """

    def __init__(self, config: UniFormerV2Config) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.img_size % cfg.patch_size:
            raise ValueError(f"img_size {cfg.img_size} not divisible by patch_size {cfg.patch_size}")
        if not 0 < cfg.num_global <= cfg.depth:
            raise ValueError(f"num_global must be in 1..depth={cfg.depth}, got {cfg.num_global}")
        if cfg.temporal_downsample and cfg.num_frames % 2:
            raise ValueError(f"temporal_downsample needs an even num_frames, got {cfg.num_frames}")
        d = cfg.embed_dim
        self.grid = (cfg.img_size // cfg.patch_size,) * 2
        self.frames = cfg.num_frames // 2 if cfg.temporal_downsample else cfg.num_frames
        kt = cfg.temporal_kernel if cfg.temporal_downsample else 1
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(cfg.in_chans, d, (kt, cfg.patch_size, cfg.patch_size),
                                          (2 if cfg.temporal_downsample else 1, cfg.patch_size, cfg.patch_size),
                                          (kt // 2, 0, 0), bias=False)
        scale = d ** -0.5
        self.cls_token = nn.Parameter(scale * torch.randn(1, 1, d))
        self.pos_embed = nn.Parameter(scale * torch.randn(1, 1 + self.grid[0] * self.grid[1], d))
        self.norm_pre = nn.LayerNorm(d)
        rates = torch.linspace(0, cfg.backbone_drop_path_rate, cfg.depth, device="cpu").tolist()
        self.blocks = nn.ModuleList([LocalUniBlock(cfg, r) for r in rates])
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        rates = torch.linspace(0, cfg.drop_path_rate, cfg.num_global, device="cpu").tolist()
        self.global_blocks = nn.ModuleList([GlobalUniBlock(cfg, r) for r in rates])
        self.balance = nn.Parameter(torch.zeros(d))
        self.fc_norm = nn.LayerNorm(d)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(d, cfg.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> per-frame tokens ``(B*t, 1 + h*w, D)`` after ``norm_pre`` (``t`` = ``self.frames``)."""
        if x.shape[2] != self.config.num_frames:
            raise ValueError(f"expected {self.config.num_frames} frames, got {x.shape[2]}")
        tok = self.patch_embed.proj(x)  # (B, D, t, h, w)
        b, d, t = tok.shape[:3]
        tok = tok.permute(0, 2, 3, 4, 1).reshape(b * t, -1, d)
        tok = torch.cat([self.cls_token.expand(b * t, -1, -1), tok], dim=1) + self.pos_embed
        return self.norm_pre(tok)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone and global blocks.

        Args:
            x: ``(B, 3, T, H, W)``.

        Returns:
            ``(query, tokens)``: the query after the last global block ``(B, D)`` and the last ViT
            block's tokens ``(B*t, 1 + h*w, D)`` (no final LayerNorm).
        """
        b = x.shape[0]
        tok = self.embed(x)
        query = self.query.repeat(b, 1, 1)  # a copy, not a view: module hooks need a real autograd node
        first_global = len(self.blocks) - len(self.global_blocks)
        for i, blk in enumerate(self.blocks):
            tok = blk(tok, self.frames, self.grid)
            if i >= first_global:
                query = self.global_blocks[i - first_global](query, tok, self.frames, self.grid)
        return query[:, 0], tok

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        query, tok = self.forward_features(x)
        cls = tok[:, 0].reshape(x.shape[0], self.frames, -1).mean(1)  # ViT class token, averaged over frames
        w = torch.sigmoid(self.balance)
        return self.head(self.head_drop(self.fc_norm((1 - w) * query + w * cls)))


# --------------------------------------------------------------------------- key mapping

_BLOCK_RENAMES = {"ln_1.": "norm1.", "ln_2.": "norm2.", "attn.in_proj_weight": "attn.qkv.weight",
                  "attn.in_proj_bias": "attn.qkv.bias", "attn.out_proj.": "attn.proj.", "mlp.c_fc.": "mlp.fc1.",
                  "mlp.c_proj.": "mlp.fc2.", "lmhra1.pos_embed.": "lmhra1.", "lmhra2.pos_embed.": "lmhra2."}
_LMHRA_PARTS = {"0": "norm", "1": "reduce", "2": "temporal", "3": "expand"}
_GLOBAL_RENAMES = {"ln_1.": "norm_q.", "ln_3.": "norm_kv.", "ln_2.": "norm2.", "attn.out_proj.": "attn.proj.",
                   "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}


def _rename(rest: str, renames: dict[str, str]) -> str | None:
    for old, new in renames.items():
        if rest.startswith(old):
            return new + rest[len(old):]
    return None


def load_state_dict_from(library: str, state_dict: dict, config: UniFormerV2Config | None = None) -> dict:
    """Convert the authors' or CLIP's state dict into :class:`UniFormerV2` keys.

    Args:
        library: ``"uniformerv2"``: a checkpoint of the authors' release (``Uniformerv2``, keys
            ``backbone.conv1.weight`` ..., or its ``VisionTransformer`` without the prefix); every key
            is converted.  ``"clip"``: a CLIP image tower (OpenAI ``visual.*`` keys or open_clip's
            ``VisionTransformer``), as the release initialises its backbone; ``ln_post`` and ``proj``
            are dropped and the 2-D patch kernel is inflated to the 3-D one (centre-frame, as the
            release's ``inflate_weight``).
        state_dict: The source ``state_dict()`` (tensors).
        config: Needed for ``"clip"`` with ``temporal_downsample`` (the kernel's temporal size).

    Returns:
        A dict for ``UniFormerV2.load_state_dict``: complete for ``"uniformerv2"``; the backbone only
        for ``"clip"`` (load it with ``strict=False``).

    Raises:
        ValueError: unknown library, or a key this model has no place for.
    """
    if library not in ("uniformerv2", "clip"):
        raise ValueError(f"unknown library {library!r}; supported: 'uniformerv2', 'clip'")
    out: dict = {}
    for key, value in state_dict.items():
        k = key
        for prefix in ("backbone.", "visual."):
            k = k[len(prefix):] if k.startswith(prefix) else k
        new = None
        if k == "conv1.weight":
            if value.dim() == 4:  # CLIP's 2-D patch kernel
                kt = config.temporal_kernel if config is not None and config.temporal_downsample else 1
                value = torch.zeros(value.shape[:2] + (kt,) + value.shape[2:], dtype=value.dtype).index_copy(
                    2, torch.tensor([kt // 2]), value.unsqueeze(2))
            new = "patch_embed.proj.weight"
        elif k == "class_embedding":
            new, value = "cls_token", value.reshape(1, 1, -1)
        elif k == "positional_embedding":
            new, value = "pos_embed", value.unsqueeze(0)
        elif k.startswith("ln_pre."):
            new = "norm_pre." + k[len("ln_pre."):]
        elif k.startswith(("ln_post.", "proj")) and library == "clip":
            continue
        elif k.startswith("transformer.resblocks."):
            i, rest = k[len("transformer.resblocks."):].split(".", 1)
            rest = _rename(rest, _BLOCK_RENAMES)
            if rest is not None and rest.startswith(("lmhra1.", "lmhra2.")):
                head, part, tail = rest.split(".", 2)
                rest = f"{head}.{_LMHRA_PARTS[part]}.{tail}" if part in _LMHRA_PARTS else None
            new = None if rest is None else f"blocks.{i}.{rest}"
        elif library == "uniformerv2" and k == "transformer.temporal_cls_token":
            new = "query"
        elif library == "uniformerv2" and k == "transformer.balance":
            new = "balance"
        elif library == "uniformerv2" and k.startswith("transformer.dpe."):
            j, rest = k[len("transformer.dpe."):].split(".", 1)
            new = f"global_blocks.{j}.dpe.{rest}"
        elif library == "uniformerv2" and k.startswith("transformer.dec."):
            j, rest = k[len("transformer.dec."):].split(".", 1)
            if rest.startswith("attn.in_proj_"):  # rows q, k, v -> q and kv
                kind = "weight" if rest.endswith("weight") else "bias"
                d = value.shape[0] // 3
                out[f"global_blocks.{j}.attn.q.{kind}"] = value[:d]
                out[f"global_blocks.{j}.attn.kv.{kind}"] = value[d:]
                continue
            rest = _rename(rest, _GLOBAL_RENAMES)
            new = None if rest is None else f"global_blocks.{j}.{rest}"
        elif library == "uniformerv2" and k.startswith("transformer.proj."):
            part, tail = k[len("transformer.proj."):].split(".", 1)
            new = {"0": "fc_norm.", "2": "head."}.get(part, "?") + tail
        if new is None or new.startswith("?"):
            raise ValueError(f"{library} key {key!r} has no counterpart in UniFormerV2")
        out[new] = value
    return out


# --------------------------------------------------------------------------- registration


_RELEASE = "OpenGVLab/UniFormerV2 at 722a434, built on CPU with random weights"
SSV2_DESIGN = {"lmhra": "double", "temporal_downsample": True}
"""What the SSv2 recipe changes in the design (both configs)."""
SSV2_SIZES = {"num_frames": 16, "num_classes": 174, "num_global": 8, "drop_path_rate": 0.4,
              "backbone_drop_path_rate": 0.2}
"""What it changes in ``paper()`` only."""


@register_model(
    "li2023uniformerv2",
    alias="uniformerv2",
    stage=2,
    config=UniFormerV2Config,
    reported=(Reported("params_m", 114.552208, f"{_RELEASE}: exp/k400/k400_b16_f8x224/config.yaml",
                       note="the authors' code at the recipe, 400-class head", kind="release", tolerance_pct=0.5),),
    temporal=True,
    motion={"lr": 1e-3, "max_steps": 3000, "n_train": 4000},
    # the SSv2 recipe's design on the tiny config: LT_MHRA before attention and MLP, temporal downsampling
    motion_variants={"ssv2-design": (SSV2_DESIGN, True)},
)
def uniformerv2(config: UniFormerV2Config) -> UniFormerV2:
    """Build UniFormerV2 from ``config`` (randomly initialised; see :func:`load_state_dict_from`)."""
    return UniFormerV2(config)


register_variant(
    "uniformerv2_b16_k400", of="li2023uniformerv2",
    reported=(Reported("params_m", 114.552208, f"{_RELEASE}: exp/k400/k400_b16_f8x224/config.yaml",
                       note="the authors' code at the recipe, 400-class head", kind="release", tolerance_pct=0.5),),
    description="UniFormerV2-B/16, release recipe exp/k400/k400_b16_f8x224/config.yaml (= paper())",
)
register_variant(
    "uniformerv2_b16_ssv2", of="li2023uniformerv2", overrides=SSV2_DESIGN, paper_overrides=SSV2_SIZES,
    reported=(Reported("params_m", 162.992814, f"{_RELEASE}: exp/sthv2/ssv2_b16_f16x224/config.yaml",
                       note="the authors' code at the recipe, 174-class head", kind="release", tolerance_pct=0.5),),
    description="UniFormerV2-B/16, release recipe exp/sthv2/ssv2_b16_f16x224/config.yaml",
)


# --------------------------------------------------------------------------- checks


def _reference_table() -> dict:
    return json.loads(resources.files("videozoo.reference_tables").joinpath("uniformerv2.json").read_text())


@register_check("li2023uniformerv2", "reference", evidence="independent-reference")
def _uniformerv2_vs_release() -> dict:
    """Ours vs the authors' release, from its recorded layer tables and outputs.

    ``videozoo/reference_tables/uniformerv2.json`` holds, made by running the authors' code at
    commit 722a434 (see that file): the (state-dict name, shape) table and parameter count of
    both recipes, and the logits their code computes for tiny models of both designs with
    weights and input drawn by a stated rule.  Here the tables go through
    :func:`load_state_dict_from` and must equal our models' tables key for key; the same weights,
    mapped, must give the same logits.
    """
    from videozoo.reference_tables import seeded_input, seeded_state_dict, table_gap

    ref = _reference_table()
    measured: dict = {"tables": {}, "outputs": {}}
    ok = True
    for name, rec in ref["recipes"].items():
        with torch.device("meta"):
            ours = UniFormerV2(make_config(rec["videozoo_name"], "paper"))
        gap = table_gap(rec["layer_table"], lambda sd: load_state_dict_from("uniformerv2", sd), ours.state_dict())
        params = sum(p.numel() for p in ours.parameters())
        measured["tables"][name] = {"params": params, "authors_params": rec["params"], **gap}
        ok = ok and params == rec["params"] and not gap["differing_keys"]
    tol = ref["tolerance"]
    for name, vec in ref["test_vectors"].items():
        cfg = UniFormerV2Config(**vec["videozoo_config"])
        model = UniFormerV2(cfg).eval()
        sd = load_state_dict_from("uniformerv2", seeded_state_dict(vec["layer_table"], vec["weight_seed"]))
        model.load_state_dict(sd)
        x = seeded_input(vec["input_shape"], vec["input_seed"])
        with torch.no_grad():
            diff = (model(x) - torch.tensor(vec["logits"])).abs().max().item()
        measured["outputs"][name] = {"max_abs_diff": diff}
        ok = ok and diff <= tol
    worst = max(v["max_abs_diff"] for v in measured["outputs"].values())
    tables = "; ".join(f"{n}: {t['params'] / 1e6:.6f} M vs {t['authors_params'] / 1e6:.6f} M, "
                       f"{len(t['differing_keys'])} differing keys" for n, t in measured["tables"].items())
    return {
        "passed": ok,
        "summary": (f"layer tables of the release (OpenGVLab/UniFormerV2 722a434) mapped onto ours: {tables}; "
                    f"logits of tiny models of both designs with the release's seeded weights: max abs diff "
                    f"{worst:.2e} (tolerance {tol:g})"),
        "max_abs_diff": worst,
        "tolerance": tol,
        "reference": "layer tables and outputs of the authors' code, videozoo/reference_tables/uniformerv2.json",
        **measured,
    }


@register_check("li2023uniformerv2", "inflation", evidence="independent-reference")
def _uniformerv2_inflation() -> dict:
    """CLIP weights into UniFormerV2: with LT_MHRA at zero, every block equals open_clip's on each frame.

    A random open_clip ``VisionTransformer`` (QuickGELU) is loaded through
    ``load_state_dict_from("clip", ...)`` into both designs (no LT_MHRA; double LT_MHRA, whose
    expansions start at zero); on a clip of 4 different frames the output of every ViT block, per
    frame, is compared with ``open_clip``'s ``forward_intermediates`` on that frame.
    """
    try:
        from open_clip.transformer import VisionTransformer
    except ImportError:  # pragma: no cover - depends on the environment
        return {"passed": False, "summary": "open_clip is not installed", "reference": "open_clip VisionTransformer"}
    torch.manual_seed(0)
    base = dict(num_classes=5, num_frames=4, img_size=32, patch_size=8, embed_dim=48, depth=3, num_heads=3,
                num_global=2)
    clip_vit = VisionTransformer(image_size=32, patch_size=8, width=48, layers=3, heads=3, mlp_ratio=4.0,
                                 output_dim=16, act_layer=QuickGELU).eval()
    clip = torch.rand(2, 3, 4, 32, 32)
    frames = clip.transpose(1, 2).reshape(8, 3, 32, 32)
    with torch.no_grad():
        ref = clip_vit.forward_intermediates(frames, intermediates_only=True, output_fmt="NLC",
                                             output_extra_tokens=True)
    ref_tokens = [torch.cat([c, p], dim=1) for c, p in zip(ref["image_intermediates_prefix"],
                                                          ref["image_intermediates"])]
    diffs, unloaded = {}, {}
    for lmhra in ("none", "double"):
        model = UniFormerV2(UniFormerV2Config(**base, lmhra=lmhra)).eval()
        missing, unexpected = model.load_state_dict(load_state_dict_from("clip", clip_vit.state_dict()), strict=False)
        unloaded[lmhra] = [k for k in missing if k.startswith(("patch_embed", "cls_token", "pos_embed", "norm_pre"))
                           or (k.startswith("blocks.") and ".lmhra" not in k)] + list(unexpected)
        with torch.no_grad():
            tok = model.embed(clip)
            worst = 0.0
            for blk, expected in zip(model.blocks, ref_tokens):
                tok = blk(tok, model.frames, model.grid)
                worst = max(worst, (tok - expected).abs().max().item())
        diffs[lmhra] = worst
    tol = 1e-5
    worst = max(diffs.values())
    return {
        "passed": worst <= tol and not any(unloaded.values()),
        "summary": (f"open_clip VisionTransformer (QuickGELU) weights loaded, LT_MHRA at zero: every block's "
                    f"per-frame tokens vs open_clip forward_intermediates, max abs diff {worst:.2e} "
                    f"(no LT_MHRA {diffs['none']:.2e}, double LT_MHRA {diffs['double']:.2e}; tolerance {tol:g})"),
        "max_abs_diff": worst,
        "max_abs_diff_by_design": diffs,
        "tolerance": tol,
        "reference": "open_clip.transformer.VisionTransformer.forward_intermediates",
        "unloaded_clip_keys": unloaded,
    }
