"""Detecting and tracking the coloured shapes of the synthetic scenes (a stand-in for a trained detector).

VideoAgent (arXiv 2403.11481, Sec. 3.1) builds its object memory with a trained detector and
tracker (RT-DETR and ByteTrack in the authors' release).  videozoo has no trained detector, and
none is needed for its synthetic scenes (:mod:`videozoo.data.long_video`): the objects are
saturated colours on a grey background.  :func:`detect_shapes` finds them as connected regions
of saturated pixels (``scipy.ndimage.label``), names the shape from how much of its bounding box
the region fills (a square about 1, a circle about pi / 4, a triangle about 1 / 2) and the
colour as the nearest of the scene's colours.  :func:`track` links detections of consecutive
frames by box overlap (intersection over union), as ByteTrack's association step does, without
its motion model and its second, low-score association.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from videozoo.data.synthetic import _COLOUR_RGB, COLOUR_NAMES

__all__ = ["Detection", "Track", "detect_shapes", "box_iou", "track"]

SATURATION_MIN = 0.3
"""A pixel belongs to an object when ``max(r, g, b) - min(r, g, b)`` exceeds this."""
FILL_SQUARE = 0.95
"""Regions filling at least this fraction of their box are squares ..."""
FILL_CIRCLE = 0.66
"""... at least this fraction circles, less triangles."""


@dataclass
class Detection:
    """One object found in one frame.

    Attributes:
        frame: Frame index. box: ``(x0, y0, x1, y1)`` pixel box, end exclusive.
        category: Shape name. colour: Colour name. area: Pixels of the region.
        rgb: Mean colour of the region.
    """

    frame: int
    box: tuple[int, int, int, int]
    category: str
    colour: str
    area: int
    rgb: tuple[float, float, float]


@dataclass
class Track:
    """Detections of one object in consecutive frames.

    Attributes:
        track_id: Index of the track. category, colour: Of its first detection.
        detections: In frame order.
    """

    track_id: int
    category: str
    colour: str
    detections: list[Detection] = field(default_factory=list)

    @property
    def frames(self) -> list[int]:
        """Frames in which the track was detected."""
        return [d.frame for d in self.detections]


def detect_shapes(frame: torch.Tensor, index: int = 0, min_area: int = 6) -> list[Detection]:
    """Find the coloured shapes of one frame.

    Args:
        frame: ``(3, H, W)`` RGB in [0, 1].
        index: The frame's index (recorded in the detections).
        min_area: Regions with fewer pixels are ignored (noise).

    Returns:
        Detections in the order of their regions' first pixel (row-major).
    """
    from scipy import ndimage

    x = frame.detach().float().cpu().numpy()
    saturated = (x.max(axis=0) - x.min(axis=0)) > SATURATION_MIN
    labels, n = ndimage.label(saturated, structure=np.ones((3, 3), dtype=bool))
    out = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        region = labels[sl] == k
        area = int(region.sum())
        if area < min_area:
            continue
        fill = area / region.size
        category = "square" if fill >= FILL_SQUARE else "circle" if fill >= FILL_CIRCLE else "triangle"
        rgb = x[:, sl[0], sl[1]][:, region].mean(axis=1)
        colour = COLOUR_NAMES[int(np.argmin(((_COLOUR_RGB.numpy() - rgb) ** 2).sum(axis=1)))]
        box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        out.append(Detection(index, box, category, colour, area, tuple(float(v) for v in rgb)))
    return out


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def track(detections_per_frame: list[list[Detection]], iou_min: float = 0.3, max_lost: int = 2) -> list[Track]:
    """Link detections into tracks, frame by frame.

    Each frame's detections are matched to the tracks alive (last seen at most ``max_lost``
    frames before) of the same category and colour by maximum total IoU
    (``scipy.optimize.linear_sum_assignment``); pairs below ``iou_min`` stay unmatched, and an
    unmatched detection starts a new track.

    Returns:
        Tracks in order of their first detection.
    """
    from scipy.optimize import linear_sum_assignment

    tracks: list[Track] = []
    for dets in detections_per_frame:
        if not dets:
            continue
        t = dets[0].frame
        alive = [tr for tr in tracks if t - tr.detections[-1].frame <= max_lost + 1]
        cost = np.ones((len(alive), len(dets)))
        for i, tr in enumerate(alive):
            last = tr.detections[-1]
            for j, d in enumerate(dets):
                if (tr.category, tr.colour) == (d.category, d.colour):
                    cost[i, j] = 1.0 - box_iou(last.box, d.box)
        matched = set()
        if alive:
            for i, j in zip(*linear_sum_assignment(cost)):
                if 1.0 - cost[i, j] >= iou_min:
                    alive[i].detections.append(dets[j])
                    matched.add(j)
        for j, d in enumerate(dets):
            if j not in matched:
                tracks.append(Track(len(tracks), d.category, d.colour, [d]))
    return tracks
