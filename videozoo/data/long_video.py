"""Synthetic long videos, rendered one frame at a time: early evidence, and objects to count.

Two scenes of the Stage 4 ``memory`` check (:mod:`videozoo.verify.memory`), drawn like the
video QA clips of :func:`videozoo.data.synthetic.make_shape_clips` (coloured squares, circles and
triangles on a textured, noisy grey background) but never held whole: a frame is rendered when
it is asked for, from the scene's parameters and the frame index, so a 10,000-frame video costs
the memory of one frame.

* :class:`EarlyEvidenceVideo`: one coloured shape is visible during the first ``evidence_frac``
  of the video (5 % by default), then only the background; questions ask its colour and shape,
  which only a model that remembers the beginning can answer.
* :class:`CountingVideo`: several shapes appear, leave and come back over a sequence of segments
  (a segment is ``segment_frames`` frames); questions ask how many objects of a colour and shape
  appear.  Two objects of the same colour and shape differ in size, so that a re-identification
  by appearance can tell them apart; simultaneously visible objects never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from videozoo.data.synthetic import _COLOUR_RGB, COLOUR_NAMES, SHAPE_NAMES, _shape_coverage

__all__ = ["EarlyEvidenceVideo", "CountingVideo", "SceneObject", "NUMBER_WORDS", "number_word", "render_frame"]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
"""Answers of counting questions (the tokenizer's vocabulary has these words)."""


def number_word(n: int) -> str:
    """``0`` -> ``"zero"`` ... ``10`` -> ``"ten"``; larger counts as digits."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def _background(size: int, seed: int) -> tuple[torch.Tensor, float]:
    """The scene's fixed background ``(3, size, size)`` (grey level plus a smooth texture) and its level."""
    gen = torch.Generator().manual_seed(seed)
    grey = 0.12 + 0.2 * float(torch.rand(1, generator=gen))
    tex = torch.rand(1, 1, 6, 6, generator=gen)
    tex = torch.nn.functional.interpolate(tex, size=(size, size), mode="bilinear", align_corners=False)[0]
    return (grey + 0.12 * (tex - 0.5)).expand(3, size, size).contiguous(), grey


def render_frame(background: torch.Tensor, objects: list[tuple[int, torch.Tensor, float, float, float]],
                 noise_seed: int) -> torch.Tensor:
    """One frame ``(3, H, W)`` in [0, 1].

    Args:
        background: ``(3, H, W)`` background.
        objects: ``(shape index, rgb (3,), half-size px, centre x, centre y)`` of each visible object.
        noise_seed: Seed of the frame's pixel noise (grey: the same in the three channels).
    """
    _, H, W = background.shape
    frame = background.clone()
    ys = torch.arange(H, dtype=torch.float32)[:, None]
    xs = torch.arange(W, dtype=torch.float32)[None, :]
    for shape, rgb, half, cx, cy in objects:
        dx = (xs - cx).expand(H, W)[None, None]
        dy = (ys - cy).expand(H, W)[None, None]
        cov = _shape_coverage(torch.tensor([shape]), dx, dy, torch.tensor([half]))[0, 0]    # (H, W)
        frame = torch.addcmul(frame, cov[None], rgb[:, None, None] - frame)
    noise = torch.randn(1, H, W, generator=torch.Generator().manual_seed(noise_seed))
    return frame.add_(noise, alpha=0.03).clamp_(0.0, 1.0)


class EarlyEvidenceVideo:
    """A long video whose only object is visible at the start.

    Args:
        num_frames: Frames ``T`` of the video.
        evidence_frac: Fraction of the video, from its first frame, during which the object is
            visible (at least one frame).
        size: Frame side in pixels.
        seed: Random seed; the video is a deterministic function of the arguments.

    Attributes:
        shape, colour: Names of the object's shape and colour (:data:`SHAPE_NAMES`,
            :data:`COLOUR_NAMES`).
        evidence_frames: Frames ``[0, evidence_frames)`` show the object.
    """

    QUESTIONS = {"colour": "what colour is the {shape}?", "shape": "what shape is the object?"}
    """Question of each kind (as the video QA task asks them)."""

    def __init__(self, num_frames: int, evidence_frac: float = 0.05, size: int = 32, seed: int = 0) -> None:
        if num_frames < 1 or not 0.0 < evidence_frac <= 1.0 or size < 16:
            raise ValueError(f"need num_frames >= 1, 0 < evidence_frac <= 1, size >= 16; got {num_frames}, "
                             f"{evidence_frac}, {size}")
        self.num_frames, self.size, self.seed = num_frames, size, seed
        self.evidence_frames = max(1, round(evidence_frac * num_frames))
        gen = torch.Generator().manual_seed(10_000 + seed)
        self._shape = int(torch.randint(0, len(SHAPE_NAMES), (1,), generator=gen))
        self._colour = int(torch.randint(0, len(COLOUR_NAMES), (1,), generator=gen))
        self._rgb = (_COLOUR_RGB[self._colour] + 0.12 * (torch.rand(3, generator=gen) - 0.5)).clamp(0.0, 1.0)
        s = size / 32.0
        self._half = float(4.0 + 2.0 * torch.rand(1, generator=gen)) * s
        margin = self._half + 1.0
        start = margin + torch.rand(2, generator=gen) * (size - 2 * margin)
        end = margin + torch.rand(2, generator=gen) * (size - 2 * margin)
        self._path = (start, end)
        self._background, _ = _background(size, seed)
        self.shape, self.colour = SHAPE_NAMES[self._shape], COLOUR_NAMES[self._colour]

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, t: int) -> torch.Tensor:
        """Frame ``t`` as ``(3, size, size)`` float in [0, 1].

        Raises:
            IndexError: if ``t`` is outside ``[0, num_frames)``.
        """
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} outside [0, {self.num_frames})")
        objects = []
        if t < self.evidence_frames:
            a = t / max(self.evidence_frames - 1, 1)
            cx, cy = (self._path[0] + a * (self._path[1] - self._path[0])).tolist()
            objects.append((self._shape, self._rgb, self._half, cx, cy))
        return render_frame(self._background, objects, noise_seed=self.seed * 1_000_003 + t)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self.frame(t) for t in range(self.num_frames))

    def clip(self) -> torch.Tensor:
        """Every frame at once ``(3, T, size, size)`` (short videos only)."""
        return torch.stack(list(self), dim=1)

    def qa(self) -> list[tuple[str, str, str]]:
        """``(kind, question, answer)`` for the colour and the shape of the object."""
        return [("colour", self.QUESTIONS["colour"].replace("{shape}", self.shape), self.colour),
                ("shape", self.QUESTIONS["shape"], self.shape)]


@dataclass
class SceneObject:
    """One object of a :class:`CountingVideo`.

    Attributes:
        shape, colour: Indices into :data:`SHAPE_NAMES` / :data:`COLOUR_NAMES`.
        half: Half-size in pixels.
        rgb: ``(3,)`` colour.
        spans: ``(first segment, last segment, cell)`` of each appearance (inclusive); ``cell``
            is the quarter of the frame it moves in.
        drift: ``(dx, dy)`` pixels moved per frame within an appearance.
    """

    shape: int
    colour: int
    half: float
    rgb: torch.Tensor
    spans: list[tuple[int, int, int]] = field(default_factory=list)
    drift: tuple[float, float] = (0.0, 0.0)


class CountingVideo:
    """Objects that appear, leave and come back over ``num_segments`` segments.

    Every appearance lasts whole segments; at most four objects are visible at once, each in its
    own quarter of the frame, drifting slowly, and no object enters a quarter that another one
    held in the segment before.  About half of the objects appear twice, with a
    gap of at least one segment (re-identification must join the two appearances).  Objects of
    the same colour and shape have different sizes.

    Args:
        num_segments: Segments of the video. segment_frames: Frames per segment.
        size: Frame side in pixels (>= 48). seed: Random seed.

    Attributes:
        objects: The :class:`SceneObject` list.
    """

    def __init__(self, num_segments: int = 6, segment_frames: int = 8, size: int = 64, seed: int = 0) -> None:
        if num_segments < 3 or segment_frames < 2 or size < 48:
            raise ValueError(f"need num_segments >= 3, segment_frames >= 2, size >= 48; got {num_segments}, "
                             f"{segment_frames}, {size}")
        self.num_segments, self.segment_frames, self.size, self.seed = num_segments, segment_frames, size, seed
        self.num_frames = num_segments * segment_frames
        gen = torch.Generator().manual_seed(20_000 + seed)
        self._background, _ = _background(size, seed)
        occupied = [[False] * 4 for _ in range(num_segments)]            # (segment, cell)
        sizes = (0.09, 0.13, 0.17)                                       # half-size / frame side
        used: dict[tuple[int, int], set[int]] = {}
        self.objects: list[SceneObject] = []
        n_objects = int(torch.randint(4, 9, (1,), generator=gen))
        for _ in range(n_objects):
            # mostly red / green squares and circles, so that categories repeat and counts exceed one
            shape = int(torch.randint(0, 2, (1,), generator=gen)) if torch.rand(1, generator=gen) < 0.8 else 2
            colour = int(torch.randint(0, 2, (1,), generator=gen)) if torch.rand(1, generator=gen) < 0.8 else int(
                torch.randint(2, 4, (1,), generator=gen))
            free = [k for k in range(len(sizes)) if k not in used.get((shape, colour), set())]
            if not free:
                continue
            k = free[int(torch.randint(0, len(free), (1,), generator=gen))]
            spans = self._place(occupied, gen, appearances=2 if torch.rand(1, generator=gen) < 0.5 else 1)
            if not spans:
                continue
            used.setdefault((shape, colour), set()).add(k)
            rgb = (_COLOUR_RGB[colour] + 0.08 * (torch.rand(3, generator=gen) - 0.5)).clamp(0.0, 1.0)
            drift = ((torch.rand(2, generator=gen) - 0.5) * 0.6).tolist()
            self.objects.append(SceneObject(shape, colour, sizes[k] * size, rgb, spans, (drift[0], drift[1])))

    def _place(self, occupied: list[list[bool]], gen: torch.Generator, appearances: int) -> list[tuple[int, int, int]]:
        """Choose segment spans and free cells for an object's appearances (empty if none fits)."""
        spans: list[tuple[int, int, int]] = []
        first_free = 0
        for _ in range(appearances):
            for _attempt in range(20):
                if first_free >= self.num_segments:
                    break
                a = int(torch.randint(first_free, self.num_segments, (1,), generator=gen))
                b = min(self.num_segments - 1, a + int(torch.randint(0, 2, (1,), generator=gen)))
                # a cell another object holds in the segment before or after stays free too, so that
                # no object takes the place of another from one frame to the next
                near = range(max(a - 1, 0), min(b + 2, self.num_segments))
                cells = [c for c in range(4) if not any(occupied[s][c] for s in near)]
                if cells:
                    c = cells[int(torch.randint(0, len(cells), (1,), generator=gen))]
                    for s in range(a, b + 1):
                        occupied[s][c] = True
                    spans.append((a, b, c))
                    first_free = b + 2                          # a gap of one segment at least
                    break
        return spans

    def __len__(self) -> int:
        return self.num_frames

    def visible(self, t: int) -> list[tuple[int, SceneObject, float, float]]:
        """``(object index, object, centre x, centre y)`` of the objects visible in frame ``t``."""
        seg = t // self.segment_frames
        half_cell = self.size / 4
        out = []
        for i, o in enumerate(self.objects):
            for a, b, c in o.spans:
                if a <= seg <= b:
                    k = t - a * self.segment_frames
                    cx = (c % 2) * 2 * half_cell + half_cell + o.drift[0] * (k - (b - a + 1) * self.segment_frames / 2)
                    cy = (c // 2) * 2 * half_cell + half_cell + o.drift[1] * (k - (b - a + 1) * self.segment_frames / 2)
                    out.append((i, o, cx, cy))
        return out

    def frame(self, t: int) -> torch.Tensor:
        """Frame ``t`` as ``(3, size, size)`` float in [0, 1].

        Raises:
            IndexError: if ``t`` is outside ``[0, num_frames)``.
        """
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} outside [0, {self.num_frames})")
        objects = [(o.shape, o.rgb, o.half, cx, cy) for _, o, cx, cy in self.visible(t)]
        return render_frame(self._background, objects, noise_seed=self.seed * 1_000_003 + t)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self.frame(t) for t in range(self.num_frames))

    def clip(self) -> torch.Tensor:
        """Every frame at once ``(3, T, size, size)``."""
        return torch.stack(list(self), dim=1)

    def count(self, colour: str, shape: str) -> int:
        """How many distinct objects of ``colour`` and ``shape`` appear."""
        return sum(1 for o in self.objects if COLOUR_NAMES[o.colour] == colour and SHAPE_NAMES[o.shape] == shape)

    def counting_questions(self) -> list[tuple[str, str]]:
        """``(question, answer)`` for every colour and shape (absent ones answer ``"zero"``)."""
        return [(f"how many {c} {s}s appear?", number_word(self.count(c, s)))
                for c in COLOUR_NAMES for s in SHAPE_NAMES]

    @property
    def appearances(self) -> int:
        """Appearances in total (what a count without re-identification would give)."""
        return sum(len(o.spans) for o in self.objects)
