"""Data utilities of videozoo: frame sampling, optical flow, decoding, synthetic motion clips.

Clips are float tensors ``(B, 3, T, H, W)`` in [0, 1] unless a function says otherwise.
``decode`` (PyAV) and ``flow`` (OpenCV) import their backends only when called.
"""

from videozoo.data.decode import VideoFolder, read_video, write_video
from videozoo.data.flow import clip_to_flow_stack, farneback_flow, normalise_flow, stack_flow
from videozoo.data.sampling import DenseSampler, SegmentSampler, dense_indices, segment_indices
from videozoo.data.synthetic import CLASS_NAMES, MotionDataset, make_motion_dataset

__all__ = [
    "CLASS_NAMES", "DenseSampler", "MotionDataset", "SegmentSampler", "VideoFolder",
    "clip_to_flow_stack", "dense_indices", "farneback_flow", "make_motion_dataset",
    "normalise_flow", "read_video", "segment_indices", "stack_flow", "write_video",
]
