"""TimeSformer: divided space-time attention.

Paper: "Is Space-Time Attention All You Need for Video Understanding?", Bertasius, Wang,
Torresani, ICML 2021, arXiv 2102.05095.

Follows Sec. 3:

* Input clip ``(B, 3, T, H, W)``; every frame is cut into ``N = HW / P^2`` patches, each
  linearly projected to ``D`` (eq. 1: a ``P x P`` stride-``P`` convolution), plus a learned
  spatial position embedding shared by all frames; a learned time embedding per frame is
  added too (as in the official implementation; the paper writes a single space-time
  position embedding ``e^pos_(p,t)``).  A class token is prepended.
* Attention schemes of Fig. 1 (config field ``attention``):

  - ``"space-only"`` (S): every frame is a separate sequence of ``1 + N`` tokens with its
    own copy of the class token; the frames' token outputs are averaged over time at the
    end, so the model cannot see frame order.
  - ``"joint"`` (ST): one sequence of ``1 + T N`` tokens, full space-time attention.
  - ``"divided"`` (T+S, eq. 5-8, the paper's default): each block first applies temporal
    attention (each patch attends to the patches at the same position in the other
    frames), whose output goes through an extra linear layer (``temporal_fc``) and is
    added residually, then spatial attention within each frame (the class token, copied
    to every frame, attends to that frame's patches and its per-frame outputs are
    averaged), residually, then the MLP.

  Sparse local-global and axial attention of Fig. 1 are not implemented.
* Classification: final LayerNorm, linear head on the class token.

Initialisation from an image ViT (:func:`init_from_vit`, Sec. 3 / 4.1 use ImageNet ViT
weights): patch embedding, class token, position embedding, spatial attention, MLPs and
norms are copied; the time embedding starts at zero; the temporal attention and its norm
start as copies of the spatial ones (as the official code does); ``temporal_fc`` starts at
zero **in every block** (the official code zeroes it in all blocks but the first), so that
each divided block initially *is* the ViT block: on a clip of one repeated frame the
model reproduces the ViT's features exactly (the "inflation" check).

Parameter names: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``time_embed``,
``blocks.i.{norm1, attn, temporal_norm, temporal_attn, temporal_fc, norm2, mlp}``,
``norm``, ``head`` (those of the official implementation, which builds on timm);
:func:`load_state_dict_from` converts Hugging Face ``transformers.TimesformerModel`` /
``TimesformerForVideoClassification`` state dicts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from videozoo.layers.attention import Attention, Block, Mlp
from videozoo.layers.checkpoint import run_block
from videozoo.layers.init import trunc_normal_init
from videozoo.layers.patch_embed import PatchEmbed
from videozoo.models.vit import VisionTransformer, ViTConfig
from videozoo.registry import Reported, register_check, register_model

__all__ = ["TimeSformerConfig", "TimeSformer", "DividedSpaceTimeBlock", "timesformer", "init_from_vit",
           "load_state_dict_from", "reference_model", "hf_logits", "image_config"]

ATTENTIONS = ("divided", "joint", "space-only")
_HF_ATTENTION = {"divided": "divided_space_time", "joint": "joint_space_time", "space-only": "space_only"}


@dataclass
class TimeSformerConfig:
    """Hyper-parameters of TimeSformer.

    Attributes:
        num_classes: Output classes.
        img_size: Frame height = width in pixels.
        num_frames: Frames ``T`` per clip.
        patch_size: Patch side ``P`` in pixels.
        embed_dim: Token width ``D``.
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        qkv_bias: Bias in the query/key/value projections.
        layer_norm_eps: LayerNorm epsilon.
        attention: ``"divided"``, ``"joint"`` or ``"space-only"`` (Fig. 1).
        pos_init_std: Std of the truncated-normal initialisation of the space and time
            position embeddings (0.02 as in timm / the official code, which starts the time
            embedding at zero; a larger value makes a from-scratch model order-aware at
            initialisation).
    """

    num_classes: int = 400
    img_size: int = 224
    num_frames: int = 8
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    attention: str = "divided"
    pos_init_std: float = 0.02

    @classmethod
    def paper(cls) -> "TimeSformerConfig":
        """TimeSformer (base): ViT-B backbone, 8 frames of 224x224, patch 16, divided attention, K400 head."""
        return cls()

    @classmethod
    def tiny(cls) -> "TimeSformerConfig":
        """8 frames of 32x32, patch 4 (64 patches per frame), D 32, 2 blocks, 4 heads."""
        return cls(num_classes=8, img_size=32, num_frames=8, patch_size=4, embed_dim=32, depth=2, num_heads=4)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input ``(3, T, H, W)``."""
        return (3, self.num_frames, self.img_size, self.img_size)


class DividedSpaceTimeBlock(nn.Module):
    """Divided space-time attention block (arXiv 2102.05095, Sec. 3, eq. 5-8).

    Temporal attention (residual, through ``temporal_fc``), then spatial attention
    (residual; the class token takes part in every frame's spatial attention and its
    per-frame outputs are averaged), then the MLP (residual).  All pre-norm.

    Shapes: ``cls (B, 1, D)``, ``x (B, T, N, D)`` -> same shapes.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_layer):
        super().__init__()
        self.temporal_norm = norm_layer(dim)
        self.temporal_attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, cls: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls: (B, 1, D)``, ``x: (B, T, N, D)`` -> ``(cls, x)`` of the same shapes."""
        B, T, N, D = x.shape
        # eq. 6: temporal attention among the T patches at each spatial position
        xt = x.transpose(1, 2).reshape(B * N, T, D)
        res_t = self.temporal_fc(self.temporal_attn(self.temporal_norm(xt)))
        x = x + res_t.reshape(B, N, T, D).transpose(1, 2)
        # eq. 7: spatial attention among the N patches (and the class token) of each frame
        xs = torch.cat([cls.repeat_interleave(T, dim=0), x.reshape(B * T, N, D)], dim=1)  # (B T, 1 + N, D)
        res_s = self.attn(self.norm1(xs)).reshape(B, T, 1 + N, D)
        cls = cls + res_s[:, :, :1].mean(dim=1)
        x = x + res_s[:, :, 1:]
        # eq. 8: MLP on every token
        cls = cls + self.mlp(self.norm2(cls))
        x = x + self.mlp(self.norm2(x))
        return cls, x


class TimeSformer(nn.Module):
    """TimeSformer video classifier (arXiv 2102.05095); attention scheme from ``config.attention``.

    Input ``(B, 3, T, H, W)``; output logits ``(B, num_classes)``.

    Raises:
        ValueError: unknown attention scheme.
    """

    def __init__(self, config: TimeSformerConfig):
        super().__init__()
        if config.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {config.attention!r}")
        self.config = config
        c, D = config, config.embed_dim
        norm = partial(nn.LayerNorm, eps=c.layer_norm_eps)
        self.patch_embed = PatchEmbed(c.img_size, c.patch_size, 3, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.patch_embed.num_patches, D))
        if c.attention != "space-only":
            self.time_embed = nn.Parameter(torch.zeros(1, c.num_frames, D))
        block = DividedSpaceTimeBlock if c.attention == "divided" else Block
        self.blocks = nn.ModuleList(block(D, c.num_heads, c.mlp_ratio, c.qkv_bias, norm) for _ in range(c.depth))
        self.norm = norm(D)
        self.head = nn.Linear(D, c.num_classes)
        self.grad_checkpointing = False
        # as the official implementation (timm's scheme): linear layers trunc_normal(0.02) with
        # zero biases, LayerNorms 1 / 0, embeddings trunc_normal; temporal_fc zero in every
        # divided block but the first
        self.apply(trunc_normal_init)
        nn.init.trunc_normal_(self.pos_embed, std=c.pos_init_std, a=-2 * c.pos_init_std, b=2 * c.pos_init_std)
        if c.attention != "space-only":
            nn.init.trunc_normal_(self.time_embed, std=c.pos_init_std, a=-2 * c.pos_init_std, b=2 * c.pos_init_std)
        nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)
        if c.attention == "divided":
            for blk in list(self.blocks)[1:]:
                nn.init.zeros_(blk.temporal_fc.weight)
                nn.init.zeros_(blk.temporal_fc.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them
        (less memory for the ``T N`` tokens of a clip; same outputs and gradients)."""
        self.grad_checkpointing = enable

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed and run the blocks, before the final LayerNorm.

        Args:
            x: ``(B, 3, T, H, W)`` clip.

        Returns:
            ``(cls, tokens)``: ``(B, 1, D)`` and ``(B, T, N, D)`` for divided / joint attention;
            for space-only, the per-frame outputs ``(B, T, 1, D)`` and ``(B, T, N, D)``.
        """
        B, C, T, H, W = x.shape
        D = self.config.embed_dim
        z = self.patch_embed(x.transpose(1, 2).reshape(B * T, C, H, W))  # (B T, N, D)
        N = z.shape[1]
        z = (z + self.pos_embed[:, 1:]).reshape(B, T, N, D)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(B, -1, -1)  # (B, 1, D)
        att = self.config.attention
        if att == "space-only":
            seq = torch.cat([cls.repeat_interleave(T, dim=0), z.reshape(B * T, N, D)], dim=1)
            for blk in self.blocks:
                seq = run_block(blk, seq, enabled=self.grad_checkpointing)
            seq = seq.reshape(B, T, 1 + N, D)
            return seq[:, :, :1], seq[:, :, 1:]
        if T != self.time_embed.shape[1]:
            raise ValueError(f"expected {self.time_embed.shape[1]} frames, got {T}")
        z = z + self.time_embed.unsqueeze(2)  # (1, T, 1, D)
        if att == "joint":
            seq = torch.cat([cls, z.reshape(B, T * N, D)], dim=1)
            for blk in self.blocks:
                seq = run_block(blk, seq, enabled=self.grad_checkpointing)
            return seq[:, :1], seq[:, 1:].reshape(B, T, N, D)
        for blk in self.blocks:
            cls, z = run_block(blk, cls, z, enabled=self.grad_checkpointing)
        return cls, z

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> class-token feature ``(B, D)`` after the final LayerNorm.

        For space-only attention the per-frame class tokens are averaged over time first.
        """
        cls, _ = self.encode(x)
        if cls.dim() == 4:  # space-only: (B, T, 1, D)
            cls = cls.mean(dim=1)
        return self.norm(cls[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- initialisation


def image_config(config: TimeSformerConfig) -> ViTConfig:
    """The ViT whose weights :func:`init_from_vit` takes for ``config``: same image size, patch
    size, width, depth, heads, MLP ratio and classes (the paper starts from an ImageNet-trained ViT)."""
    return ViTConfig(num_classes=config.num_classes, img_size=config.img_size, patch_size=config.patch_size,
                     embed_dim=config.embed_dim, depth=config.depth, num_heads=config.num_heads,
                     mlp_ratio=config.mlp_ratio)


@torch.no_grad()
def init_from_vit(model: TimeSformer, vit_state_dict: dict) -> TimeSformer:
    """Initialise ``model`` from a :class:`~videozoo.models.vit.VisionTransformer` state dict.

    Copies patch embedding, class token, position embedding, blocks and final norm; the time
    embedding is set to zero; in divided blocks the temporal attention and its norm copy the
    spatial ones and ``temporal_fc`` is zeroed, so every block starts as the ViT block and
    a clip of one repeated frame yields the ViT's features.  The head is left as it is.

    Args:
        model: TimeSformer with the ViT's ``embed_dim``, ``depth``, heads and patch size.
        vit_state_dict: Our ViT keys (use ``vit.load_state_dict_from`` for timm / HF).

    Returns:
        ``model``.
    """
    sd = vit_state_dict
    for name in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                 "norm.weight", "norm.bias"):
        model.get_parameter(name).copy_(sd[name])
    if hasattr(model, "time_embed"):
        model.time_embed.zero_()
    for i, blk in enumerate(model.blocks):
        block_sd = {k[len(f"blocks.{i}."):]: w for k, w in sd.items() if k.startswith(f"blocks.{i}.")}
        if isinstance(blk, DividedSpaceTimeBlock):
            for part in ("norm1", "attn", "norm2", "mlp"):
                getattr(blk, part).load_state_dict({k[len(part) + 1:]: w for k, w in block_sd.items()
                                                    if k.startswith(part + ".")})
            blk.temporal_attn.load_state_dict(blk.attn.state_dict())
            blk.temporal_norm.load_state_dict(blk.norm1.state_dict())
            blk.temporal_fc.weight.zero_()
            blk.temporal_fc.bias.zero_()
        else:
            blk.load_state_dict(block_sd)
    return model


# --------------------------------------------------------------------------- registration


@register_model(
    "bertasius2021spacetime",
    alias="timesformer",
    stage=2,
    config=TimeSformerConfig,
    reported=(Reported("params_m", 121.566352,
                       "facebookresearch/TimeSformer at a5ef29a, timesformer/models/vit.py VisionTransformer as "
                       "TimeSformer(img_size=224, num_classes=400, num_frames=8, attention_type='divided_space_time') "
                       "builds it, on CPU with random weights",
                       note="the authors' code; divided attention, 8x224x224, 400 classes",
                       kind="release", tolerance_pct=0.5),
              Reported("params_m", 121.4, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       note="TimeSformer (base, divided attention, 8x224x224)", kind="survey", tolerance_pct=0.5)),
    temporal=True,
    # the motion check starts divided and joint attention, as the paper (Sec. 4), from an image
    # model (a ViT trained on single frames); space-only attention is the order-agnostic control.
    # The history of these settings is on the site's "Notes on the zoo's checks" page.
    motion={"lr": 1e-3, "max_steps": 3000, "n_train": 4000, "image_pretrain_steps": 4000},
    image_init=(image_config, init_from_vit),
    motion_variants={"joint": ({"attention": "joint"}, True,
                               {"lr": 1e-3, "max_steps": 6000, "n_train": 8000, "image_pretrain_steps": 4000}),
                     "space-only": ({"attention": "space-only"}, False, {"image_pretrain_steps": 0})},
)
def timesformer(config: TimeSformerConfig) -> TimeSformer:
    """Build a :class:`TimeSformer` from ``config``."""
    return TimeSformer(config)


# --------------------------------------------------------------------------- key mapping

_HF_BLOCK_RENAMES = (  # longest HF suffix first
    ("temporal_attention.attention.qkv", "temporal_attn.qkv"),
    ("temporal_attention.output.dense", "temporal_attn.proj"),
    ("temporal_layernorm", "temporal_norm"),
    ("temporal_dense", "temporal_fc"),
    ("attention.attention.qkv", "attn.qkv"),
    ("attention.output.dense", "attn.proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
    ("layernorm_before", "norm1"),
    ("layernorm_after", "norm2"),
)


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a Hugging Face TimeSformer state dict into :class:`TimeSformer` keys.

    Args:
        library: ``"hf"`` (``transformers.TimesformerModel`` or
            ``TimesformerForVideoClassification``, any ``attention_type``).
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A dict for ``TimeSformer.load_state_dict`` (``head.*`` only if the source has a classifier).

    Raises:
        ValueError: unknown ``library``; KeyError: a key that has no counterpart.
    """
    if library != "hf":
        raise ValueError(f"unknown library {library!r}; expected 'hf'")
    simple = {
        "embeddings.cls_token": "cls_token",
        "embeddings.position_embeddings": "pos_embed",
        "embeddings.time_embeddings": "time_embed",
        "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "layernorm.weight": "norm.weight",
        "layernorm.bias": "norm.bias",
    }
    out: dict = {}
    for key, value in state_dict.items():
        if key.startswith("classifier."):
            out["head." + key.split(".", 1)[1]] = value
            continue
        k = key[len("timesformer."):] if key.startswith("timesformer.") else key
        if k in simple:
            out[simple[k]] = value
        elif k.startswith("encoder.layer."):
            i, rest = k[len("encoder.layer."):].split(".", 1)
            stem, kind = rest.rsplit(".", 1)
            new = dict(_HF_BLOCK_RENAMES).get(stem)
            if new is None:
                raise KeyError(f"no counterpart for HF key {key!r}")
            out[f"blocks.{i}.{new}.{kind}"] = value
        else:
            raise KeyError(f"no counterpart for HF key {key!r}")
    return out


# --------------------------------------------------------------------------- checks


def reference_model(cfg: TimeSformerConfig):
    """A random HF ``TimesformerForVideoClassification`` matching ``cfg`` (eval mode).

    Its ``state_dict()`` loads into ours through ``load_state_dict_from("hf", ...)``; call it
    on our clips through :func:`hf_logits`. Used by the reference check and by
    ``scripts/bench_zoo.py --vs-reference``.

    Raises:
        ImportError: transformers is not installed.
    """
    import transformers

    hf_cfg = transformers.TimesformerConfig(
        image_size=cfg.img_size, num_frames=cfg.num_frames, patch_size=cfg.patch_size, hidden_size=cfg.embed_dim,
        num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio), layer_norm_eps=cfg.layer_norm_eps,
        hidden_act="gelu", num_labels=cfg.num_classes, attention_type=_HF_ATTENTION[cfg.attention],
    )
    model = transformers.TimesformerForVideoClassification(hf_cfg).eval()
    with torch.no_grad():  # HF initialises the time embedding to zero; make it matter
        for name, p in model.named_parameters():
            if "time_embeddings" in name:
                p.normal_(0.0, 0.5)
    return model


def hf_logits(hf_model, clip: torch.Tensor) -> torch.Tensor:
    """Logits of an HF TimeSformer for our clip ``(B, 3, T, H, W)``: ``(B, num_classes)``.

    For ``space_only`` HF returns one sequence per frame and no temporal pooling; the
    per-frame encoder outputs (before HF's final LayerNorm) are averaged over time, then
    HF's LayerNorm and classifier are applied, as in the official implementation.
    """
    B, T = clip.shape[0], clip.shape[2]
    pixel_values = clip.transpose(1, 2)
    if hf_model.config.attention_type != "space_only":
        return hf_model(pixel_values=pixel_values).logits
    out = hf_model.timesformer(pixel_values=pixel_values, output_hidden_states=True)
    last = out.hidden_states[-1]  # (B T, 1 + N, D) before the final LayerNorm
    pooled = last.reshape(B, T, *last.shape[1:]).mean(dim=1)
    return hf_model.classifier(hf_model.timesformer.layernorm(pooled)[:, 0])


def _reference_check() -> dict:
    """All three attention schemes vs ``transformers.TimesformerForVideoClassification``."""
    tol = 1e-5
    diffs = {}
    for att in ATTENTIONS:
        torch.manual_seed(0)
        cfg = dataclasses.replace(TimeSformerConfig.tiny(), num_classes=5, attention=att)
        hf = reference_model(cfg)
        ours = TimeSformer(cfg).eval()
        ours.load_state_dict(load_state_dict_from("hf", hf.state_dict()))
        x = torch.rand(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
        with torch.no_grad():
            diffs[att] = (ours(x) - hf_logits(hf, x)).abs().max().item()
    worst = max(diffs.values())
    return {
        "passed": bool(worst <= tol),
        "summary": "tiny TimeSformer logits vs HF TimesformerForVideoClassification with copied weights: "
        + ", ".join(f"{a} {d:.2e}" for a, d in diffs.items()) + f" (tolerance {tol:g})",
        "reference": "transformers.TimesformerForVideoClassification",
        "max_abs_diff": worst,
        **{f"max_abs_diff_{a.replace('-', '_')}": d for a, d in diffs.items()},
        "tolerance": tol,
    }


def _inflation_check() -> dict:
    """ViT-initialised divided / space-only TimeSformer on a repeated frame reproduces the ViT."""
    tol = 1e-5
    diffs = {}
    for att in ("divided", "space-only"):
        torch.manual_seed(0)
        cfg = dataclasses.replace(TimeSformerConfig.tiny(), attention=att)
        image_model = VisionTransformer(image_config(cfg)).eval()
        model = init_from_vit(TimeSformer(cfg).eval(), image_model.state_dict())
        frame = torch.rand(2, 3, cfg.img_size, cfg.img_size)
        clip = frame.unsqueeze(2).repeat(1, 1, cfg.num_frames, 1, 1)
        with torch.no_grad():
            diffs[att] = (model.forward_features(clip) - image_model.forward_features(frame)[:, 0]).abs().max().item()
    worst = max(diffs.values())
    return {
        "passed": bool(worst <= tol),
        "summary": "init_from_vit (temporal_fc zeroed, time embedding zero) on a clip of one repeated frame: "
        "class-token features vs the ViT's, max abs diff "
        + ", ".join(f"{a} {d:.2e}" for a, d in diffs.items()) + f" (tolerance {tol:g})",
        "reference": "videozoo.models.vit.VisionTransformer",
        "max_abs_diff": worst,
        **{f"max_abs_diff_{a.replace('-', '_')}": d for a, d in diffs.items()},
        "tolerance": tol,
    }


register_check("bertasius2021spacetime", "reference", evidence="independent-reference")(_reference_check)
# the inflation check compares with videozoo's own ViT: it finds bugs in init_from_vit, but is not a reference
register_check("bertasius2021spacetime", "inflation", evidence="self-consistency")(_inflation_check)
