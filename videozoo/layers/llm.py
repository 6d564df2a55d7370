"""The language model of the Stage 4 video LLMs: a Hugging Face ``LlamaForCausalLM``.

Video-ChatGPT (arXiv 2306.05424), VideoChat (arXiv 2305.06355), MovieChat (arXiv 2307.16449)
and their successors put a LLaMA-family decoder (Vicuna, a LLaMA fine-tuned on conversations)
behind their video bridge.  videozoo does not re-implement the decoder: :func:`build_llm`
builds ``transformers.LlamaForCausalLM`` from an :class:`LLMConfig`, with random weights
(nothing is downloaded).  Under ``with torch.device("meta"):`` the paper's 7B / 13B decoder is
built without memory, which is how the ``builds`` check counts its parameters.

Sizes (LLaMA, Touvron et al., arXiv 2302.13971, Table 2; Vicuna keeps LLaMA's shapes):

=========  ======  ============  ======  =====  ==============
config     width   MLP width     layers  heads  parameters
=========  ======  ============  ======  =====  ==============
7B         4096    11008         32      32     6.7 B
13B        5120    13824         40      40     13.0 B
=========  ======  ============  ======  =====  ==============
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported only when a model is built
    from transformers import LlamaForCausalLM

__all__ = ["LLMConfig", "build_llm"]


@dataclass
class LLMConfig:
    """Shape of a LLaMA-style decoder (the fields of ``transformers.LlamaConfig`` that matter here).

    Attributes:
        vocab_size: Rows of the token embedding and the output layer. ``0`` means "the
            tokenizer's size" (tiny models built around videozoo's word-level tokenizer); a
            positive value smaller than the tokenizer is raised to the tokenizer's size.
        hidden_size: Token width ``D``.
        intermediate_size: Hidden width of the SwiGLU MLP.
        num_layers: Decoder blocks.
        num_heads: Attention heads (query heads).
        num_kv_heads: Key/value heads (``None``: as many as ``num_heads``, as in LLaMA-1).
        max_position_embeddings: Context length in tokens (2048 for LLaMA-1 / Vicuna v0-v1.1).
        rms_norm_eps: RMSNorm epsilon (1e-6 for LLaMA-1).
        rope_theta: Rotary position embedding base.
        name: What the config is, for summaries (``"Vicuna-7B"``).
    """

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int | None = None
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    name: str = "Vicuna-7B"

    @classmethod
    def vicuna_7b(cls) -> "LLMConfig":
        """LLaMA-7B / Vicuna-7B (arXiv 2302.13971, Table 2: 6.7 B parameters)."""
        return cls()

    @classmethod
    def vicuna_13b(cls) -> "LLMConfig":
        """LLaMA-13B / Vicuna-13B (arXiv 2302.13971, Table 2: 13.0 B parameters)."""
        return cls(hidden_size=5120, intermediate_size=13824, num_layers=40, num_heads=40, name="Vicuna-13B")

    @classmethod
    def tiny(cls) -> "LLMConfig":
        """A two-block decoder of width 64 (~0.1 M parameters with a word-level vocabulary), for CPU tests."""
        return cls(vocab_size=0, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                   max_position_embeddings=512, name="tiny LLaMA")


def build_llm(config: LLMConfig, vocab_size: int, pad_token_id: int, bos_token_id: int,
              eos_token_id: int | list[int]) -> "LlamaForCausalLM":
    """Build a randomly initialised ``transformers.LlamaForCausalLM``.

    Args:
        config: The decoder's shape.
        vocab_size: Size of the tokenizer in use; the embedding gets
            ``max(config.vocab_size, vocab_size)`` rows (a paper config keeps LLaMA's 32000 plus
            the tokens the paper adds, a tiny config exactly the tokenizer's size).
        pad_token_id, bos_token_id, eos_token_id: Special token ids of that tokenizer.

    Returns:
        The model in training mode, on the current default device (``meta`` inside
        ``with torch.device("meta"):``), SDPA attention.

    Raises:
        ValueError: if ``hidden_size`` is not divisible by ``num_heads``.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    if config.hidden_size % config.num_heads:
        raise ValueError(f"LLM hidden_size {config.hidden_size} is not divisible by num_heads {config.num_heads}")
    hf = LlamaConfig(
        vocab_size=max(config.vocab_size, vocab_size), hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads or config.num_heads,
        max_position_embeddings=config.max_position_embeddings, rms_norm_eps=config.rms_norm_eps,
        rope_theta=config.rope_theta, pad_token_id=pad_token_id, bos_token_id=bos_token_id,
        eos_token_id=eos_token_id, tie_word_embeddings=False, attn_implementation="sdpa",
    )
    return LlamaForCausalLM(hf)
