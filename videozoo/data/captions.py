"""Synthetic captioned clips for the Stage 3 zero-shot check: "a red square moving left".

Each clip shows one object, a shape in a colour, moving in a straight line in one of four
directions over a textured, noisy background.  Its caption names all three:
``"a {colour} {shape} moving {direction}"``.  With 4 shapes x 4 colours x 4 directions there
are 64 classes, grouped into 32 *opposite pairs* (the same object moving right / left, or
down / up).

=========  ==============================================
shapes     square, circle, triangle, cross
colours    red, green, blue, yellow
direction  right, left (its time reversal), down, up (its time reversal)
=========  ==============================================

Opposite directions hold the same frames: a clip moving left is rendered exactly like a clip
moving right (same random draws) and then reversed in time (the construction of
:mod:`videozoo.data.synthetic`).  No single frame, and no average over frames, can tell them
apart, so a frame-averaging image model cannot know the direction; a model that sees the
order of frames can.

The zero-shot split (:func:`heldout_classes`): for 8 of the 16 objects one motion axis is held
out (both of its directions), so 16 classes (8 opposite pairs) are never seen in training
and 48 are.  Every shape and every colour has one object whose horizontal motion is held
out and one whose vertical motion is held out; every held-out object is seen moving along
the other axis, and every direction word is seen with 12 objects.  A model trained on the
48 seen classes' (clip, caption) pairs is then asked to classify clips of the held-out
classes against the captions of all 64 classes: the pairing of these captions with these
clips was never seen.

Everything is vectorised in torch on the CPU; 500 clips of 8x32x32 take well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "SHAPES", "COLOURS", "DIRECTIONS", "CaptionClass", "CLASSES", "NUM_CLASSES", "class_captions",
    "heldout_classes", "seen_classes", "opposite", "make_caption_clips",
    "ROWS", "COLUMNS", "FrameClass", "FRAME_CLASSES", "frame_captions", "make_caption_frames",
]

SHAPES = ("square", "circle", "triangle", "cross")
COLOURS = {
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.80, 0.20),
    "blue": (0.20, 0.35, 0.95),
    "yellow": (0.90, 0.85, 0.15),
}
DIRECTIONS = ("right", "left", "down", "up")
"""Direction ``d``: 0 right, 1 left (time reversal of right), 2 down, 3 up (reversal of down)."""


@dataclass(frozen=True)
class CaptionClass:
    """One class of the captioned set: an object (shape, colour) and its direction."""

    shape: str
    colour: str
    direction: str

    @property
    def caption(self) -> str:
        """``"a {colour} {shape} moving {direction}"``."""
        return f"a {self.colour} {self.shape} moving {self.direction}"

    @property
    def object(self) -> tuple[str, str]:
        return (self.shape, self.colour)

    @property
    def axis(self) -> str:
        return "horizontal" if self.direction in ("right", "left") else "vertical"


CLASSES = tuple(CaptionClass(s, c, d) for s in SHAPES for c in COLOURS for d in DIRECTIONS)
"""All 64 classes; class ``i`` has shape ``i // 16``, colour ``(i // 4) % 4``, direction ``i % 4``."""
NUM_CLASSES = len(CLASSES)


def class_captions() -> list[str]:
    """The 64 captions, in class order."""
    return [c.caption for c in CLASSES]


def opposite(label: torch.Tensor | int) -> torch.Tensor | int:
    """The class of the same object moving the opposite way (``label ^ 1``)."""
    return label ^ 1


def heldout_classes() -> list[int]:
    """The 16 classes never seen in training (8 opposite pairs), sorted.

    Object ``(shape s, colour c)`` (indices) has its horizontal motion held out when
    ``c == s`` and its vertical motion when ``c == (s + 2) % 4``: a Latin-square choice, so
    each shape and each colour loses one horizontal and one vertical motion.
    """
    out = []
    for s in range(len(SHAPES)):
        for c in range(len(COLOURS)):
            base = (s * len(COLOURS) + c) * len(DIRECTIONS)
            if c == s:
                out += [base + 0, base + 1]
            elif c == (s + 2) % len(COLOURS):
                out += [base + 2, base + 3]
    return sorted(out)


def seen_classes() -> list[int]:
    """The 48 training classes (the complement of :func:`heldout_classes`), sorted."""
    held = set(heldout_classes())
    return [i for i in range(NUM_CLASSES) if i not in held]


def _shape_masks(dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor, shape_idx: torch.Tensor) -> torch.Tensor:
    """Anti-aliased masks (1 px soft edge) of each sample's shape, centred at ``dx = dy = 0``.

    ``dx``: ``(n, T, 1, W)`` and ``dy``: ``(n, T, H, 1)`` pixel offsets from the centre; ``r``:
    ``(n, 1, 1, 1)`` half size.  Returns ``(n, T, H, W)`` in [0, 1].
    """
    def soft(signed_inside: torch.Tensor) -> torch.Tensor:   # distance to the edge, > 0 inside
        return (signed_inside + 0.5).clamp(0.0, 1.0)

    ax, ay = dx.abs(), dy.abs()
    square = soft(r - ax) * soft(r - ay)
    circle = soft(r - torch.sqrt(dx * dx + dy * dy))
    # triangle pointing up: apex (0, -r), base y = +r of half width r
    triangle = soft(torch.minimum(r - dy, ((dy + r) / 2 - ax) * (2 / math.sqrt(5))))
    arm = r / 2.8
    cross = torch.maximum(soft(r - ax) * soft(arm - ay), soft(arm - ax) * soft(r - ay))
    masks = torch.stack([square, circle, triangle, cross])   # (4, n, T, H, W)
    return masks.gather(0, shape_idx.view(1, -1, 1, 1, 1).expand(1, *masks.shape[1:]))[0]


def _appearance(n: int, T: int, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-sample appearance draws (the same number whatever the labels): object half size
    (px), colour jitter, background colour and texture, per-frame pixel noise."""
    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    return {
        "radius": uniform(3.5, 5.0) * size / 32.0,
        "jitter": uniform(-0.08, 0.08, 3),
        "bg_colour": uniform(0.05, 0.30, 3),
        "texture": torch.rand(n, 1, 6, 6, generator=gen),
        "noise": torch.randn(n, 1, T, size, size, generator=gen),
    }


def _compose(shape_idx: torch.Tensor, colour_idx: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
             look: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Draw each sample's object centred at ``(cx, cy)`` (``(n, T)`` px) over its background:
    ``(n, 3, T, H, W)`` in [0, 1]."""
    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, None, :] - cx[:, :, None, None]
    dy = coords[None, None, :, None] - cy[:, :, None, None]
    mask = _shape_masks(dx, dy, look["radius"][:, None, None, None], shape_idx)   # (n, T, H, W)
    palette = torch.tensor(list(COLOURS.values()))
    obj = (palette[colour_idx] + look["jitter"]).clamp(0.0, 1.0)                 # (n, 3)
    tex = torch.nn.functional.interpolate(look["texture"], size=(size, size), mode="bilinear", align_corners=False)
    background = look["bg_colour"][:, :, None, None] + 0.16 * (tex - 0.5)        # (n, 3, H, W)
    clip = torch.addcmul(background[:, :, None], mask[:, None], (obj[:, :, None, None] - background)[:, :, None])
    return clip.add_(look["noise"], alpha=0.03).clamp_(0.0, 1.0)


def _check_labels(labels: torch.Tensor, count: int) -> torch.Tensor:
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.dim() != 1 or (labels.numel() and (labels.min() < 0 or labels.max() >= count)):
        raise ValueError(f"labels must be a 1-D tensor of class indices in [0, {count}), got {tuple(labels.shape)}")
    return labels


def make_caption_clips(labels: torch.Tensor, frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Render one clip per label.

    Args:
        labels: ``(n,)`` long class indices into :data:`CLASSES`.
        frames: Frames per clip T (>= 2).
        size: Frame height = width in pixels (>= 16).
        seed: Random seed; the clips are a deterministic function of ``(labels, frames, size,
            seed)``, and the random draws do not depend on the direction within an opposite
            pair, so ``make_caption_clips(opposite(labels), ...)`` gives exactly the same clips
            reversed in time.

    Returns:
        ``(n, 3, T, H, W)`` float32 clips in [0, 1].

    Raises:
        ValueError: labels outside ``[0, 64)`` or not 1-D, ``frames < 2``, ``size < 16``.
    """
    labels = _check_labels(labels, NUM_CLASSES)
    if frames < 2 or size < 16:
        raise ValueError(f"need frames >= 2 and size >= 16, got frames={frames}, size={size}")
    n, T = labels.shape[0], frames
    gen = torch.Generator().manual_seed(seed)
    look = _appearance(n, T, size, gen)
    speed = (1.2 + 0.8 * torch.rand(n, generator=gen)) * size / 32.0 * 7.0 / (T - 1)  # px per frame
    pos_u = torch.rand(n, generator=gen)                         # start along the motion
    pos_v = torch.rand(n, generator=gen)                         # position across it

    shape_idx = labels // (len(COLOURS) * len(DIRECTIONS))
    colour_idx = (labels // len(DIRECTIONS)) % len(COLOURS)
    direction = labels % len(DIRECTIONS)
    vertical = direction >= 2
    margin = look["radius"] + 1.0
    room = (size - 2 * margin).clamp(min=0.0)
    start = margin + pos_u * (room - speed * (T - 1)).clamp(min=0.0)
    across = margin + pos_v * room
    along = start[:, None] + speed[:, None] * torch.arange(T, dtype=torch.float32)   # forward: right / down
    cx = torch.where(vertical[:, None], across[:, None].expand(n, T), along)
    cy = torch.where(vertical[:, None], along, across[:, None].expand(n, T))
    clip = _compose(shape_idx, colour_idx, cx, cy, look, size)
    reverse = direction % 2 == 1                                  # left / up: the reversed rendering
    clip[reverse] = clip[reverse].flip(2)
    return clip


# --------------------------------------------------------------------------- captioned frames

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "centre", "right")


@dataclass(frozen=True)
class FrameClass:
    """One class of the captioned frames: an object and the cell of a 3 x 3 grid it is in."""

    shape: str
    colour: str
    row: str
    column: str

    @property
    def caption(self) -> str:
        """``"a {colour} {shape} in the {row} {column}"``."""
        return f"a {self.colour} {self.shape} in the {self.row} {self.column}"


FRAME_CLASSES = tuple(FrameClass(s, c, r, k) for s in SHAPES for c in COLOURS for r in ROWS for k in COLUMNS)
"""All 144 frame classes; class ``i`` has object ``i // 9`` (as in :data:`CLASSES`), row
``(i // 3) % 3`` and column ``i % 3``."""


def frame_captions() -> list[str]:
    """The 144 frame captions, in class order."""
    return [c.caption for c in FRAME_CLASSES]


def make_caption_frames(labels: torch.Tensor, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Render one single frame per label: the object anywhere inside its grid cell.

    Stand-in for the image-caption data CLIP is pre-trained on (paper Sec. 2.2), for the
    Stage 3 zero-shot check: the objects, backgrounds and noise of :func:`make_caption_clips`,
    still, with captions naming the object and where it is.  The cell is a third of the range
    the object's centre can take (it stays in the frame) in each direction.

    Args:
        labels: ``(n,)`` class indices into :data:`FRAME_CLASSES`.
        size: Height = width in pixels (>= 16).
        seed: Random seed (the output is a deterministic function of the arguments).

    Returns:
        ``(n, 3, H, W)`` float32 frames in [0, 1].

    Raises:
        ValueError: labels outside ``[0, 144)`` or not 1-D, ``size < 16``.
    """
    labels = _check_labels(labels, len(FRAME_CLASSES))
    if size < 16:
        raise ValueError(f"need size >= 16, got {size}")
    n = labels.shape[0]
    gen = torch.Generator().manual_seed(seed)
    look = _appearance(n, 1, size, gen)
    u, v = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    obj, row, col = labels // 9, (labels // 3) % 3, labels % 3
    margin = look["radius"] + 1.0
    room = (size - 2 * margin).clamp(min=0.0)
    cx = margin + (col + u) / 3 * room
    cy = margin + (row + v) / 3 * room
    frames = _compose(obj // len(COLOURS), obj % len(COLOURS), cx[:, None], cy[:, None], look, size)
    return frames[:, :, 0]
