"""Video-ChatGPT's spatiotemporal features, as the paper writes them (NumPy, float64).

Maaz et al., "Video-ChatGPT: Towards Detailed Video Understanding via Large Vision and
Language Models", arXiv 2306.05424, Sec. 3 (Architecture): for a video of ``T`` frames, CLIP
gives frame-level embeddings ``x_i`` of shape ``(T, h, w, D)``.  Average pooling along the
temporal dimension gives the video-level *spatial* features ``z_i`` of shape ``(N, D)``,
``N = h w``; average pooling along the spatial dimensions gives the *temporal* features
``t_i`` of shape ``(T, D)``.  They are concatenated, ``v_i = [t_i  z_i]``, shape
``(T + N, D)``, and a linear layer ``Q_v = W v_i`` maps them to the LLM's width.  The order
(temporal first) follows the authors' code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spatiotemporal_features", "project"]


def spatiotemporal_features(frames: np.ndarray) -> np.ndarray:
    """``(T, N, D)`` frame-level patch embeddings -> ``(T + N, D)`` ``[t_i  z_i]``, written out as sums."""
    x = np.asarray(frames, dtype=np.float64)
    T, N, D = x.shape
    t = np.zeros((T, D))
    for k in range(T):            # temporal features: the mean over the N patches of frame k
        t[k] = x[k].sum(axis=0) / N
    z = np.zeros((N, D))
    for n in range(N):            # spatial features: the mean over the T frames of patch n
        z[n] = x[:, n].sum(axis=0) / T
    return np.concatenate([t, z], axis=0)


def project(v: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``Q_v = W v + b`` for each of the ``T + N`` tokens: ``(T + N, D) -> (T + N, K)``."""
    return np.asarray(v, dtype=np.float64) @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, dtype=np.float64)
