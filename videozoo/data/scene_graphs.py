"""Per-frame scene descriptions of the captioned synthetic clips (:mod:`videozoo.data.captions`).

LaIAR (Wang et al., arXiv 2404.01591) trains its video model beside a language model that reads
a symbolic description of each frame: the spatio-temporal scene graph of the clip (Action
Genome's annotated ``<subject, relation, object>`` triplets on Charades).  The synthetic clips
have no annotations, so this module writes the equivalent description from the pixels: one
phrase per frame, ``"{colour} object at {row} {column}"``, naming the object's colour (the
nearest colour of :data:`videozoo.data.captions.COLOURS` to its mean pixel) and the cell of a
3 x 3 grid its centroid lies in (``"no object"`` when no pixel is bright enough).  The object's
pixels are those whose brightest channel exceeds ``OBJECT_THRESHOLD``: the objects' colours
have a channel of at least 0.72 and the backgrounds none above 0.5 (noise included).

The phrases are fixed (:data:`PHRASES`), so their embeddings can be computed once per step.
"""

from __future__ import annotations

import torch

from videozoo.data.captions import COLOURS

__all__ = ["PHRASES", "ROWS", "COLUMNS", "OBJECT_THRESHOLD", "describe_frames"]

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
OBJECT_THRESHOLD = 0.6
PHRASES = tuple(f"{c} object at {r} {col}" for c in COLOURS for r in ROWS for col in COLUMNS) + ("no object",)
"""Every phrase :func:`describe_frames` writes, in index order (colour, row, column), then ``"no object"``."""


def describe_frames(clips: torch.Tensor) -> torch.Tensor:
    """The phrase of every frame of clips in pixel space.

    Args:
        clips: ``(B, 3, T, H, W)`` pixels in [0, 1] (not CLIP-normalised).

    Returns:
        ``(B, T)`` long indices into :data:`PHRASES`.

    Raises:
        ValueError: ``clips`` is not ``(B, 3, T, H, W)``.
    """
    if clips.dim() != 5 or clips.shape[1] != 3:
        raise ValueError(f"clips must be (B, 3, T, H, W) pixels in [0, 1], got shape {tuple(clips.shape)}")
    B, _, T, H, W = clips.shape
    x = clips.detach().float().permute(0, 2, 1, 3, 4)                         # (B, T, 3, H, W)
    mask = (x.amax(dim=2) > OBJECT_THRESHOLD).float()                        # (B, T, H, W)
    area = mask.sum(dim=(2, 3))
    safe = area.clamp(min=1.0)
    mean_colour = (x * mask[:, :, None]).sum(dim=(3, 4)) / safe[..., None]   # (B, T, 3)
    palette = torch.tensor(list(COLOURS.values()), dtype=x.dtype, device=x.device)
    colour = torch.cdist(mean_colour.reshape(-1, 3), palette).argmin(dim=1).view(B, T)
    ys = torch.arange(H, dtype=x.dtype, device=x.device)
    xs = torch.arange(W, dtype=x.dtype, device=x.device)
    cy = (mask.sum(dim=3) * ys).sum(dim=2) / safe
    cx = (mask.sum(dim=2) * xs).sum(dim=2) / safe
    row = (cy * 3 / H).long().clamp(0, 2)
    col = (cx * 3 / W).long().clamp(0, 2)
    index = colour * 9 + row * 3 + col
    return torch.where(area > 0, index, torch.full_like(index, len(PHRASES) - 1))
