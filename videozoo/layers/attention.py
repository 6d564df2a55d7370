"""Shared transformer building blocks: multi-head self-attention, MLP, pre-norm block.

Follows the encoder block of "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale" (Dosovitskiy et al., arXiv 2010.11929, Sec. 3.1, eq. 2-3):
``z' = z + MSA(LN(z))``, ``z = z' + MLP(LN(z'))``, where multi-head self-attention
is the scaled dot-product attention of "Attention Is All You Need" (Vaswani et al.,
arXiv 1706.03762, Sec. 3.2, eq. 1).

The parameter layout (one fused ``qkv`` linear layer, ``proj``, ``fc1``/``fc2``,
``norm1``/``norm2``) is the common one of timm, so that state dicts map with few renames.
Attention is computed with :func:`torch.nn.functional.scaled_dot_product_attention`.
:func:`convert_hf_encoder_layers` maps Hugging Face ViT-style encoder layers (ViT, ViViT) onto
these names; :class:`QuickGELU` is CLIP's activation.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Mlp", "Block", "QuickGELU", "convert_hf_encoder_layers"]


class Attention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017, arXiv 1706.03762, Sec. 3.2.2).

    ``softmax(Q K^T / sqrt(d_head)) V`` per head, heads concatenated and projected.

    Args:
        dim: Token width ``D``; must be divisible by ``num_heads``.
        num_heads: Number of heads ``h``; head width is ``D / h``.
        qkv_bias: Whether the fused query/key/value projection has a bias.
        attn_drop: Dropout probability on the attention weights (training only).
        proj_drop: Dropout probability after the output projection.

    Raises:
        ValueError: if ``dim`` is not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention over the ``L`` tokens of each sequence.

        Args:
            x: ``(B, L, D)`` tokens.
            attn_mask: Optional mask broadcastable to ``(B, num_heads, L, L)``: boolean
                (``True`` = may attend) or float (added to the attention logits).

        Returns:
            ``(B, L, D)``.
        """
        B, L, D = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, h, L, d_head)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(B, L, D)
        return self.proj_drop(self.proj(out))


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the GELU approximation of CLIP (Radford et al., arXiv 2103.00020) and of
    the models initialised from it (UniFormerV2).  Shapes: any -> same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Module):
    """Two-layer position-wise feed-forward network ``fc2(drop(act(fc1(x))))``.

    Args:
        dim: Input and output width ``D``.
        hidden: Hidden width (``4 D`` in ViT-B).
        act: Activation class (GELU in ViT, ReLU in the original Transformer).
        drop: Dropout probability after the activation and after ``fc2``.

    Shapes: ``(..., D) -> (..., D)``.
    """

    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (..., D) -> (..., D)``."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer encoder block (ViT, arXiv 2010.11929, Sec. 3.1, eq. 2-3).

    ``x = x + Attn(LN(x)); x = x + MLP(LN(x))``.

    Args:
        dim: Token width ``D``.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``D``.
        qkv_bias: Bias in the query/key/value projection.
        norm_layer: Normalisation class called as ``norm_layer(dim)``; pass
            ``functools.partial(nn.LayerNorm, eps=1e-6)`` to match timm's ViT.
        drop: Dropout after the attention projection and in the MLP.
        attn_drop: Dropout on the attention weights.
        act: MLP activation class.

    Shapes: ``(B, L, D) -> (B, L, D)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        act: Callable[[], nn.Module] = nn.GELU,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act, drop=drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (B, L, D)``, optional ``attn_mask`` as in :class:`Attention`; returns ``(B, L, D)``."""
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask)
        x = x + self.mlp(self.norm2(x))
        return x


def convert_hf_encoder_layers(sd: dict, src_prefix: str, dst_prefix: str) -> dict:
    """Convert Hugging Face ViT-style encoder layers to our :class:`Block` names.

    Handles both the current layout (``{src_prefix}{i}.attention.q_proj`` ... ``o_proj``,
    ``mlp.fc1/fc2``, ``layernorm_before/after``) and the older one
    (``attention.attention.query/key/value``, ``attention.output.dense``,
    ``intermediate.dense``, ``output.dense``); separate q/k/v weights are concatenated
    into our fused ``qkv``.

    Args:
        sd: Source state dict (only keys starting with ``src_prefix`` are used).
        src_prefix: e.g. ``"vit.layers."`` or ``"vit.encoder.layer."``.
        dst_prefix: e.g. ``"blocks."``.

    Returns:
        A new dict with our key names.
    """
    renames = {
        "layernorm_before": "norm1",
        "layernorm_after": "norm2",
        "attention.o_proj": "attn.proj",
        "attention.output.dense": "attn.proj",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
        "intermediate.dense": "mlp.fc1",
        "output.dense": "mlp.fc2",
    }
    qkv_names = {
        "q": ("attention.q_proj", "attention.attention.query"),
        "k": ("attention.k_proj", "attention.attention.key"),
        "v": ("attention.v_proj", "attention.attention.value"),
    }
    out: dict = {}
    layers = sorted({int(k[len(src_prefix):].split(".")[0]) for k in sd if k.startswith(src_prefix)})
    for i in layers:
        src, dst = f"{src_prefix}{i}.", f"{dst_prefix}{i}."
        for kind in ("weight", "bias"):
            parts = []
            for names in qkv_names.values():
                key = next((src + n + "." + kind for n in names if src + n + "." + kind in sd), None)
                if key is not None:
                    parts.append(sd[key])
            if len(parts) == 3:
                out[dst + "attn.qkv." + kind] = torch.cat(parts, dim=0)
            for old, new in renames.items():
                if src + old + "." + kind in sd:
                    out[dst + new + "." + kind] = sd[src + old + "." + kind]
    return out
