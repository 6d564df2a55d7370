"""SlowFocus's sampling and mixing, as the paper and its release state them (torch float64, loops).

Nie et al., "SlowFocus: Enhancing Fine-grained Temporal Understanding in Video LLM", NeurIPS
2024, arXiv 2602.03589, Sec. 3 (mixed-frequency sampling, multi-frequency mixing attention,
temporal encoder), with the details of the authors' release (fudan-zvg/SlowFocus:
``slowfocus/eval/model_fineaction_tsearch.py`` for the sampling, ``slowfocus/model/llava_arch.py``
for the tokens):

* Low-frequency frames: every ``s``-th frame from the first, ``s = round(video_fps /
  sampling_fps)`` (at least 1), or ``round(T / max_frames)`` when that gives more than
  ``max_frames`` frames.
* High-frequency frames of a segment ``[start, end]`` (fractions of the video): frame indices
  ``i0 = round(start T)``, ``i1 = min(round(end T), T - 1)``, ``n`` of them spaced evenly
  from ``i0`` to ``i1`` (``numpy.linspace``: ``i0 + k (i1 - i0) / (n - 1)``, the last one ``i1``,
  truncated to integers).
* The two sorted index lists are merged into one sorted list, a low-frequency frame before a
  high-frequency frame of the same index; the positions of each kind are remembered.
* Each frame's patch tokens are average-pooled on a ``g x g`` grid; a temporal embedding (row
  ``floor(N t)``, clamped to ``[0, N - 1]``, of a table of ``N`` rows, ``t`` the frame index
  over ``T``; the release's table has ``N = 1000`` rows and multiplies by 1000) is added to
  every token of the frame.
* Multi-frequency mixing attention: with ``L`` the low-frequency frames' tokens and ``H`` the
  high-frequency ones, ``H <- H + softmax(P_h(H) P_l(L)^T / sqrt(C)) L`` and
  ``L <- L + softmax(P_l(L) P_h(H)^T / sqrt(C)) H`` (both from the tokens before mixing).
* Timestamps in the grounding answer: ``x / duration * bins`` rounded, at most ``bins - 1``,
  zero-padded to ``len(str(bins)) - 1`` digits; an answer ``"from 23 to 45"`` (or ``"23 and
  45"``) is read back as ``(0.23, 0.45)``, a number of ``k`` digits being divided by ``10^k``.
"""

from __future__ import annotations

import math
import re

import torch

__all__ = ["low_frequency_indices", "high_frequency_indices", "merge", "grid_pool", "temporal_rows", "mix",
           "timestamp", "segments_in"]


def low_frequency_indices(num_frames: int, max_frames: int, video_fps: float = 1.0,
                          sampling_fps: float = 1.0) -> list[int]:
    """The release's sparse sampling of the whole video."""
    step = min(max(round(video_fps / sampling_fps), 1), num_frames)
    if num_frames / step > max_frames:
        step = round(num_frames / max_frames)
    return list(range(0, num_frames, step))


def high_frequency_indices(start: float, end: float, num_frames: int, n: int) -> list[int]:
    """``n`` frames spaced evenly over the segment ``[start, end]`` (the release's ``numpy.linspace``)."""
    i0 = round(start * num_frames)
    i1 = min(round(end * num_frames), num_frames - 1)
    if n == 1:
        return [int(i0)]
    step = (i1 - i0) / (n - 1)
    return [int(k * step + i0) for k in range(n - 1)] + [int(i1)]


def merge(low: list[int], high: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Merge two sorted index lists: ``(merged, positions of the low ones, positions of the high ones)``."""
    tagged = sorted([(v, 0, i) for i, v in enumerate(low)] + [(v, 1, i) for i, v in enumerate(high)])
    merged = [v for v, _, _ in tagged]
    low_pos = [k for k, (_, kind, _) in enumerate(tagged) if kind == 0]
    high_pos = [k for k, (_, kind, _) in enumerate(tagged) if kind == 1]
    return merged, low_pos, high_pos


def grid_pool(tokens: torch.Tensor, g: int) -> torch.Tensor:
    """``(s * s, C)`` patch tokens in raster order -> ``(g * g, C)`` float64 means of ``(s / g) x (s / g)`` blocks."""
    x = torch.as_tensor(tokens, dtype=torch.float64)
    s = int(round(math.sqrt(x.shape[0])))
    k = s // g
    out = []
    for gy in range(g):
        for gx in range(g):
            block = [x[(gy * k + dy) * s + gx * k + dx] for dy in range(k) for dx in range(k)]
            out.append(torch.stack(block).mean(0))
    return torch.stack(out)


def temporal_rows(frame_indices: list[int], num_frames: int, rows: int) -> list[int]:
    """Row of the temporal embedding for each frame: ``floor(rows t)`` of ``t = index / T``, clamped."""
    return [min(max(int(math.floor(i / num_frames * rows)), 0), rows - 1) for i in frame_indices]


def _softmax(z: torch.Tensor) -> torch.Tensor:
    z = z - z.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def mix(low: torch.Tensor, high: torch.Tensor, w_l: torch.Tensor, b_l: torch.Tensor, w_h: torch.Tensor,
        b_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-frequency mixing attention on ``(n_l, C)`` and ``(n_h, C)`` tokens; returns the updated pair (float64).

    ``w_l``, ``w_h``: ``(C, C)`` projection weights (``y = x W^T + b``), ``b_l``, ``b_h``: ``(C,)``.
    """
    f64 = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    low, high = f64(low), f64(high)
    pl = low @ f64(w_l).T + f64(b_l)
    ph = high @ f64(w_h).T + f64(b_h)
    c = low.shape[1]
    new_high = high + _softmax(ph @ pl.T / math.sqrt(c)) @ low
    new_low = low + _softmax(pl @ ph.T / math.sqrt(c)) @ high
    return new_low, new_high


def timestamp(fraction: float, bins: int) -> str:
    """A position in the video (fraction of its duration) as the grounding answer writes it."""
    x = str(min(round(fraction * bins), bins - 1))
    while len(x) < len(str(bins)) - 1:
        x = "0" + x
    return x


def segments_in(text: str) -> list[tuple[float, float]]:
    """Every ``"A to B"`` / ``"A and B"`` with ``A < B`` in ``text``, as fractions."""
    out = []
    while True:
        found = re.search(r"(\d{2,4}) (to|and) (\d{2,4})", text)
        if found is None:
            return out
        a, b = found.group(1), found.group(3)
        if int(a) < int(b):
            out.append((float(a) / 10 ** len(a), float(b) / 10 ** len(b)))
        text = text[found.span()[1]:]
