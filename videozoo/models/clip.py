"""CLIP: an image encoder and a text encoder trained contrastively on image-caption pairs.

Paper: Alec Radford, Jong Wook Kim, Chris Hallacy, Aditya Ramesh, Gabriel Goh, Sandhini
Agarwal, Girish Sastry, Amanda Askell, Pamela Mishkin, Jack Clark, Gretchen Krueger, Ilya
Sutskever, "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021,
arXiv 2103.00020.

What this file follows:

* Sec. 2.3 and Fig. 3: each encoder's output is linearly projected (no bias) into a shared
  embedding space of width ``D`` and L2-normalised; the ``N x N`` cosine similarities of a
  batch of pairs, scaled by a learned temperature ``exp(t)``, are trained with a symmetric
  cross entropy (InfoNCE) over rows (image -> text) and columns (text -> image):
  :func:`contrastive_loss`.
* Sec. 2.4, image encoder: a Vision Transformer (ViT-B/32, ViT-B/16, ViT-L/14) with the
  paper's extra LayerNorm on the patch + position embeddings before the transformer
  (``ln_pre``), a class token whose final LayerNorm'd state is projected; or the modified
  ResNet-50 (RN50): a three-convolution stem with average pooling, anti-aliased strided
  convolutions (an average pool before the stride-1 convolution) and attention pooling (one
  multi-head QKV attention whose query is the global average of the final feature map).
* Sec. 2.4, text encoder: a 12-layer, 512-wide Transformer with 8 heads and masked (causal)
  self-attention over lower-cased byte-level BPE tokens (:mod:`videozoo.data.tokenizer`,
  49,408 ids, 77 positions); the final LayerNorm'd state at the end-of-text token (the largest
  id in each row) is projected.
* Sec. 2.5: the temperature is initialised to 0.07 (``logit_scale = log(1 / 0.07)``) and
  clipped so that the logits are scaled by at most 100.
* Activations are QuickGELU (``x * sigmoid(1.702 x)``) as in the released models.
* Initialisation as OpenAI's release and open_clip: text embeddings ``N(0, 0.02^2)``,
  text positions ``N(0, 0.01^2)``, text blocks scaled by width and depth, projections
  ``N(0, 1/width)``; ViT blocks with PyTorch's ``MultiheadAttention`` initialisation
  (Xavier-uniform ``qkv``, zero attention biases); RN50 attention pool ``N(0, 1/C)`` and a
  zero last BatchNorm scale in every bottleneck.

Video: :meth:`CLIP.encode_video` encodes every frame of a clip ``(B, 3, T, H, W)`` with the
image tower, giving per-frame embeddings ``(B, T, D)`` (and patch tokens on request); CLIP's
own video embedding (:meth:`CLIP.video_embedding`) is their mean over frames, an
order-agnostic "frame-averaging image CLIP": a clip and its time reversal get the same
embedding (up to float rounding), so it cannot tell opposite motions apart.  It is the
control of the Stage 3 zero-shot check (:mod:`videozoo.verify.zero_shot`).

Token-level outputs (for the Stage 3 models built on this file: BIKE, VicTR, LaIAR, ALT,
OST): ``encode_image(..., return_tokens=True)`` also returns the patch tokens after ``ln_post``
projected into the joint space (for RN50, the final feature map through the attention
pool's value and output projections, as MaskCLIP does), and
``encode_text(..., return_tokens=True)`` every position's ``ln_final`` state projected into
the joint space.

Not built: the training data (WIT, 400 M pairs), the larger ResNets (RN50x4 ... x64) and
ViT-L/14@336px (a different ``image_size`` of the same code).  Attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention` (the shared
:class:`videozoo.layers.attention.Block`).

Parameter names: ``visual.*`` (``conv1``, ``class_embedding``, ``positional_embedding``,
``ln_pre``, ``blocks.i``, ``ln_post``, ``proj``; the ResNet keeps open_clip's names),
``text.*`` (``token_embedding``, ``positional_embedding``, ``blocks.i``, ``ln_final``,
``proj``) and ``logit_scale``.  :func:`load_state_dict_from` converts open_clip / OpenAI and
Hugging Face ``CLIPModel`` state dicts, so released weights load.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Block
from videozoo.registry import Reported, register_check, register_model, register_variant

__all__ = [
    "CLIPConfig", "CLIP", "VisionTransformer", "ModifiedResNet", "TextTransformer", "QuickGELU",
    "contrastive_loss", "normalize_pixels", "load_state_dict_from", "clip", "CLIP_MEAN", "CLIP_STD",
    "OPEN_CLIP_NAMES",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
"""Per-channel pixel mean of CLIP's preprocessing (released models expect normalised input)."""
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""Per-channel pixel standard deviation of CLIP's preprocessing."""


@dataclass
class CLIPConfig:
    """Hyper-parameters of CLIP (paper Sec. 2.4 and Tables 19-20; open_clip's model configs).

    Attributes:
        num_classes: Number of class captions in the zoo's standard input (the captions a
            zero-shot classifier scores; the output is ``(B, num_classes)``).  1 in ``paper()``,
            so that ``builds`` measures one image and one caption, as open_clip's profile does.
        embed_dim: Width ``D`` of the joint embedding space (512 for ViT-B, 768 ViT-L, 1024 RN50).
        image_size: Input height = width in pixels.
        vision_arch: ``"vit"`` (Vision Transformer) or ``"resnet"`` (modified ResNet).
        vision_width: ViT token width, or the ResNet's stem width (64 for RN50; the final
            feature map has ``32 x vision_width`` channels).
        vision_layers: ViT depth (unused by the ResNet).
        vision_head_width: Width of one attention head (64): the ViT has
            ``vision_width // vision_head_width`` heads, the ResNet's attention pool
            ``32 * vision_width // vision_head_width``.
        patch_size: ViT patch side ``P`` in pixels.
        resnet_layers: Bottleneck blocks per ResNet stage ((3, 4, 6, 3) for RN50).
        context_length: Text positions (77: start token, up to 75 tokens, end token).
        vocab_size: Token ids (49,408 with the shipped BPE merges).
        text_width, text_heads, text_layers: Text Transformer width, heads and depth.
        mlp_ratio: MLP hidden width / token width (4).
        act: ``"quick_gelu"`` (the released models) or ``"gelu"``.
        logit_scale_init: Initial ``t`` of the temperature ``exp(t)`` (``log(1 / 0.07)``).
        num_frames: Frames of the zoo's standard clip ``(3, T, H, W)`` (1 in ``paper()``: an
            image); :meth:`CLIP.encode_video` checks it.
    """

    num_classes: int = 1
    embed_dim: int = 512
    image_size: int = 224
    vision_arch: str = "vit"
    vision_width: int = 768
    vision_layers: int = 12
    vision_head_width: int = 64
    patch_size: int = 32
    resnet_layers: tuple[int, ...] = (3, 4, 6, 3)
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12
    mlp_ratio: float = 4.0
    act: str = "quick_gelu"
    logit_scale_init: float = math.log(1 / 0.07)
    num_frames: int = 1

    @classmethod
    def paper(cls) -> "CLIPConfig":
        """ViT-B/32 at 224 px (open_clip ``ViT-B-32``; 151.28 M parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> "CLIPConfig":
        """A small CLIP on 8-frame 32x32 clips with 8x8 patches and a 16-token context (CPU tests)."""
        return cls(num_classes=8, embed_dim=64, image_size=32, vision_width=64, vision_layers=2,
                   vision_head_width=16, patch_size=8, resnet_layers=(1, 1, 1, 1), context_length=16,
                   text_width=64, text_heads=4, text_layers=2, num_frames=8)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample image input ``(3, H, W)``."""
        return (3, self.image_size, self.image_size)

    def clip_shape(self) -> tuple[int, ...]:
        """The zoo's standard clip ``(3, T, H, W)`` (``T = num_frames``)."""
        return (3, self.num_frames, self.image_size, self.image_size)


def _check_config(c: CLIPConfig) -> None:
    """Raise one ValueError naming every inconsistent field of ``c``."""
    problems = []
    if c.vision_arch not in ("vit", "resnet"):
        problems.append(f"vision_arch must be 'vit' or 'resnet', got {c.vision_arch!r}")
    if c.act not in ("quick_gelu", "gelu"):
        problems.append(f"act must be 'quick_gelu' or 'gelu', got {c.act!r}")
    if c.vision_arch == "vit" and c.image_size % c.patch_size:
        problems.append(f"image_size {c.image_size} is not a multiple of patch_size {c.patch_size}")
    if c.vision_arch == "vit" and c.vision_width % c.vision_head_width:
        problems.append(f"vision_width {c.vision_width} is not a multiple of vision_head_width {c.vision_head_width}")
    if c.vision_arch == "resnet" and (c.image_size % 32 or len(c.resnet_layers) != 4):
        problems.append(f"the ResNet needs image_size a multiple of 32 and 4 resnet_layers, got "
                        f"{c.image_size} and {tuple(c.resnet_layers)}")
    if c.text_width % c.text_heads:
        problems.append(f"text_width {c.text_width} is not a multiple of text_heads {c.text_heads}")
    if c.context_length < 2 or c.num_frames < 1 or c.num_classes < 1:
        problems.append(f"need context_length >= 2, num_frames >= 1, num_classes >= 1; got "
                        f"{c.context_length}, {c.num_frames}, {c.num_classes}")
    if problems:
        raise ValueError("CLIPConfig: " + "; ".join(problems))


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the GELU approximation of the released CLIP models."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _act(config: CLIPConfig) -> type[nn.Module]:
    return QuickGELU if config.act == "quick_gelu" else nn.GELU


def normalize_pixels(x: torch.Tensor) -> torch.Tensor:
    """CLIP's input normalisation of pixels in [0, 1]: ``(x - CLIP_MEAN) / CLIP_STD`` per channel.

    Args:
        x: ``(B, 3, H, W)`` images or ``(B, 3, T, H, W)`` clips.

    Raises:
        ValueError: if dimension 1 is not 3 channels.
    """
    if x.dim() not in (4, 5) or x.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) or (B, 3, T, H, W), got {tuple(x.shape)}")
    shape = (1, 3) + (1,) * (x.dim() - 2)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(shape)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(shape)
    return (x - mean) / std


def _check_images(images: torch.Tensor, config: CLIPConfig, name: str = "images") -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be (B, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[-2:] != (config.image_size, config.image_size):
        raise ValueError(f"{name} are {images.shape[-2]}x{images.shape[-1]} pixels; config.image_size is "
                         f"{config.image_size} (the position embeddings fix the input size)")


# --------------------------------------------------------------------------- image towers


class VisionTransformer(nn.Module):
    """CLIP's ViT image tower (Sec. 2.4): ``(B, 3, H, W)`` -> embeddings ``(B, D)``.

    Patches (a ``P x P`` convolution without bias) + class token + learned positions ->
    ``ln_pre`` -> ``vision_layers`` pre-norm blocks -> ``ln_post`` -> class token ``@ proj``.
    """

    def __init__(self, config: CLIPConfig):
        super().__init__()
        W, P = config.vision_width, config.patch_size
        self.grid = config.image_size // P
        self.conv1 = nn.Conv2d(3, W, kernel_size=P, stride=P, bias=False)
        scale = W ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(W))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid ** 2 + 1, W))
        self.ln_pre = nn.LayerNorm(W)
        heads = W // config.vision_head_width
        self.blocks = nn.ModuleList(
            Block(W, heads, config.mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm, act=_act(config))
            for _ in range(config.vision_layers))
        self.ln_post = nn.LayerNorm(W)
        self.proj = nn.Parameter(scale * torch.randn(W, config.embed_dim))
        for blk in self.blocks:  # nn.MultiheadAttention's initialisation, as in the release
            nn.init.xavier_uniform_(blk.attn.qkv.weight)
            nn.init.zeros_(blk.attn.qkv.bias)
            nn.init.zeros_(blk.attn.proj.bias)

    def forward(self, x: torch.Tensor, return_tokens: bool = False):
        """Encode images.

        Args:
            x: ``(B, 3, H, W)`` normalised pixels.
            return_tokens: Also return the patch tokens.

        Returns:
            ``(B, D)`` embeddings; with ``return_tokens`` also ``(B, N, D)`` patch tokens
            (``N = (H / P)^2``, raster order) after ``ln_post``, projected by ``proj``.
        """
        x = self.conv1(x).flatten(2).transpose(1, 2)                      # (B, N, W)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_post(x)
        pooled = x[:, 0] @ self.proj
        if return_tokens:
            return pooled, x[:, 1:] @ self.proj
        return pooled


class Bottleneck(nn.Module):
    """Anti-aliased ResNet bottleneck of CLIP's RN50 (Sec. 2.4): 1x1 -> 3x3 -> avgpool(stride)
    -> 1x1 (x4 channels); the shortcut, when it changes shape, is avgpool(stride) -> 1x1 -> BN.

    Shapes: ``(B, C_in, H, W) -> (B, 4 planes, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride > 1 or inplanes != out:
            self.downsample = nn.Sequential(OrderedDict([
                ("pool", nn.AvgPool2d(stride) if stride > 1 else nn.Identity()),
                ("conv", nn.Conv2d(inplanes, out, 1, bias=False)),
                ("bn", nn.BatchNorm2d(out)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class AttentionPool2d(nn.Module):
    """Attention pooling of RN50 (Sec. 2.4): one multi-head attention whose query is the mean
    of the feature map; keys and values are the mean and every position, with learned
    position embeddings.  ``(B, C, h, w) -> (B, D)``."""

    def __init__(self, grid: int, width: int, heads: int, out_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(grid ** 2 + 1, width) / width ** 0.5)
        self.k_proj = nn.Linear(width, width)
        self.q_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.c_proj = nn.Linear(width, out_dim)
        self.num_heads = heads

    def forward(self, x: torch.Tensor, return_tokens: bool = False):
        """``x: (B, C, h, w)`` -> ``(B, D)``; with ``return_tokens`` also ``(B, h w, D)``: every
        position through the value and output projections (MaskCLIP's dense features)."""
        B, C = x.shape[:2]
        x = x.flatten(2).transpose(1, 2)                                   # (B, hw, C)
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.positional_embedding.to(x.dtype)
        h, d = self.num_heads, C // self.num_heads
        q = self.q_proj(x[:, :1]).view(B, 1, h, d).transpose(1, 2)
        k = self.k_proj(x).view(B, -1, h, d).transpose(1, 2)
        v_tokens = self.v_proj(x)
        v = v_tokens.view(B, -1, h, d).transpose(1, 2)
        pooled = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, C)
        pooled = self.c_proj(pooled)
        if return_tokens:
            return pooled, self.c_proj(v_tokens[:, 1:])
        return pooled


class ModifiedResNet(nn.Module):
    """CLIP's RN50 image tower (Sec. 2.4): 3-conv stem + avgpool, four anti-aliased bottleneck
    stages, attention pooling.  ``(B, 3, H, W) -> (B, D)``."""

    def __init__(self, config: CLIPConfig):
        super().__init__()
        w = config.vision_width
        self.conv1 = nn.Conv2d(3, w // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w // 2)
        self.conv2 = nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w // 2)
        self.conv3 = nn.Conv2d(w // 2, w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(w)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = w
        stages = []
        for i, blocks in enumerate(config.resnet_layers):
            planes, stride = w * 2 ** i, 1 if i == 0 else 2
            layer = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            layer += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        width = w * 32
        self.attnpool = AttentionPool2d(config.image_size // 32, width, width // config.vision_head_width,
                                        config.embed_dim)
        std = width ** -0.5
        for lin in (self.attnpool.q_proj, self.attnpool.k_proj, self.attnpool.v_proj, self.attnpool.c_proj):
            nn.init.normal_(lin.weight, std=std)
        for stage in stages:
            for blk in stage:
                nn.init.zeros_(blk.bn3.weight)

    def forward(self, x: torch.Tensor, return_tokens: bool = False):
        """``x: (B, 3, H, W)`` normalised pixels -> ``(B, D)`` (and ``(B, (H/32)^2, D)`` tokens)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x, return_tokens=return_tokens)


# --------------------------------------------------------------------------- text tower


class TextTransformer(nn.Module):
    """CLIP's text tower (Sec. 2.4): token + position embeddings -> causal pre-norm blocks ->
    ``ln_final`` -> the end-of-text position ``@ proj``.  ``(N, L)`` ids -> ``(N, D)``."""

    def __init__(self, config: CLIPConfig):
        super().__init__()
        Wt, layers = config.text_width, config.text_layers
        self.context_length, self.vocab_size = config.context_length, config.vocab_size
        self.token_embedding = nn.Embedding(config.vocab_size, Wt)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, Wt))
        self.blocks = nn.ModuleList(
            Block(Wt, config.text_heads, config.mlp_ratio, qkv_bias=True, norm_layer=nn.LayerNorm, act=_act(config))
            for _ in range(layers))
        self.ln_final = nn.LayerNorm(Wt)
        self.proj = nn.Parameter(torch.empty(Wt, config.embed_dim))
        mask = torch.ones(config.context_length, config.context_length, dtype=torch.bool).tril()
        self.register_buffer("causal_mask", mask, persistent=False)  # True: may attend
        # Initialisation of the release (open_clip TextTransformer.init_parameters).
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std, attn_std, fc_std = Wt ** -0.5 * (2 * layers) ** -0.5, Wt ** -0.5, (2 * Wt) ** -0.5
        for blk in self.blocks:
            nn.init.normal_(blk.attn.qkv.weight, std=attn_std)
            nn.init.zeros_(blk.attn.qkv.bias)
            nn.init.normal_(blk.attn.proj.weight, std=proj_std)
            nn.init.zeros_(blk.attn.proj.bias)
            nn.init.normal_(blk.mlp.fc1.weight, std=fc_std)
            nn.init.normal_(blk.mlp.fc2.weight, std=proj_std)
        nn.init.normal_(self.proj, std=Wt ** -0.5)

    def forward(self, text: torch.Tensor, return_tokens: bool = False):
        """Encode token ids.

        Args:
            text: ``(N, L)`` ids from :mod:`videozoo.data.tokenizer`, ``L <= context_length``;
                each row's largest id marks its end-of-text token.
            return_tokens: Also return every position's features.

        Returns:
            ``(N, D)`` embeddings; with ``return_tokens`` also ``(N, L, D)`` (``ln_final``
            states projected by ``proj``; positions after the end token are padding).

        Raises:
            ValueError: ``text`` is not a 2-D integer tensor, holds no captions, is longer
                than the context, or holds ids outside the vocabulary.
        """
        if text.dim() != 2 or text.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"text must be (N, L) integer token ids, got {tuple(text.shape)} {text.dtype}")
        N, L = text.shape
        if N == 0:
            raise ValueError("text holds no captions (an empty class list); need at least one")
        if not 1 <= L <= self.context_length:
            raise ValueError(f"text has {L} positions; the context length is {self.context_length}")
        if text.device.type != "meta" and (int(text.min()) < 0 or int(text.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got [{int(text.min())}, {int(text.max())}]")
        x = self.token_embedding(text) + self.positional_embedding[:L].to(self.token_embedding.weight.dtype)
        mask = self.causal_mask[:L, :L]
        for blk in self.blocks:
            x = blk(x, attn_mask=mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(N, device=x.device), text.argmax(dim=-1)] @ self.proj
        if return_tokens:
            return pooled, x @ self.proj
        return pooled


# --------------------------------------------------------------------------- CLIP


def contrastive_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP (paper Fig. 3): mean of the cross entropies over rows
    (image -> text) and columns (text -> image), the matching pair on the diagonal.

    Args:
        logits_per_image: ``(N, N)`` scaled similarities, row ``i`` = image ``i``, column ``j``
            = text ``j``; pair ``i`` is ``(image i, text i)``.

    Returns:
        Scalar loss (nats).

    Raises:
        ValueError: if the logits are not a square matrix with at least one pair.
    """
    if logits_per_image.dim() != 2 or logits_per_image.shape[0] != logits_per_image.shape[1] or not logits_per_image.numel():
        raise ValueError(f"logits_per_image must be a square (N, N) matrix of matched pairs, got "
                         f"{tuple(logits_per_image.shape)}")
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.t(), labels)) / 2


class CLIP(nn.Module):
    """CLIP (arXiv 2103.00020): image tower, text tower and temperature.

    Called as ``model(video_or_images, text)``: ``(B, 3, T, H, W)`` clips (or ``(B, 3, H, W)``
    images) and ``(N, L)`` caption ids -> logits ``(B, N)``, the temperature-scaled cosine
    similarities of the (frame-averaged) visual embeddings and the caption embeddings, the
    zero-shot classifier of Sec. 3.1.2 when the captions name classes.

    Methods for models built on CLIP: :meth:`encode_image`, :meth:`encode_text`,
    :meth:`encode_video` (per-frame embeddings and tokens), :meth:`video_embedding`,
    :meth:`encode_captions`, :meth:`logits`, :meth:`contrastive_loss`.
    """

    def __init__(self, config: CLIPConfig):
        super().__init__()
        _check_config(config)
        self.config = config
        self.visual = VisionTransformer(config) if config.vision_arch == "vit" else ModifiedResNet(config)
        self.text = TextTransformer(config)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))

    # ---- encoders

    def encode_image(self, images: torch.Tensor, return_tokens: bool = False):
        """Image embeddings (not normalised).

        Args:
            images: ``(B, 3, H, W)`` normalised pixels (:func:`normalize_pixels` for released
                weights), ``H = W = config.image_size``.
            return_tokens: Also return patch tokens ``(B, N, D)`` in the joint space.

        Raises:
            ValueError: wrong shape or image size, naming the size the config fixes.
        """
        _check_images(images, self.config)
        return self.visual(images, return_tokens=return_tokens)

    def encode_text(self, text: torch.Tensor, return_tokens: bool = False):
        """Caption embeddings ``(N, D)`` (not normalised), see :meth:`TextTransformer.forward`."""
        return self.text(text, return_tokens=return_tokens)

    def encode_video(self, video: torch.Tensor, return_tokens: bool = False):
        """Per-frame image embeddings of clips: every frame through the image tower.

        Args:
            video: ``(B, 3, T, H, W)`` normalised pixels, ``T = config.num_frames``.
            return_tokens: Also return every frame's patch tokens.

        Returns:
            ``(B, T, D)`` frame embeddings (not normalised); with ``return_tokens`` also
            ``(B, T, N, D)`` patch tokens.

        Raises:
            ValueError: wrong shape, frame count or image size (naming the config's value).
        """
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        B, _, T, H, W = video.shape
        if T != self.config.num_frames:
            raise ValueError(f"video has {T} frames; config.num_frames is {self.config.num_frames}")
        frames = video.transpose(1, 2).reshape(B * T, 3, H, W)
        _check_images(frames, self.config, name="video frames")
        out = self.visual(frames, return_tokens=return_tokens)
        if return_tokens:
            pooled, tokens = out
            return pooled.view(B, T, -1), tokens.view(B, T, tokens.shape[1], -1)
        return out.view(B, T, -1)

    def video_embedding(self, video: torch.Tensor) -> torch.Tensor:
        """CLIP's video embedding: the mean of the frame embeddings, L2-normalised, ``(B, D)``.

        Order-agnostic: a clip and its time reversal give the same embedding (up to rounding).
        A ``(B, 3, H, W)`` image batch is encoded as images.
        """
        emb = self.encode_image(video) if video.dim() == 4 else self.encode_video(video).mean(dim=1)
        return F.normalize(emb, dim=-1)

    def encode_captions(self, captions: Sequence[str], truncate: bool = False) -> torch.Tensor:
        """Tokenise class captions and embed them: L2-normalised ``(N, D)`` on the model's device.

        Raises:
            ValueError: an empty caption list, or a caption longer than ``config.context_length``
                tokens (unless ``truncate``), naming the caption and the limit.
        """
        from videozoo.data.tokenizer import tokenize

        if isinstance(captions, str) or len(captions) == 0:
            raise ValueError("captions must be a non-empty list of class captions (got "
                             f"{'a single string' if isinstance(captions, str) else 'an empty list'})")
        ids = tokenize(list(captions), context_length=self.config.context_length, truncate=truncate)
        return F.normalize(self.encode_text(ids.to(self.logit_scale.device)), dim=-1)

    # ---- similarities

    def temperature_scale(self) -> torch.Tensor:
        """``exp(logit_scale)``, clipped at 100 (Sec. 2.5)."""
        return self.logit_scale.clamp(max=math.log(100.0)).exp()

    def logits(self, visual_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Scaled cosine similarities ``(B, N)`` of ``(B, D)`` visual and ``(N, D)`` text embeddings."""
        return self.temperature_scale() * F.normalize(visual_emb, dim=-1) @ F.normalize(text_emb, dim=-1).t()

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, N)`` of clips (frames averaged) or images against captions.

        Args:
            video: ``(B, 3, T, H, W)`` clips or ``(B, 3, H, W)`` images, normalised pixels.
            text: ``(N, L)`` caption ids, ``N >= 1``.

        Raises:
            ValueError: bad shapes, frame count, image size, empty caption list.
        """
        if video.dim() not in (4, 5):
            raise ValueError(f"video must be (B, 3, T, H, W) or images (B, 3, H, W), got {tuple(video.shape)}")
        return self.logits(self.video_embedding(video), self.encode_text(text))

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE (Fig. 3) of ``B`` matched (clip, caption) pairs: ``video`` ``(B, ...)``,
        ``text`` ``(B, L)``; models built on CLIP override this to add their own terms."""
        if video.shape[0] != text.shape[0]:
            raise ValueError(f"need one caption per clip: {video.shape[0]} clips, {text.shape[0]} captions")
        return contrastive_loss(self(video, text))


def _clip_input(config: CLIPConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The zoo's standard input for CLIP: the clip ``(B, 3, T, H, W)`` (pixels in [0, 1], CLIP
    normalised) and ``num_classes`` class captions ``(num_classes, context_length)``."""
    from videozoo.data.tokenizer import tokenize

    captions = [f"a video of class {i}" for i in range(config.num_classes)]
    return normalize_pixels(clip), tokenize(captions, context_length=config.context_length)


_PROFILE = "open_clip model profile (docs/model_profile.csv)"


@register_model(
    "radford2021learning",
    alias="clip",
    stage=3,
    config=CLIPConfig,
    reported=(Reported("params_m", 151.28, _PROFILE, note="ViT-B-32", kind="release", tolerance_pct=0.5),
              Reported("gflops", 14.78, _PROFILE, note="ViT-B-32, one 224 px image (8.82) + one 77-token caption (5.96)", kind="release", tolerance_pct=0.5)),
    temporal=False,
    clip_to_input=_clip_input,
    zero_shot={
        "role": "control",
        "expect": {
            "direction_top1_pct": "<= 55",
            "heldout_top1_pct": "<= 55",
            "object_top1_pct": ">= 80",
        },
        "rationale": "frame averaging gives a clip and its time reversal the same embedding, so of each "
                     "held-out pair of opposite motions at most one is right: direction at chance (50 %), "
                     "held-out top-1 at most 50 %; the object (shape and colour) is visible in every frame "
                     "and was seen in training, so it should be recognised",
    },
)
def clip(config: CLIPConfig) -> CLIP:
    """Build a :class:`CLIP` from ``config``."""
    return CLIP(config)


OPEN_CLIP_NAMES = {"clip": "ViT-B-32", "clip_vit_b16": "ViT-B-16", "clip_vit_l14": "ViT-L-14", "clip_rn50": "RN50"}
"""open_clip's model name of each registered paper configuration."""

register_variant(
    "clip_vit_b16", of="radford2021learning", paper_overrides={"patch_size": 16},
    reported=(Reported("params_m", 149.62, _PROFILE, note="ViT-B-16", kind="release", tolerance_pct=0.5),
              Reported("gflops", 41.09, _PROFILE, note="ViT-B-16, one image + one caption", kind="release", tolerance_pct=0.5)),
    description="ViT-B/16 image tower (paper Table 20), open_clip ViT-B-16",
)
register_variant(
    "clip_vit_l14", of="radford2021learning",
    paper_overrides={"patch_size": 14, "vision_width": 1024, "vision_layers": 24, "embed_dim": 768,
                     "text_width": 768, "text_heads": 12},
    reported=(Reported("params_m", 427.62, _PROFILE, note="ViT-L-14", kind="release", tolerance_pct=0.5),
              Reported("gflops", 175.33, _PROFILE, note="ViT-L-14, one image + one caption", kind="release", tolerance_pct=0.5)),
    description="ViT-L/14 image tower, 768-wide text tower (paper Table 20), open_clip ViT-L-14",
)
register_variant(
    "clip_rn50", of="radford2021learning", overrides={"vision_arch": "resnet", "vision_width": 8},
    paper_overrides={"vision_width": 64, "resnet_layers": (3, 4, 6, 3), "embed_dim": 1024},
    reported=(Reported("params_m", 102.01, _PROFILE, note="RN50", kind="release", tolerance_pct=0.5),
              Reported("gflops", 18.18, _PROFILE, note="RN50, one image + one caption", kind="release", tolerance_pct=0.5)),
    description="modified ResNet-50 image tower with attention pooling (paper Sec. 2.4, Table 19), open_clip RN50",
)


# --------------------------------------------------------------------------- key mapping

_OPEN_CLIP_BLOCK = (("ln_1.", "norm1."), ("ln_2.", "norm2."), ("attn.in_proj_weight", "attn.qkv.weight"),
                    ("attn.in_proj_bias", "attn.qkv.bias"), ("attn.out_proj.", "attn.proj."),
                    ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."))
_HF_BLOCK = (("layer_norm1.", "norm1."), ("layer_norm2.", "norm2."), ("self_attn.out_proj.", "attn.proj."),
             ("mlp.fc1.", "mlp.fc1."), ("mlp.fc2.", "mlp.fc2."))


def _from_open_clip(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k in ("input_resolution", "context_length", "vocab_size", "attn_mask"):  # OpenAI's extras, buffers
            continue
        m = re.match(r"(visual\.)?transformer\.resblocks\.(\d+)\.(.*)", k)
        if m:
            rest = m.group(3)
            for old, new in _OPEN_CLIP_BLOCK:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[f"{'visual' if m.group(1) else 'text'}.blocks.{m.group(2)}.{rest}"] = v
        elif k.startswith("visual."):
            out[re.sub(r"\.downsample\.0\.", ".downsample.conv.", re.sub(r"\.downsample\.1\.", ".downsample.bn.", k))] = v
        elif k == "text_projection":
            out["text.proj"] = v
        elif k.split(".")[0] in ("token_embedding", "positional_embedding", "ln_final"):
            out["text." + k] = v
        elif k == "logit_scale":
            out[k] = v
        else:
            raise ValueError(f"open_clip state dict: unexpected key {k!r} (a CLIP variant this file does not build?)")
    return out


def _from_hf(sd: dict) -> dict:
    out = {}
    for tower, ours in (("text_model", "text"), ("vision_model", "visual")):
        pre = f"{tower}.encoder.layers."
        layers = sorted({int(k[len(pre):].split(".")[0]) for k in sd if k.startswith(pre)})
        for i in layers:
            src, dst = f"{pre}{i}.", f"{ours}.blocks.{i}."
            for kind in ("weight", "bias"):
                out[dst + "attn.qkv." + kind] = torch.cat([sd[f"{src}self_attn.{p}_proj.{kind}"] for p in "qkv"])
                for old, new in _HF_BLOCK:
                    out[dst + new + kind] = sd[src + old + kind]
    simple = {
        "text_model.embeddings.token_embedding.weight": "text.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "text.positional_embedding",
        "text_model.final_layer_norm.weight": "text.ln_final.weight",
        "text_model.final_layer_norm.bias": "text.ln_final.bias",
        "vision_model.embeddings.class_embedding": "visual.class_embedding",
        "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
        "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
        "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
        "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
        "vision_model.post_layernorm.weight": "visual.ln_post.weight",
        "vision_model.post_layernorm.bias": "visual.ln_post.bias",
        "logit_scale": "logit_scale",
    }
    out.update({new: sd[old] for old, new in simple.items() if old in sd})
    out["visual.proj"] = sd["visual_projection.weight"].t()
    out["text.proj"] = sd["text_projection.weight"].t()
    return out


def load_state_dict_from(state_dict: dict, library: str = "auto") -> dict:
    """Convert a CLIP state dict of open_clip / OpenAI or Hugging Face into this file's keys.

    Args:
        state_dict: ``open_clip.create_model(...).state_dict()`` (also OpenAI's released
            checkpoints, same names), or ``transformers.CLIPModel(...).state_dict()``
            (ViT towers only: Hugging Face has no ResNet CLIP), or one of ours.
        library: ``"open_clip"``, ``"hf"``, ``"videozoo"`` or ``"auto"`` (from the keys).

    Returns:
        A dict for ``CLIP.load_state_dict`` (values are the source tensors, transposed where
        Hugging Face stores a ``Linear`` projection).

    Raises:
        ValueError: unknown ``library``, a layout that is none of the three, or a key the
            mapping does not know (e.g. a CoCa or SigLIP checkpoint).
        KeyError: a Hugging Face state dict that lacks a key CLIP needs.
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if library == "auto":
        if any(k.startswith(("text_model.", "vision_model.")) for k in sd):
            library = "hf"
        elif "token_embedding.weight" in sd:
            library = "open_clip"
        elif "text.token_embedding.weight" in sd:
            library = "videozoo"
        else:
            raise ValueError("state_dict is neither open_clip/OpenAI (token_embedding.weight), Hugging Face "
                             "CLIPModel (text_model.*, vision_model.*) nor videozoo CLIP (text.token_embedding.weight)")
    if library == "open_clip":
        return _from_open_clip(sd)
    if library == "hf":
        return _from_hf({k: v for k, v in sd.items() if not k.endswith("position_ids")})
    if library == "videozoo":
        return dict(sd)
    raise ValueError(f"library must be 'auto', 'open_clip', 'hf' or 'videozoo', got {library!r}")


# --------------------------------------------------------------------------- checks


def reference_open_clip(config: CLIPConfig):
    """A randomly initialised ``open_clip.model.CLIP`` with ``config``'s shape (eval mode).

    Its ``state_dict()`` loads into ours through :func:`load_state_dict_from`; used by the
    reference check and ``scripts/bench_clip.py``.

    Raises:
        ImportError: open_clip is not installed.
    """
    from open_clip.model import CLIP as OpenCLIP

    vision = {"image_size": config.image_size, "width": config.vision_width, "head_width": config.vision_head_width,
              "mlp_ratio": config.mlp_ratio}
    if config.vision_arch == "vit":
        vision.update(layers=config.vision_layers, patch_size=config.patch_size)
    else:
        vision.update(layers=list(config.resnet_layers), patch_size=None)
    text = {"context_length": config.context_length, "vocab_size": config.vocab_size, "width": config.text_width,
            "heads": config.text_heads, "layers": config.text_layers, "mlp_ratio": config.mlp_ratio}
    return OpenCLIP(config.embed_dim, vision, text, quick_gelu=config.act == "quick_gelu",
                    init_logit_scale=config.logit_scale_init).eval()


def reference_hf(config: CLIPConfig):
    """A randomly initialised ``transformers.CLIPModel`` with ``config``'s shape (eval mode; ViT only).

    Raises:
        ValueError: for a ResNet config (Hugging Face has no ResNet CLIP).
        ImportError: transformers is not installed.
    """
    import transformers

    if config.vision_arch != "vit":
        raise ValueError("Hugging Face CLIPModel has ViT image towers only")
    act = "quick_gelu" if config.act == "quick_gelu" else "gelu"
    hf_config = transformers.CLIPConfig(
        text_config={"vocab_size": config.vocab_size, "hidden_size": config.text_width,
                     "intermediate_size": int(config.text_width * config.mlp_ratio),
                     "num_hidden_layers": config.text_layers, "num_attention_heads": config.text_heads,
                     "max_position_embeddings": config.context_length, "hidden_act": act},
        vision_config={"hidden_size": config.vision_width, "intermediate_size": int(config.vision_width * config.mlp_ratio),
                       "num_hidden_layers": config.vision_layers,
                       "num_attention_heads": config.vision_width // config.vision_head_width,
                       "image_size": config.image_size, "patch_size": config.patch_size, "hidden_act": act},
        projection_dim=config.embed_dim, logit_scale_init_value=config.logit_scale_init,
    )
    return transformers.CLIPModel(hf_config).eval()


def _perturb(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Add ``N(0, std^2)`` noise to every parameter and random BatchNorm statistics, so that
    zero-initialised biases and BN scales (which would hide a wrong key mapping) are not zero."""
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model


def _pooled(x):
    """Hugging Face ``get_*_features`` return a tensor (4.x) or an output with ``pooler_output`` (5.x)."""
    return x if isinstance(x, torch.Tensor) else x.pooler_output


def _compare(ours: CLIP, images: torch.Tensor, text: torch.Tensor, image_ref, text_ref, logits_ref) -> dict:
    with torch.no_grad():
        return {
            "image": (ours.encode_image(images) - image_ref).abs().max().item(),
            "text": (ours.encode_text(text) - text_ref).abs().max().item(),
            "logits": (ours(images, text) - logits_ref).abs().max().item(),
        }


def _parity(config: CLIPConfig, library: str, batch: int = 2) -> dict:
    """Max abs differences of image/text embeddings and logits, ours vs ``library`` with the same
    (perturbed random) weights, on random images and real captions."""
    from videozoo.data.tokenizer import tokenize

    torch.manual_seed(0)
    ref = _perturb(reference_open_clip(config) if library == "open_clip" else reference_hf(config))
    ours = CLIP(config).eval()
    ours.load_state_dict(load_state_dict_from(ref.state_dict(), library=library))
    images = torch.randn(batch, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0))
    text = tokenize(["a red square moving left", "a photo of a dog.", "Two cats, sleeping on a sofa!"],
                    context_length=config.context_length)
    with torch.no_grad():
        if library == "open_clip":
            logits, _ = ref.get_logits(images, text)
            out = _compare(ours, images, text, ref.encode_image(images), ref.encode_text(text), logits)
        else:
            out = _compare(ours, images, text, _pooled(ref.get_image_features(pixel_values=images)),
                           _pooled(ref.get_text_features(input_ids=text)),
                           ref(input_ids=text, pixel_values=images).logits_per_image)
    del ref, ours
    return out


PARITY_TOLERANCE = 1e-5        # max abs difference of float32 embeddings and logits
PARAMS_TOLERANCE_PCT = 0.1     # parameter count against open_clip's, per paper configuration


def _reference_check() -> dict:
    """Ours vs open_clip and Hugging Face ``CLIPModel`` with the same random weights, and the
    parameter counts of every paper configuration against open_clip's (built on the meta device).

    The check covers every registered CLIP configuration at once, so the variants run the same
    check; its result is computed once per process (a few minutes on one core) and copied."""
    return copy.deepcopy(_reference_result())


@lru_cache(maxsize=1)
def _reference_result() -> dict:
    import open_clip
    import transformers

    from videozoo.registry import make_config

    tiny = CLIPConfig.tiny()
    tiny_rn = dataclasses.replace(tiny, vision_arch="resnet", vision_width=8, image_size=64)
    parity = {
        "open_clip tiny ViT": _parity(tiny, "open_clip"),
        "open_clip tiny RN": _parity(tiny_rn, "open_clip"),
        "open_clip ViT-B-32": _parity(CLIPConfig.paper(), "open_clip"),
        "hf tiny ViT": _parity(tiny, "hf"),
        "hf ViT-B-32": _parity(CLIPConfig.paper(), "hf"),
    }
    worst = max(v for d in parity.values() for v in d.values())
    params = {}
    for name, oc_name in OPEN_CLIP_NAMES.items():
        with torch.device("meta"):
            ref = open_clip.create_model(oc_name, pretrained=None, device="meta", force_quick_gelu=True)
            ours = clip(make_config(name, "paper"))
        n_ref, n_ours = sum(p.numel() for p in ref.parameters()), sum(p.numel() for p in ours.parameters())
        params[name] = {"open_clip_model": oc_name, "open_clip": n_ref, "ours": n_ours,
                        "gap_pct": 100.0 * (n_ours - n_ref) / n_ref}
    params_ok = all(abs(p["gap_pct"]) <= PARAMS_TOLERANCE_PCT for p in params.values())
    passed = worst <= PARITY_TOLERANCE and params_ok
    counts = ", ".join(f"{p['open_clip_model']} {p['ours'] / 1e6:.2f} M (gap {p['gap_pct']:+.3f} %)"
                       for p in params.values())
    return {
        "passed": bool(passed),
        "summary": (f"image and text embeddings and logits vs open_clip (tiny ViT, tiny RN, ViT-B-32) and Hugging Face "
                    f"CLIPModel (tiny ViT, ViT-B-32) with the same random weights loaded through "
                    f"load_state_dict_from: max abs diff {worst:.1e} (tolerance {PARITY_TOLERANCE:g}); parameters vs "
                    f"open_clip: {counts} (tolerance {PARAMS_TOLERANCE_PCT:g} %)"),
        "reference": f"open_clip {open_clip.__version__} (open_clip.model.CLIP, create_model(..., pretrained=None)); "
                     f"transformers {transformers.__version__} CLIPModel",
        "max_abs_diff": worst,
        "tolerance": PARITY_TOLERANCE,
        "max_abs_diff_by_comparison": parity,
        "params": params,
        "expected": {"max_abs_diff": f"<= {PARITY_TOLERANCE:g}", "params_gap_pct": f"<= {PARAMS_TOLERANCE_PCT:g} in magnitude"},
    }


register_check("radford2021learning", "reference", evidence="independent-reference")(_reference_check)
