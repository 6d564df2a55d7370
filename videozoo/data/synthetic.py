"""Synthetic motion dataset: classes that only the order of frames can tell apart.

Each clip shows one bright object (a rectangle, from a square to an elongated bar, of random
size, aspect ratio, orientation and colour) on a textured, noisy background.  The object
performs one of four motions; every motion comes in two opposite directions, giving 8
classes as 4 *opposite pairs*:

======  =====================  ======  =====================
label   motion                 label   opposite (time reversal)
======  =====================  ======  =====================
0       moves right            1       moves left
2       moves down             3       moves up
4       rotates clockwise      5       rotates anticlockwise
6       approaches (grows)     7       recedes (shrinks)
======  =====================  ======  =====================

A clip of an odd label is rendered exactly like the clip of the even label of its pair
(same random draws) and then reversed along time.  Within a pair, the two classes therefore
hold the *same set of frames* in opposite order: a model that pools frames without regard
to order (e.g. TSN with average consensus, arXiv 1608.00859 Sec. 3.1) cannot do better than
guessing the direction, whereas a model that sees temporal order can reach ~100 %.

All four motions draw the object's shape, colour, per-frame size and position from the same
distributions (the rotating object is the same kind of rectangle as the translating one; a
static object's size is drawn from the sizes a growing one passes through; rotating and
growing objects sit anywhere a translating one can be), so that a single frame says
little about which *pair* a clip belongs to either, and an order-agnostic model should stay
close to chance (12.5 %).  A disk is not used because a rotating disk does not
change and a shape seen in only one pair would reveal that pair.

Everything is vectorised in torch on the CPU; 2000 clips of 8x32x32 take well under a second.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "make_motion_dataset", "make_orientation_dataset", "MotionDataset",
           "SHAPE_NAMES", "COLOUR_NAMES", "DIRECTION_NAMES", "make_shape_clips"]

CLASS_NAMES = (
    "right", "left", "down", "up",
    "clockwise", "anticlockwise", "approach", "recede",
)
NUM_CLASSES = len(CLASS_NAMES)


def _soft_box(u: torch.Tensor, v: torch.Tensor, half_u: torch.Tensor, half_v: torch.Tensor) -> torch.Tensor:
    """Anti-aliased indicator of the box ``|u| <= half_u, |v| <= half_v`` (1 px soft edge)."""
    inside_u = (half_u - u.abs() + 0.5).clamp(0.0, 1.0)
    inside_v = (half_v - v.abs() + 0.5).clamp(0.0, 1.0)
    return inside_u * inside_v


def _render_forward(pairs: torch.Tensor, frames: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the even-label (forward) clip of each sample.

    Args:
        pairs: ``(n,)`` long, pair index 0-3 (translate-x, translate-y, rotate, scale).
        frames: T. size: H = W in pixels.
        gen: CPU random generator; the draws depend only on ``n``, ``frames``, ``size``
            and the generator state, not on ``pairs``.

    Returns:
        ``(clips, angle0)``: clips ``(n, 3, T, H, W)`` float32 in [0, 1]; ``angle0`` ``(n,)``,
        the orientation of the object's long side in the first frame, radians in [0, pi).
    """
    n = pairs.shape[0]
    s = size / 32.0  # all geometric constants below are given for 32x32 frames
    T = frames

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    # --- per-sample draws (always the same number of draws, whatever the pair) ---
    # Speeds and growth are given per frame of an 8-frame clip and rescaled so that a clip of
    # any length covers the same total travel / size change; rotation is per frame.
    k = 7.0 / (T - 1)
    half_len = uniform(3.0, 5.0) * s                       # half of the long side at mid-clip, px
    aspect = uniform(1.3, 3.0)                              # long / short side
    angle0 = uniform(0.0, math.pi)                          # orientation, rad
    colour = uniform(0.6, 1.0, 3)                           # object RGB
    bg_colour = uniform(0.05, 0.3, 3)                       # background RGB
    speed = uniform(1.2, 2.0) * s * k                       # px per frame (translation)
    omega = uniform(math.radians(15), math.radians(30))     # rad per frame (rotation)
    log_grow = uniform(math.log(1.06), math.log(1.12)) * k  # log size ratio per frame (scale)
    size_phase = uniform(0.0, T - 1.0)                      # which frame of a growth a static size mimics
    pos_u = torch.rand(n, generator=gen)                    # position along the motion / x
    pos_v = torch.rand(n, generator=gen)                    # position across the motion / y
    texture = torch.rand(n, 1, 6, 6, generator=gen)         # low-frequency background texture
    noise = torch.randn(n, 1, T, size, size, generator=gen)  # per-frame pixel noise (grey)

    t = torch.arange(T, dtype=torch.float32)                # (T,)
    mid = (T - 1) / 2.0
    is_scale = pairs == 3
    # Half length over time: growing for the scale pair; for the other pairs a constant drawn
    # from the same range, so that one frame's object size does not reveal the pair.
    hl = torch.where(
        is_scale[:, None],
        half_len[:, None] * torch.exp(log_grow[:, None] * (t - mid)),
        (half_len * torch.exp(log_grow * (size_phase - mid)))[:, None].expand(n, T),
    )
    margin = hl.amax(dim=1) + 1.0                           # keeps the whole object in the frame
    room = (size - 2 * margin).clamp(min=0.0)
    travel_total = speed * (T - 1)
    # Translation: start uniform so that the path stays inside; others: centre uniform.
    start = margin + pos_u * (room - travel_total).clamp(min=0.0)
    across = margin + pos_v * room
    still_x = margin + pos_u * room
    still_y = margin + pos_v * room
    travel = speed[:, None] * t                             # (n, T)

    cx = torch.empty(n, T)
    cy = torch.empty(n, T)
    ang = angle0[:, None].expand(n, T).clone()

    m = pairs == 0  # moves right (+x)
    cx[m] = start[m, None] + travel[m]
    cy[m] = across[m, None].expand(-1, T)
    m = pairs == 1  # moves down (+y, image rows grow downwards)
    cx[m] = across[m, None].expand(-1, T)
    cy[m] = start[m, None] + travel[m]
    m = pairs == 2  # rotates clockwise on screen: angle grows with y pointing down
    cx[m] = still_x[m, None].expand(-1, T)
    cy[m] = still_y[m, None].expand(-1, T)
    ang[m] = angle0[m, None] + omega[m, None] * t
    m = is_scale    # approaches: grows
    cx[m] = still_x[m, None].expand(-1, T)
    cy[m] = still_y[m, None].expand(-1, T)

    # --- rasterise: object mask (n, T, H, W) ---
    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, None, :] - cx[:, :, None, None]
    dy = coords[None, None, :, None] - cy[:, :, None, None]
    cos, sin = torch.cos(ang)[:, :, None, None], torch.sin(ang)[:, :, None, None]
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    half_long = hl[:, :, None, None]
    half_short = (hl / aspect[:, None])[:, :, None, None].clamp(min=1.0)
    mask = _soft_box(u, v, half_long, half_short)           # (n, T, H, W)

    # --- background: colour + static texture, per-frame noise ---
    tex = torch.nn.functional.interpolate(texture, size=(size, size), mode="bilinear", align_corners=False)
    background = bg_colour[:, :, None, None] + 0.16 * (tex - 0.5)  # (n, 3, H, W)
    obj = colour[:, :, None, None]                          # (n, 3, 1, 1)
    # clip = background * (1 - mask) + obj * mask + noise, in few passes over memory.
    clip = torch.addcmul(background[:, :, None], mask[:, None], (obj - background)[:, :, None])
    clip.add_(noise, alpha=0.03)
    return clip.clamp_(0.0, 1.0), angle0


def make_motion_dataset(
    n: int,
    frames: int = 8,
    size: int = 32,
    seed: int = 0,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` motion clips and their labels (see the module docstring for classes).

    Args:
        n: Number of clips.
        frames: Frames per clip T (>= 2).
        size: Frame height = width in pixels (>= 16).
        seed: Random seed; the output is a deterministic function of
            ``(n, frames, size, seed, labels)``.
        labels: Optional ``(n,)`` long tensor of labels in [0, 8). When omitted the labels
            are balanced (each class ``n // 8`` or ``n // 8 + 1`` times) in random order.
            Object, background and motion draws do not depend on the direction within a
            pair, so passing ``labels ^ 1`` yields the time-reversed clips.

    Returns:
        ``(clips, labels)``: clips float32 ``(n, 3, T, H, W)`` in [0, 1], labels long ``(n,)``.

    Raises:
        ValueError: on invalid sizes or labels.
    """
    if n < 0 or frames < 2 or size < 16:
        raise ValueError(f"need n >= 0, frames >= 2, size >= 16; got n={n}, frames={frames}, size={size}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if labels is None:
        labels = torch.arange(n) % NUM_CLASSES
        labels = labels[order]
    else:
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (n,) or (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
            raise ValueError(f"labels must be a ({n},) tensor with values in [0, {NUM_CLASSES})")
    clips, _ = _render_forward(labels // 2, frames, size, gen)
    reverse = (labels % 2 == 1)
    clips[reverse] = clips[reverse].flip(2)
    return clips, labels.clone()


def make_orientation_dataset(
    n: int,
    size: int = 32,
    bins: int = 12,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single frames of the motion set's objects, labelled by the orientation of the object.

    An image task for pre-training the image model that a video transformer is initialised
    from (TimeSformer, arXiv 2102.05095, Sec. 4, starts from an ImageNet-trained ViT; here
    the "ImageNet" is these frames).  Each image is the first frame of a clip of a random
    motion pair, rendered as in :func:`make_motion_dataset` (same objects, backgrounds and
    noise); the label is the bin of the long side's orientation in ``[0, pi)`` (a rectangle
    looks the same after half a turn), ``bins`` bins of ``180 / bins`` degrees each.

    Args:
        n: Number of images.
        size: Height = width in pixels (>= 16).
        bins: Number of orientation classes (>= 2).
        seed: Random seed; the output is a deterministic function of the arguments.

    Returns:
        ``(images, labels)``: images float32 ``(n, 3, H, W)`` in [0, 1], labels long ``(n,)``
        in ``[0, bins)``.

    Raises:
        ValueError: on invalid sizes or bin count.
    """
    if n < 0 or size < 16 or bins < 2:
        raise ValueError(f"need n >= 0, size >= 16, bins >= 2; got n={n}, size={size}, bins={bins}")
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, NUM_CLASSES // 2, (n,), generator=gen)
    clips, angle0 = _render_forward(pairs, 2, size, gen)
    labels = (angle0 * (bins / math.pi)).long().clamp_(0, bins - 1)
    return clips[:, :, 0].contiguous(), labels


class MotionDataset(Dataset):
    """Torch dataset over :func:`make_motion_dataset` (clips generated once, kept in memory).

    ``dataset[i]`` returns ``(clip (3, T, H, W) float in [0, 1], label)``.
    """

    classes = CLASS_NAMES

    def __init__(self, n: int, frames: int = 8, size: int = 32, seed: int = 0) -> None:
        self.clips, self.labels = make_motion_dataset(n, frames=frames, size=size, seed=seed)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.clips[index], int(self.labels[index])


# --------------------------------------------------------------------------- named shapes moving


SHAPE_NAMES = ("square", "circle", "triangle")
"""Shapes of :func:`make_shape_clips` (index = ``attributes["shape"]``)."""
COLOUR_NAMES = ("red", "green", "blue", "yellow")
"""Colours of :func:`make_shape_clips` (index = ``attributes["colour"]``)."""
DIRECTION_NAMES = ("right", "left", "down", "up")
"""Directions of :func:`make_shape_clips` (index = ``attributes["direction"]``); 0/1 and 2/3 are
opposite pairs whose clips hold the same frames in reverse order."""

_COLOUR_RGB = torch.tensor([[0.92, 0.16, 0.14], [0.15, 0.78, 0.22], [0.18, 0.32, 0.95], [0.95, 0.88, 0.15]])


def _shape_coverage(shape: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage in [0, 1] of a square / circle / upward triangle of half-size ``half``.

    ``shape``: ``(n,)`` index into :data:`SHAPE_NAMES`; ``dx, dy``: ``(n, T, H, W)`` pixel offsets
    from the centre (y down); ``half``: ``(n,)`` half-size in px.
    """
    h = half[:, None, None, None]
    square = (h - torch.maximum(dx.abs(), dy.abs()) + 0.5).clamp(0.0, 1.0)
    circle = (h - torch.sqrt(dx * dx + dy * dy) + 0.5).clamp(0.0, 1.0)
    # apex at (0, -h), base from (-h, h) to (h, h): inside when dy <= h and |dx| <= (dy + h) / 2
    edge = (dx.abs() - (dy + h) / 2) / math.sqrt(1.25)
    triangle = (0.5 - torch.maximum(dy - h, edge)).clamp(0.0, 1.0)
    s = shape[:, None, None, None]
    return torch.where(s == 0, square, torch.where(s == 1, circle, triangle))


def make_shape_clips(
    n: int,
    frames: int = 8,
    size: int = 32,
    seed: int = 0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clips of one coloured shape moving in a straight line, with their attributes.

    The scene of the video QA task of Stage 4 (:mod:`videozoo.data.video_qa`): a square, circle
    or triangle (:data:`SHAPE_NAMES`) of one of four colours (:data:`COLOUR_NAMES`, with a
    small random shade) moves right, left, down or up (:data:`DIRECTION_NAMES`) at a constant
    speed on a textured, noisy grey background.  Shape, colour and direction are drawn
    independently and uniformly.  As in :func:`make_motion_dataset`, a clip moving left is
    rendered exactly like one moving right (same random draws) and reversed in time, and the
    path stays inside the frame with its midpoint drawn from the same range for every
    direction, so that no single frame tells the direction: only the order of frames does.

    Args:
        n: Number of clips.
        frames: Frames per clip T (>= 2).
        size: Frame height = width in pixels (>= 16).
        seed: Random seed; the output is a deterministic function of the arguments.

    Returns:
        ``(clips, attributes)``: clips float32 ``(n, 3, T, H, W)`` in [0, 1]; attributes maps
        ``"shape"``, ``"colour"``, ``"direction"`` to ``(n,)`` long indices into the name
        tuples.

    Raises:
        ValueError: on invalid sizes.
    """
    if n < 0 or frames < 2 or size < 16:
        raise ValueError(f"need n >= 0, frames >= 2, size >= 16; got n={n}, frames={frames}, size={size}")
    gen = torch.Generator().manual_seed(seed)
    T, s = frames, size / 32.0

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=gen)

    shape = torch.randint(0, len(SHAPE_NAMES), (n,), generator=gen)
    colour = torch.randint(0, len(COLOUR_NAMES), (n,), generator=gen)
    direction = torch.randint(0, len(DIRECTION_NAMES), (n,), generator=gen)
    half = uniform(4.0, 6.0) * s                                  # half-size, px: 1-1.5 patches of 8 px wide
    rgb = (_COLOUR_RGB[colour] + uniform(-0.06, 0.06, 3)).clamp(0.0, 1.0)
    grey = uniform(0.12, 0.32)                                    # background level
    speed = uniform(2.0, 2.6) * s * 7.0 / (T - 1)                 # px per frame: 14-18 px, about half the frame
    pos_u = torch.rand(n, generator=gen)                          # along the motion
    pos_v = torch.rand(n, generator=gen)                          # across it
    texture = torch.rand(n, 1, 6, 6, generator=gen)
    noise = torch.randn(n, 1, T, size, size, generator=gen)

    margin = half + 1.0
    travel_total = speed * (T - 1)
    start = margin + pos_u * (size - 2 * margin - travel_total).clamp(min=0.0)
    across = margin + pos_v * (size - 2 * margin)
    along = start[:, None] + speed[:, None] * torch.arange(T, dtype=torch.float32)  # (n, T), forward motion
    horizontal = (direction < 2)[:, None]
    cx = torch.where(horizontal, along, across[:, None].expand(n, T))
    cy = torch.where(horizontal, across[:, None].expand(n, T), along)

    coords = torch.arange(size, dtype=torch.float32)
    dx = coords[None, None, None, :] - cx[:, :, None, None]
    dy = coords[None, None, :, None] - cy[:, :, None, None]
    mask = _shape_coverage(shape, dx, dy, half)                   # (n, T, H, W)
    tex = torch.nn.functional.interpolate(texture, size=(size, size), mode="bilinear", align_corners=False)
    background = (grey[:, None, None, None] + 0.12 * (tex - 0.5)).expand(n, 3, size, size)
    clip = torch.addcmul(background[:, :, None], mask[:, None], (rgb[:, :, None, None] - background)[:, :, None])
    clip.add_(noise, alpha=0.03)
    reverse = direction % 2 == 1                                  # left / up: the forward clip played backwards
    clip[reverse] = clip[reverse].flip(2)
    return clip.clamp_(0.0, 1.0), {"shape": shape, "colour": colour, "direction": direction}
