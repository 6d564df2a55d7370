"""Projector: maps visual tokens to the LLM's token width.

LLaVA (Liu et al., arXiv 2304.08485, Sec. 4, eq. 1) and Video-ChatGPT (arXiv 2306.05424,
Sec. 3) use a single linear layer ``H_v = W Z_v``; BLIP-2-based models (VideoChat, MovieChat)
use a linear layer after the Q-Former; LLaVA-1.5 (arXiv 2310.03744, Sec. 3.1) replaced it by
a two-layer MLP with GELU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Projector", "PROJECTOR_KINDS"]

PROJECTOR_KINDS = ("linear", "mlp2x_gelu")


class Projector(nn.Module):
    """``(..., in_dim) -> (..., out_dim)``.

    Args:
        in_dim: Visual token width.
        out_dim: LLM token width.
        kind: ``"linear"`` (one ``nn.Linear``, ``proj``) or ``"mlp2x_gelu"``
            (``fc1`` -> GELU -> ``fc2``, hidden width ``out_dim``).

    Raises:
        ValueError: unknown ``kind``.
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "linear") -> None:
        super().__init__()
        if kind not in PROJECTOR_KINDS:
            raise ValueError(f"unknown projector kind {kind!r}; expected one of {PROJECTOR_KINDS}")
        self.kind = kind
        if kind == "linear":
            self.proj = nn.Linear(in_dim, out_dim)
        else:
            self.fc1 = nn.Linear(in_dim, out_dim)
            self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (..., in_dim)`` -> ``(..., out_dim)``."""
        if self.kind == "linear":
            return self.proj(x)
        return self.fc2(nn.functional.gelu(self.fc1(x)))
