"""Frame encoders of the Stage 4 video LLMs: Hugging Face CLIP and EVA-style ViTs.

Video LLMs encode a video frame by frame with an image ViT pre-trained on image-text pairs:

* ``"clip"``: OpenAI CLIP ViT-L/14 (Radford et al., arXiv 2103.00020), as Video-ChatGPT
  (arXiv 2306.05424, Sec. 3) and LLaVA use it; built as ``transformers.CLIPVisionModel``.
* ``"eva"``: the EVA-CLIP ViT-g/14 that BLIP-2 (arXiv 2301.12597, Sec. 3.2) feeds its
  Q-Former with (39 of its 40 blocks, width 1408), used by VideoChat and MovieChat; built as
  ``transformers.Blip2VisionModel``, the same architecture (q/v biases, pre-norm blocks).

Both return every block's output (``hidden_states``), from which each paper selects its own
layer: :func:`frame_tokens` runs the tower on the ``T`` frames of a clip as one batch of
``B T`` images.  Weights are random; a config's ``initializer_range`` matters only for
training from scratch (the library's default for ``Blip2VisionModel`` is 1e-10, meant for
loading weights afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["VisionTowerConfig", "build_vision_tower", "frame_tokens", "normalise_frames",
           "CLIP_MEAN", "CLIP_STD"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""Per-channel RGB mean of OpenAI CLIP's image pre-processing (also used for EVA-CLIP)."""
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""Per-channel RGB standard deviation of OpenAI CLIP's image pre-processing."""


@dataclass
class VisionTowerConfig:
    """Shape of a frame encoder.

    Attributes:
        kind: ``"clip"`` (``CLIPVisionModel``) or ``"eva"`` (``Blip2VisionModel``).
        image_size: Frame height = width in pixels.
        patch_size: Patch side in pixels; a frame gives ``(image_size / patch_size)^2`` patch
            tokens plus a class token.
        width: Token width.
        depth: Transformer blocks.
        heads: Attention heads.
        mlp_dim: MLP hidden width.
        layer_norm_eps: LayerNorm epsilon (1e-5 CLIP, 1e-6 EVA).
        initializer_range: Standard deviation of the random initialisation.
        dropout: Attention dropout.
        name: What the tower is, for summaries.
    """

    kind: str = "clip"
    image_size: int = 224
    patch_size: int = 14
    width: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_dim: int = 4096
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    dropout: float = 0.0
    name: str = "CLIP ViT-L/14"

    @classmethod
    def clip_vit_l14(cls) -> "VisionTowerConfig":
        """OpenAI CLIP ViT-L/14 at 224 px (24 blocks, width 1024, 16 heads; 303 M parameters)."""
        return cls()

    @classmethod
    def eva_vit_g14(cls) -> "VisionTowerConfig":
        """EVA-CLIP ViT-g/14 as BLIP-2 uses it (39 blocks, width 1408, 16 heads, MLP 6144; ~986 M)."""
        return cls(kind="eva", width=1408, depth=39, heads=16, mlp_dim=6144, layer_norm_eps=1e-6, name="EVA ViT-g/14")

    @classmethod
    def tiny(cls, kind: str = "clip") -> "VisionTowerConfig":
        """Three blocks of width 64 on 32x32 frames with 8x8 patches (16 patch tokens per frame)."""
        return cls(kind=kind, image_size=32, patch_size=8, width=64, depth=3, heads=4, mlp_dim=128,
                   layer_norm_eps=1e-5 if kind == "clip" else 1e-6, name=f"tiny {kind} ViT")

    @property
    def num_patches(self) -> int:
        """Patch tokens per frame (without the class token)."""
        return (self.image_size // self.patch_size) ** 2


def build_vision_tower(config: VisionTowerConfig) -> "PreTrainedModel":
    """Build a randomly initialised frame encoder (on the current default device).

    Returns:
        ``CLIPVisionModel`` or ``Blip2VisionModel``; called with ``pixel_values (N, 3, H, W)``.

    Raises:
        ValueError: unknown ``kind``, or an image size not divisible by the patch size.
    """
    if config.image_size % config.patch_size:
        raise ValueError(f"image_size {config.image_size} is not divisible by patch_size {config.patch_size}")
    common = dict(hidden_size=config.width, intermediate_size=config.mlp_dim, num_hidden_layers=config.depth,
                  num_attention_heads=config.heads, image_size=config.image_size, patch_size=config.patch_size,
                  layer_norm_eps=config.layer_norm_eps, attention_dropout=config.dropout,
                  initializer_range=config.initializer_range)
    if config.kind == "clip":
        from transformers import CLIPVisionConfig, CLIPVisionModel

        return CLIPVisionModel(CLIPVisionConfig(hidden_act="quick_gelu", **common))
    if config.kind == "eva":
        from transformers import Blip2VisionConfig, Blip2VisionModel

        return Blip2VisionModel(Blip2VisionConfig(hidden_act="gelu", qkv_bias=True, **common))
    raise ValueError(f"unknown vision tower kind {config.kind!r}; expected 'clip' or 'eva'")


def frame_tokens(tower: nn.Module, video: torch.Tensor, layers: tuple[int, ...] = (-1,)) -> list[torch.Tensor]:
    """Run an image tower on every frame of a clip and return the selected blocks' tokens.

    Args:
        tower: A model from :func:`build_vision_tower`.
        video: ``(B, 3, T, H, W)`` normalised frames (see :func:`normalise_frames`).
        layers: Indices into the tower's ``hidden_states`` (``0``: the embeddings, ``i``: the
            output of block ``i``; ``-1``: the last block, before any final LayerNorm;
            ``-2``: the penultimate block, as LLaVA and Video-ChatGPT use).

    Returns:
        One ``(B, T, 1 + N, C)`` tensor per requested layer (index 0 of the token axis is the
        class token).
    """
    B, C, T, H, W = video.shape
    frames = video.transpose(1, 2).reshape(B * T, C, H, W)
    out = tower(pixel_values=frames, output_hidden_states=True)
    return [out.hidden_states[i].reshape(B, T, *out.hidden_states[i].shape[1:]) for i in layers]


def normalise_frames(clip: torch.Tensor, image_size: int, mean: tuple[float, ...] = CLIP_MEAN,
                     std: tuple[float, ...] = CLIP_STD) -> torch.Tensor:
    """Resize a clip's frames to ``image_size`` (bicubic, as CLIP's pre-processing) and normalise.

    Args:
        clip: ``(B, 3, T, H, W)`` RGB in [0, 1].
        image_size: Output height = width.

    Returns:
        ``(B, 3, T, image_size, image_size)`` float, ``(x - mean) / std`` per channel.
    """
    B, C, T, H, W = clip.shape
    x = clip.float()
    if (H, W) != (image_size, image_size):
        x = x.transpose(1, 2).reshape(B * T, C, H, W)
        x = nn.functional.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False)
        x = x.clamp(0.0, 1.0).reshape(B, T, C, image_size, image_size).transpose(1, 2)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    return (x - m) / s
