"""ViViT: A Video Vision Transformer.

Paper: Arnab, Dehghani, Heigold, Sun, Lucic, Schmid, ICCV 2021, arXiv 2103.15691.

What is implemented:

* Sec. 3.2, embedding of a clip ``(B, 3, T, H, W)`` into tokens: "uniform-frame" sampling
  (every frame patchified by the same 2D ``P x P`` projection, i.e. a tubelet of temporal
  size 1) or "tubelet" embedding (non-overlapping ``t x P x P`` tubelets projected by a
  3D convolution with stride equal to its kernel).  ``n_t = T / t`` temporal indices,
  ``N = (H / P) (W / P)`` spatial tokens each.
* Sec. 3.3, the four models (config field ``variant``):

  1. ``"spatio-temporal"``: one ViT encoder over all ``n_t N`` tokens plus a class token.
  2. ``"factorised-encoder"``: a spatial encoder (``depth`` blocks, its own class token)
     runs on each temporal index separately; its class-token outputs (one per ``n_t``)
     plus a new class token go through a temporal encoder (``temporal_depth`` blocks).
  3. ``"factorised-self-attention"``: every block does spatial self-attention (tokens of
     the same temporal index), then temporal self-attention (tokens of the same spatial
     position), each pre-norm and residual, then the MLP.  No class token: the head reads
     the global average of the final tokens (as the paper does for this model).
  4. ``"factorised-dot-product"``: in every block's multi-head attention, half of the
     heads attend spatially and the other half temporally; their outputs are concatenated
     and projected.  No class token (global average pooling), like model 3.

* Sec. 3.4, initialisation from an image ViT (:func:`init_from_vit`): position embeddings
  repeated over time, the tubelet kernel from the 2D patch kernel by "filter inflation"
  (replicate over ``t`` and divide by ``t``) or "central frame" (zeros except the centre
  temporal slice ``floor(t / 2)``), and for model 3 the temporal attention initialised to
  zero so that each block starts as the ViT block.

Simplifications: no dropout / stochastic depth, no representation layer.  Parameter names
of the spatio-temporal model follow timm's ViT (``cls_token``, ``pos_embed``, ``blocks``,
``norm``, ``head``); :func:`load_state_dict_from` converts Hugging Face
``transformers.VivitModel`` / ``VivitForVideoClassification`` state dicts (HF uses the
``gelu_fast`` approximation by default; build it with ``hidden_act="gelu"`` to compare).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Attention, Block, Mlp
from videozoo.models.vit import VisionTransformer, ViTConfig, convert_hf_encoder_layers
from videozoo.registry import register_check, register_model

__all__ = ["ViViTConfig", "ViViT", "vivit", "init_from_vit", "load_state_dict_from"]

VARIANTS = ("spatio-temporal", "factorised-encoder", "factorised-self-attention", "factorised-dot-product")
EMBEDDINGS = ("tubelet", "uniform-frame")


@dataclass
class ViViTConfig:
    """Hyper-parameters of ViViT.

    Attributes:
        num_classes: Output classes.
        img_size: Frame height = width in pixels.
        num_frames: Input frames ``T``.
        patch_size: Spatial patch / tubelet side ``P`` in pixels.
        tubelet_t: Temporal tubelet extent ``t`` in frames (ignored, i.e. 1, for
            ``embedding="uniform-frame"``).
        embed_dim: Token width ``D``.
        depth: Encoder blocks ``L`` (for ``factorised-encoder``: spatial blocks ``L_s``).
        temporal_depth: Temporal encoder blocks ``L_t`` (``factorised-encoder`` only).
        num_heads: Attention heads (even for ``factorised-dot-product``).
        mlp_ratio: MLP hidden width / ``D``.
        qkv_bias: Bias in the query/key/value projections.
        layer_norm_eps: LayerNorm epsilon.
        variant: One of ``"spatio-temporal"``, ``"factorised-encoder"``,
            ``"factorised-self-attention"``, ``"factorised-dot-product"`` (Sec. 3.3, models 1-4).
        embedding: ``"tubelet"`` or ``"uniform-frame"`` (Sec. 3.2).
        pos_init_std: Std of the truncated-normal initialisation of the position
            embeddings (0.02 as in ViT; the tiny config uses a larger value so that a
            from-scratch model is order-aware at initialisation and learns motion quickly).
    """

    num_classes: int = 400
    img_size: int = 224
    num_frames: int = 32
    patch_size: int = 16
    tubelet_t: int = 2
    embed_dim: int = 768
    depth: int = 12
    temporal_depth: int = 4
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    variant: str = "spatio-temporal"
    embedding: str = "tubelet"
    pos_init_std: float = 0.02

    @classmethod
    def paper(cls) -> "ViViTConfig":
        """ViViT-B, model 1 (spatio-temporal), 32 frames of 224x224, tubelet 2x16x16, Kinetics-400 head."""
        return cls()

    @classmethod
    def tiny(cls) -> "ViViTConfig":
        """~40 k parameters: 8 frames of 32x32, tubelet 2x8x8 (4 x 16 tokens), D 32, 2 blocks.

        Position embeddings start with std 1 (not 0.02): trained from scratch on the synthetic
        motion set, the model then sees token order from the first step.
        """
        return cls(num_classes=8, img_size=32, num_frames=8, patch_size=8, tubelet_t=2, embed_dim=32,
                   depth=2, temporal_depth=2, num_heads=4, pos_init_std=1.0)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input ``(3, T, H, W)``."""
        return (3, self.num_frames, self.img_size, self.img_size)

    @property
    def t(self) -> int:
        """Effective temporal tubelet extent (1 for uniform frame sampling)."""
        return 1 if self.embedding == "uniform-frame" else self.tubelet_t


class TubeletEmbed(nn.Module):
    """Tubelet embedding (Sec. 3.2): ``(B, 3, T, H, W) -> (B, n_t, N, D)``.

    A 3D convolution with kernel = stride = ``(t, P, P)``; ``t = 1`` is uniform frame sampling.

    Raises:
        ValueError: if ``T``, ``H`` or ``W`` is not divisible by the tubelet size.
    """

    def __init__(self, t: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.size = (t, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.size, stride=self.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, T, H, W)`` -> ``(B, n_t, N, D)`` (spatial tokens in raster order)."""
        if any(s % k for s, k in zip(x.shape[2:], self.size)):
            raise ValueError(f"clip {tuple(x.shape[2:])} not divisible by tubelet {self.size}")
        x = self.proj(x)  # (B, D, n_t, h, w)
        return x.flatten(3).permute(0, 2, 3, 1)


class FactorisedSelfAttentionBlock(nn.Module):
    """Model 3 block (Sec. 3.3): spatial MSA, then temporal MSA, then MLP, all pre-norm residual.

    Shapes: ``(B, n_t, N, D) -> (B, n_t, N, D)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_layer):
        super().__init__()
        self.spatial = Block(dim, num_heads, mlp_ratio, qkv_bias, norm_layer)  # norm1/attn used; mlp = block MLP
        self.temporal_norm = norm_layer(dim)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=qkv_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, n_t, N, D)``."""
        B, nt, N, D = x.shape
        s = self.spatial
        y = x.reshape(B * nt, N, D)
        y = y + s.attn(s.norm1(y))
        y = y.reshape(B, nt, N, D).transpose(1, 2).reshape(B * N, nt, D)
        y = y + self.temporal_attn(self.temporal_norm(y))
        y = y.reshape(B, N, nt, D).transpose(1, 2)
        return y + s.mlp(s.norm2(y))


class FactorisedDotProductAttention(nn.Module):
    """Model 4 attention (Sec. 3.3): half the heads attend within a frame, half across time.

    Same parameters as :class:`videozoo.layers.attention.Attention` (``qkv``, ``proj``).
    Shapes: ``(B, n_t, N, D) -> (B, n_t, N, D)``.

    Raises:
        ValueError: if ``num_heads`` is odd or does not divide ``dim``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if num_heads % 2 or dim % num_heads:
            raise ValueError(f"need an even num_heads dividing dim, got {num_heads} heads for dim {dim}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, n_t, N, D)``."""
        B, nt, N, D = x.shape
        h, hd = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, nt, N, 3, h, hd).permute(3, 0, 4, 1, 2, 5)  # (3, B, h, n_t, N, hd)
        q, k, v = qkv.unbind(0)
        hs = h // 2
        # spatial heads: sequences are the N tokens of one temporal index
        out_s = F.scaled_dot_product_attention(q[:, :hs], k[:, :hs], v[:, :hs])  # (B, hs, n_t, N, hd)
        # temporal heads: sequences are the n_t tokens of one spatial position
        qt, kt, vt = (z[:, hs:].transpose(2, 3) for z in (q, k, v))  # (B, h - hs, N, n_t, hd)
        out_t = F.scaled_dot_product_attention(qt, kt, vt).transpose(2, 3)
        out = torch.cat([out_s, out_t], dim=1)  # (B, h, n_t, N, hd)
        out = out.permute(0, 2, 3, 1, 4).reshape(B, nt, N, D)
        return self.proj(out)


class FactorisedDotProductBlock(nn.Module):
    """Pre-norm block with :class:`FactorisedDotProductAttention`: ``(B, n_t, N, D) -> same``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_layer):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = FactorisedDotProductAttention(dim, num_heads, qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, n_t, N, D)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViViT(nn.Module):
    """ViViT video classifier (arXiv 2103.15691, Sec. 3), models 1-4 selected by ``config.variant``.

    Input ``(B, 3, T, H, W)``; output logits ``(B, num_classes)``.

    Raises:
        ValueError: unknown ``variant`` / ``embedding`` or sizes that do not divide.
    """

    def __init__(self, config: ViViTConfig):
        super().__init__()
        if config.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {config.variant!r}")
        if config.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {config.embedding!r}")
        if config.num_frames % config.t or config.img_size % config.patch_size:
            raise ValueError("num_frames / img_size must be divisible by the tubelet size")
        self.config = config
        D, c = config.embed_dim, config
        self.n_t = c.num_frames // c.t
        self.n_s = (c.img_size // c.patch_size) ** 2
        norm = partial(nn.LayerNorm, eps=c.layer_norm_eps)
        self.patch_embed = TubeletEmbed(c.t, c.patch_size, 3, D)
        v = c.variant
        if v == "spatio-temporal":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_t * self.n_s, D))
            self.blocks = nn.ModuleList(Block(D, c.num_heads, c.mlp_ratio, c.qkv_bias, norm) for _ in range(c.depth))
        elif v == "factorised-encoder":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_s, D))
            self.blocks = nn.ModuleList(Block(D, c.num_heads, c.mlp_ratio, c.qkv_bias, norm) for _ in range(c.depth))
            self.spatial_norm = norm(D)
            self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.temporal_pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_t, D))
            self.temporal_blocks = nn.ModuleList(
                Block(D, c.num_heads, c.mlp_ratio, c.qkv_bias, norm) for _ in range(c.temporal_depth)
            )
            nn.init.trunc_normal_(self.temporal_pos_embed, std=c.pos_init_std, a=-2 * c.pos_init_std,
                                  b=2 * c.pos_init_std)
            nn.init.trunc_normal_(self.temporal_cls_token, std=0.02)
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.n_t * self.n_s, D))
            block = FactorisedSelfAttentionBlock if v == "factorised-self-attention" else FactorisedDotProductBlock
            self.blocks = nn.ModuleList(block(D, c.num_heads, c.mlp_ratio, c.qkv_bias, norm) for _ in range(c.depth))
        self.norm = norm(D)
        self.head = nn.Linear(D, c.num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=c.pos_init_std, a=-2 * c.pos_init_std, b=2 * c.pos_init_std)
        if hasattr(self, "cls_token"):
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def spatial_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Factorised encoder only: the spatial encoder on every temporal index.

        Args:
            tokens: ``(B, n_t, N, D)`` tubelet embeddings.

        Returns:
            ``(B, n_t, 1 + N, D)`` after the spatial encoder's LayerNorm (index 0: class token).

        Raises:
            RuntimeError: if the model is not the factorised encoder.
        """
        if self.config.variant != "factorised-encoder":
            raise RuntimeError("spatial_features exists only for variant 'factorised-encoder'")
        B, nt, N, D = tokens.shape
        x = tokens.reshape(B * nt, N, D)
        x = torch.cat([self.cls_token.expand(B * nt, -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.spatial_norm(x).reshape(B, nt, 1 + N, D)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip -> pooled representation fed to the head.

        Args:
            x: ``(B, 3, T, H, W)``.

        Returns:
            ``(B, D)``: the final class token (models 1-2) or the mean of the final tokens (3-4),
            after the final LayerNorm.
        """
        z = self.patch_embed(x)  # (B, n_t, N, D)
        B, nt, N, D = z.shape
        v = self.config.variant
        if v == "spatio-temporal":
            z = torch.cat([self.cls_token.expand(B, -1, -1), z.reshape(B, nt * N, D)], dim=1) + self.pos_embed
            for blk in self.blocks:
                z = blk(z)
            return self.norm(z)[:, 0]
        if v == "factorised-encoder":
            frames = self.spatial_features(z)[:, :, 0]  # (B, n_t, D)
            z = torch.cat([self.temporal_cls_token.expand(B, -1, -1), frames], dim=1) + self.temporal_pos_embed
            for blk in self.temporal_blocks:
                z = blk(z)
            return self.norm(z)[:, 0]
        z = z + self.pos_embed.reshape(1, nt, N, D)
        for blk in self.blocks:
            z = blk(z)
        return self.norm(z.mean(dim=(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x))


@register_model("arnab2021vivit", alias="vivit", stage=2, config=ViViTConfig, temporal=True,
                # from scratch a transformer needs more clips and steps than the CNNs (600 steps at 2e-3: 19.2 %)
                motion={"lr": 1e-3, "max_steps": 6000, "n_train": 8000})
def vivit(config: ViViTConfig) -> ViViT:
    """Build a :class:`ViViT` from ``config``.

    No reported figure is registered: the survey gives none for ViViT-B and the paper's
    own table could not be checked against a stored copy.  Our counts at the paper config
    (ViViT-B, 32x224x224, tubelet 2x16x16, 400 classes) are 88.95 M (model 1), 115.06 M
    (model 2, ``temporal_depth`` 4), 117.32 M (model 3) and 88.95 M (model 4).
    """
    return ViViT(config)


# --------------------------------------------------------------------------- initialisation


@torch.no_grad()
def inflate_patch_kernel(weight_2d: torch.Tensor, t: int, method: str = "central-frame") -> torch.Tensor:
    """Turn a 2D patch kernel into a 3D tubelet kernel (Sec. 3.4).

    Args:
        weight_2d: ``(D, C, P, P)``.
        t: Temporal extent of the tubelet.
        method: ``"central-frame"`` (zeros except slice ``t // 2``) or ``"filter-inflation"``
            (the 2D kernel repeated ``t`` times and divided by ``t``).

    Returns:
        ``(D, C, t, P, P)``.

    Raises:
        ValueError: unknown method.
    """
    if method == "central-frame":
        w = weight_2d.new_zeros(weight_2d.shape[:2] + (t,) + weight_2d.shape[2:])
        w[:, :, t // 2] = weight_2d
        return w
    if method == "filter-inflation":
        return weight_2d.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
    raise ValueError(f"method must be 'central-frame' or 'filter-inflation', got {method!r}")


@torch.no_grad()
def init_from_vit(model: ViViT, vit_state_dict: dict, method: str = "central-frame") -> ViViT:
    """Initialise ``model`` from a :class:`~videozoo.models.vit.VisionTransformer` state dict (Sec. 3.4).

    Copies the patch kernel (inflated with ``method``), class token, transformer blocks and
    final norm; the spatial position embedding is repeated over the ``n_t`` temporal
    indices (models 1, 3, 4; model 2's spatial encoder uses it as it is).  For model 3 the
    spatial attention takes the ViT attention and the temporal attention is zero
    (``qkv`` and ``proj`` weights and biases), so every block starts as the ViT block.
    The head and model 2's temporal encoder keep their initialisation.

    Args:
        model: The ViViT to initialise in place; same ``embed_dim``, ``depth``, heads as the ViT.
        vit_state_dict: Our ViT keys (use ``vit.load_state_dict_from`` for timm / HF).
        method: Tubelet kernel inflation, see :func:`inflate_patch_kernel`.

    Returns:
        ``model``.
    """
    sd = vit_state_dict
    v = model.config.variant
    model.patch_embed.proj.weight.copy_(inflate_patch_kernel(sd["patch_embed.proj.weight"], model.config.t, method))
    model.patch_embed.proj.bias.copy_(sd["patch_embed.proj.bias"])
    pos = sd["pos_embed"]  # (1, 1 + N, D)
    if v == "factorised-encoder":
        model.cls_token.copy_(sd["cls_token"])
        model.pos_embed.copy_(pos)
        model.spatial_norm.load_state_dict({"weight": sd["norm.weight"], "bias": sd["norm.bias"]})
    else:
        spatial = pos[:, 1:].repeat(1, model.n_t, 1)
        if v == "spatio-temporal":
            model.cls_token.copy_(sd["cls_token"])
            model.pos_embed.copy_(torch.cat([pos[:, :1], spatial], dim=1))
        else:
            model.pos_embed.copy_(spatial)
        model.norm.load_state_dict({"weight": sd["norm.weight"], "bias": sd["norm.bias"]})
    for i, blk in enumerate(model.blocks):
        block_sd = {k[len(f"blocks.{i}."):]: w for k, w in sd.items() if k.startswith(f"blocks.{i}.")}
        if v == "factorised-self-attention":
            blk.spatial.load_state_dict(block_sd)
            for p in blk.temporal_attn.parameters():
                p.zero_()
        else:
            blk.load_state_dict(block_sd)
    return model


# --------------------------------------------------------------------------- key mapping


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a Hugging Face ViViT state dict into keys of the spatio-temporal :class:`ViViT`.

    Args:
        library: ``"hf"`` (``transformers.VivitModel`` or ``VivitForVideoClassification``;
            the pooler is dropped, ``classifier`` becomes ``head``).
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A dict for ``ViViT.load_state_dict`` (variant ``"spatio-temporal"``).

    Raises:
        ValueError: unknown ``library``.
    """
    if library != "hf":
        raise ValueError(f"unknown library {library!r}; expected 'hf'")
    sd = {(k if k.startswith(("vivit.", "classifier.")) else "vivit." + k): v for k, v in state_dict.items()}
    layer_prefix = "vivit.layers." if any(k.startswith("vivit.layers.") for k in sd) else "vivit.encoder.layer."
    out = convert_hf_encoder_layers(sd, layer_prefix, "blocks.")
    simple = {
        "vivit.embeddings.cls_token": "cls_token",
        "vivit.embeddings.position_embeddings": "pos_embed",
        "vivit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "vivit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "vivit.layernorm.weight": "norm.weight",
        "vivit.layernorm.bias": "norm.bias",
        "classifier.weight": "head.weight",
        "classifier.bias": "head.bias",
    }
    out.update({new: sd[old] for old, new in simple.items() if old in sd})
    return out


# --------------------------------------------------------------------------- checks


def _reference_check() -> dict:
    """Tiny spatio-temporal ViViT vs ``transformers.VivitForVideoClassification`` with copied weights."""
    import transformers

    torch.manual_seed(0)
    cfg = dataclasses.replace(ViViTConfig.tiny(), num_classes=5)
    hf_cfg = transformers.VivitConfig(
        image_size=cfg.img_size, num_frames=cfg.num_frames, tubelet_size=[cfg.t, cfg.patch_size, cfg.patch_size],
        hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio), layer_norm_eps=cfg.layer_norm_eps,
        hidden_act="gelu", num_labels=cfg.num_classes,
    )
    hf = transformers.VivitForVideoClassification(hf_cfg).eval()
    ours = ViViT(cfg).eval()
    ours.load_state_dict(load_state_dict_from("hf", hf.state_dict()))
    x = torch.rand(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        diff = (ours(x) - hf(pixel_values=x.transpose(1, 2)).logits).abs().max().item()
    tol = 1e-5
    return {
        "passed": bool(diff <= tol),
        "summary": f"tiny spatio-temporal ViViT logits vs HF VivitForVideoClassification (hidden_act='gelu') "
        f"with copied weights: max abs diff {diff:.2e} (tolerance {tol:g})",
        "reference": "transformers.VivitForVideoClassification",
        "max_abs_diff": diff,
        "tolerance": tol,
    }


def _inflation_check() -> dict:
    """Central-frame init: tubelet embedding and factorised spatial encoder reproduce the 2D ViT."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(ViViTConfig.tiny(), variant="factorised-encoder")
    vit_cfg = ViTConfig(num_classes=cfg.num_classes, img_size=cfg.img_size, patch_size=cfg.patch_size,
                        embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads)
    image_model = VisionTransformer(vit_cfg).eval()
    model = init_from_vit(ViViT(cfg).eval(), image_model.state_dict(), method="central-frame")
    frame = torch.rand(2, 3, cfg.img_size, cfg.img_size)
    clip = frame.unsqueeze(2).repeat(1, 1, cfg.num_frames, 1, 1)  # one frame repeated T times
    with torch.no_grad():
        tokens = model.patch_embed(clip)  # (B, n_t, N, D)
        patches_2d = image_model.patch_embed(frame)  # (B, N, D)
        d_embed = (tokens - patches_2d.unsqueeze(1)).abs().max().item()
        d_feat = (model.spatial_features(tokens) - image_model.forward_features(frame).unsqueeze(1)).abs().max().item()
    tol = 1e-5
    return {
        "passed": bool(d_embed <= tol and d_feat <= tol),
        "summary": f"central-frame init on a clip of one repeated frame: tubelet embedding vs 2D ViT patch "
        f"embedding max abs diff {d_embed:.2e}; factorised-encoder spatial features vs ViT features per "
        f"temporal index {d_feat:.2e} (tolerance {tol:g})",
        "max_abs_diff": max(d_embed, d_feat),
        "max_abs_diff_embedding": d_embed,
        "max_abs_diff_spatial_features": d_feat,
        "tolerance": tol,
        "reference": "videozoo.models.vit.VisionTransformer",
    }


register_check("arnab2021vivit", "reference", evidence="self-consistency")(_reference_check)
register_check("arnab2021vivit", "inflation", evidence="self-consistency")(_inflation_check)
