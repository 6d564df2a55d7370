"""VideoAgent's re-identification and segment localisation, as the paper and release state them (torch).

Fan et al., "VideoAgent: A Memory-augmented Multimodal Agent for Video Understanding", ECCV
2024, arXiv 2403.11481, Sec. 3 (the object memory's tracking and re-identification, and the
segment localisation tool), with the constants of the authors' release (YueFan1014/VideoAgent:
``reid.py``, ``tools.py``):

* Two tracks can be the same object only if they never appear in the same frame (and here, as
  the release's commented-out line has it, only if their categories agree).
* Their score is ``0.15 sigmoid(20 (cos_clip - 0.925)) + 0.85 cos_dino`` of the cosine
  similarities of their CLIP and DINOv2 (appearance) embeddings.
* Tracks are visited in order of their first frame; a track joins the first existing object
  whose every track scores at least 0.5 with it, one at least 0.62; otherwise it starts a new
  object.
* Segment localisation ranks segments by ``18 cos(query, segment video feature) + 11
  cos(query text, caption text)`` and returns the best ``k``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["cosine", "pair_score", "reidentify", "localise"]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two embedding vectors, in float64."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return float(torch.dot(a, b) / (math.sqrt(torch.dot(a, a)) * math.sqrt(torch.dot(b, b))))


def pair_score(frames1: set[int], frames2: set[int], cat1: str, cat2: str, clip1: torch.Tensor, clip2: torch.Tensor,
               app1: torch.Tensor, app2: torch.Tensor) -> float:
    """The re-identification score of two tracks (0 when they cannot be the same object)."""
    if frames1 & frames2 or cat1 != cat2:
        return 0.0
    clip_score = 1.0 / (1.0 + math.exp(-20.0 * (cosine(clip1, clip2) - 0.925)))
    return 0.15 * clip_score + 0.85 * cosine(app1, app2)


def reidentify(tracks: list[dict]) -> list[int]:
    """Object index of each track.

    Args:
        tracks: In order of their first frame; each ``{"frames": set, "category": str, "clip":
            vector, "appearance": vector}`` (tensors or arrays).
    """
    groups: list[list[int]] = []
    owner = []
    for t, tr in enumerate(tracks):
        joined = None
        for g, members in enumerate(groups):
            scores = [pair_score(tr["frames"], tracks[m]["frames"], tr["category"], tracks[m]["category"],
                                 tr["clip"], tracks[m]["clip"], tr["appearance"], tracks[m]["appearance"])
                      for m in members]
            if min(scores) >= 0.5 and max(scores) >= 0.62:
                joined = g
                break
        if joined is None:
            groups.append([t])
            owner.append(len(groups) - 1)
        else:
            groups[joined].append(t)
            owner.append(joined)
    return owner


def localise(query_visual: torch.Tensor, query_text: torch.Tensor, segment_visual: torch.Tensor,
             segment_text: torch.Tensor, k: int) -> list[int]:
    """The ``k`` best segments by ``18 visual + 11 textual`` cosine similarity (best first)."""
    scores = []
    for i in range(len(segment_visual)):
        scores.append(18.0 * cosine(query_visual, segment_visual[i]) + 11.0 * cosine(query_text, segment_text[i]))
    return sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
