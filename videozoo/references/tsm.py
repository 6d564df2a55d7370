"""The temporal shift of TSM restated element by element from the paper.

Paper: Ji Lin, Chuang Gan, Song Han, "TSM: Temporal Shift Module for Efficient Video
Understanding", ICCV 2019, arXiv 1811.08383, Sec. 3.1-3.2 and Fig. 1 (b) bi-directional
(offline) shift, Fig. 1 (c) uni-directional (online) shift.

For segment ``t`` of ``N`` and channel ``c`` with ``fold = C // fold_div``:

* offline: channels ``[0, fold)`` take segment ``t + 1`` (shifted back in time), channels
  ``[fold, 2 fold)`` take segment ``t - 1`` (shifted forward), the rest stay;
* online: channels ``[0, fold)`` take segment ``t - 1``, the rest stay;

and a segment index outside ``[0, N)`` contributes zeros.  Written as explicit loops over
clips, segments and channels (slow, for checks only).
"""

from __future__ import annotations

import torch


def shift_loop(x: torch.Tensor, n_segment: int, fold_div: int = 8, online: bool = False) -> torch.Tensor:
    """Temporal shift by explicit loops.

    Args:
        x: ``(B * N, C, H, W)``, the N segments of each clip consecutive.
        n_segment: N.
        fold_div: 1 / fraction of channels shifted per direction (8 in the paper).
        online: Uni-directional shift (past to future only).

    Returns:
        ``(B * N, C, H, W)``.

    Raises:
        ValueError: if the batch is not a multiple of ``n_segment``.
    """
    nt, c = x.shape[:2]
    if nt % n_segment:
        raise ValueError(f"batch {nt} is not a multiple of n_segment={n_segment}")
    fold = c // fold_div
    out = torch.empty_like(x)
    for b in range(nt // n_segment):
        for t in range(n_segment):
            for ch in range(c):
                if ch < fold:
                    src = t - 1 if online else t + 1
                elif ch < 2 * fold and not online:
                    src = t - 1
                else:
                    src = t
                if 0 <= src < n_segment:
                    out[b * n_segment + t, ch] = x[b * n_segment + src, ch]
                else:
                    out[b * n_segment + t, ch] = 0
    return out
