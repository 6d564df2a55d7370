"""SlowFocus: sparse frames of the whole video, dense frames of the segment the question is about, mixed.

Paper: "SlowFocus: Enhancing Fine-grained Temporal Understanding in Video LLM", Nie, Ding,
Wang, Guo, Han, Xu, Zhang, NeurIPS 2024, arXiv 2602.03589.

Follows Sec. 3 (the SlowFocus mechanism: relevant segment grounding, mixed-frequency sampling,
the temporal encoder and the multi-frequency mixing attention) and the authors' release
(fudan-zvg/SlowFocus: ``slowfocus/model/llava_arch.py``, ``slowfocus/eval/model_fineaction_tsearch.py``,
``scripts/video/train/stage_3_v7b_224_fps1.sh``), which builds on LLaMA-VID:

* **Low-frequency frames** ``V_L``: every ``s``-th frame of the whole video
  (:func:`low_frequency_indices`; 1 frame per second in the release, at most ``N_L``).
* **Temporal grounding** (:meth:`SlowFocus.ground`): the LLM, shown ``V_L`` only, is asked
  ``"could you provide the time interval helpful to reason <question>"`` and answers with two
  timestamps in ``N_g = 100`` bins, ``"from 23 to 45"`` (:func:`parse_segments`).
* **High-frequency frames** ``V_H``: ``N_H = 20`` frames spaced evenly over that segment
  (:func:`high_frequency_indices`); the two index lists are merged in time order
  (:func:`merge_indices`).
* Each frame: CLIP ViT-L/14 penultimate-layer patch features, average-pooled on a ``g x g`` grid
  (``g = 8``: 64 tokens per frame, the release's ``grid:8``); the **temporal encoder** adds a
  learned embedding of the frame's time, row ``floor(N t)`` of ``N = 1000`` rows.
* **Multi-frequency mixing attention** (:class:`MultiFrequencyMixing`): the high-frequency tokens
  attend to the low-frequency ones and vice versa (each side through its own linear projection
  for the attention weights), and each side adds what it read (the release's bidirectional
  ``mix_attn``).
* A two-layer MLP projector (``mlp2x_gelu``) maps every token to Vicuna-7B v1.5; the question
  of the answering pass ends with ``" Additional temporal information to focus on: from 23 to
  45."`` when a segment was found.  Template: Vicuna v1.1 (``USER: <video>\\nquestion
  ASSISTANT: answer</s>``).

videozoo's own code: the sampling, the grounding answer's format and parsing, the temporal
encoder, the mixing and the prompt; the ViT and the LLM are library modules.  Simplifications:
LLaMA-VID's text-conditioned context token per frame (a BERT Q-Former reading the question) is
left out, each frame is its ``g^2`` content tokens; the number of frames is fixed, ``N_L`` low
and ``N_H`` high (the release takes as many low-frequency frames as the video has seconds, up to
its maximum, and fewer high-frequency frames when the segment is shorter than ``N_H``; here
a short segment repeats frames); the release's mixing scales only one of its two attention
products by ``1 / sqrt(C)`` (``weight2 - weight2 / ...`` is a no-op), this file scales both;
the paper trains in three stages with frozen or LoRA-tuned parts, the tiny models here are
trained end to end.  :meth:`SlowFocus.forward` (training, the ``video_qa`` check) and
:meth:`SlowFocus.answer` without ``ground=True`` focus on the whole clip (segment ``[0, 1]``);
``ground=True`` runs the two passes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from videozoo.layers.generation import greedy_generate
from videozoo.layers.llm import LLMConfig
from videozoo.layers.projector import Projector
from videozoo.layers.prompt import ConversationTemplate, collate, encode_conversation, splice_video_embeds
from videozoo.layers.video_llm import DEFAULT_QUESTION, VideoLLM, prompt_input_ids, tokenizer_for
from videozoo.layers.vision import VisionTowerConfig, build_vision_tower, frame_tokens, normalise_frames
from videozoo.registry import Reported, register_check, register_model

__all__ = ["SlowFocusConfig", "SlowFocus", "MultiFrequencyMixing", "VICUNA_V1", "low_frequency_indices",
           "high_frequency_indices", "merge_indices", "grid_pool", "format_timestamp", "format_segment",
           "parse_segments", "GROUNDING_QUESTION", "slowfocus"]

GROUNDING_QUESTION = "could you provide the time interval helpful to reason {question}"
"""The grounding pass's question (the release's ``inference_prompt_search``)."""
FOCUS_SUFFIX = " additional temporal information to focus on: {segments}."
"""Appended to the question of the answering pass (the release's wording, lower-cased)."""

VICUNA_V1 = ConversationTemplate(
    name="vicuna_v1",
    system=("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
            "detailed, and polite answers to the user's questions."),
    roles=("USER", "ASSISTANT"),
    sep=" ",
    stop="</s>",
    video_turns=("<video>\n{question}",),
    source="authors' release: --conv_mode vicuna_v1 (LLaVA's conv_vicuna_v1) in scripts/video/eval",
    vocabulary=tuple(f"{i:02d}" for i in range(100)) + ("interval", "helpful", "reason", "additional", "temporal",
                                                       "information", "focus", "provide", "time"),
)
"""Vicuna v1.1's conversation format, as SlowFocus's evaluation uses it; its vocabulary adds the
timestamps ``00``-``99`` and the words of the grounding question for the word-level tokenizer."""


@dataclass
class SlowFocusConfig:
    """Hyper-parameters of SlowFocus (the release's stage-3 script and evaluation defaults).

    Attributes:
        num_frames: Frames ``T`` of the input clip (one per second of video in the release: 100).
        low_frames: ``N_L`` low-frequency frames (the evaluation's ``max_frame_num`` default, 25);
            ``num_frames`` must be a multiple.
        high_frames: ``N_H`` high-frequency frames of the segment (``search_sampling``, 20).
        vision: Frame encoder (CLIP ViT-L/14 at 224 px).
        feature_layer: CLIP block whose output is used (-2).
        grid: Tokens per frame ``grid^2`` (``grid:8``: 64).
        temporal_bins: Rows ``N`` of the temporal embedding (1000).
        grounding_bins: Bins of the timestamps in the grounding answer (100: ``"00"``-``"99"``).
        mixing: Use the multi-frequency mixing attention.
        projector: ``"mlp2x_gelu"``.
        llm: Vicuna-7B v1.5 (LLaMA-2-7B's shape, 4096-token context).
    """

    num_frames: int = 100
    low_frames: int = 25
    high_frames: int = 20
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig.clip_vit_l14)
    feature_layer: int = -2
    grid: int = 8
    temporal_bins: int = 1000
    grounding_bins: int = 100
    mixing: bool = True
    projector: str = "mlp2x_gelu"
    llm: LLMConfig = field(default_factory=lambda: dataclasses.replace(
        LLMConfig.vicuna_7b(), max_position_embeddings=4096, name="Vicuna-7B v1.5"))

    @classmethod
    def paper(cls) -> "SlowFocusConfig":
        """The release: 100 frames, 25 low + 20 high, CLIP ViT-L/14, 8x8 grid, N = 1000, Vicuna-7B v1.5."""
        return cls()

    @classmethod
    def tiny(cls) -> "SlowFocusConfig":
        """16 frames of 32x32, 4 low + 4 high, a 3-block CLIP of width 64 (4x4 patches, 2x2 grid), a tiny LLM."""
        return cls(num_frames=16, low_frames=4, high_frames=4, vision=VisionTowerConfig.tiny("clip"), grid=2,
                   temporal_bins=100, llm=LLMConfig.tiny())

    @property
    def num_video_tokens(self) -> int:
        """``(N_L + N_H) g^2`` (2880 for the paper config)."""
        return (self.low_frames + self.high_frames) * self.grid ** 2

    def clip_shape(self) -> tuple[int, int, int, int]:
        """Standard videozoo clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the input."""
        return (3, self.num_frames, self.vision.image_size, self.vision.image_size)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample video input ``(3, T, H, W)`` (normalised frames; the prompt ids come with it)."""
        return self.clip_shape()

    def output_shape(self, batch: int) -> tuple[int, int, int]:
        """Logits ``(batch, L, V)`` for the prompt of :func:`clip_to_input`."""
        length = prompt_input_ids(VICUNA_V1, self.num_video_tokens, 1).shape[1]
        return (batch, length, max(self.llm.vocab_size, len(tokenizer_for(VICUNA_V1))))


# --------------------------------------------------------------------------- mixed-frequency sampling


def low_frequency_indices(num_frames: int, max_frames: int, video_fps: float = 1.0,
                          sampling_fps: float = 1.0) -> list[int]:
    """Frames of the sparse, whole-video sampling ``V_L`` (the release's ``video_sampling``).

    Every ``s``-th frame from the first, ``s = round(video_fps / sampling_fps)`` (at least 1), or
    ``s = round(num_frames / max_frames)`` when the first gives more than ``max_frames`` frames.
    """
    step = min(max(round(video_fps / sampling_fps), 1), num_frames)
    if num_frames / step > max_frames:
        step = round(num_frames / max_frames)
    return list(range(0, num_frames, step))


def high_frequency_indices(start: float, end: float, num_frames: int, n: int) -> list[int]:
    """``n`` frames spaced evenly over the segment ``[start, end]`` (fractions of the video), ``V_H``.

    Frames ``round(start T)`` to ``min(round(end T), T - 1)``, ``numpy.linspace`` truncated to
    integers (a segment shorter than ``n`` frames repeats some).

    Raises:
        ValueError: if ``start > end`` or either is outside ``[0, 1]``.
    """
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"segment [{start}, {end}] is not inside [0, 1]")
    i0 = round(start * num_frames)
    i1 = min(round(end * num_frames), num_frames - 1)
    return [int(v) for v in np.linspace(min(i0, i1), i1, num=n)]


def merge_indices(low: Sequence[int], high: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Merge the sorted low- and high-frequency frame lists in time order.

    Returns:
        ``(frames, low_positions, high_positions)``: the merged frame indices, and where each
        kind's frames are in it (a low-frequency frame comes first on equal indices, as the
        release's two-pointer merge places them).
    """
    order = sorted(range(len(low) + len(high)), key=lambda k: (low[k] if k < len(low) else high[k - len(low)],
                                                                 k >= len(low)))
    frames = [low[k] if k < len(low) else high[k - len(low)] for k in order]
    low_pos = [p for p, k in enumerate(order) if k < len(low)]
    high_pos = [p for p, k in enumerate(order) if k >= len(low)]
    return frames, low_pos, high_pos


def grid_pool(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """Average-pool patch tokens on a ``grid x grid`` grid: ``(..., s * s, C)`` -> ``(..., grid^2, C)``.

    Raises:
        ValueError: if the side ``s`` is not a multiple of ``grid``.
    """
    *lead, n, c = tokens.shape
    s = int(round(math.sqrt(n)))
    if s * s != n or s % grid:
        raise ValueError(f"{n} patch tokens do not pool on a {grid}x{grid} grid")
    x = tokens.reshape(-1, s, s, c).permute(0, 3, 1, 2)
    x = nn.functional.avg_pool2d(x, kernel_size=s // grid)
    return x.permute(0, 2, 3, 1).reshape(*lead, grid * grid, c)


def format_timestamp(fraction: float, bins: int) -> str:
    """A time in the video (fraction of its duration) as a grounding answer writes it: ``0.23`` -> ``"23"``."""
    return f"{min(round(fraction * bins), bins - 1):0{len(str(bins)) - 1}d}"


def format_segment(start: float, end: float, bins: int) -> str:
    """The grounding answer for a segment: ``"from 23 to 45"``."""
    return f"from {format_timestamp(start, bins)} to {format_timestamp(end, bins)}"


_SEGMENT = re.compile(r"(\d{2,4}) (to|and) (\d{2,4})")


def parse_segments(text: str) -> list[tuple[float, float]]:
    """Segments named in a grounding answer: every ``"A to B"`` / ``"A and B"`` with ``A < B``.

    A timestamp of ``k`` digits is read as a fraction ``A / 10^k`` (the release's ``segment_search``).
    """
    out = []
    for m in _SEGMENT.finditer(text):
        a, b = m.group(1), m.group(3)
        if int(a) < int(b):
            out.append((int(a) / 10 ** len(a), int(b) / 10 ** len(b)))
    return out


# --------------------------------------------------------------------------- the model


class MultiFrequencyMixing(nn.Module):
    """Multi-frequency mixing attention: low- and high-frequency tokens read each other.

    ``H <- H + softmax(P_h(H) P_l(L)^T / sqrt(C)) L`` and ``L <- L + softmax(P_l(L) P_h(H)^T /
    sqrt(C)) H``, both from the tokens before mixing; ``P_l``, ``P_h`` are linear layers.

    Args:
        width: Token width ``C``.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.low_proj = nn.Linear(width, width)
        self.high_proj = nn.Linear(width, width)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``low: (B, n_l, C)``, ``high: (B, n_h, C)`` -> the mixed ``(low, high)``, same shapes."""
        pl, ph = self.low_proj(low), self.high_proj(high)
        sdpa = nn.functional.scaled_dot_product_attention
        return low + sdpa(pl, ph, high), high + sdpa(ph, pl, low)


class SlowFocus(VideoLLM):
    """SlowFocus (arXiv 2602.03589): ``forward(video, input_ids, attention_mask=None) -> logits``.

    ``video``: ``(B, 3, T, H, W)`` frames normalised with CLIP's mean and std; ``input_ids``
    ``(B, L)`` from :meth:`prompt`; logits ``(B, L, V)``.  The forward pass focuses on the whole
    clip; :meth:`answer` with ``ground=True`` first grounds the question (see the module docstring).
    Modules: ``vision_tower`` (``CLIPVisionModel``), ``temporal_embedding``, ``mixing``,
    ``projector``, ``llm`` (``LlamaForCausalLM``).

    Raises:
        ValueError: if ``num_frames`` is not a multiple of ``low_frames``, or the patch grid does
            not pool to ``grid``.
    """

    def __init__(self, config: SlowFocusConfig) -> None:
        super().__init__(config.llm, VICUNA_V1)
        if config.num_frames % config.low_frames:
            raise ValueError(f"num_frames {config.num_frames} is not a multiple of low_frames {config.low_frames}")
        side = config.vision.image_size // config.vision.patch_size
        if side % config.grid:
            raise ValueError(f"{side}x{side} patches do not pool on a {config.grid}x{config.grid} grid")
        self.config = config
        self.vision_tower = build_vision_tower(config.vision)
        self.temporal_embedding = nn.Embedding(config.temporal_bins, config.vision.width)
        self.mixing = MultiFrequencyMixing(config.vision.width) if config.mixing else None
        self.projector = Projector(config.vision.width, config.llm.hidden_size, config.projector)

    @property
    def num_video_tokens(self) -> int:
        return self.config.num_video_tokens

    @property
    def num_low_tokens(self) -> int:
        """Video tokens of the grounding pass (low-frequency frames only)."""
        return self.config.low_frames * self.config.grid ** 2

    def low_indices(self, num_frames: int) -> list[int]:
        """``V_L`` of a clip of ``num_frames`` frames (one frame per second, at most ``low_frames``)."""
        return low_frequency_indices(num_frames, self.config.low_frames)

    def frame_content(self, video: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Tokens of selected frames: ``(B, 3, T, H, W)``, ``(B, n)`` frame indices -> ``(B, n, g^2, C)``.

        CLIP patch features of ``feature_layer`` (no class token), grid pooling, plus the
        temporal embedding of each frame's time.
        """
        B, _, T = video.shape[:3]
        frames = video[torch.arange(B)[:, None], :, indices].transpose(1, 2)        # (B, 3, n, H, W)
        feats = frame_tokens(self.vision_tower, frames, layers=(self.config.feature_layer,))[0][:, :, 1:]
        rows = torch.clamp(torch.floor(indices.to(torch.float64) / T * self.config.temporal_bins).long(),
                           0, self.config.temporal_bins - 1)
        return grid_pool(feats, self.config.grid) + self.temporal_embedding(rows)[:, :, None]

    def sample(self, num_frames: int,
               segments: Sequence[tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixed-frequency sampling of a batch: ``(frames (B, N), low positions (B, N_L), high positions (B, N_H))``."""
        low = self.low_indices(num_frames)
        rows = [merge_indices(low, high_frequency_indices(s, e, num_frames, self.config.high_frames))
                for s, e in segments]
        return tuple(torch.tensor([r[i] for r in rows], dtype=torch.long) for i in range(3))

    def encode_video(self, video: torch.Tensor, segments: Sequence[tuple[float, float]] | None = None) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, (N_L + N_H) g^2, D_llm)``: mixed-frequency tokens in time order.

        Args:
            video: Normalised frames.
            segments: The segment ``(start, end)`` to sample densely for each video, fractions of
                its duration (``None``: the whole clip, ``(0, 1)``).
        """
        B, _, T = video.shape[:3]
        segments = [(0.0, 1.0)] * B if segments is None else list(segments)
        frames, low_pos, high_pos = (t.to(video.device) for t in self.sample(T, segments))
        tokens = self.frame_content(video, frames)                                  # (B, N, G, C)
        if self.mixing is not None:
            b = torch.arange(B, device=video.device)[:, None]
            G = tokens.shape[2]
            low, high = self.mixing(tokens[b, low_pos].flatten(1, 2), tokens[b, high_pos].flatten(1, 2))
            mixed = torch.cat([low.unflatten(1, (-1, G)), high.unflatten(1, (-1, G))], dim=1)
            inverse = torch.argsort(torch.cat([low_pos, high_pos], dim=1), dim=1)
            tokens = mixed[b, inverse]
        return self.projector(tokens).flatten(1, 2)

    def encode_low(self, video: torch.Tensor) -> torch.Tensor:
        """Tokens of the grounding pass: ``(B, 3, T, H, W)`` -> ``(B, N_L g^2, D_llm)``, low-frequency frames only."""
        B, _, T = video.shape[:3]
        low = torch.tensor(self.low_indices(T), device=video.device).expand(B, -1)
        return self.projector(self.frame_content(video, low)).flatten(1, 2)

    def _generate(self, tokens: torch.Tensor, questions: Sequence[str], num_video_tokens: int,
                  max_new_tokens: int) -> list[str]:
        seqs = [encode_conversation(self.tokenizer, self.template, q, num_video_tokens) for q in questions]
        batch = collate(seqs, self.tokenizer.pad_token_id, "left")
        ids, mask = batch["input_ids"].to(tokens.device), batch["attention_mask"].to(tokens.device)
        self.check_context(ids.shape[1], max_new_tokens)
        embeds = splice_video_embeds(self.llm.get_input_embeddings()(ids), ids == self.video_token_id, tokens)
        out = greedy_generate(self.llm, embeds, mask, max_new_tokens, self.stop_token_ids, self.tokenizer.pad_token_id)
        return self.decode_answers(out)

    @torch.no_grad()
    def ground(self, video: torch.Tensor, questions: Sequence[str],
               max_new_tokens: int = 8) -> list[tuple[float, float] | None]:
        """The grounding pass: the segment each question is about, from the low-frequency frames.

        Returns:
            The first segment the LLM names for each video, or ``None`` when its answer names none.
        """
        text = self._generate(self.encode_low(video), [GROUNDING_QUESTION.format(question=q) for q in questions],
                              self.num_low_tokens, max_new_tokens)
        return [next(iter(parse_segments(t)), None) for t in text]

    @torch.no_grad()
    def answer(self, video: torch.Tensor, questions: Sequence[str], max_new_tokens: int = 16,
               histories: Sequence[Sequence[tuple[str, str]]] | None = None, ground: bool = False) -> list[str]:
        """Answer one question per video.

        Args:
            ground: Run the grounding pass first, sample its segment densely and add it to the
                question (SlowFocus's inference); ``False``: focus on the whole clip, in one pass
                (as :meth:`forward` trains).

        Raises:
            ContextLengthError: if a prompt and ``max_new_tokens`` exceed the context.
        """
        if not ground:
            return super().answer(video, questions, max_new_tokens=max_new_tokens, histories=histories)
        segments = self.ground(video, questions)
        focused = [q if s is None else q + FOCUS_SUFFIX.format(segments=format_segment(*s, self.config.grounding_bins))
                   for q, s in zip(questions, segments)]
        tokens = self.encode_video(video, [(0.0, 1.0) if s is None else s for s in segments])
        return self._generate(tokens, focused, self.num_video_tokens, max_new_tokens)


def clip_to_input(config: SlowFocusConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard clip ``(B, 3, T, H, W)`` in [0, 1] -> ``(normalised frames, prompt ids (B, L))``."""
    video = normalise_frames(clip, config.vision.image_size)
    return video, prompt_input_ids(VICUNA_V1, config.num_video_tokens, clip.shape[0], DEFAULT_QUESTION)


@register_model(
    "nie2024slowfocus",
    alias="slowfocus",
    stage=4,
    config=SlowFocusConfig,
    reported=(Reported("params_m", 7000.0, "authors' release: slowfocus-vid-7b (scripts/video/train, Vicuna-7B v1.5)",
                       note="7B names the LLM alone (Vicuna-7B v1.5, LLaMA-2-7B: 6.7 B); CLIP ViT-L/14 (0.3 B), "
                            "the projector, the temporal embedding and the mixing come on top, so the whole model's "
                            "count is not checked against it",
                       kind="release", tolerance_pct=None),),
    clip_to_input=clip_to_input,
    video_qa={"expected_min_pct": {"direction": 90.0, "colour": 90.0, "shape": 90.0},
              "control_max_pct": {"direction": 40.0}},
)
def slowfocus(config: SlowFocusConfig) -> SlowFocus:
    """Build a :class:`SlowFocus` from ``config`` (random weights)."""
    return SlowFocus(config)


# --------------------------------------------------------------------------- checks


def _reference_check() -> dict:
    """Tiny SlowFocus against independent code with the same weights.

    * Sampling (low- and high-frequency indices, the merge), timestamps and the parsing of a
      grounding answer vs the torch statement of :mod:`videozoo.references.slowfocus`;
    * the video tokens vs a separately built ``transformers.CLIPVisionModel`` run frame by frame,
      followed by the written-out grid pooling, temporal embedding and mixing (float64) and the
      projector;
    * logits vs a separately built ``LlamaForCausalLM`` fed the embeddings concatenated by hand;
    * greedy generation with the key/value cache equals generation without it and a plain
      arg-max loop.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaForCausalLM

    from videozoo.layers.generation import greedy_generate_uncached
    from videozoo.references import slowfocus as ref

    tol = 1e-5
    measured: dict = {"tolerance": tol}
    gen = torch.Generator().manual_seed(0)

    # 1. sampling and timestamps
    cases = [(100, 25, 1.0, 1.0), (16, 4, 1.0, 1.0), (90, 25, 30.0, 1.0), (37, 100, 2.0, 1.0)]
    low_ok = all(low_frequency_indices(*c) == ref.low_frequency_indices(*c) for c in cases)
    segs = [(0.0, 1.0), (0.23, 0.45), (0.5, 0.52), (0.9, 1.0)]
    high_ok = all(high_frequency_indices(s, e, T, n) == ref.high_frequency_indices(s, e, T, n)
                  for s, e in segs for T, n in ((100, 20), (16, 4), (37, 7)))
    merge_ok = all(merge_indices(ref.low_frequency_indices(T, nl), ref.high_frequency_indices(s, e, T, nh))
                   == ref.merge(ref.low_frequency_indices(T, nl), ref.high_frequency_indices(s, e, T, nh))
                   for s, e in segs for T, nl, nh in ((100, 25, 20), (16, 4, 4)))
    stamps_ok = all(format_timestamp(f, b) == ref.timestamp(f, b) for f in (0.0, 0.234, 0.5, 0.999, 1.0)
                    for b in (10, 100, 1000))
    answers = ["from 23 to 45", "between 05 and 61, then 70 to 90", "from 45 to 23", "no segment", "from 010 to 200"]
    parse_ok = all(parse_segments(a) == ref.segments_in(a) for a in answers)
    measured.update(low_indices_equal=low_ok, high_indices_equal=high_ok, merge_equal=merge_ok,
                    timestamps_equal=stamps_ok, parsing_equal=parse_ok)

    # 2. tokens and logits
    torch.manual_seed(0)
    cfg = SlowFocusConfig.tiny()
    model = SlowFocus(cfg).eval()
    with torch.no_grad():
        for p in model.mixing.parameters():
            p.mul_(4.0)   # sharper attention, so that a wrong pairing shows
    video, ids = clip_to_input(cfg, torch.rand(2, *cfg.clip_shape(), generator=gen))
    segments = [(0.1, 0.4), (0.55, 0.95)]
    v = cfg.vision
    tower = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=v.width, intermediate_size=v.mlp_dim, num_hidden_layers=v.depth, num_attention_heads=v.heads,
        image_size=v.image_size, patch_size=v.patch_size, layer_norm_eps=v.layer_norm_eps,
        hidden_act="quick_gelu")).eval()
    tower.load_state_dict(model.vision_tower.state_dict())
    llm = LlamaForCausalLM(model.llm.config).eval()
    llm.load_state_dict(model.llm.state_dict())
    T = cfg.num_frames
    table = model.temporal_embedding.weight.detach().double()
    mw = {k: p.detach().double() for k, p in model.mixing.state_dict().items()}

    def reference_tokens(segments: list[tuple[float, float]]) -> torch.Tensor:
        out = []
        for b, (s, e) in enumerate(segments):
            frames, low_pos, high_pos = ref.merge(ref.low_frequency_indices(T, cfg.low_frames),
                                                  ref.high_frequency_indices(s, e, T, cfg.high_frames))
            rows = ref.temporal_rows(frames, T, cfg.temporal_bins)
            toks = []
            for f, r in zip(frames, rows):
                feats = tower(pixel_values=video[b:b + 1, :, f], output_hidden_states=True).hidden_states[-2][0, 1:]
                toks.append(ref.grid_pool(feats, cfg.grid) + table[r])
            toks = torch.stack(toks)                                              # (N, G, C)
            G, C = toks.shape[1:]
            low, high = ref.mix(toks[low_pos].reshape(-1, C), toks[high_pos].reshape(-1, C), mw["low_proj.weight"],
                                mw["low_proj.bias"], mw["high_proj.weight"], mw["high_proj.bias"])
            toks[low_pos] = low.reshape(len(low_pos), G, C)
            toks[high_pos] = high.reshape(len(high_pos), G, C)
            out.append(model.projector(toks.float()).flatten(0, 1))
        return torch.stack(out)

    with torch.no_grad():
        measured["max_abs_diff_video_tokens"] = (model.encode_video(video, segments)
                                                 - reference_tokens(segments)).abs().max().item()
        whole = reference_tokens([(0.0, 1.0)] * 2)       # the forward pass focuses on the whole clip
        logits = model(video, ids)
        where = (ids[0] == model.video_token_id).nonzero().flatten()
        start, end = int(where[0]), int(where[-1]) + 1
        text = llm.get_input_embeddings()(ids)
        embeds = torch.cat([text[:, :start], whole, text[:, end:]], dim=1)
        measured["max_abs_diff_logits"] = (logits - llm(inputs_embeds=embeds).logits).abs().max().item()

        stops, pad = model.stop_token_ids, model.tokenizer.pad_token_id
        emb = model.embed(video, ids)
        cached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=True)
        uncached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=False)
        loop = greedy_generate_uncached(model.llm, emb, 12, stops, pad)
    measured["generated_tokens"] = cached.shape[1]
    measured["kv_cache_equals_no_cache"] = bool(torch.equal(cached, uncached))
    measured["kv_cache_equals_argmax_loop"] = bool(torch.equal(cached, loop))
    worst = max(measured["max_abs_diff_video_tokens"], measured["max_abs_diff_logits"])
    measured["max_abs_diff"] = worst
    exact = low_ok and high_ok and merge_ok and stamps_ok and parse_ok
    same = measured["kv_cache_equals_no_cache"] and measured["kv_cache_equals_argmax_loop"]
    return {
        "passed": bool(worst <= tol and exact and same),
        "summary": (f"sampling, merge, timestamps and answer parsing {'equal' if exact else 'differ from'} a torch "
                    f"statement of Sec. 3 and the release; tiny SlowFocus with copied weights vs "
                    f"transformers.CLIPVisionModel + written-out grid pooling, temporal embedding and mixing "
                    f"attention, "
                    f"and vs transformers.LlamaForCausalLM: max abs diff {worst:.2e} (tolerance {tol:g}); greedy "
                    f"generation with KV cache {'equals' if same else 'differs from'} generation without cache "
                    f"({cached.shape[1]} tokens)"),
        "reference": "videozoo.references.slowfocus (torch statement of the sampling and mixing); "
                     "transformers.CLIPVisionModel; transformers.LlamaForCausalLM",
        **measured,
    }


register_check("nie2024slowfocus", "reference", evidence="independent-reference")(_reference_check)
