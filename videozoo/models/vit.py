"""Vision Transformer (ViT).

Paper: "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
Dosovitskiy et al., ICLR 2021, arXiv 2010.11929.

Follows Sec. 3.1, eq. 1-4:

* eq. 1: the image ``(3, H, W)`` is cut into non-overlapping ``P x P`` patches, each
  linearly projected to ``D`` (implemented as a ``P x P`` convolution with stride ``P``);
  a learnable class token is prepended and learned 1-D position embeddings are added.
* eq. 2-3: ``L`` pre-norm encoder blocks (LayerNorm -> multi-head self-attention ->
  residual, LayerNorm -> GELU MLP -> residual), :class:`videozoo.layers.attention.Block`.
* eq. 4: a final LayerNorm, and a linear head on the class token.

Simplifications: no representation ("pre-logits") layer (the paper uses it only for
pre-training), no dropout / stochastic depth by default.  Initialisation as timm's ViT
(:func:`videozoo.layers.init.trunc_normal_init`).  ViT is an *image* model: as a
video model it sees one frame (``clip_to_input`` takes the middle frame of the clip), so it
cannot tell a clip from its time reversal (``temporal=False``).

Parameter names follow timm's ``VisionTransformer`` (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.i``, ``norm``, ``head``); :func:`load_state_dict_from`
converts timm and Hugging Face ``transformers`` ViT state dicts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from videozoo.layers.attention import Block, convert_hf_encoder_layers
from videozoo.layers.checkpoint import run_block
from videozoo.layers.init import trunc_normal_init
from videozoo.layers.patch_embed import PatchEmbed
from videozoo.registry import Reported, register_check, register_model

__all__ = ["ViTConfig", "VisionTransformer", "vit", "load_state_dict_from",
           "reference_model"]


@dataclass
class ViTConfig:
    """Hyper-parameters of a ViT (paper Table 1 for ViT-Base).

    Attributes:
        num_classes: Output classes.
        img_size: Input height = width in pixels.
        patch_size: Patch side ``P`` in pixels.
        embed_dim: Token width ``D``.
        depth: Number of encoder blocks ``L``.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        qkv_bias: Bias in the query/key/value projection.
        layer_norm_eps: LayerNorm epsilon (1e-6 as in the official JAX code and timm).
        num_frames: Frames of the standard clip the model is fed in videozoo
            (``clip_to_input`` picks the middle one); not a model hyper-parameter.
    """

    num_classes: int = 1000
    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    num_frames: int = 8

    @classmethod
    def paper(cls) -> "ViTConfig":
        """ViT-B/16 at 224x224 (paper Table 1: 12 layers, D 768, MLP 3072, 12 heads, 86 M)."""
        return cls()

    @classmethod
    def tiny(cls) -> "ViTConfig":
        """A ~30 k parameter ViT on 32x32 frames with 8x8 patches (for CPU tests)."""
        return cls(num_classes=8, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_frames=8)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample model input ``(3, H, W)`` (an image)."""
        return (3, self.img_size, self.img_size)

    def clip_shape(self) -> tuple[int, ...]:
        """Standard videozoo clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the input."""
        return (3, self.num_frames, self.img_size, self.img_size)


class VisionTransformer(nn.Module):
    """ViT classifier (arXiv 2010.11929, Sec. 3.1, eq. 1-4).

    Input ``(B, 3, H, W)`` with ``H = W = config.img_size``; output logits ``(B, num_classes)``.
    """

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        D = config.embed_dim
        norm = partial(nn.LayerNorm, eps=config.layer_norm_eps)
        self.patch_embed = PatchEmbed(config.img_size, config.patch_size, 3, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, D))
        self.blocks = nn.ModuleList(
            Block(D, config.num_heads, config.mlp_ratio, config.qkv_bias, norm_layer=norm) for _ in range(config.depth)
        )
        self.norm = norm(D)
        self.head = nn.Linear(D, config.num_classes)
        self.grad_checkpointing = False
        # timm's ViT initialisation: linear layers trunc_normal(0.02) with zero biases, position
        # embedding trunc_normal(0.02), class token normal(1e-6); the patch convolution keeps
        # PyTorch's default
        self.apply(trunc_normal_init)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        nn.init.normal_(self.cls_token, std=1e-6)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them
        (less memory for long token sequences; same outputs and gradients)."""
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder tokens after the final LayerNorm.

        Args:
            x: ``(B, 3, H, W)`` image.

        Returns:
            ``(B, 1 + N, D)``; index 0 is the class token.
        """
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = run_block(blk, x, enabled=self.grad_checkpointing)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, 3, H, W)`` -> logits ``(B, num_classes)`` from the class token (eq. 4)."""
        return self.head(self.forward_features(x)[:, 0])


def _middle_frame(config: ViTConfig, clip: torch.Tensor) -> torch.Tensor:
    """Standard clip ``(B, 3, T, H, W)`` -> its middle frame ``(B, 3, H, W)``.

    An input that is already an image batch ``(B, 3, H, W)`` is returned unchanged.
    """
    if clip.dim() == 4:
        return clip
    return clip[:, :, clip.shape[2] // 2]


@register_model(
    "dosovitskiy2021image",
    alias="vit",
    stage=2,
    config=ViTConfig,
    reported=(Reported("params_m", 86.0, "paper, Table 1", note="ViT-Base; 86 M includes the 1000-class head",
                       kind="paper", tolerance_pct=1.2),),
    temporal=False,
    clip_to_input=_middle_frame,
)
def vit(config: ViTConfig) -> VisionTransformer:
    """Build a :class:`VisionTransformer` from ``config``."""
    return VisionTransformer(config)


# --------------------------------------------------------------------------- key mapping


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference library's ViT state dict into :class:`VisionTransformer` keys.

    Args:
        library: ``"timm"`` (``timm.models.vision_transformer.VisionTransformer``, same
            names; a ``fc_norm`` or ``head_drop`` is not supported) or ``"hf"``
            (``transformers.ViTModel`` / ``ViTForImageClassification``; the HF pooler is
            dropped, ``classifier`` becomes ``head``).
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A dict for ``VisionTransformer.load_state_dict`` (without ``head.*`` when the
        source has no classifier).

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "timm":
        return {k: v for k, v in state_dict.items() if not k.startswith(("fc_norm", "head_drop"))}
    if library == "hf":
        sd = {(k if k.startswith(("vit.", "classifier.")) else "vit." + k): v for k, v in state_dict.items()}
        layer_prefix = "vit.layers." if any(k.startswith("vit.layers.") for k in sd) else "vit.encoder.layer."
        out = convert_hf_encoder_layers(sd, layer_prefix, "blocks.")
        simple = {
            "vit.embeddings.cls_token": "cls_token",
            "vit.embeddings.position_embeddings": "pos_embed",
            "vit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
            "vit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
            "vit.layernorm.weight": "norm.weight",
            "vit.layernorm.bias": "norm.bias",
            "classifier.weight": "head.weight",
            "classifier.bias": "head.bias",
        }
        out.update({new: sd[old] for old, new in simple.items() if old in sd})
        return out
    raise ValueError(f"unknown library {library!r}; expected 'timm' or 'hf'")


# --------------------------------------------------------------------------- checks


def reference_model(config: ViTConfig):
    """A randomly initialised timm ``VisionTransformer`` with ``config``'s shape (eval mode).

    Its ``state_dict()`` loads into ours through ``load_state_dict_from("timm", ...)``; used by
    the reference check and by ``scripts/bench_zoo.py --vs-reference``.

    Raises:
        ImportError: timm is not installed.
    """
    import timm.models.vision_transformer as tv

    return tv.VisionTransformer(
        img_size=config.img_size, patch_size=config.patch_size, embed_dim=config.embed_dim, depth=config.depth,
        num_heads=config.num_heads, mlp_ratio=config.mlp_ratio, num_classes=config.num_classes,
    ).eval()


def _reference_check() -> dict:
    """Tiny ViT vs timm and HF ViT with copied weights (max abs diff of the logits / features)."""
    import transformers

    torch.manual_seed(0)
    cfg = dataclasses.replace(ViTConfig.tiny(), num_classes=5)
    x = torch.rand(2, 3, cfg.img_size, cfg.img_size)
    tol = 1e-5
    measured: dict = {"tolerance": tol}

    ref = reference_model(cfg)
    ours = VisionTransformer(cfg).eval()
    ours.load_state_dict(load_state_dict_from("timm", ref.state_dict()))
    with torch.no_grad():
        measured["max_abs_diff_timm"] = (ours(x) - ref(x)).abs().max().item()

    hf_cfg = transformers.ViTConfig(
        image_size=cfg.img_size, patch_size=cfg.patch_size, hidden_size=cfg.embed_dim,
        num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio), layer_norm_eps=cfg.layer_norm_eps,
        num_labels=cfg.num_classes, hidden_act="gelu",
    )
    hf = transformers.ViTForImageClassification(hf_cfg).eval()
    ours_hf = VisionTransformer(cfg).eval()
    ours_hf.load_state_dict(load_state_dict_from("hf", hf.state_dict()))
    with torch.no_grad():
        measured["max_abs_diff_hf"] = (ours_hf(x) - hf(pixel_values=x).logits).abs().max().item()
    worst = max(measured["max_abs_diff_timm"], measured["max_abs_diff_hf"])
    measured["max_abs_diff"] = worst
    return {
        "passed": bool(worst <= tol),
        "summary": f"tiny ViT logits vs timm VisionTransformer and HF ViTForImageClassification "
        f"with copied weights: max abs diff {worst:.2e} (tolerance {tol:g})",
        "reference": "timm.models.vision_transformer.VisionTransformer; transformers.ViTForImageClassification",
        **measured,
    }


register_check("dosovitskiy2021image", "reference", evidence="independent-reference")(_reference_check)
