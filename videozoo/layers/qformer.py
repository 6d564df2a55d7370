"""The Q-Former of BLIP-2 as a video-to-LLM bridge: learned queries read the frame tokens.

BLIP-2 (Li et al., arXiv 2301.12597, Sec. 3.1): a BERT-base-sized transformer whose input is a
set of learned query embeddings; the queries attend to each other (self-attention) and, in
every other block, to the frozen image encoder's tokens (cross-attention), and come out as a
fixed number of visual tokens whatever the number of image tokens.  VideoChat
(arXiv 2305.06355) and MovieChat (arXiv 2307.16449) reuse it on video tokens.

The transformer is ``transformers.Blip2QFormerModel`` (query-only path: no text embeddings
and no text MLP, as the video LLMs use it); videozoo's part is only the learned queries and
the call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["QFormerConfig", "QueryTransformer"]


@dataclass
class QFormerConfig:
    """Shape of a Q-Former (BLIP-2, arXiv 2301.12597, Sec. 3.1 and its release: BERT-base).

    Attributes:
        num_queries: Learned query tokens (32 in BLIP-2).
        hidden_size: Query width (768).
        num_layers: Blocks (12).
        num_heads: Attention heads (12).
        intermediate_size: MLP width (3072).
        cross_attention_frequency: A block attends to the encoder tokens every this many
            blocks (2: blocks 0, 2, 4, ...).
        dropout: Hidden and attention dropout (0.1 in BLIP-2).
    """

    num_queries: int = 32
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    cross_attention_frequency: int = 2
    dropout: float = 0.1

    @classmethod
    def blip2(cls) -> "QFormerConfig":
        """BLIP-2's Q-Former: 32 queries, BERT-base (12 blocks, width 768)."""
        return cls()

    @classmethod
    def tiny(cls) -> "QFormerConfig":
        """Eight queries, two blocks of width 64 (cross-attention in the first), no dropout."""
        return cls(num_queries=8, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, dropout=0.0)


class QueryTransformer(nn.Module):
    """Learned queries + ``Blip2QFormerModel``: ``(B, L, C_enc)`` tokens -> ``(B, Q, hidden)`` tokens.

    Args:
        config: The Q-Former's shape.
        encoder_width: Width ``C_enc`` of the tokens the queries read.

    Attributes:
        query_tokens: ``(1, Q, hidden)`` learned queries (BLIP-2 initialises them from
            N(0, 0.02^2)).
        qformer: The ``transformers.Blip2QFormerModel``.
    """

    def __init__(self, config: QFormerConfig, encoder_width: int) -> None:
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        self.config = config
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_queries, config.hidden_size))
        nn.init.normal_(self.query_tokens, std=0.02)
        self.qformer = Blip2QFormerModel(Blip2QFormerConfig(
            hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            cross_attention_frequency=config.cross_attention_frequency, encoder_hidden_size=encoder_width,
            hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout,
        ))

    def forward(self, encoder_states: torch.Tensor, extra_queries: torch.Tensor | None = None) -> torch.Tensor:
        """Read ``encoder_states`` with the learned queries.

        Args:
            encoder_states: ``(B, L, C_enc)`` tokens (e.g. every frame's patch tokens).
            extra_queries: Optional ``(1, Q', hidden)`` queries appended to the learned ones
                (VideoChat's extra query tokens).

        Returns:
            ``(B, Q + Q', hidden)`` query outputs.
        """
        queries = self.query_tokens if extra_queries is None else torch.cat([self.query_tokens, extra_queries], dim=1)
        # repeat, not expand: a view of a parameter made under no_grad has requires_grad but no
        # grad_fn, which torch's module tracker (FlopCounterMode) rejects
        queries = queries.repeat(encoder_states.shape[0], 1, 1)
        # no encoder mask: every token is real (and a mask of ones would be read, which the meta device cannot)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=encoder_states)
        return out.last_hidden_state
