"""What every Stage 4 video LLM shares: tokenizer, LLM, prompt, splice, loss and generation.

A video LLM turns a clip into a short sequence of tokens in the LLM's width (each paper's own
bridge: pooling, Q-Former, memory, sampling) and lets a causal LM read them in place of a
placeholder in the conversation.  :class:`VideoLLM` holds everything but the bridge; a model
file subclasses it and implements :meth:`VideoLLM.encode_video` and
:attr:`VideoLLM.num_video_tokens`:

.. code-block:: python

    class MyVideoLLM(VideoLLM):
        def __init__(self, config):
            super().__init__(config.llm, MY_TEMPLATE)
            ...                                    # vision tower, bridge, projector

        @property
        def num_video_tokens(self) -> int: ...

        def encode_video(self, video):             # (B, 3, T, H, W) -> (B, N, D_llm)
            ...

The forward pass is ``model(video, input_ids, attention_mask=None) -> logits (B, L, V)``;
``input_ids`` come from :meth:`VideoLLM.prompt` (or :func:`prompt_input_ids`), with the
``<video>`` token repeated :attr:`num_video_tokens` times where the video goes.
Video input everywhere is ``(B, 3, T, H, W)`` frames normalised for the vision tower
(:func:`videozoo.layers.vision.normalise_frames` turns a ``[0, 1]`` clip into that).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from videozoo.data.video_qa import QA_TEXTS
from videozoo.layers.generation import greedy_generate
from videozoo.layers.llm import LLMConfig, build_llm
from videozoo.layers.prompt import IGNORE_INDEX, VIDEO_TOKEN, ConversationTemplate, collate, encode_conversation, \
    splice_video_embeds
from videozoo.layers.tokenizer import CHAT_WORDS, build_word_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["VideoLLM", "tokenizer_for", "prompt_input_ids", "DEFAULT_QUESTION", "ContextLengthError"]

DEFAULT_QUESTION = "which way does the object move?"
"""Question of the random inputs the ``builds`` / ``runs`` checks feed a video LLM."""


class ContextLengthError(ValueError):
    """A prompt plus the tokens to generate does not fit the LLM's context."""


@lru_cache(maxsize=None)
def tokenizer_for(template: ConversationTemplate) -> "PreTrainedTokenizerFast":
    """The word-level tokenizer of the models that use ``template`` (built once, then shared).

    Vocabulary: the template's texts, the video QA task's words
    (:data:`videozoo.data.video_qa.QA_TEXTS`) and :data:`videozoo.layers.tokenizer.CHAT_WORDS`;
    special tokens: ``<video>`` and the template's markers.  Do not modify the returned object.
    """
    return build_word_tokenizer([*template.texts(), *QA_TEXTS, CHAT_WORDS], [VIDEO_TOKEN, *template.markers])


def prompt_input_ids(template: ConversationTemplate, num_video_tokens: int, batch: int,
                     question: str = DEFAULT_QUESTION) -> torch.Tensor:
    """``(batch, L)`` token ids of one prompt repeated (the ``clip_to_input`` of Stage 4 models)."""
    ids, _ = encode_conversation(tokenizer_for(template), template, question, num_video_tokens)
    return torch.tensor(ids, dtype=torch.long).expand(batch, -1).contiguous()


class VideoLLM(nn.Module):
    """Base class of the Stage 4 models: a ``LlamaForCausalLM`` reading video tokens.

    Args:
        llm_config: Shape of the decoder (:class:`videozoo.layers.llm.LLMConfig`).
        template: The paper's conversation format.

    Attributes:
        llm: The ``transformers.LlamaForCausalLM``.
        template: The conversation format.
        tokenizer: :func:`tokenizer_for` ``(template)`` (not a module; not in the state dict).
        video_token_id: Id of ``<video>``.
        stop_token_ids: Ids that end an answer (the template's stop and ``</s>``).

    Raises:
        ValueError: if the template's stop string is not a single token.
    """

    def __init__(self, llm_config: LLMConfig, template: ConversationTemplate) -> None:
        super().__init__()
        self.template = template
        self.tokenizer = tok = tokenizer_for(template)
        stop = tok(template.stop, add_special_tokens=False).input_ids
        if len(stop) != 1:
            raise ValueError(f"template {template.name!r}: stop {template.stop!r} must be one token, got {len(stop)}")
        self.video_token_id = tok.convert_tokens_to_ids(VIDEO_TOKEN)
        self.stop_token_ids = sorted({stop[0], tok.eos_token_id})
        self.llm = build_llm(llm_config, len(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)

    # ------------------------------------------------------------------ the bridge (subclasses)

    @property
    def num_video_tokens(self) -> int:
        """Tokens :meth:`encode_video` produces per clip."""
        raise NotImplementedError

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``video: (B, 3, T, H, W)`` normalised frames -> ``(B, num_video_tokens, D_llm)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    @property
    def context_length(self) -> int:
        """The LLM's context in tokens (``max_position_embeddings``)."""
        return int(self.llm.config.max_position_embeddings)

    def embed(self, video: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings with the video tokens spliced in: ``(B, L)`` ids -> ``(B, L, D_llm)``."""
        text = self.llm.get_input_embeddings()(input_ids)
        return splice_video_embeds(text, input_ids == self.video_token_id, self.encode_video(video))

    def forward(self, video: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits.

        Args:
            video: ``(B, 3, T, H, W)`` normalised frames.
            input_ids: ``(B, L)`` prompt (and answer) ids with :attr:`num_video_tokens`
                ``<video>`` ids per row.
            attention_mask: ``(B, L)`` 1 on real tokens (``None``: all).

        Returns:
            ``(B, L, V)`` logits; position ``i`` predicts token ``i + 1``.
        """
        embeds = self.embed(video, input_ids)
        # the library's default use_cache=True is kept: without a mask, its mask preparation then
        # reads no tensor values, so the paper config also runs on the meta device
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask).logits

    def loss(self, video: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the labelled tokens (the answers), as the papers' instruction tuning."""
        logits = self(video, input_ids, attention_mask)
        return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                           ignore_index=IGNORE_INDEX)

    def prompt(self, questions: Sequence[str], answers: Sequence[str] | None = None,
               histories: Sequence[Sequence[tuple[str, str]]] | None = None,
               padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Encode a batch of conversations (see :func:`videozoo.layers.prompt.encode_conversation`).

        Args:
            questions: One question per video.
            answers: With answers: training batch (labels on the answers).
            histories: Earlier ``(question, answer)`` exchanges per video.
            padding_side: ``"right"`` to train, ``"left"`` to generate.

        Returns:
            ``input_ids``, ``attention_mask``, ``labels``: ``(B, L)`` long on the model's device.
        """
        seqs = [encode_conversation(self.tokenizer, self.template, q, self.num_video_tokens,
                                    answer=None if answers is None else answers[i],
                                    history=() if histories is None else histories[i])
                for i, q in enumerate(questions)]
        device = next(self.parameters()).device
        return {k: v.to(device) for k, v in collate(seqs, self.tokenizer.pad_token_id, padding_side).items()}

    def check_context(self, prompt_length: int, max_new_tokens: int) -> None:
        """Raise :class:`ContextLengthError` when ``prompt_length + max_new_tokens`` exceeds the context."""
        if prompt_length + max_new_tokens > self.context_length:
            raise ContextLengthError(
                f"the prompt has {prompt_length} tokens ({self.num_video_tokens} of them video) and up to "
                f"{max_new_tokens} are to be generated, more than the LLM's context of {self.context_length} tokens")

    @torch.no_grad()
    def generate(self, video: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 max_new_tokens: int = 16, use_cache: bool = True, min_new_tokens: int = 0) -> torch.Tensor:
        """Greedy answer tokens (:func:`videozoo.layers.generation.greedy_generate`).

        Args:
            video: ``(B, 3, T, H, W)``. input_ids, attention_mask: ``(B, L)`` left-padded prompts.
            max_new_tokens: Most tokens generated. use_cache: Use the key/value cache.

        Returns:
            ``(B, n)`` generated ids (rows that stopped are padded after their stop token).

        Raises:
            ContextLengthError: if the prompt and ``max_new_tokens`` exceed the context.
        """
        self.check_context(input_ids.shape[1], max_new_tokens)
        embeds = self.embed(video, input_ids)
        return greedy_generate(self.llm, embeds, attention_mask, max_new_tokens, self.stop_token_ids,
                               self.tokenizer.pad_token_id, use_cache=use_cache, min_new_tokens=min_new_tokens)

    def decode_answers(self, tokens: torch.Tensor) -> list[str]:
        """Generated ids ``(B, n)`` -> answer strings (cut at the first stop token, stripped)."""
        out = []
        stops = set(self.stop_token_ids)
        for row in tokens.tolist():
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            out.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return out

    @torch.no_grad()
    def answer(self, video: torch.Tensor, questions: Sequence[str], max_new_tokens: int = 16,
               histories: Sequence[Sequence[tuple[str, str]]] | None = None) -> list[str]:
        """Answer one question per video in words (greedy, with the key/value cache).

        Raises:
            ContextLengthError: if a prompt and ``max_new_tokens`` exceed the context.
        """
        batch = self.prompt(questions, histories=histories, padding_side="left")
        tokens = self.generate(video, batch["input_ids"], batch["attention_mask"], max_new_tokens=max_new_tokens)
        return self.decode_answers(tokens)
