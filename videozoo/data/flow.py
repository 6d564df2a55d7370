"""Optical flow and the stacked-flow input of the two-stream temporal ConvNet.

Simonyan & Zisserman, "Two-Stream Convolutional Networks for Action Recognition in Videos",
arXiv 1406.2199, Sec. 3.1 ("optical flow stacking"): the temporal stream sees the horizontal
and vertical displacement fields ``d^x_t, d^y_t`` of L consecutive frame pairs stacked into
``2L`` input channels, channel ``2k`` holding ``d^x_{tau+k}`` and channel ``2k+1`` holding
``d^y_{tau+k}`` (0-based ``k``). The same section proposes *mean flow subtraction*:
subtracting each field's mean displacement vector, a cheap compensation for camera motion.
The paper's implementation rescales the flow linearly to [0, 255] to store it as JPEG; here
we keep floats and map a fixed range ``[-bound, bound]`` pixels (clipped) linearly to
``[-1, 1]`` (the common choice, also made by TSN and I3D, is ``bound = 20``), which is the
same affine rescaling without the quantisation.

Simplifications: the paper uses the Brox et al. variational method; here flow is computed
with OpenCV's Farneback method (``cv2.calcOpticalFlowFarneback``), which is fast on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["farneback_flow", "stack_flow", "clip_to_flow_stack", "normalise_flow"]


def _to_gray_uint8(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 or float in [0, 1] (or ``(T, H, W)``) -> ``(T, H, W)`` uint8."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if frames.ndim == 4:
        # ITU-R BT.601 luma, as cv2.cvtColor(..., COLOR_RGB2GRAY).
        gray = frames[..., 0] * 0.299 + frames[..., 1] * 0.587 + frames[..., 2] * 0.114
        frames = (gray + 0.5).astype(np.uint8)
    if frames.ndim != 3:
        raise ValueError(f"expected frames (T, H, W, 3) or (T, H, W), got shape {frames.shape}")
    return frames


def farneback_flow(
    frames: np.ndarray,
    pyr_scale: float = 0.5,
    levels: int = 3,
    winsize: int = 9,
    iterations: int = 3,
    poly_n: int = 5,
    poly_sigma: float = 1.1,
) -> np.ndarray:
    """Dense optical flow between consecutive frames with OpenCV's Farneback method.

    Args:
        frames: ``(T, H, W, 3)`` RGB uint8 (or float in [0, 1]) or ``(T, H, W)`` grey, T >= 2.
        pyr_scale, levels, winsize, iterations, poly_n, poly_sigma: passed to
            ``cv2.calcOpticalFlowFarneback`` (defaults suit small frames, 32-128 px).

    Returns:
        ``(T - 1, H, W, 2)`` float32 displacement in pixels from frame t to frame t+1;
        ``[..., 0]`` is x (positive = rightwards), ``[..., 1]`` is y (positive = downwards).

    Raises:
        ValueError: for fewer than two frames or a bad shape.
    """
    import cv2

    gray = _to_gray_uint8(frames)
    if gray.shape[0] < 2:
        raise ValueError("need at least two frames to compute flow")
    out = np.empty((gray.shape[0] - 1, gray.shape[1], gray.shape[2], 2), dtype=np.float32)
    for t in range(gray.shape[0] - 1):
        out[t] = cv2.calcOpticalFlowFarneback(
            gray[t], gray[t + 1], None, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0
        )
    return out


def normalise_flow(flow: np.ndarray, bound: float = 20.0, subtract_mean: bool = True) -> np.ndarray:
    """Mean flow subtraction (optional), clipping to ``[-bound, bound]`` px, scaling to [-1, 1].

    Args:
        flow: ``(..., H, W, 2)`` displacements in pixels.
        bound: Clipping bound in pixels (> 0).
        subtract_mean: Subtract each field's mean (x, y) displacement (1406.2199 Sec. 3.1).

    Returns:
        Array of the same shape, float32, in [-1, 1].
    """
    flow = np.asarray(flow, dtype=np.float32)
    if subtract_mean:
        flow = flow - flow.mean(axis=(-3, -2), keepdims=True)
    return np.clip(flow, -bound, bound) / bound


def stack_flow(flow: np.ndarray, L: int, start: int = 0) -> torch.Tensor:
    """Stack L consecutive flow fields into the 2L-channel temporal-stream input.

    Args:
        flow: ``(F, H, W, 2)`` flow fields (F >= start + L), already normalised if wanted.
        L: Number of stacked flows (the paper uses L = 10).
        start: Index tau of the first flow field.

    Returns:
        ``(2L, H, W)`` float32 tensor; channel ``2k`` is x and ``2k + 1`` is y displacement of
        flow ``start + k``.

    Raises:
        ValueError: if fewer than ``start + L`` flow fields are available.
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 4 or flow.shape[-1] != 2:
        raise ValueError(f"expected flow (F, H, W, 2), got shape {flow.shape}")
    if start < 0 or L < 1 or start + L > flow.shape[0]:
        raise ValueError(f"need 0 <= start and start + L <= {flow.shape[0]}, got start={start}, L={L}")
    chunk = flow[start:start + L]                       # (L, H, W, 2)
    chunk = np.transpose(chunk, (0, 3, 1, 2))          # (L, 2, H, W): x then y per flow
    return torch.from_numpy(np.ascontiguousarray(chunk.reshape(2 * L, *chunk.shape[2:])))


def clip_to_flow_stack(clip: torch.Tensor, bound: float = 20.0, subtract_mean: bool = True) -> torch.Tensor:
    """Batch helper: RGB clips to normalised stacked flow of all ``T - 1`` frame pairs.

    Args:
        clip: ``(B, 3, T, H, W)`` float in [0, 1] (any device; computed on the CPU).
        bound, subtract_mean: see :func:`normalise_flow`.

    Returns:
        ``(B, 2 (T - 1), H, W)`` float32 on the clip's device, values in [-1, 1].
    """
    if clip.ndim != 5 or clip.shape[1] != 3:
        raise ValueError(f"expected clip (B, 3, T, H, W), got shape {tuple(clip.shape)}")
    frames = clip.detach().float().permute(0, 2, 3, 4, 1).cpu().numpy()  # (B, T, H, W, 3)
    out = []
    for b in range(frames.shape[0]):
        flow = normalise_flow(farneback_flow(frames[b]), bound=bound, subtract_mean=subtract_mean)
        out.append(stack_flow(flow, flow.shape[0]))
    return torch.stack(out).to(clip.device)
