"""Cross-attention: a set of query tokens reads from a second set of tokens (a memory).

Multi-head attention of "Attention Is All You Need" (Vaswani et al., arXiv 1706.03762, Sec. 3.2,
eq. 1) with queries from one sequence and keys/values from another (the decoder's
encoder-decoder attention, Sec. 3.2.3), in the pre-norm arrangement of the ViT encoder block
(Dosovitskiy et al., arXiv 2010.11929, eq. 2-3):
``q = q + CA(LN(q), LN(m)); q = q + MLP(LN(q))``.

Used by :mod:`videozoo.models.alt` (the video adapter whose queries are entity embeddings) and
:mod:`videozoo.models.laiar` (the DT-Former's pooling of the relation tokens of a frame).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.attention import Mlp

__all__ = ["CrossAttention", "CrossBlock"]


class CrossAttention(nn.Module):
    """Multi-head attention of ``Lq`` queries over ``Lk`` memory tokens.

    ``softmax(Q K^T / sqrt(d_head)) V`` per head with ``Q = x W_q``, ``[K, V] = m W_kv``; heads
    concatenated and projected by ``proj``.

    Args:
        dim: Token width ``D`` of queries and memory.
        num_heads: Heads ``h`` (``D`` must be divisible by it).
        qkv_bias: Biases in the query and key/value projections.

    Raises:
        ValueError: ``dim`` not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Queries ``x: (B, Lq, D)`` attend to ``memory: (B, Lk, D)``; returns ``(B, Lq, D)``.

        ``attn_mask`` (optional) broadcasts to ``(B, h, Lq, Lk)``: boolean (``True`` = may
        attend) or float (added to the logits).
        """
        B, Lq, D = x.shape
        Lk = memory.shape[1]
        q = self.q(x).view(B, Lq, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(memory).view(B, Lk, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(B, Lq, D))


class CrossBlock(nn.Module):
    """Pre-norm cross-attention block: ``q = q + CA(LN(q), LN(m)); q = q + MLP(LN(q))``.

    Args:
        dim: Token width ``D``.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        act: MLP activation class.

    Shapes: queries ``(B, Lq, D)``, memory ``(B, Lk, D)`` -> ``(B, Lq, D)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, act: Callable[[], nn.Module] = nn.GELU):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_m = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (B, Lq, D)`` queries, ``memory: (B, Lk, D)``; returns the updated queries ``(B, Lq, D)``."""
        x = x + self.attn(self.norm_q(x), self.norm_m(memory), attn_mask=attn_mask)
        return x + self.mlp(self.norm2(x))
