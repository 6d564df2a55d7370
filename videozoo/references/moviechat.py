"""MovieChat's memory, as the paper and its release state it (torch float64, plain loops).

Song et al., "MovieChat: From Dense Token to Sparse Memory for Long Video Understanding",
CVPR 2024, arXiv 2307.16449, Sec. 3 and Algorithm 1, with the details of the authors'
release (rese1f/MovieChat; the lmms-eval wrapper of the release for the inference loop):

* Each frame is a set of ``Q`` tokens of width ``D`` (the BLIP-2 Q-Former's output).
* Memory consolidation (Algorithm 1): while the memory holds more than the target number of
  frames, compute the similarity of every pair of adjacent frames (cosine similarity of
  their flattened tokens), take the most similar pair (the first one on ties), replace it by
  the mean of the two, and repeat.
* Short-term memory: frames enter a first-in-first-out buffer; every ``K - R`` new frames it
  is consolidated to ``R`` frames, which are appended to the long-term memory and stay at the
  head of the buffer; a stream that ends between two consolidations has its last frames
  consolidated too.  When the long-term memory holds more than ``R_L`` frames, it is
  consolidated back to ``R_L`` (the release's ``encode_videoQformer_visual``).
* Frame positions beyond the ``n`` learned ones (hierarchically decomposed position
  encoding): ``u_i = (p_i - alpha p_0) / (1 - alpha)`` and ``q_{i n + j} = alpha u_i +
  (1 - alpha) u_j``, ``n^2`` positions from ``n``.
"""

from __future__ import annotations

import torch

__all__ = ["cosine", "consolidate", "stream_memory", "extended_positions"]


def _f64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two frames' flattened tokens (any shape, compared as float64 vectors)."""
    a = _f64(a).flatten()
    b = _f64(b).flatten()
    return float(torch.dot(a, b) / (torch.dot(a, a).sqrt() * torch.dot(b, b).sqrt()))


def consolidate(frames: list[torch.Tensor], target: int) -> list[torch.Tensor]:
    """Algorithm 1: merge the most similar adjacent pair (their mean) until ``target`` frames remain.

    Args:
        frames: Frames of ``(Q, D)`` tokens each (tensors or arrays), oldest first.
        target: Number of frames to keep.

    Returns:
        ``target`` float64 frames ``(Q, D)`` (or the input, as float64, if it was no longer).
    """
    frames = [_f64(f) for f in frames]
    while len(frames) > target:
        sims = [cosine(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
        m = sims.index(max(sims))
        frames[m] = (frames[m] + frames[m + 1]) / 2
        del frames[m + 1]
    return frames


def stream_memory(frames: list[torch.Tensor], short_length: int, merge_length: int,
                  long_length: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Feed frames ``(Q, D)`` one by one through the short- and long-term memory.

    Returns:
        ``(long_term, short_term)`` at the end of the stream, lists of float64 frames ``(Q, D)``.
    """
    short: list[torch.Tensor] = []
    long: list[torch.Tensor] = []
    new = 0
    for f in frames:
        if len(short) == short_length:
            short.pop(0)
        short.append(_f64(f))
        new += 1
        if new == short_length - merge_length:
            short = consolidate(short, merge_length)
            long.extend(short)
            new = 0
            if len(long) > long_length:
                long = consolidate(long, long_length)
    if new:
        short = consolidate(short, merge_length)
        long.extend(short)
        if len(long) > long_length:
            long = consolidate(long, long_length)
    return long, short


def extended_positions(p: torch.Tensor, alpha: float) -> torch.Tensor:
    """``n`` learned position embeddings ``(n, D)`` -> ``n^2`` positions ``(n^2, D)``, float64."""
    p = _f64(p)
    n = p.shape[0]
    u = [(p[i] - alpha * p[0]) / (1 - alpha) for i in range(n)]
    out = []
    for i in range(n):
        for j in range(n):
            out.append(alpha * u[i] + (1 - alpha) * u[j])
    return torch.stack(out)
