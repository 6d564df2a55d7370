"""MovieChat: a short-term and a long-term memory of frame tokens in front of a video Q-Former and Vicuna.

Paper: "MovieChat: From Dense Token to Sparse Memory for Long Video Understanding", Song, Chai,
Wang, Zhang, Zhou, Wu, Chi, Guo, Ye, Zhang, Lu, Hwang, Wang, CVPR 2024, arXiv 2307.16449.

Follows Sec. 3 (visual feature extraction, short-term and long-term memory, Algorithm 1
memory consolidation, the extended positional encoding, inference in global and breakpoint
mode) and the authors' release (rese1f/MovieChat: ``MovieChat/models/moviechat.py``
and the release's lmms-eval wrapper, which sets the memory sizes used below):

* Frames go through BLIP-2's frame encoder, EVA ViT-g/14 (39 blocks) and its Q-Former with 32
  learned queries: each frame becomes ``Q = 32`` tokens of width 768 (:meth:`MovieChat.frame_tokens`).
* The video is read in sliding windows of ``C = 8`` frames.  Frames enter the **short-term
  memory**, a first-in-first-out buffer of ``K = 18`` frames.  Every ``K - R = 16`` new frames
  the buffer is **consolidated** (:func:`consolidate`, Algorithm 1: the most similar pair of
  adjacent frames, by the cosine similarity of their tokens, is replaced by its mean, until
  ``R = 2`` frames remain); the ``R`` frames are appended to the **long-term memory** and, as
  in the release, stay at the head of the buffer, so they take part in the next consolidation.
  When the long-term memory holds more than ``R_L = 256`` frames it is consolidated back to
  ``R_L`` by the same rule (the release's ``encode_videoQformer_visual``), so memory stays
  bounded whatever the length of the video (:class:`MovieChatMemory`).
* **Global mode** reads the long-term memory; **breakpoint mode** (a question asked at frame
  ``t``) reads the long-term memory, the short-term memory as it is at ``t`` and the tokens of
  frame ``t`` itself, dropping the oldest short-term frames when they exceed the positions.
* Each memory frame gets a frame position embedding; 32 learned positions are extended to
  ``32^2`` by the hierarchically decomposed position encoding, ``q_{i n + j} = alpha u_i +
  (1 - alpha) u_j``, ``u_i = (p_i - alpha p_0) / (1 - alpha)``, ``alpha = 0.01``
  (:func:`extended_positions`).  A two-block video Q-Former with 32 queries (Video-LLaMA's)
  reads all memory frames' tokens; a linear layer maps its 32 outputs to Vicuna-7B.
* Prompt: ``SYSTEM###Human: <Video><video></Video> question###Assistant: answer###``.

videozoo's own code: the memory, its consolidation, the position extension and the prompt;
the ViT, both Q-Formers (``transformers.Blip2QFormerModel``) and the LLM are library modules
with random weights.  Simplifications: the paper uses frozen pre-trained parts and no
training at all; here the tiny models are trained end to end through the memory (the merge
is an average, so gradients flow; which pair merges is not differentiated).  The release's
``moviechat.py`` ranks pairs with ``scipy.spatial.distance.cosine`` (a distance) under
``max``, which merges the *least* similar pair, and its lmms-eval wrapper uses the mean dot
product of the two frames' tokens; this file follows the paper's text (cosine similarity,
most similar pair).  A stream that ends between two consolidations has its last frames
consolidated too, so that global mode sees the whole video (the release samples a number of
windows that ends exactly on a consolidation).  The release's ``encode_long_video`` extends only
its first 8 learned positions (64 positions); this file extends all ``max_frame_pos`` of them.  On the meta device (parameter counting) the
pair to merge is the first one: there are no values to compare, and the shapes are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from videozoo.layers.llm import LLMConfig
from videozoo.layers.projector import Projector
from videozoo.layers.prompt import ConversationTemplate
from videozoo.layers.qformer import QFormerConfig, QueryTransformer
from videozoo.layers.video_llm import DEFAULT_QUESTION, VideoLLM, prompt_input_ids, tokenizer_for
from videozoo.layers.vision import VisionTowerConfig, build_vision_tower, frame_tokens, normalise_frames
from videozoo.registry import Reported, register_check, register_model

__all__ = ["MovieChatConfig", "MovieChat", "MovieChatMemory", "MOVIECHAT_TEMPLATE", "consolidate",
           "extended_positions", "moviechat"]

MOVIECHAT_TEMPLATE = ConversationTemplate(
    name="moviechat",
    system=("You are able to understand the visual content that the user provides.Follow the instructions "
            "carefully and explain your answers in details."),
    roles=("Human", "Assistant"),
    sep="###",
    stop="###",
    video_turns=("<Video><video></Video> {question}",),
    markers=("<Video>", "</Video>", "###"),
    source="authors' release: the lmms-eval MovieChat wrapper's get_context_emb (Vicuna v0 '###' style)",
)
"""MovieChat's prompt: system message, ``###Human: <Video><video></Video> question###Assistant:``."""


@dataclass
class MovieChatConfig:
    """Hyper-parameters of MovieChat (paper Sec. 3 and 4.1; memory sizes of the authors' release).

    Attributes:
        num_frames: Frames of the standard clip the ``builds`` / ``runs`` / ``video_qa`` checks
            feed (any number can be streamed with :meth:`MovieChat.encode_stream`).
        vision: Frame encoder (EVA ViT-g/14, 39 blocks, as BLIP-2).
        qformer: BLIP-2's frame Q-Former (32 queries, BERT-base).
        video_qformer: The video Q-Former over the memory (32 queries, 2 blocks, cross-attention
            in every block, as Video-LLaMA's).
        max_frame_pos: Learned frame position embeddings ``n`` (32); ``n^2`` after extension.
        position_alpha: ``alpha`` of the hierarchically decomposed positions (0.01).
        window_frames: Frames per sliding window ``C`` (8).
        short_memory_length: Short-term memory ``K`` in frames (18).
        merge_length: Frames ``R`` a consolidation of the short-term memory leaves (2).
        long_memory_length: Long-term memory bound ``R_L`` in frames (256).
        mode: ``"global"`` or ``"breakpoint"`` (the last frame of the clip is the breakpoint).
        llm: The language model (Vicuna-7B, LLaMA-7B's shape).
    """

    num_frames: int = 64
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig.eva_vit_g14)
    qformer: QFormerConfig = field(default_factory=QFormerConfig.blip2)
    video_qformer: QFormerConfig = field(default_factory=lambda: QFormerConfig(
        num_queries=32, num_layers=2, cross_attention_frequency=1))
    max_frame_pos: int = 32
    position_alpha: float = 0.01
    window_frames: int = 8
    short_memory_length: int = 18
    merge_length: int = 2
    long_memory_length: int = 256
    mode: str = "global"
    llm: LLMConfig = field(default_factory=LLMConfig.vicuna_7b)

    @classmethod
    def paper(cls) -> "MovieChatConfig":
        """The release's settings: windows of 8 frames, K = 18, R = 2, R_L = 256, 32 + 32 queries, Vicuna-7B."""
        return cls()

    @classmethod
    def tiny(cls) -> "MovieChatConfig":
        """8 frames of 32x32, a 3-block EVA-style ViT, 8 + 8 queries, windows of 4, K = 8, R = 2, R_L = 8."""
        return cls(num_frames=8, vision=VisionTowerConfig.tiny("eva"), qformer=QFormerConfig.tiny(),
                   video_qformer=dataclasses.replace(QFormerConfig.tiny(), cross_attention_frequency=1),
                   max_frame_pos=8, window_frames=4, short_memory_length=8, merge_length=2, long_memory_length=8,
                   llm=LLMConfig.tiny())

    @property
    def num_video_tokens(self) -> int:
        """The video Q-Former's queries (32 for the paper config), whatever the video's length."""
        return self.video_qformer.num_queries

    def clip_shape(self) -> tuple[int, int, int, int]:
        """Standard videozoo clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the input."""
        return (3, self.num_frames, self.vision.image_size, self.vision.image_size)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample video input ``(3, T, H, W)`` (normalised frames; the prompt ids come with it)."""
        return self.clip_shape()

    def output_shape(self, batch: int) -> tuple[int, int, int]:
        """Logits ``(batch, L, V)`` for the prompt of :func:`clip_to_input`."""
        length = prompt_input_ids(MOVIECHAT_TEMPLATE, self.num_video_tokens, 1).shape[1]
        return (batch, length, max(self.llm.vocab_size, len(tokenizer_for(MOVIECHAT_TEMPLATE))))


# --------------------------------------------------------------------------- the memory


def _most_similar_pair(frames: torch.Tensor) -> int:
    """Index ``m`` of the adjacent pair ``(m, m + 1)`` with the highest cosine similarity.

    ``frames: (N, Q, D)``, ``N >= 2``.  The first pair on ties; ``0`` on the meta device.
    """
    if frames.device.type == "meta":
        return 0
    flat = frames.detach().flatten(1).double()
    sims = nn.functional.cosine_similarity(flat[:-1], flat[1:], dim=1, eps=1e-12)
    return int(torch.argmax(sims))


def consolidate(frames: torch.Tensor, target: int) -> torch.Tensor:
    """Memory consolidation (paper Algorithm 1): merge the most similar adjacent frames until ``target`` remain.

    Args:
        frames: ``(N, Q, D)`` frame tokens in temporal order.
        target: Frames to keep (``>= 1``).

    Returns:
        ``(min(N, target), Q, D)``: each step replaces the adjacent pair with the highest cosine
        similarity of their flattened tokens by the pair's mean.
    """
    if target < 1:
        raise ValueError(f"consolidation target must be >= 1, got {target}")
    while frames.shape[0] > target:
        m = _most_similar_pair(frames)
        merged = (frames[m] + frames[m + 1]) / 2
        frames = torch.cat([frames[:m], merged[None], frames[m + 2:]])
    return frames


def extended_positions(positions: torch.Tensor, alpha: float) -> torch.Tensor:
    """Hierarchically decomposed position encoding: ``(n, D)`` learned positions -> ``(n^2, D)``.

    ``u_i = (p_i - alpha p_0) / (1 - alpha)``, ``q_{i n + j} = alpha u_i + (1 - alpha) u_j``; the
    first ``n`` extended positions are the learned ones.
    """
    n = positions.shape[0]
    u = (positions - alpha * positions[:1]) / (1 - alpha)
    return (alpha * u[:, None] + (1 - alpha) * u[None, :]).reshape(n * n, -1)


class MovieChatMemory:
    """The short-term and long-term memory of one video (paper Sec. 3; state, not a module).

    Args:
        short_length: ``K``, frames the short-term memory holds.
        merge_length: ``R``, frames a consolidation leaves (``< K``).
        long_length: ``R_L``, bound of the long-term memory.

    Attributes:
        short: ``(n_s, Q, D)`` short-term memory (``None`` before the first frame).
        long: ``(n_l, Q, D)`` long-term memory (``None`` before the first consolidation).
        frames_seen: Frames added so far.

    Raises:
        ValueError: if ``merge_length`` is not below ``short_length`` or a length is below 1.
    """

    def __init__(self, short_length: int, merge_length: int, long_length: int) -> None:
        if not 1 <= merge_length < short_length or long_length < 1:
            raise ValueError(f"need 1 <= merge_length < short_length and long_length >= 1, got "
                             f"K={short_length}, R={merge_length}, R_L={long_length}")
        self.short_length, self.merge_length, self.long_length = short_length, merge_length, long_length
        self.short: torch.Tensor | None = None
        self.long: torch.Tensor | None = None
        self.frames_seen = 0
        self._new = 0

    def add(self, frames: torch.Tensor) -> None:
        """Append ``(n, Q, D)`` frame tokens in order, consolidating every ``K - R`` new frames.

        The frames enter one by one (a first-in-first-out buffer of ``K``); they are appended in
        runs up to the next consolidation, which gives the same memory with fewer copies.
        """
        i = 0
        while i < frames.shape[0]:
            take = min(self.short_length - self.merge_length - self._new, frames.shape[0] - i)
            run = frames[i:i + take]
            short = run if self.short is None else torch.cat([self.short, run])
            self.short = short[-self.short_length:]          # first in, first out
            self.frames_seen += take
            self._new += take
            i += take
            if self._new == self.short_length - self.merge_length:
                self._consolidate_short()

    def _consolidate_short(self) -> None:
        self.short = consolidate(self.short, self.merge_length)
        self.long = self.short if self.long is None else torch.cat([self.long, self.short])
        if self.long.shape[0] > self.long_length:
            self.long = consolidate(self.long, self.long_length)
        self._new = 0

    def flush(self) -> None:
        """Consolidate frames added since the last consolidation (the end of a stream)."""
        if self._new:
            self._consolidate_short()

    def read(self, mode: str, current: torch.Tensor | None = None, max_frames: int | None = None) -> torch.Tensor:
        """The memory frames the video Q-Former reads.

        Args:
            mode: ``"global"``: the long-term memory after :meth:`flush`; ``"breakpoint"``: the
                long-term memory, the current short-term memory and ``current``.
            current: ``(Q, D)`` tokens of the frame at the breakpoint (breakpoint mode).
            max_frames: Positions available; breakpoint mode drops the oldest short-term frames
                beyond it (as the release).

        Returns:
            ``(n, Q, D)``.

        Raises:
            ValueError: unknown mode, no frame seen, or breakpoint mode without ``current``.
        """
        if self.frames_seen == 0:
            raise ValueError("the memory has seen no frame")
        if mode == "global":
            self.flush()
            return self.long
        if mode != "breakpoint":
            raise ValueError(f"unknown MovieChat mode {mode!r}; expected 'global' or 'breakpoint'")
        if current is None:
            raise ValueError("breakpoint mode needs the current frame's tokens")
        parts = [] if self.long is None else [self.long]
        short = self.short
        if max_frames is not None:
            keep = max(max_frames - (0 if self.long is None else self.long.shape[0]) - 1, 0)
            short = short[short.shape[0] - keep:] if keep else short[:0]
        return torch.cat([*parts, short, current[None]])

    def nbytes(self) -> int:
        """Bytes held by the two memories' tensors."""
        return sum(t.numel() * t.element_size() for t in (self.short, self.long) if t is not None)


# --------------------------------------------------------------------------- the model


class MovieChat(VideoLLM):
    """MovieChat (arXiv 2307.16449): ``forward(video, input_ids, attention_mask=None) -> logits``.

    ``video``: ``(B, 3, T, H, W)`` normalised frames, streamed through the memory window by
    window (any ``T``); ``input_ids`` ``(B, L)`` from :meth:`prompt` with
    :attr:`num_video_tokens` video positions; logits ``(B, L, V)``.  Long videos that do not fit
    in memory go through :meth:`encode_stream` / :meth:`answer_stream` as an iterator of windows.
    Modules: ``vision_tower`` (``Blip2VisionModel``), ``qformer`` (frame Q-Former),
    ``frame_position`` (learned positions), ``video_qformer``, ``llm_proj``, ``llm``.
    """

    def __init__(self, config: MovieChatConfig) -> None:
        super().__init__(config.llm, MOVIECHAT_TEMPLATE)
        if config.mode not in ("global", "breakpoint"):
            raise ValueError(f"unknown MovieChat mode {config.mode!r}; expected 'global' or 'breakpoint'")
        self.config = config
        self.vision_tower = build_vision_tower(config.vision)
        self.qformer = QueryTransformer(config.qformer, encoder_width=config.vision.width)
        self.frame_position = nn.Embedding(config.max_frame_pos, config.qformer.hidden_size)
        self.video_qformer = QueryTransformer(config.video_qformer, encoder_width=config.qformer.hidden_size)
        self.llm_proj = Projector(config.video_qformer.hidden_size, config.llm.hidden_size, "linear")

    @property
    def num_video_tokens(self) -> int:
        return self.config.num_video_tokens

    def new_memory(self) -> MovieChatMemory:
        """An empty memory with the config's sizes."""
        c = self.config
        return MovieChatMemory(c.short_memory_length, c.merge_length, c.long_memory_length)

    def frame_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` normalised frames -> ``(N, Q, D_q)``: ViT, BLIP-2's LayerNorm, frame Q-Former."""
        feats = frame_tokens(self.vision_tower, frames.transpose(0, 1)[None])[0][0]     # (N, 1 + P, C)
        return self.qformer(self.vision_tower.post_layernorm(feats))

    def read_memory(self, memory_frames: torch.Tensor) -> torch.Tensor:
        """``(B, n, Q, D_q)`` memory frames -> ``(B, num_video_tokens, D_llm)``: positions, video Q-Former, projection.

        Raises:
            ValueError: if ``n`` exceeds the ``max_frame_pos^2`` extended positions.
        """
        B, n, Q, D = memory_frames.shape
        pos = extended_positions(self.frame_position.weight, self.config.position_alpha)
        if n > pos.shape[0]:
            raise ValueError(f"{n} memory frames exceed the {pos.shape[0]} frame positions")
        x = (memory_frames + pos[:n, None]).reshape(B, n * Q, D)
        return self.llm_proj(self.video_qformer(x))

    def _memory_frames(self, memory: MovieChatMemory, current: torch.Tensor | None) -> torch.Tensor:
        return memory.read(self.config.mode, current=current, max_frames=self.config.max_frame_pos ** 2)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, num_video_tokens, D_llm)``: frames in windows through the memory.

        Every frame of a clip is encoded at once (a clip fits in memory); each video then gets
        its own :class:`MovieChatMemory`, fed window by window.
        """
        B, _, T = video.shape[:3]
        tokens = self.frame_tokens(video.transpose(1, 2).flatten(0, 1)).unflatten(0, (B, T))   # (B, T, Q, D)
        frames = []
        for b in range(B):
            memory = self.new_memory()
            for start in range(0, T, self.config.window_frames):
                memory.add(tokens[b, start:start + self.config.window_frames])
            frames.append(self._memory_frames(memory, tokens[b, -1]))
        return self.read_memory(torch.stack(frames))

    @torch.no_grad()
    def stream(self, windows: Iterable[torch.Tensor],
               memory: MovieChatMemory | None = None) -> tuple[MovieChatMemory, torch.Tensor]:
        """Feed a long video window by window, holding one window of frames at a time.

        Args:
            windows: An iterator of ``(n, 3, H, W)`` normalised frames (``n`` = ``window_frames``
                but the last); frames are never all in memory at once.
            memory: A memory to continue (``None``: a new one).

        Returns:
            ``(memory, current)``: the memory and ``(Q, D_q)`` tokens of the last frame (the
            breakpoint).

        Raises:
            ValueError: if the iterator yields no frame.
        """
        memory = memory or self.new_memory()
        current = None
        for window in windows:
            tokens = self.frame_tokens(window)
            memory.add(tokens)
            current = tokens[-1]
        if current is None:
            raise ValueError("the video has no frame")
        return memory, current

    @torch.no_grad()
    def encode_stream(self, windows: Iterable[torch.Tensor]) -> torch.Tensor:
        """Video tokens ``(1, num_video_tokens, D_llm)`` of a long video given as windows (see :meth:`stream`)."""
        memory, current = self.stream(windows)
        return self.read_memory(self._memory_frames(memory, current)[None])

    @torch.no_grad()
    def answer_stream(self, windows: Iterable[torch.Tensor], questions: list[str],
                      max_new_tokens: int = 16) -> list[str]:
        """Answer questions about one long video given as windows (its memory is built once)."""
        tokens = self.encode_stream(windows)
        batch = self.prompt(questions, padding_side="left")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self.check_context(ids.shape[1], max_new_tokens)
        text = self.llm.get_input_embeddings()(ids)
        from videozoo.layers.generation import greedy_generate
        from videozoo.layers.prompt import splice_video_embeds

        embeds = splice_video_embeds(text, ids == self.video_token_id, tokens.expand(len(questions), -1, -1))
        out = greedy_generate(self.llm, embeds, mask, max_new_tokens, self.stop_token_ids,
                              self.tokenizer.pad_token_id)
        return self.decode_answers(out)


def windows_of(frames: Iterable[torch.Tensor], window: int, image_size: int) -> Iterator[torch.Tensor]:
    """Group a lazy stream of ``(3, H, W)`` frames in [0, 1] into normalised ``(n, 3, S, S)`` windows.

    Holds at most ``window`` frames at a time (for :meth:`MovieChat.stream`).
    """
    buf: list[torch.Tensor] = []
    for f in frames:
        buf.append(f)
        if len(buf) == window:
            yield normalise_frames(torch.stack(buf, dim=1)[None], image_size)[0].transpose(0, 1)
            buf = []
    if buf:
        yield normalise_frames(torch.stack(buf, dim=1)[None], image_size)[0].transpose(0, 1)


def clip_to_input(config: MovieChatConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard clip ``(B, 3, T, H, W)`` in [0, 1] -> ``(normalised frames, prompt ids (B, L))``."""
    video = normalise_frames(clip, config.vision.image_size)
    return video, prompt_input_ids(MOVIECHAT_TEMPLATE, config.num_video_tokens, clip.shape[0], DEFAULT_QUESTION)


@register_model(
    "song2024moviechat",
    alias="moviechat",
    stage=4,
    config=MovieChatConfig,
    reported=(Reported("params_m", 7000.0, "authors' release: eval_configs/MovieChat.yaml (a Vicuna-7B LLM)",
                       note="7B names the LLM alone (Vicuna-7B, LLaMA-7B: 6.7 B, arXiv 2302.13971 Table 2); the "
                            "EVA ViT-g (~1.0 B), the two Q-Formers and the projection come on top, so the whole "
                            "model's count is not checked against it",
                       kind="release", tolerance_pct=None),),
    clip_to_input=clip_to_input,
    video_qa={"expected_min_pct": {"direction": 90.0, "colour": 90.0, "shape": 90.0},
              "control_max_pct": {"direction": 40.0}},
    memory={"kind": "long_video", "expected_min_pct": {"colour": 90.0, "shape": 90.0},
            "control_max_pct": {"colour": 40.0}, "peak_rss_growth_max_mib": 16.0},
)
def moviechat(config: MovieChatConfig) -> MovieChat:
    """Build a :class:`MovieChat` from ``config`` (random weights)."""
    return MovieChat(config)


# --------------------------------------------------------------------------- checks


def _reference_check() -> dict:
    """Tiny MovieChat against independent code with the same weights.

    * Memory consolidation, the stream through the short- and long-term memory and the
      extended positions vs the torch statement of :mod:`videozoo.references.moviechat`;
    * frame tokens vs a separately built ``Blip2VisionModel`` + LayerNorm + ``Blip2QFormerModel``;
    * the memory read vs a separately built ``Blip2QFormerModel`` and the projection, and the
      logits vs a separately built ``LlamaForCausalLM`` fed the embeddings concatenated by hand;
    * greedy generation with the key/value cache equals generation without it and a plain
      arg-max loop.
    """
    from transformers import Blip2QFormerModel, Blip2VisionModel, LlamaForCausalLM

    from videozoo.layers.generation import greedy_generate, greedy_generate_uncached
    from videozoo.references import moviechat as ref

    tol = 1e-5
    measured: dict = {"tolerance": tol}
    gen = torch.Generator().manual_seed(0)

    # 1. the memory algorithms on random frames with near-duplicates (so that merges are decided by similarity)
    base = torch.randn(40, 3, 5, generator=gen, dtype=torch.float64)
    frames = base + 0.3 * torch.randn(40, 3, 5, generator=gen, dtype=torch.float64)
    frames[5:9] = base[5] + 0.01 * torch.randn(4, 3, 5, generator=gen, dtype=torch.float64)
    got = consolidate(frames, 7)
    want = torch.stack(ref.consolidate(list(frames), 7))
    measured["max_abs_diff_consolidation"] = (got - want).abs().max().item()
    memory = MovieChatMemory(8, 2, 6)
    for start in range(0, 40, 4):
        memory.add(frames[start:start + 4])
    memory.flush()
    ref_long, ref_short = ref.stream_memory(list(frames), 8, 2, 6)
    same_shape = memory.long.shape[0] == len(ref_long) and memory.short.shape[0] == len(ref_short)
    measured["memory_lengths"] = [memory.long.shape[0], memory.short.shape[0]]
    measured["max_abs_diff_memory_stream"] = (
        max((memory.long - torch.stack(ref_long)).abs().max().item(),
            (memory.short - torch.stack(ref_short)).abs().max().item()) if same_shape else float("inf"))
    p = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    measured["max_abs_diff_positions"] = (extended_positions(p, 0.01) - ref.extended_positions(p, 0.01)).abs().max().item()

    # 2. the model's parts vs separately built library modules
    torch.manual_seed(0)
    cfg = dataclasses.replace(MovieChatConfig.tiny(), num_frames=10)
    model = MovieChat(cfg).eval()
    video, ids = clip_to_input(cfg, torch.rand(2, *cfg.clip_shape(), generator=gen))
    tower = Blip2VisionModel(model.vision_tower.config).eval()
    tower.load_state_dict(model.vision_tower.state_dict())
    qf = Blip2QFormerModel(model.qformer.qformer.config).eval()
    qf.load_state_dict(model.qformer.qformer.state_dict())
    vqf = Blip2QFormerModel(model.video_qformer.qformer.config).eval()
    vqf.load_state_dict(model.video_qformer.qformer.state_dict())
    llm = LlamaForCausalLM(model.llm.config).eval()
    llm.load_state_dict(model.llm.state_dict())
    with torch.no_grad():
        ours = model.frame_tokens(video[0].transpose(0, 1))                      # (T, Q, D)
        img = tower(pixel_values=video[0].transpose(0, 1)).last_hidden_state     # post-LayerNorm
        theirs = qf(query_embeds=model.qformer.query_tokens.expand(cfg.num_frames, -1, -1),
                    encoder_hidden_states=img).last_hidden_state
        measured["max_abs_diff_frame_tokens"] = (ours - theirs).abs().max().item()

        tokens = model.encode_video(video)
        logits = model(video, ids)
        refs = []
        for b in range(2):
            fr = model.frame_tokens(video[b].transpose(0, 1)).double()
            long, _ = ref.stream_memory(list(fr), cfg.short_memory_length, cfg.merge_length, cfg.long_memory_length)
            pos = ref.extended_positions(model.frame_position.weight.detach(), cfg.position_alpha)
            x = (torch.stack(long) + pos[:len(long), None]).float().flatten(0, 1)[None]
            q = vqf(query_embeds=model.video_qformer.query_tokens, encoder_hidden_states=x).last_hidden_state
            refs.append(q @ model.llm_proj.proj.weight.T + model.llm_proj.proj.bias)
        measured["max_abs_diff_video_tokens"] = (tokens - torch.cat(refs)).abs().max().item()

        where = (ids[0] == model.video_token_id).nonzero().flatten()
        start, end = int(where[0]), int(where[-1]) + 1
        text = llm.get_input_embeddings()(ids)
        embeds = torch.cat([text[:, :start], torch.cat(refs), text[:, end:]], dim=1)
        measured["max_abs_diff_logits"] = (logits - llm(inputs_embeds=embeds).logits).abs().max().item()

        stops, pad = model.stop_token_ids, model.tokenizer.pad_token_id
        emb = model.embed(video, ids)
        cached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=True)
        uncached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=False)
        loop = greedy_generate_uncached(model.llm, emb, 12, stops, pad)
    measured["generated_tokens"] = cached.shape[1]
    measured["kv_cache_equals_no_cache"] = bool(torch.equal(cached, uncached))
    measured["kv_cache_equals_argmax_loop"] = bool(torch.equal(cached, loop))
    keys = ("max_abs_diff_consolidation", "max_abs_diff_memory_stream", "max_abs_diff_positions",
            "max_abs_diff_frame_tokens", "max_abs_diff_video_tokens", "max_abs_diff_logits")
    worst = max(measured[k] for k in keys)
    measured["max_abs_diff"] = worst
    same = measured["kv_cache_equals_no_cache"] and measured["kv_cache_equals_argmax_loop"]
    return {
        "passed": bool(worst <= tol and same),
        "summary": (f"consolidation, memory stream and extended positions vs a torch statement of Sec. 3 / "
                    f"Algorithm 1; tiny MovieChat with copied weights vs Blip2VisionModel + Blip2QFormerModel (frame "
                    f"and video Q-Former) + LlamaForCausalLM: max abs diff {worst:.2e} (tolerance {tol:g}); greedy "
                    f"generation with KV cache {'equals' if same else 'differs from'} generation without cache "
                    f"({cached.shape[1]} tokens)"),
        "reference": "videozoo.references.moviechat (torch statement of the memory); transformers.Blip2VisionModel; "
                     "transformers.Blip2QFormerModel; transformers.LlamaForCausalLM",
        **measured,
    }


register_check("song2024moviechat", "reference", evidence="independent-reference")(_reference_check)
