"""Frame-index samplers: TSN sparse segment sampling and dense clip sampling.

Both samplers only return *indices* into a video of ``num_frames`` frames; decoding and
stacking the frames is left to the caller (see :class:`videozoo.data.decode.VideoFolder`).

* Sparse segment sampling follows Temporal Segment Networks (Wang et al., "Temporal Segment
  Networks: Towards Good Practices for Deep Action Recognition", arXiv 1608.00859,
  Sec. 3.1-3.2, eq. 1): the video is divided into N segments of equal duration and one
  snippet (here one frame) is drawn at random from each segment during training. At test
  time we take the centre of each segment, the deterministic choice of the public TSN/TSM
  code; the paper itself tests on 25 evenly spaced snippets, close to this rule with
  N = 25.
* Dense clip sampling takes T consecutive frames at a temporal stride s (the input of C3D,
  I3D, SlowFast and most video transformers), starting at a random frame in training and
  centred in the video at test time.
"""

from __future__ import annotations

import torch

__all__ = ["segment_indices", "dense_indices", "SegmentSampler", "DenseSampler"]


def segment_indices(
    num_frames: int,
    num_segments: int,
    train: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """TSN sparse sampling: one frame index from each of N equal segments.

    Segment ``k`` covers frames ``[floor(k F / N), floor((k + 1) F / N))``. In training the
    index is drawn uniformly inside the segment; at test time it is the segment's centre
    ``floor((k + 0.5) F / N)``. When ``F < N`` segments are shorter than one frame and
    frames repeat (the indices are still non-decreasing).

    Args:
        num_frames: F, frames in the video (>= 1).
        num_segments: N (>= 1).
        train: Random offset (True) or segment centre (False).
        generator: Optional torch generator for reproducible training draws.

    Returns:
        ``(N,)`` long tensor of frame indices in ``[0, F)``, non-decreasing.

    Raises:
        ValueError: if ``num_frames`` or ``num_segments`` is < 1.
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames}, {num_segments}")
    k = torch.arange(num_segments, dtype=torch.float64)
    start = torch.floor(k * num_frames / num_segments).long()
    if not train:
        return torch.floor((k + 0.5) * num_frames / num_segments).long().clamp_(max=num_frames - 1)
    end = torch.floor((k + 1) * num_frames / num_segments).long()
    length = (end - start).clamp(min=1)
    offset = (torch.rand(num_segments, generator=generator, dtype=torch.float64) * length).long()
    return (start + offset).clamp_(max=num_frames - 1)


def dense_indices(
    num_frames: int,
    clip_len: int,
    stride: int = 1,
    train: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Dense sampling: ``clip_len`` frames ``stride`` apart from one start frame.

    The clip spans ``(T - 1) * s + 1`` frames. In training the start is uniform in
    ``[0, F - span]``; at test time it is ``(F - span) // 2`` (the centred clip). A video
    shorter than the span starts at 0 and repeats its last frame.

    Args:
        num_frames: F (>= 1). clip_len: T (>= 1). stride: s (>= 1).
        train: Random start (True) or centred clip (False).
        generator: Optional torch generator.

    Returns:
        ``(T,)`` long tensor of frame indices in ``[0, F)``, non-decreasing.

    Raises:
        ValueError: if an argument is < 1.
    """
    if num_frames < 1 or clip_len < 1 or stride < 1:
        raise ValueError(f"need positive num_frames, clip_len, stride; got {num_frames}, {clip_len}, {stride}")
    span = (clip_len - 1) * stride + 1
    room = max(num_frames - span, 0)
    if train:
        start = int(torch.randint(room + 1, (1,), generator=generator))
    else:
        start = room // 2
    return (start + torch.arange(clip_len) * stride).clamp_(max=num_frames - 1)


class SegmentSampler:
    """Callable ``num_frames -> (N,) indices`` wrapping :func:`segment_indices`."""

    def __init__(self, num_segments: int, train: bool = True, generator: torch.Generator | None = None) -> None:
        self.num_segments, self.train, self.generator = num_segments, train, generator

    def __call__(self, num_frames: int) -> torch.Tensor:
        return segment_indices(num_frames, self.num_segments, self.train, self.generator)


class DenseSampler:
    """Callable ``num_frames -> (T,) indices`` wrapping :func:`dense_indices`."""

    def __init__(self, clip_len: int, stride: int = 1, train: bool = True, generator: torch.Generator | None = None) -> None:
        self.clip_len, self.stride, self.train, self.generator = clip_len, stride, train, generator

    def __call__(self, num_frames: int) -> torch.Tensor:
        return dense_indices(num_frames, self.clip_len, self.stride, self.train, self.generator)
