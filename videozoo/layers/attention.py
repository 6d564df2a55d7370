"""Shared transformer building blocks: multi-head self-attention, MLP, pre-norm block.

Follows the encoder block of "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale" (Dosovitskiy et al., arXiv 2010.11929, Sec. 3.1, eq. 2-3):
``z' = z + MSA(LN(z))``, ``z = z' + MLP(LN(z'))``, where multi-head self-attention
is the scaled dot-product attention of "Attention Is All You Need" (Vaswani et al.,
arXiv 1706.03762, Sec. 3.2, eq. 1).

The parameter layout (one fused ``qkv`` linear layer, ``proj``, ``fc1``/``fc2``,
``norm1``/``norm2``) is the common one of timm, so that state dicts map with few renames.
Attention is computed with :func:`torch.nn.functional.scaled_dot_product_attention`.
:func:`convert_hf_encoder_layers` maps Hugging Face ViT-style encoder layers (ViT, ViViT) and
:func:`convert_flax_block` Flax ones (scenic's ViViT and MTV) onto these names; :class:`QuickGELU`
is CLIP's activation.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.drop import DropPath

__all__ = ["Attention", "Mlp", "Block", "QuickGELU", "convert_hf_encoder_layers", "flax_dense", "convert_flax_attention",
           "convert_flax_block"]


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
        hidden: MLP hidden width when it is not ``int(dim * mlp_ratio)`` (MTV's global encoder).
        drop_path: Stochastic-depth rate of both residual branches (:class:`videozoo.layers.drop.DropPath`).

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
        hidden: int | None = None,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, hidden if hidden is not None else int(dim * mlp_ratio), act=act, drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (B, L, D)``, optional ``attn_mask`` as in :class:`Attention`; returns ``(B, L, D)``."""
        x = x + self.drop_path(self.attn(self.norm1(x), attn_mask=attn_mask))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
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


# --------------------------------------------------------------------------- Flax (scenic, big_vision) keys


def flax_dense(params: dict, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A Flax ``Dense``/``DenseGeneral`` at ``prefix`` as a torch ``nn.Linear`` ``(weight, bias)``.

    Args:
        params: Flat Flax parameters, ``"/"``-joined names -> tensors (``prefix + "/kernel"`` of shape
            ``(in..., out...)`` and ``prefix + "/bias"`` of shape ``(out...)``).
        prefix: The layer's name.

    Returns:
        ``weight (out, in)`` and ``bias (out,)``, the kernel's input and output axes flattened.
    """
    kernel, bias = params[prefix + "/kernel"], params[prefix + "/bias"]
    return kernel.reshape(-1, bias.numel()).t().contiguous(), bias.reshape(-1)


def convert_flax_attention(params: dict, prefix: str, out: dict, dst: str, fused: bool = True) -> None:
    """Flax multi-head attention (``query``/``key``/``value``/``out`` ``DenseGeneral``s) -> our names.

    Writes ``dst + "qkv.*"`` (``fused``, :class:`Attention`) or ``dst + "q.*"`` and ``dst + "kv.*"``
    (cross-attention), and ``dst + "proj.*"`` into ``out``.
    """
    (wq, bq), (wk, bk), (wv, bv) = (flax_dense(params, f"{prefix}/{n}") for n in ("query", "key", "value"))
    kernel, bias = params[prefix + "/out/kernel"], params[prefix + "/out/bias"]
    if fused:
        out[dst + "qkv.weight"], out[dst + "qkv.bias"] = torch.cat([wq, wk, wv]), torch.cat([bq, bk, bv])
    else:
        out[dst + "q.weight"], out[dst + "q.bias"] = wq, bq
        out[dst + "kv.weight"], out[dst + "kv.bias"] = torch.cat([wk, wv]), torch.cat([bk, bv])
    out[dst + "proj.weight"], out[dst + "proj.bias"] = kernel.reshape(-1, bias.numel()).t().contiguous(), bias


def convert_flax_block(params: dict, names: tuple[str, str, str, str], out: dict, dst: str) -> None:
    """A Flax pre-norm encoder block -> :class:`Block` keys under ``dst``.

    Args:
        params: Flat Flax parameters (``"/"``-joined names -> tensors).
        names: Full names of its first LayerNorm, attention, second LayerNorm and ``MlpBlock``
            (``Dense_0``, ``Dense_1``), e.g. ``".../LayerNorm_0"``, ``".../MultiHeadDotProductAttention_0"``.
        out: Dict the converted entries are written into.
        dst: Our block's prefix, e.g. ``"blocks.3."``.
    """
    ln1, attn, ln2, mlp = names
    for src, tgt in ((ln1, "norm1"), (ln2, "norm2")):
        out[f"{dst}{tgt}.weight"], out[f"{dst}{tgt}.bias"] = params[src + "/scale"], params[src + "/bias"]
    convert_flax_attention(params, attn, out, dst + "attn.")
    for src, tgt in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
        out[f"{dst}mlp.{tgt}.weight"], out[f"{dst}mlp.{tgt}.bias"] = flax_dense(params, f"{mlp}/{src}")
