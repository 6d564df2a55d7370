"""Multiview Transformers for Video Recognition (MTV).

Paper: Shen Yan, Xuehan Xiong, Anurag Arnab, Zhichao Lu, Mi Zhang, Chen Sun, Cordelia Schmid,
"Multiview Transformers for Video Recognition", CVPR 2022, arXiv 2201.04288.  Authors' code (JAX):
github.com/google-research/scenic, ``scenic/projects/mtv/model.py`` at commit
``4a38d475ee89cb821078c0e2bf2065ee030e1535``; ``paper()`` is its recipe
``scenic/projects/mtv/configs/kinetics/k400_mtv_b2_cva.py`` (MTV-B, ``Ti/8+S/4+B/2``, 32x224x224,
cross-view attention at layers 5 and 11, a 12-layer global encoder, 400 classes), which this file
restates layer for layer in PyTorch: 304.27 M parameters, the count of scenic's own model (a
survey lists MTV-B at 310 M).

What this file follows (paper Sec. 3, Fig. 2, and the release):

* Multiview tokenisation (Sec. 3.1): view ``i`` cuts the clip into ``t_i x 16 x 16`` tubelets,
  each projected by a 3-D convolution to the view's width; views are ordered as in the release,
  from the longest tubelet (fewest tokens, narrowest encoder: ``Ti/8``) to the shortest (``B/2``).
  Every temporal index of a view gets its own class token (zero-initialised).
* Per-slice encoding (the release's ``vmap`` over time): the clip is cut into ``S = min_i T/t_i``
  temporal slices; a view with ``k`` temporal indices per slice encodes those ``k`` indices (each
  with its class token) as one sequence, with a learned position embedding over the ``1 + h*w``
  positions shared by every index.  Slices are encoded independently by the same encoders.
* Multiview encoder (Sec. 3.2): one ViT encoder per view (pre-norm blocks, tanh-approximated GELU
  as Flax's ``nn.gelu``, LayerNorm eps 1e-6).  At the fusion layers, cross-view attention (CVA)
  runs first: every view is layer-normalised once, and view ``i`` (queries) attends to view
  ``i+1`` (keys and values) for ``i = V-2 .. 0``, all from the normalised tokens of before the
  fusion; queries, keys and values are projected straight to the query view's width (no extra
  projection of the key view) and the output projection starts at zero; the result is added to
  view ``i``.  Then each view's own self-attention and MLP.  No LayerNorm after the last layer.
* Global encoder (Sec. 3.3, ``merge_axis='channel'``): the class tokens of each view are tiled
  along time to the longest view's ``T/t`` (``jnp.tile``: the sequence repeats), concatenated along
  channels (192 + 384 + 768 = 1344 wide), a global class token and position embedding are added
  and a 12-layer encoder (8 heads, MLP 3072) attends over time; its final LayerNorm, the class
  token, and a zero-initialised linear classifier.

Initialisation follows the release (Flax initialisers): Xavier-uniform attention and MLP kernels
in the encoder blocks, LeCun-normal ones in the CVA projections and in the fusion layers'
self-attention, MLP biases ``N(0, 1e-6^2)``, other biases 0, position embeddings ``N(0, 0.02^2)``,
class tokens 0, the tubelet kernels LeCun-normal on their central frame and 0 elsewhere, and
zero CVA output projections and classifier.  :func:`load_state_dict_from` converts the release's
parameters (a Flax parameter tree, flattened with ``/``) into this module's names.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Block, convert_flax_attention, convert_flax_block, flax_dense
from videozoo.layers.drop import DropPath
from videozoo.registry import Reported, register_check, register_model

__all__ = ["MTVConfig", "MTV", "CrossViewFusion", "ViewLayer", "load_state_dict_from"]


@dataclass
class MTVConfig:
    """Hyper-parameters of MTV (scenic's MTV config fields in brackets).

    Attributes:
        num_classes: Output classes.
        num_frames: Input frames ``T``.
        img_size: Input height = width in pixels.
        in_chans: Input channels.
        patch_size: Spatial side of every tubelet (``patches.size[:2]``).
        tubelet_t: Temporal tubelet length of each view, longest first (``Ti/8+S/4+B/2`` -> 8, 4, 2).
        view_dims: Width of each view's encoder (``hidden_size``).
        view_heads: Heads of each view's encoder.
        view_mlp_dims: MLP width of each view's encoder (``mlp_dim``).
        depth: Layers of every view encoder (``num_layers``).
        fusion_layers: 0-based layers that start with cross-view attention (``cross_view_fusion.fusion_layers``).
        global_heads: Heads of the global encoder (``global_encoder_config.num_heads``).
        global_mlp_dim: Its MLP width (``global_encoder_config.mlp_dim``); its width is ``sum(view_dims)``.
        global_depth: Its layers (``global_encoder_config.num_layers``).
        stochastic_depth: Largest drop-path rate (``stochastic_depth``); layer ``l`` of an encoder with
            ``L`` layers uses ``l / (L - 1)`` of it.
    """

    num_classes: int = 400
    num_frames: int = 32
    img_size: int = 224
    in_chans: int = 3
    patch_size: int = 16
    tubelet_t: tuple[int, ...] = (8, 4, 2)
    view_dims: tuple[int, ...] = (192, 384, 768)
    view_heads: tuple[int, ...] = (3, 6, 12)
    view_mlp_dims: tuple[int, ...] = (768, 1536, 3072)
    depth: int = 12
    fusion_layers: tuple[int, ...] = (5, 11)
    global_heads: int = 8
    global_mlp_dim: int = 3072
    global_depth: int = 12
    stochastic_depth: float = 0.1

    @classmethod
    def paper(cls) -> "MTVConfig":
        """MTV-B (``Ti/8+S/4+B/2``) at 32x224x224, recipe ``configs/kinetics/k400_mtv_b2_cva.py``."""
        return cls()

    @classmethod
    def tiny(cls) -> "MTVConfig":
        """Two views (tubelets 4x8x8 and 2x8x8, widths 24 and 32) on 8x32x32 clips, 2 layers, CVA at layer 1."""
        return cls(num_classes=8, num_frames=8, img_size=32, patch_size=8, tubelet_t=(4, 2), view_dims=(24, 32),
                   view_heads=(2, 2), view_mlp_dims=(96, 128), depth=2, fusion_layers=(1,), global_heads=2,
                   global_mlp_dim=128, global_depth=1, stochastic_depth=0.0)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W)``."""
        return (self.in_chans, self.num_frames, self.img_size, self.img_size)


_GELU = partial(nn.GELU, approximate="tanh")  # Flax's nn.gelu
_LayerNorm = partial(nn.LayerNorm, eps=1e-6)  # Flax's default epsilon


def _lecun_normal_(w: torch.Tensor, fan_in: int) -> torch.Tensor:
    """Flax's ``lecun_normal``: truncated normal (+-2 sigma) with variance ``1 / fan_in``."""
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def _init_block(blk: Block, attention: str = "xavier") -> Block:
    """Initialise a pre-norm block as Flax's ViT encoder block (``attention``: ``"xavier"`` or ``"lecun"``)."""
    d = blk.norm1.normalized_shape[0]
    with torch.no_grad():
        for part in blk.attn.qkv.weight.split(d) + (blk.attn.proj.weight,):  # query, key, value, out kernels
            if attention == "xavier":
                nn.init.xavier_uniform_(part)
            else:
                _lecun_normal_(part, d)
    nn.init.zeros_(blk.attn.qkv.bias)
    nn.init.zeros_(blk.attn.proj.bias)
    for fc in (blk.mlp.fc1, blk.mlp.fc2):
        nn.init.xavier_uniform_(fc.weight)
        nn.init.normal_(fc.bias, std=1e-6)
    return blk


class CrossViewFusion(nn.Module):
    """Cross-view attention of one fusion layer (the release's ``_apply_cross_attention``).

    One LayerNorm per view; for each adjacent pair, view ``i`` (queries) attends to view ``i+1``
    (keys/values) with ``num_heads[i]`` heads, queries/keys/values projected to ``dims[i]``.

    ``forward(views)``: a list of ``(N, L_i, D_i)`` -> the list with views ``0 .. V-2`` updated.
    """

    def __init__(self, dims: tuple[int, ...], num_heads: tuple[int, ...], drop_path: float = 0.0) -> None:
        super().__init__()
        self.num_heads = tuple(num_heads)
        self.drop_path = DropPath(drop_path)
        self.norms = nn.ModuleList([_LayerNorm(d) for d in dims])
        self.attns = nn.ModuleList()
        for dq, dkv, h in zip(dims[:-1], dims[1:], num_heads[:-1]):
            if dq % h:
                raise ValueError(f"view width {dq} not divisible by {h} heads")
            attn = nn.Module()
            attn.q, attn.kv, attn.proj = nn.Linear(dq, dq), nn.Linear(dkv, 2 * dq), nn.Linear(dq, dq)
            _lecun_normal_(attn.q.weight.data, dq)
            for part in attn.kv.weight.data.split(dq):
                _lecun_normal_(part, dkv)
            for p in (attn.q.bias, attn.kv.bias, attn.proj.weight, attn.proj.bias):
                nn.init.zeros_(p)
            self.attns.append(attn)

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        normed = [norm(v) for norm, v in zip(self.norms, views)]
        out = list(views)
        for i in reversed(range(len(self.attns))):  # the release fuses in descending order
            attn, h = self.attns[i], self.num_heads[i]
            q, kv = normed[i], normed[i + 1]
            n, lq, d = q.shape
            qh = attn.q(q).view(n, lq, h, d // h).transpose(1, 2)
            k, v = attn.kv(kv).view(n, kv.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(qh, k, v).transpose(1, 2).reshape(n, lq, d)
            out[i] = out[i] + self.drop_path(attn.proj(y))
        return out


class ViewLayer(nn.Module):
    """Layer ``l`` of the multiview encoder: optional CVA, then every view's own pre-norm block.

    ``forward(views)``: list of ``(N, L_i, D_i)`` -> same shapes.
    """

    def __init__(self, cfg: MTVConfig, layer: int) -> None:
        super().__init__()
        fusion = layer in cfg.fusion_layers
        rate = layer / max(cfg.depth - 1, 1) * cfg.stochastic_depth
        self.cva = CrossViewFusion(cfg.view_dims, cfg.view_heads, rate) if fusion else None
        self.blocks = nn.ModuleList([
            _init_block(Block(d, h, norm_layer=_LayerNorm, act=_GELU, hidden=m, drop_path=rate),
                        "lecun" if fusion else "xavier")
            for d, h, m in zip(cfg.view_dims, cfg.view_heads, cfg.view_mlp_dims)])

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.cva is not None:
            views = self.cva(views)
        return [blk(z) for blk, z in zip(self.blocks, views)]


class MTV(nn.Module):
    """Multiview transformer classifier: clip ``(B, 3, T, H, W)`` -> logits ``(B, num_classes)``.

    Raises:
        ValueError: per-view tuples of different lengths, sizes that do not divide, or temporal
            index counts that are not multiples of the smallest one.
    """

    def __init__(self, config: MTVConfig) -> None:
        super().__init__()
        self.config = cfg = config
        v = len(cfg.tubelet_t)
        if not (len(cfg.view_dims) == len(cfg.view_heads) == len(cfg.view_mlp_dims) == v):
            raise ValueError("tubelet_t, view_dims, view_heads and view_mlp_dims need one entry per view")
        if cfg.img_size % cfg.patch_size or any(cfg.num_frames % t for t in cfg.tubelet_t):
            raise ValueError(f"input {cfg.num_frames}x{cfg.img_size} not divisible by the tubelets "
                             f"{cfg.tubelet_t}x{cfg.patch_size}")
        self.time_steps = [cfg.num_frames // t for t in cfg.tubelet_t]  # temporal indices per view
        self.slices = min(self.time_steps)
        if any(n % self.slices for n in self.time_steps):
            raise ValueError(f"temporal indices per view {self.time_steps} must be multiples of {self.slices}")
        n_sp = (cfg.img_size // cfg.patch_size) ** 2
        self.embeds = nn.ModuleList()
        for t, d in zip(cfg.tubelet_t, cfg.view_dims):
            conv = nn.Conv3d(cfg.in_chans, d, (t, cfg.patch_size, cfg.patch_size), (t, cfg.patch_size, cfg.patch_size))
            with torch.no_grad():  # the release's central_frame_initializer
                conv.weight.zero_()
                _lecun_normal_(conv.weight[:, :, t // 2], t * cfg.patch_size ** 2 * cfg.in_chans)
            nn.init.zeros_(conv.bias)
            self.embeds.append(conv)
        self.cls_tokens = nn.ParameterList([nn.Parameter(torch.zeros(1, n, 1, d))
                                            for n, d in zip(self.time_steps, cfg.view_dims)])
        self.pos_embeds = nn.ParameterList([nn.Parameter(0.02 * torch.randn(1, 1 + n_sp, d)) for d in cfg.view_dims])
        self.layers = nn.ModuleList([ViewLayer(cfg, layer) for layer in range(cfg.depth)])
        width = sum(cfg.view_dims)
        if width % cfg.global_heads:
            raise ValueError(f"global width {width} not divisible by {cfg.global_heads} heads")
        self.global_cls = nn.Parameter(torch.zeros(1, 1, width))
        self.global_pos = nn.Parameter(0.02 * torch.randn(1, 1 + max(self.time_steps), width))
        self.global_blocks = nn.ModuleList([
            _init_block(Block(width, cfg.global_heads, norm_layer=_LayerNorm, act=_GELU, hidden=cfg.global_mlp_dim,
                              drop_path=layer / max(cfg.global_depth - 1, 1) * cfg.stochastic_depth))
            for layer in range(cfg.global_depth)])
        self.global_norm = _LayerNorm(width)
        self.head = nn.Linear(width, cfg.num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def tokenize(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Multiview tokens per slice: ``(B, 3, T, H, W)`` -> per view ``(B*S, k_i * (1 + h*w), D_i)``.

        ``S`` is :attr:`slices`; view ``i`` has ``k_i = (T / t_i) / S`` temporal indices per slice,
        each with its class token first, in time order.
        """
        out = []
        for embed, cls, pos, n in zip(self.embeds, self.cls_tokens, self.pos_embeds, self.time_steps):
            tok = embed(x)  # (B, D, n, h, w)
            b, d = tok.shape[:2]
            tok = tok.flatten(3).permute(0, 2, 3, 1)  # (B, n, h*w, D)
            tok = torch.cat([cls.expand(b, -1, -1, -1), tok], dim=2) + pos.unsqueeze(1)
            out.append(tok.reshape(b * self.slices, -1, d))
        return out

    def encode_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tokens of every view after the multiview encoder, ``(B*S, k_i * (1 + h*w), D_i)`` (no final norm)."""
        views = self.tokenize(x)
        for layer in self.layers:
            views = layer(views)
        return views

    def global_input(self, views: list[torch.Tensor]) -> torch.Tensor:
        """Global-encoder input ``(B, 1 + max_i T/t_i, sum_i D_i)``: class tokens tiled in time, merged in channels."""
        b = views[0].shape[0] // self.slices
        n_max = max(self.time_steps)
        merged = []
        for z, n in zip(views, self.time_steps):
            cls = z.reshape(b, n, -1, z.shape[-1])[:, :, 0]  # (B, n, D): every temporal index's class token
            merged.append(cls.repeat(1, n_max // n, 1))  # jnp.tile: the whole sequence repeats
        z = torch.cat(merged, dim=-1)
        return torch.cat([self.global_cls.expand(b, -1, -1), z], dim=1) + self.global_pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        if x.shape[2] != self.config.num_frames:
            raise ValueError(f"expected {self.config.num_frames} frames, got {x.shape[2]}")
        z = self.global_input(self.encode_views(x))
        for blk in self.global_blocks:
            z = blk(z)
        return self.head(self.global_norm(z)[:, 0])


# ----------------------------------------------------------------------------- key mapping


def load_state_dict_from(library: str, params: dict, config: MTVConfig | None = None) -> dict:
    """Convert the release's MTV parameters into :class:`MTV` keys.

    Args:
        library: ``"scenic"``: the ``params`` collection of scenic's Flax ``MTV``, flattened with
            ``"/"`` (e.g. ``"MultiviewEncoder/cross_view_encoderblock_5/msa_view0/query/kernel"``),
            values as tensors or NumPy arrays.
        params: That flat dict.
        config: The matching :class:`MTVConfig` (default ``paper()``): which layers fuse, how many views.

    Returns:
        A complete state dict for ``MTV(config)``.

    Raises:
        ValueError: unknown library. KeyError: a parameter the config needs is missing.
    """
    if library != "scenic":
        raise ValueError(f"unknown library {library!r}; supported: 'scenic'")
    cfg = config or MTVConfig.paper()
    p = {k.removeprefix("params/"): torch.as_tensor(v) for k, v in params.items()}
    out: dict = {}
    views = range(len(cfg.tubelet_t))
    for i in views:
        out[f"embeds.{i}.weight"] = p[f"embedding_view{i}/kernel"].permute(4, 3, 0, 1, 2).contiguous()
        out[f"embeds.{i}.bias"] = p[f"embedding_view{i}/bias"]
        out[f"cls_tokens.{i}"] = p[f"cls_view{i}"]
        out[f"pos_embeds.{i}"] = p[f"MultiviewEncoder/posembed_input_view{i}/pos_embedding"]
    vit_block = ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
    for layer in range(cfg.depth):
        dst = f"layers.{layer}."
        if layer in cfg.fusion_layers:
            src = f"MultiviewEncoder/cross_view_encoderblock_{layer}"
            for i in views:
                out[f"{dst}cva.norms.{i}.weight"] = p[f"{src}/cross_attention_ln_view{i}/scale"]
                out[f"{dst}cva.norms.{i}.bias"] = p[f"{src}/cross_attention_ln_view{i}/bias"]
                if i + 1 < len(views):  # view i queries view i + 1
                    convert_flax_attention(p, f"{src}/cross_attention_view{i}_{i + 1}", out, f"{dst}cva.attns.{i}.",
                                           fused=False)
                names = tuple(f"{src}/{n}_view{i}" for n in ("msa_ln", "msa", "mlp_ln", "mlp"))
                convert_flax_block(p, names, out, f"{dst}blocks.{i}.")
        else:
            for i in views:
                names = tuple(f"MultiviewEncoder/encoderblock_{layer}_view{i}/{n}" for n in vit_block)
                convert_flax_block(p, names, out, f"{dst}blocks.{i}.")
    out["global_cls"] = p["cls_global"]
    out["global_pos"] = p["global_encoder/posembed_input/pos_embedding"]
    for layer in range(cfg.global_depth):
        names = tuple(f"global_encoder/encoderblock_{layer}/{n}" for n in vit_block)
        convert_flax_block(p, names, out, f"global_blocks.{layer}.")
    out["global_norm.weight"], out["global_norm.bias"] = p["global_encoder/encoder_norm/scale"], \
        p["global_encoder/encoder_norm/bias"]
    out["head.weight"], out["head.bias"] = flax_dense(p, "output_projection")
    return out


# ----------------------------------------------------------------------------- registration

_RELEASE = ("google-research/scenic at 4a38d47, scenic/projects/mtv/configs/kinetics/k400_mtv_b2_cva.py, "
            "parameters of the Flax model counted with jax.eval_shape")


@register_model(
    "yan2022multiview",
    alias="mtv",
    stage=2,
    config=MTVConfig,
    reported=(Reported("params_m", 304.270864, _RELEASE, note="MTV-B, 400 classes", kind="release", tolerance_pct=0.5),
              Reported("params_m", 310.0, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       note="MTV-B", kind="survey", tolerance_pct=3.0)),
    temporal=True,
    motion={"lr": 1e-3, "max_steps": 3000, "n_train": 4000},
)
def mtv(config: MTVConfig) -> MTV:
    """Build an MTV classifier from ``config`` (randomly initialised as the release; see :func:`load_state_dict_from`)."""
    return MTV(config)


# ----------------------------------------------------------------------------- checks


def _reference_table() -> dict:
    return json.loads(resources.files("videozoo.reference_tables").joinpath("mtv.json").read_text())


@register_check("yan2022multiview", "reference", evidence="independent-reference")
def _mtv_vs_scenic() -> dict:
    """Ours vs scenic's MTV (JAX), from its recorded parameter table and outputs.

    ``videozoo/reference_tables/mtv.json`` holds, made by running scenic's Flax model at commit
    4a38d47 (see that file): the flattened parameter table and count of the K400 MTV-B recipe, and
    the logits scenic computes for a tiny three-view MTV with weights and input drawn by a stated
    rule.  Here the table goes through :func:`load_state_dict_from` and must equal our model's
    state dict key for key; the same weights, mapped, must give the same logits.
    """
    from videozoo.reference_tables import seeded_input, seeded_state_dict, table_gap

    ref = _reference_table()
    rec = ref["recipe"]
    with torch.device("meta"):
        ours = MTV(MTVConfig.paper())
    gap = table_gap(rec["layer_table"], lambda sd: load_state_dict_from("scenic", sd), ours.state_dict())
    params = sum(p.numel() for p in ours.parameters())
    vec = ref["test_vector"]
    cfg = MTVConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in vec["videozoo_config"].items()})
    model = MTV(cfg).eval()
    model.load_state_dict(load_state_dict_from("scenic", seeded_state_dict(vec["layer_table"], vec["weight_seed"]), cfg))
    x = seeded_input(vec["input_shape"], vec["input_seed"]).permute(0, 4, 1, 2, 3)  # JAX (B, T, H, W, C)
    with torch.no_grad():
        diff = (model(x) - torch.tensor(vec["logits"])).abs().max().item()
    tol = ref["tolerance"]
    passed = params == rec["params"] and not gap["differing_keys"] and diff <= tol
    return {
        "passed": passed,
        "summary": (f"scenic's MTV-B K400 parameter table (4a38d47) mapped onto ours: {params / 1e6:.6f} M vs "
                    f"{rec['params'] / 1e6:.6f} M, {len(gap['differing_keys'])} differing keys; logits of a tiny "
                    f"3-view MTV with scenic's seeded weights: max abs diff {diff:.2e} (tolerance {tol:g})"),
        "max_abs_diff": diff,
        "tolerance": tol,
        "params": params,
        "authors_params": rec["params"],
        **gap,
        "reference": "parameter table and outputs of scenic's Flax MTV, videozoo/reference_tables/mtv.json",
    }
