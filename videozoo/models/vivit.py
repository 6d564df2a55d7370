"""ViViT: A Video Vision Transformer.

Paper: Anurag Arnab, Mostafa Dehghani, Georg Heigold, Chen Sun, Mario Lucic, Cordelia Schmid,
"ViViT: A Video Vision Transformer", ICCV 2021, arXiv 2103.15691.  Authors' code (JAX):
github.com/google-research/scenic, ``scenic/projects/vivit/model.py`` at commit
``4a38d475ee89cb821078c0e2bf2065ee030e1535``; this file restates its four models in PyTorch,
parameter for parameter.

What is implemented:

* Sec. 3.2, embedding of a clip ``(B, 3, T, H, W)`` into tokens: "tubelet" embedding
  (non-overlapping ``t x P x P`` tubelets projected by a 3-D convolution with stride equal to its
  kernel) or "uniform-frame" sampling (the same with ``t = 1``).  ``n_t = T / t`` temporal
  indices, ``N = (H / P) (W / P)`` spatial tokens each, in (time, row, column) order.
* Sec. 3.3, the four models (config field ``variant``), as scenic builds them:

  1. ``"spatio-temporal"``: a class token, one position embedding over all ``1 + n_t N`` tokens,
     one encoder over all of them, its final LayerNorm, the class token to the classifier.
  2. ``"factorised-encoder"`` (``SpaceTimeViViT``): a spatial encoder (its own class token,
     position embedding over ``1 + N``, ``depth`` blocks, final LayerNorm) on every temporal index;
     its class tokens, with a new class token and a position embedding over ``1 + n_t``, go
     through a temporal encoder (``temporal_depth`` blocks, final LayerNorm).
  3. ``"factorised-self-attention"``: every block does self-attention among the tokens of one
     temporal index, then among the tokens of one spatial position (the paper's order,
     ``attention_order='space_time'``), each pre-norm and residual, then the MLP.  No class token:
     the final LayerNorm is applied to every token, then the tokens are averaged (``'gap'``).
  4. ``"factorised-dot-product"``: in every block's attention the first half of the heads attend
     along time (same spatial position), the second half within the frame (scenic's
     ``factorized_dot_product_attention``: heads split in axis order, time first); final
     LayerNorm, then the average of the tokens.

  Blocks are pre-norm ViT blocks with Flax's tanh-approximated GELU and LayerNorm eps 1e-6.
* Sec. 3.4, initialisation from an image ViT (:func:`init_from_vit`): position embeddings
  repeated over time, the tubelet kernel by "central frame" or "filter inflation", and for model
  3 the temporal attention at zero (the paper's choice; scenic copies the spatial one instead).

Configurations: ``paper()`` is model 2, ViViT-B/16x2 factorised encoder at 32x224x224, scenic's
recipe ``configs/kinetics400/vivit_base_factorised_encoder.py``: the paper's headline model, which
its state-of-the-art comparisons (Sec. 4.3) use.  Registered variants ``vivit_b_st``,
``vivit_b_fe``, ``vivit_b_fsa``, ``vivit_b_fdp`` are models 1-4 at the sizes of the paper's
Table 2 (ViViT-B, tubelet 16x2; model 1 is also scenic's ``configs/kinetics400/vivit_base_k400.py``,
models 3 and 4 have no released recipe).  Initialisation is scenic's: Xavier-uniform attention
and MLP kernels, MLP biases ``N(0, 1e-6^2)``, position embeddings ``N(0, 0.02^2)``, class tokens 0,
the tubelet kernel LeCun-normal on its central frame and 0 elsewhere, a zero classifier.

Key mapping: :func:`load_state_dict_from` converts scenic's parameters (all four models) and
Hugging Face ``transformers.VivitModel`` / ``VivitForVideoClassification`` state dicts (model 1;
HF's default ``gelu_fast`` is the same tanh approximation).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import partial
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Attention, Block, Mlp, convert_flax_attention, convert_flax_block, \
    convert_hf_encoder_layers, flax_dense
from videozoo.registry import Reported, make_config, register_check, register_model, register_variant

__all__ = ["ViViTConfig", "ViViT", "vivit", "init_from_vit", "inflate_patch_kernel", "load_state_dict_from",
           "VARIANTS", "EMBEDDINGS"]

VARIANTS = ("spatio-temporal", "factorised-encoder", "factorised-self-attention", "factorised-dot-product")
EMBEDDINGS = ("tubelet", "uniform-frame")


@dataclass
class ViViTConfig:
    """Hyper-parameters of ViViT (scenic's config fields in brackets).

    Attributes:
        num_classes: Output classes.
        img_size: Frame height = width in pixels.
        num_frames: Input frames ``T``.
        patch_size: Spatial patch / tubelet side ``P`` in pixels (``patches.size[:2]``).
        tubelet_t: Temporal tubelet extent ``t`` in frames (``patches.size[2]``; 1 for ``"uniform-frame"``).
        embed_dim: Token width ``D`` (``hidden_size``).
        depth: Encoder blocks ``L`` (model 2: spatial blocks ``L_s``).
        temporal_depth: Temporal encoder blocks ``L_t`` (model 2 only).
        num_heads: Attention heads (even for model 4).
        mlp_ratio: MLP hidden width / ``D`` (``mlp_dim / hidden_size``).
        qkv_bias: Bias in the query/key/value projections.
        layer_norm_eps: LayerNorm epsilon (Flax's 1e-6).
        variant: One of :data:`VARIANTS` (Sec. 3.3, models 1-4).
        embedding: ``"tubelet"`` or ``"uniform-frame"`` (Sec. 3.2).
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
    variant: str = "factorised-encoder"
    embedding: str = "tubelet"

    @classmethod
    def paper(cls) -> "ViViTConfig":
        """ViViT-B/16x2 factorised encoder (model 2), 32x224x224, recipe ``vivit_base_factorised_encoder.py``."""
        return cls()

    @classmethod
    def tiny(cls) -> "ViViTConfig":
        """8 frames of 32x32, tubelet 2x8x8 (4 x 16 tokens), D 32, 4 heads, 2 blocks (+2 temporal for model 2)."""
        return cls(num_classes=8, img_size=32, num_frames=8, patch_size=8, tubelet_t=2, embed_dim=32,
                   depth=2, temporal_depth=2, num_heads=4)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input ``(3, T, H, W)``."""
        return (3, self.num_frames, self.img_size, self.img_size)

    @property
    def t(self) -> int:
        """Effective temporal tubelet extent (1 for uniform frame sampling)."""
        return 1 if self.embedding == "uniform-frame" else self.tubelet_t


_GELU = partial(nn.GELU, approximate="tanh")  # Flax's nn.gelu


def _lecun_normal_(w: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Flax's ``lecun_normal``: truncated normal (+-2 sigma) with variance ``1 / fan_in``."""
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def _init_attention(attn: nn.Module) -> None:
    """Xavier-uniform query, key, value and output kernels (each on its own), zero biases, as scenic's blocks."""
    d = attn.proj.weight.shape[0]
    with torch.no_grad():
        for part in attn.qkv.weight.split(d) + (attn.proj.weight,):
            nn.init.xavier_uniform_(part)
    if attn.qkv.bias is not None:
        nn.init.zeros_(attn.qkv.bias)
    nn.init.zeros_(attn.proj.bias)


def _init_mlp(mlp: Mlp) -> None:
    for fc in (mlp.fc1, mlp.fc2):
        nn.init.xavier_uniform_(fc.weight)
        nn.init.normal_(fc.bias, std=1e-6)


def _block(c: ViViTConfig, norm) -> Block:
    blk = Block(c.embed_dim, c.num_heads, c.mlp_ratio, c.qkv_bias, norm, act=_GELU)
    _init_attention(blk.attn)
    _init_mlp(blk.mlp)
    return blk


class TubeletEmbed(nn.Module):
    """Tubelet embedding (Sec. 3.2): ``(B, 3, T, H, W) -> (B, n_t, N, D)``.

    A 3-D convolution with kernel = stride = ``(t, P, P)``; ``t = 1`` is uniform frame sampling.

    Raises:
        ValueError: if ``T``, ``H`` or ``W`` is not divisible by the tubelet size.
    """

    def __init__(self, t: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.size = (t, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.size, stride=self.size)
        with torch.no_grad():  # scenic's central_frame_initializer
            self.proj.weight.zero_()
            _lecun_normal_(self.proj.weight[:, :, t // 2], t * patch_size * patch_size * in_chans)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, T, H, W)`` -> ``(B, n_t, N, D)`` (spatial tokens in raster order)."""
        if any(s % k for s, k in zip(x.shape[2:], self.size)):
            raise ValueError(f"clip {tuple(x.shape[2:])} not divisible by tubelet {self.size}")
        x = self.proj(x)  # (B, D, n_t, h, w)
        return x.flatten(3).permute(0, 2, 3, 1)


class FactorisedSelfAttentionBlock(nn.Module):
    """Model 3 block (Sec. 3.3): spatial MSA, then temporal MSA, then MLP, all pre-norm residual.

    ``spatial`` holds the spatial attention with its LayerNorm (``norm1``) and the MLP with its
    LayerNorm (``norm2``), so that it has an image ViT block's names.  Shapes: ``(B, n_t, N, D) -> same``.
    """

    def __init__(self, c: ViViTConfig, norm_layer):
        super().__init__()
        self.spatial = _block(c, norm_layer)
        self.temporal_norm = norm_layer(c.embed_dim)
        self.temporal_attn = Attention(c.embed_dim, c.num_heads, qkv_bias=c.qkv_bias)
        _init_attention(self.temporal_attn)

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
    """Model 4 attention (Sec. 3.3): the first half of the heads attend along time, the second within a frame.

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
        half = h // 2
        # temporal heads: sequences are the n_t tokens of one spatial position
        qt, kt, vt = (z[:, :half].transpose(2, 3) for z in (q, k, v))  # (B, half, N, n_t, hd)
        out_t = F.scaled_dot_product_attention(qt, kt, vt).transpose(2, 3)
        # spatial heads: sequences are the N tokens of one temporal index
        out_s = F.scaled_dot_product_attention(q[:, half:], k[:, half:], v[:, half:])  # (B, h - half, n_t, N, hd)
        out = torch.cat([out_t, out_s], dim=1)  # (B, h, n_t, N, hd)
        return self.proj(out.permute(0, 2, 3, 1, 4).reshape(B, nt, N, D))


class FactorisedDotProductBlock(nn.Module):
    """Pre-norm block with :class:`FactorisedDotProductAttention`: ``(B, n_t, N, D) -> same``."""

    def __init__(self, c: ViViTConfig, norm_layer):
        super().__init__()
        d = c.embed_dim
        self.norm1 = norm_layer(d)
        self.attn = FactorisedDotProductAttention(d, c.num_heads, c.qkv_bias)
        self.norm2 = norm_layer(d)
        self.mlp = Mlp(d, int(d * c.mlp_ratio), act=_GELU)
        _init_attention(self.attn)
        _init_mlp(self.mlp)

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
        self.config = c = config
        D = c.embed_dim
        self.n_t = c.num_frames // c.t
        self.n_s = (c.img_size // c.patch_size) ** 2
        norm = partial(nn.LayerNorm, eps=c.layer_norm_eps)
        self.patch_embed = TubeletEmbed(c.t, c.patch_size, 3, D)
        v = c.variant
        if v == "spatio-temporal":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_t * self.n_s, D))
            self.blocks = nn.ModuleList(_block(c, norm) for _ in range(c.depth))
        elif v == "factorised-encoder":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_s, D))
            self.blocks = nn.ModuleList(_block(c, norm) for _ in range(c.depth))
            self.spatial_norm = norm(D)
            self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, D))
            self.temporal_pos_embed = nn.Parameter(torch.zeros(1, 1 + self.n_t, D))
            self.temporal_blocks = nn.ModuleList(_block(c, norm) for _ in range(c.temporal_depth))
            nn.init.normal_(self.temporal_pos_embed, std=0.02)
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.n_t * self.n_s, D))
            block = FactorisedSelfAttentionBlock if v == "factorised-self-attention" else FactorisedDotProductBlock
            self.blocks = nn.ModuleList(block(c, norm) for _ in range(c.depth))
        self.norm = norm(D)
        self.head = nn.Linear(D, c.num_classes)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

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
            ``(B, D)``: the final class token (models 1-2), or the average of the final tokens after
            the final LayerNorm (models 3-4).
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
        return self.norm(z).mean(dim=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- registration

_TABLE2 = "paper (arXiv 2103.15691), Table 2 (ViViT-B, tubelet 16x2, Kinetics-400)"
_SCENIC = "google-research/scenic at 4a38d47, the Flax model's parameters counted with jax.eval_shape"
_MODELS = {  # name -> (variant, Table 2 params M, Table 2 "GFLOPs" (multiply-adds), scenic's count, recipe)
    "vivit_b_st": ("spatio-temporal", 88.9, 455.2, 88_954_000, "configs/kinetics400/vivit_base_k400.py"),
    "vivit_b_fe": ("factorised-encoder", 115.1, 284.4, 115_062_928,
                   "configs/kinetics400/vivit_base_factorised_encoder.py"),
    "vivit_b_fsa": ("factorised-self-attention", 117.3, 372.3, 117_319_312, None),
    "vivit_b_fdp": ("factorised-dot-product", 88.9, 277.1, 88_952_464, None),
}


def _reported(name: str) -> tuple[Reported, ...]:
    variant, params, gmacs, scenic, recipe = _MODELS[name]
    where = f"{_SCENIC}, {recipe}" if recipe else f"{_SCENIC}, at Table 2's sizes (no released recipe)"
    return (Reported("params_m", params, _TABLE2, note=variant, kind="paper", tolerance_pct=0.5),
            Reported("params_m", scenic / 1e6, where, note=f"{variant}, 400 classes", kind="release",
                     tolerance_pct=0.5),
            Reported("gmacs", gmacs, _TABLE2, note=f"{variant}; 32x224x224; the table's FLOPs count multiply-adds",
                     kind="paper", tolerance_pct=0.5))


@register_model("arnab2021vivit", alias="vivit", stage=2, config=ViViTConfig, temporal=True,
                reported=_reported("vivit_b_fe"),
                motion={"lr": 1e-3, "max_steps": 6000, "n_train": 8000},
                motion_variants={v: ({"variant": v}, True) for v in VARIANTS if v != "factorised-encoder"})
def vivit(config: ViViTConfig) -> ViViT:
    """Build a :class:`ViViT` from ``config`` (``paper()``: the factorised encoder, model 2)."""
    return ViViT(config)


for _name, (_variant, *_rest, _recipe) in _MODELS.items():
    register_variant(
        _name, of="arnab2021vivit", overrides={"variant": _variant}, reported=_reported(_name),
        description=(f"ViViT-B/16x2 {_variant} (model {VARIANTS.index(_variant) + 1}), 32x224x224; "
                     + (f"scenic recipe {_recipe}" if _recipe else "the paper's Table 2 sizes")))


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
    """Initialise ``model`` from an image ViT's state dict with timm's names (Sec. 3.4).

    Copies the patch kernel (inflated with ``method``), class token, transformer blocks and
    final norm; the spatial position embedding is repeated over the ``n_t`` temporal
    indices (models 1, 3, 4; model 2's spatial encoder uses it as it is).  For model 3 the
    spatial attention takes the ViT attention and the temporal attention is zero
    (``qkv`` and ``proj`` weights and biases), so every block starts as the ViT block.
    The head and model 2's temporal encoder keep their initialisation.

    Args:
        model: The ViViT to initialise in place; same ``embed_dim``, ``depth``, heads as the ViT.
        vit_state_dict: ``timm.models.vision_transformer.VisionTransformer`` keys (also those of
            ``videozoo.models.vit``).
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

_SCENIC_BLOCK = ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")


def _from_scenic(params: dict, config: ViViTConfig) -> dict:
    p = {k.removeprefix("params/"): torch.as_tensor(v) for k, v in params.items()}
    v = config.variant
    out = {"patch_embed.proj.weight": p["embedding/kernel"].permute(4, 3, 0, 1, 2).contiguous(),
           "patch_embed.proj.bias": p["embedding/bias"]}
    out["head.weight"], out["head.bias"] = flax_dense(p, "output_projection")

    def encoder(src: str, depth: int, dst: str) -> None:
        for layer in range(depth):
            names = tuple(f"{src}/encoderblock_{layer}/{n}" for n in _SCENIC_BLOCK)
            convert_flax_block(p, names, out, f"{dst}.{layer}.")

    if v == "factorised-encoder":
        out["cls_token"] = p["cls_SpatialTransformer"]
        out["pos_embed"] = p["SpatialTransformer/posembed_input/pos_embedding"]
        encoder("SpatialTransformer", config.depth, "blocks")
        out["spatial_norm.weight"] = p["SpatialTransformer/encoder_norm/scale"]
        out["spatial_norm.bias"] = p["SpatialTransformer/encoder_norm/bias"]
        out["temporal_cls_token"] = p["cls_TemporalTransformer"]
        out["temporal_pos_embed"] = p["TemporalTransformer/posembed_input/pos_embedding"]
        encoder("TemporalTransformer", config.temporal_depth, "temporal_blocks")
        norm = "TemporalTransformer/encoder_norm"
    else:
        if v == "spatio-temporal":
            out["cls_token"] = p["cls"]
        out["pos_embed"] = p["Transformer/posembed_input/pos_embedding"]
        if v == "factorised-self-attention":
            for layer in range(config.depth):
                src, dst = f"Transformer/encoderblock_{layer}", f"blocks.{layer}."
                convert_flax_block(p, (f"{src}/LayerNorm_space", f"{src}/MultiHeadDotProductAttention_space",
                                       f"{src}/LayerNorm_mlp", f"{src}/MlpBlock"), out, dst + "spatial.")
                out[dst + "temporal_norm.weight"] = p[f"{src}/LayerNorm_time/scale"]
                out[dst + "temporal_norm.bias"] = p[f"{src}/LayerNorm_time/bias"]
                convert_flax_attention(p, f"{src}/MultiHeadDotProductAttention_time", out, dst + "temporal_attn.")
        else:
            encoder("Transformer", config.depth, "blocks")
        norm = "Transformer/encoder_norm"
    out["norm.weight"], out["norm.bias"] = p[norm + "/scale"], p[norm + "/bias"]
    return out


def _from_hf(state_dict: dict) -> dict:
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


def load_state_dict_from(library: str, state_dict: dict, config: ViViTConfig | None = None) -> dict:
    """Convert a scenic or Hugging Face ViViT's parameters into :class:`ViViT` keys.

    Args:
        library: ``"scenic"`` (the ``params`` of scenic's Flax ``ViViT`` or ``SpaceTimeViViT``,
            flattened with ``"/"``; all four models) or ``"hf"`` (``transformers.VivitModel`` or
            ``VivitForVideoClassification``; model 1; the pooler is dropped, ``classifier`` becomes
            ``head``).
        state_dict: The source parameters (tensors or NumPy arrays for scenic).
        config: Which model and depths (scenic; default ``paper()``).

    Returns:
        A state dict for ``ViViT(config)`` (without ``head.*`` for an HF model without classifier).

    Raises:
        ValueError: unknown ``library``. KeyError: a parameter the config needs is missing.
    """
    if library == "scenic":
        return _from_scenic(state_dict, config or ViViTConfig.paper())
    if library == "hf":
        return _from_hf(state_dict)
    raise ValueError(f"unknown library {library!r}; expected 'scenic' or 'hf'")


# --------------------------------------------------------------------------- checks


def _reference_table() -> dict:
    return json.loads(resources.files("videozoo.reference_tables").joinpath("vivit.json").read_text())


def _hf_logits_diff() -> float:
    """Tiny spatio-temporal ViViT vs ``transformers.VivitForVideoClassification`` with copied weights."""
    import transformers

    torch.manual_seed(0)
    cfg = dataclasses.replace(ViViTConfig.tiny(), num_classes=5, variant="spatio-temporal")
    hf_cfg = transformers.VivitConfig(
        image_size=cfg.img_size, num_frames=cfg.num_frames, tubelet_size=[cfg.t, cfg.patch_size, cfg.patch_size],
        hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio), layer_norm_eps=cfg.layer_norm_eps,
        hidden_act="gelu_fast", num_labels=cfg.num_classes)
    hf = transformers.VivitForVideoClassification(hf_cfg).eval()
    ours = ViViT(cfg).eval()
    ours.load_state_dict(load_state_dict_from("hf", hf.state_dict()))
    x = torch.rand(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        return (ours(x) - hf(pixel_values=x.transpose(1, 2)).logits).abs().max().item()


@register_check("arnab2021vivit", "reference", evidence="independent-reference")
def _vivit_vs_scenic_and_hf() -> dict:
    """Models 1-4 vs scenic's ViViT (JAX) from recorded tables and outputs; model 1 also vs Hugging Face.

    ``videozoo/reference_tables/vivit.json`` holds, made by running scenic's Flax models at commit
    4a38d47 (see that file): the flattened parameter table and count of each model at ViViT-B/16x2,
    and the logits each computes for a tiny configuration with weights and input drawn by a stated
    rule.  Here each table goes through :func:`load_state_dict_from` and must equal our model's
    state dict key for key; the same weights, mapped, must give the same logits.  Model 1 is also
    run against ``transformers.VivitForVideoClassification`` with copied weights.
    """
    from videozoo.reference_tables import seeded_input, seeded_state_dict, table_gap

    ref = _reference_table()
    tol = ref["tolerance"]
    measured: dict = {"models": {}}
    ok = True
    for name, rec in ref["models"].items():
        cfg = make_config(name, "paper")
        with torch.device("meta"):
            ours = ViViT(cfg)
        gap = table_gap(rec["layer_table"], lambda sd: load_state_dict_from("scenic", sd, cfg), ours.state_dict())
        params = sum(p.numel() for p in ours.parameters())
        vec = rec["test_vector"]
        tiny = ViViTConfig(**vec["videozoo_config"])
        model = ViViT(tiny).eval()
        model.load_state_dict(load_state_dict_from("scenic", seeded_state_dict(vec["layer_table"], vec["weight_seed"]),
                                                   tiny))
        x = seeded_input(vec["input_shape"], vec["input_seed"]).permute(0, 4, 1, 2, 3)  # JAX (B, T, H, W, C)
        with torch.no_grad():
            diff = (model(x) - torch.tensor(vec["logits"])).abs().max().item()
        measured["models"][name] = {"params": params, "authors_params": rec["params"], "max_abs_diff": diff, **gap}
        ok = ok and params == rec["params"] and not gap["differing_keys"] and diff <= tol
    try:
        measured["max_abs_diff_hf_model1"] = _hf_logits_diff()
        ok = ok and measured["max_abs_diff_hf_model1"] <= tol
    except ImportError:  # pragma: no cover - depends on the environment
        measured["max_abs_diff_hf_model1"] = None
    worst = max(m["max_abs_diff"] for m in measured["models"].values())
    tables = ", ".join(f"{n} {m['params'] / 1e6:.6f} M vs {m['authors_params'] / 1e6:.6f} M "
                       f"({len(m['differing_keys'])} differing keys)" for n, m in measured["models"].items())
    hf = measured["max_abs_diff_hf_model1"]
    return {
        "passed": ok,
        "summary": (f"scenic's ViViT parameter tables (4a38d47) mapped onto ours: {tables}; logits of tiny models 1-4 "
                    f"with scenic's seeded weights: max abs diff {worst:.2e}; model 1 vs HF "
                    f"VivitForVideoClassification: {'not run' if hf is None else f'{hf:.2e}'} (tolerance {tol:g})"),
        "max_abs_diff": max(worst, hf or 0.0),
        "tolerance": tol,
        "reference": ("parameter tables and outputs of scenic's Flax ViViT, videozoo/reference_tables/vivit.json; "
                      "transformers.VivitForVideoClassification"),
        **measured,
    }


@register_check("arnab2021vivit", "inflation", evidence="independent-reference")
def _vivit_inflation() -> dict:
    """Central-frame init from a timm ViT: tubelet embedding and the factorised encoder's spatial encoder reproduce it.

    A random ``timm`` ``VisionTransformer`` (tanh GELU, LayerNorm eps 1e-6, as the JAX ViT) initialises
    a tiny model 2 through :func:`init_from_vit`; on a clip of one repeated frame, the tubelet
    embedding must equal timm's patch embedding and every temporal index's spatial features timm's
    ``forward_features`` of that frame.
    """
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    cfg = dataclasses.replace(ViViTConfig.tiny(), variant="factorised-encoder")
    image_model = VisionTransformer(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                                    depth=cfg.depth, num_heads=cfg.num_heads, num_classes=10, act_layer=_GELU,
                                    norm_layer=partial(nn.LayerNorm, eps=1e-6)).eval()
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
        "summary": f"central-frame init from a timm ViT on a clip of one repeated frame: tubelet embedding vs the "
        f"ViT's patch embedding max abs diff {d_embed:.2e}; factorised-encoder spatial features vs the ViT's "
        f"forward_features per temporal index {d_feat:.2e} (tolerance {tol:g})",
        "max_abs_diff": max(d_embed, d_feat),
        "max_abs_diff_embedding": d_embed,
        "max_abs_diff_spatial_features": d_feat,
        "tolerance": tol,
        "reference": "timm.models.vision_transformer.VisionTransformer",
    }
