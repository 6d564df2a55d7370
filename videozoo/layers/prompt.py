"""Prompt building: conversation templates, and splicing video tokens into the LLM's input.

A video LLM sees one sequence of token embeddings: the conversation text, written in the
paper's template, with the video's tokens in place of a placeholder.  As in Hugging Face's
LLaVA and BLIP-2 implementations, the placeholder ``<video>`` is expanded to as many copies of
the ``<video>`` token as the video has tokens (:func:`encode_conversation`); after the
embedding lookup :func:`splice_video_embeds` writes the video tokens over those positions
(``masked_scatter``), which keeps shapes static and works on the meta device.

Each paper's template is data: a :class:`ConversationTemplate` in its model file.  Two
layouts cover the papers here (those of FastChat, which Vicuna and the papers' code use):

* Video-ChatGPT (``video-chatgpt_v1``, Vicuna v1.1 style): ``SYSTEM USER: question
  <vid_start><video><vid_end> ASSISTANT: answer</s>``.
* VideoChat (``###`` separators, Vicuna v0 style): ``###Human: <Video><video></Video>
  ###Human: question ###Assistant: answer###``.

The prompt is ``system + sep``, then ``role: message + sep`` for each user message, then
``assistant_role + ":"``; an answer continues it as ``" " + answer + stop``.  Training labels
cover only the answer and its stop token (the model is not trained to predict the prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["VIDEO_TOKEN", "IGNORE_INDEX", "ConversationTemplate", "build_prompt", "encode_conversation",
           "collate", "splice_video_embeds"]

VIDEO_TOKEN = "<video>"
"""Placeholder of the video in a template, and the token each video position carries."""
IGNORE_INDEX = -100
"""Label of positions that do not count in the loss (``torch.nn.functional.cross_entropy``'s default)."""


@dataclass(frozen=True)
class ConversationTemplate:
    """A paper's conversation format.

    Attributes:
        name: Template name in the paper's code (``"video-chatgpt_v1"``).
        system: System message at the start.
        roles: ``(user, assistant)`` role names.
        sep: Separator after the system message and after each user message.
        stop: What ends an assistant message (the separator after it); generation stops there.
        video_turns: The user messages that open the conversation, with ``{question}`` and
            :data:`VIDEO_TOKEN` where the question and the video go.
        followup_turn: A later user message (``{question}``).
        markers: Template strings kept as single tokens (``"<vid_start>"``, ``"###"``).
        source: Where the format comes from (paper section, file of the authors' code).
        vocabulary: Further words the model reads or writes besides the template's and the
            video QA task's (SlowFocus's timestamps ``"00"``-``"99"``); they join the
            word-level tokenizer's vocabulary of the tiny models.
    """

    name: str
    system: str
    roles: tuple[str, str]
    sep: str
    stop: str
    video_turns: tuple[str, ...]
    followup_turn: str = "{question}"
    markers: tuple[str, ...] = ()
    source: str = ""
    vocabulary: tuple[str, ...] = ()

    def texts(self) -> list[str]:
        """Every literal text of the template and its extra vocabulary (for building a tokenizer's vocabulary)."""
        return [self.system, *self.roles, self.sep, self.stop, *self.video_turns, self.followup_turn, ":",
                *self.vocabulary]


def build_prompt(template: ConversationTemplate, question: str, history: Sequence[tuple[str, str]] = ()) -> str:
    """The prompt text that asks ``question`` about the video, after earlier exchanges.

    Args:
        template: The paper's format.
        question: The user's (latest) question.
        history: Earlier ``(question, answer)`` exchanges of the same conversation; the video
            goes with the first question.

    Returns:
        Text ending with ``"<assistant role>:"``; it contains :data:`VIDEO_TOKEN` once.
    """
    user, assistant = template.roles
    out = template.system + template.sep
    questions = [q for q, _ in history] + [question]
    for i, q in enumerate(questions):
        turns = template.video_turns if i == 0 else (template.followup_turn,)
        for turn in turns:
            out += f"{user}: " + turn.replace("{question}", q) + template.sep
        out += f"{assistant}:"
        if i < len(history):
            out += " " + history[i][1] + template.stop
    return out


def encode_conversation(
    tokenizer: "PreTrainedTokenizerFast",
    template: ConversationTemplate,
    question: str,
    num_video_tokens: int,
    answer: str | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> tuple[list[int], list[int]]:
    """Token ids of a prompt (and answer), with the video placeholder expanded.

    The ids start with the tokenizer's ``bos`` token (as LLaMA's tokenizer adds it); the
    placeholder becomes ``num_video_tokens`` copies of the :data:`VIDEO_TOKEN` id.

    Args:
        tokenizer: A tokenizer that has :data:`VIDEO_TOKEN` as a special token.
        template, question, history: See :func:`build_prompt`.
        num_video_tokens: How many tokens the model's video encoder produces.
        answer: When given, ``" " + answer + template.stop`` is appended and labelled.

    Returns:
        ``(input_ids, labels)``: ``labels`` is :data:`IGNORE_INDEX` on the prompt and equals
        ``input_ids`` on the answer and its stop token.

    Raises:
        ValueError: if the tokenizer lacks the video token, or the prompt does not contain the
            placeholder exactly once.
    """
    video_id = tokenizer.convert_tokens_to_ids(VIDEO_TOKEN)
    if video_id is None or video_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {VIDEO_TOKEN!r} token")
    text = build_prompt(template, question, history)
    parts = text.split(VIDEO_TOKEN)
    if len(parts) != 2:
        raise ValueError(f"template {template.name!r}: the prompt must contain {VIDEO_TOKEN!r} once, "
                         f"found {len(parts) - 1}")
    before, after = (tokenizer(p, add_special_tokens=False).input_ids for p in parts)
    ids = [tokenizer.bos_token_id, *before, *([video_id] * num_video_tokens), *after]
    labels = [IGNORE_INDEX] * len(ids)
    if answer is not None:
        ans = tokenizer(" " + answer + template.stop, add_special_tokens=False).input_ids
        ids += ans
        labels += ans
    return ids, labels


def collate(sequences: Sequence[tuple[list[int], list[int]]], pad_token_id: int,
            padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad ``(input_ids, labels)`` pairs into a batch.

    Args:
        sequences: Pairs from :func:`encode_conversation`.
        pad_token_id: Id written at padded positions.
        padding_side: ``"right"`` for training, ``"left"`` for batched generation (every
            prompt then ends at the last position).

    Returns:
        ``input_ids``, ``attention_mask`` (1 on real tokens) and ``labels``
        (:data:`IGNORE_INDEX` on padding), each ``(B, L)`` long.

    Raises:
        ValueError: unknown ``padding_side``.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    L = max(len(ids) for ids, _ in sequences)
    B = len(sequences)
    input_ids = torch.full((B, L), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((B, L), dtype=torch.long)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, lab) in enumerate(sequences):
        sl = slice(0, len(ids)) if padding_side == "right" else slice(L - len(ids), L)
        input_ids[i, sl] = torch.tensor(ids)
        attention_mask[i, sl] = 1
        labels[i, sl] = torch.tensor(lab)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def splice_video_embeds(inputs_embeds: torch.Tensor, video_mask: torch.Tensor, video_embeds: torch.Tensor) -> torch.Tensor:
    """Write video tokens over the placeholder positions of the text embeddings.

    Args:
        inputs_embeds: ``(B, L, D)`` token embeddings of the prompt.
        video_mask: ``(B, L)`` bool, True at the :data:`VIDEO_TOKEN` positions; every row must
            have ``N`` of them.
        video_embeds: ``(B, N, D)`` video tokens in the LLM's width, in order.

    Returns:
        ``(B, L, D)``: row ``b``'s ``k``-th placeholder holds ``video_embeds[b, k]``.

    Raises:
        ValueError: if a row's number of placeholders differs from ``N`` (not checked on the
            meta device, which has no values).
    """
    if video_mask.device.type != "meta":
        found = video_mask.sum(dim=1)
        if found.shape[0] != video_embeds.shape[0] or bool((found != video_embeds.shape[1]).any()):
            raise ValueError(f"the prompt rows have {found.tolist()} video positions but the video gives "
                             f"{video_embeds.shape[0]} x {video_embeds.shape[1]} tokens")
    return inputs_embeds.masked_scatter(video_mask.unsqueeze(-1), video_embeds.to(inputs_embeds.dtype))
