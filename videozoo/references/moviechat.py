"""MovieChat's memory, as the paper and its release state it (NumPy, float64, plain loops).

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

import numpy as np

__all__ = ["cosine", "consolidate", "stream_memory", "extended_positions"]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two frames' flattened tokens."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.sqrt(a @ a) * np.sqrt(b @ b)))


def consolidate(frames: list[np.ndarray], target: int) -> list[np.ndarray]:
    """Algorithm 1: merge the most similar adjacent pair (their mean) until ``target`` frames remain."""
    frames = [np.asarray(f, dtype=np.float64) for f in frames]
    while len(frames) > target:
        sims = [cosine(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
        m = sims.index(max(sims))
        frames[m] = (frames[m] + frames[m + 1]) / 2
        del frames[m + 1]
    return frames


def stream_memory(frames: list[np.ndarray], short_length: int, merge_length: int,
                  long_length: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Feed frames one by one through the short- and long-term memory.

    Returns:
        ``(long_term, short_term)`` at the end of the stream.
    """
    short: list[np.ndarray] = []
    long: list[np.ndarray] = []
    new = 0
    for f in frames:
        if len(short) == short_length:
            short.pop(0)
        short.append(np.asarray(f, dtype=np.float64))
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


def extended_positions(p: np.ndarray, alpha: float) -> np.ndarray:
    """``n`` learned position embeddings ``(n, D)`` -> ``n^2`` positions ``(n^2, D)``."""
    p = np.asarray(p, dtype=np.float64)
    n = p.shape[0]
    u = [(p[i] - alpha * p[0]) / (1 - alpha) for i in range(n)]
    out = []
    for i in range(n):
        for j in range(n):
            out.append(alpha * u[i] + (1 - alpha) * u[j])
    return np.stack(out)
