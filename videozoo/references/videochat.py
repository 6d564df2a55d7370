"""VideoChat-Embed's global relation aggregation, written out (torch, float64, no nn modules).

Li et al., "VideoChat: Chat-Centric Video Understanding", arXiv 2305.06355: VideoChat-Embed
encodes a video with a ViT-g whose last blocks are followed by the global multi-head relation
aggregator (GMHRA) of UniFormerV2 (Li et al., arXiv 2211.09552, Sec. 3, "global MHRA"), in the
configuration of the authors' release (OpenGVLab/Ask-Anything, video_chat: 8 aggregation
layers on the last 8 blocks, no local MHRA).  One aggregation layer updates a single learned
video token ``q`` (width ``C``) from the tokens ``X`` of all ``T`` frames of one block:

1. ``Y = LN_3(X)``; the patch tokens of ``Y``, laid out as a ``(C, T, h, w)`` volume, get a
   dynamic position encoding added: a depth-wise 3x3x3 convolution of themselves (zero padding),
   ``Y_p <- Y_p + DWConv(Y_p)``; the frames' class tokens are left as they are.
2. Multi-head cross-attention of ``LN_1(q)`` over all ``T (1 + h w)`` tokens of ``Y``:
   ``A = softmax(Q K^T / sqrt(d)) V`` per head, ``q <- q + W_o A + b_o``.
3. MLP: ``q <- q + W_2 GELU(W_1 LN_2(q) + b_1) + b_2``.

The layers run in order, layer ``j`` reading block ``depth - k + j``'s output; the video token
is appended to the last block's frame tokens.
"""

from __future__ import annotations

import math

import torch

__all__ = ["layer_norm", "depthwise_conv3d", "aggregate"]


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (biased variance)."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def depthwise_conv3d(v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Depth-wise 3x3x3 convolution with zero padding, as a sum of 27 shifted copies.

    ``v: (C, T, h, w)``, ``weight: (C, 3, 3, 3)``, ``bias: (C,)`` -> ``(C, T, h, w)``.
    """
    C, T, h, w = v.shape
    padded = torch.zeros(C, T + 2, h + 2, w + 2, dtype=v.dtype)
    padded[:, 1:-1, 1:-1, 1:-1] = v
    out = bias.view(C, 1, 1, 1).expand(C, T, h, w).clone()
    for dt in range(3):
        for dy in range(3):
            for dx in range(3):
                out += weight[:, dt, dy, dx].view(C, 1, 1, 1) * padded[:, dt:dt + T, dy:dy + h, dx:dx + w]
    return out


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def aggregate(q: torch.Tensor, tokens: torch.Tensor, p: dict[str, torch.Tensor], heads: int,
              eps: float = 1e-5) -> torch.Tensor:
    """One global aggregation layer for one video.

    Args:
        q: ``(C,)`` the video token.
        tokens: ``(T, 1 + h w, C)`` one block's tokens of every frame (class token first).
        p: Parameters: ``ln_1/ln_2/ln_3.{weight,bias}``; ``dpe.weight (C, 3, 3, 3)``,
            ``dpe.bias``; ``q_proj/k_proj/v_proj/out_proj.{weight (C, C), bias}``;
            ``fc1.{weight (M, C), bias}``, ``fc2.{weight (C, M), bias}``.
        heads: Attention heads.

    Returns:
        ``(C,)`` the updated video token.
    """
    q, tokens = q.double(), tokens.double()
    p = {k: v.double() for k, v in p.items()}
    T, L, C = tokens.shape
    side = int(round(math.sqrt(L - 1)))
    y = layer_norm(tokens, p["ln_3.weight"], p["ln_3.bias"], eps)
    patches = y[:, 1:].permute(2, 0, 1).reshape(C, T, side, side)
    patches = patches + depthwise_conv3d(patches, p["dpe.weight"], p["dpe.bias"])
    y = torch.cat([y[:, :1], patches.reshape(C, T, side * side).permute(1, 2, 0)], dim=1).reshape(T * L, C)

    x = layer_norm(q, p["ln_1.weight"], p["ln_1.bias"], eps)
    d = C // heads
    Q = (p["q_proj.weight"] @ x + p["q_proj.bias"]).view(heads, d)
    K = (y @ p["k_proj.weight"].T + p["k_proj.bias"]).view(T * L, heads, d)
    V = (y @ p["v_proj.weight"].T + p["v_proj.bias"]).view(T * L, heads, d)
    heads_out = []
    for h in range(heads):
        scores = K[:, h] @ Q[h] / math.sqrt(d)                  # (T L,)
        weights = torch.exp(scores - scores.max())
        weights = weights / weights.sum()
        heads_out.append(weights @ V[:, h])                    # (d,)
    q = q + p["out_proj.weight"] @ torch.cat(heads_out) + p["out_proj.bias"]
    hidden = _gelu(p["fc1.weight"] @ layer_norm(q, p["ln_2.weight"], p["ln_2.bias"], eps) + p["fc1.bias"])
    return q + p["fc2.weight"] @ hidden + p["fc2.bias"]
