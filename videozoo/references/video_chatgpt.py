"""Video-ChatGPT's spatiotemporal features, as the paper writes them (torch, float64, explicit sums).

Maaz et al., "Video-ChatGPT: Towards Detailed Video Understanding via Large Vision and
Language Models", arXiv 2306.05424, Sec. 3 (Architecture): for a video of ``T`` frames, CLIP
gives frame-level embeddings ``x_i`` of shape ``(T, h, w, D)``.  Average pooling along the
temporal dimension gives the video-level *spatial* features ``z_i`` of shape ``(N, D)``,
``N = h w``; average pooling along the spatial dimensions gives the *temporal* features
``t_i`` of shape ``(T, D)``.  They are concatenated, ``v_i = [t_i  z_i]``, shape
``(T + N, D)``, and a linear layer ``Q_v = W v_i`` maps them to the LLM's width.  The order
(temporal first) follows the authors' code.

Written as loops over frames and patches (no pooling operators), in float64, so that the
model's ``spatiotemporal_pool`` is checked against a second, independent form.
"""

from __future__ import annotations

import torch

__all__ = ["spatiotemporal_features", "project"]


def spatiotemporal_features(frames: torch.Tensor) -> torch.Tensor:
    """``(T, N, D)`` frame-level patch embeddings -> ``(T + N, D)`` ``[t_i  z_i]`` (float64).

    Raises:
        ValueError: if ``frames`` is not 3-dimensional.
    """
    if frames.ndim != 3:
        raise ValueError(f"frames: expected (T, N, D), got shape {tuple(frames.shape)}")
    x = frames.detach().to(torch.float64)
    T, N, D = x.shape
    t = torch.zeros(T, D, dtype=torch.float64)
    for k in range(T):            # temporal features: the mean over the N patches of frame k
        for n in range(N):
            t[k] += x[k, n]
        t[k] /= N
    z = torch.zeros(N, D, dtype=torch.float64)
    for n in range(N):            # spatial features: the mean over the T frames of patch n
        for k in range(T):
            z[n] += x[k, n]
        z[n] /= T
    return torch.cat([t, z], dim=0)


def project(v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``Q_v = W v + b`` for each of the ``T + N`` tokens: ``(T + N, D) -> (T + N, K)`` (float64).

    ``weight`` is ``(K, D)`` and ``bias`` ``(K,)``, as ``torch.nn.Linear`` stores them.
    """
    v, w, b = (a.detach().to(torch.float64) for a in (v, weight, bias))
    return torch.stack([w @ v[i] + b for i in range(v.shape[0])])
