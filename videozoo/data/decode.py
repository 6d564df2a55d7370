"""Video decoding and a folder-of-videos dataset.

``read_video(path)`` decodes a file to a uint8 tensor ``(T, H, W, 3)`` with PyAV (FFmpeg
bindings); :class:`VideoFolder` is the video counterpart of torchvision's ``ImageFolder``:
``root/<class_name>/<video file>``, classes sorted by name, and a frame-index sampler from
:mod:`videozoo.data.sampling` choosing which frames make the clip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

__all__ = ["read_video", "write_video", "VideoFolder", "VIDEO_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


def read_video(path: str | os.PathLike) -> torch.Tensor:
    """Decode every frame of the first video stream.

    Args:
        path: Video file readable by FFmpeg.

    Returns:
        ``(T, H, W, 3)`` uint8 RGB tensor.

    Raises:
        FileNotFoundError: if ``path`` does not exist. ValueError: if it has no video frames.
        ImportError: if PyAV is not installed (``pip install av``).
    """
    import av

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
    if not frames:
        raise ValueError(f"{path}: no video frames decoded")
    return torch.stack(frames)


def write_video(path: str | os.PathLike, frames: torch.Tensor, fps: int = 25, codec: str = "mpeg4") -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to a file (used by tests and demos).

    H and W should be even for most codecs. ``codec`` is an FFmpeg encoder name, e.g.
    ``"mpeg4"``, ``"libx264"`` or the lossless ``"ffv1"`` (with a ``.mkv`` file).
    """
    import av

    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "bgr0"
        for img in frames.numpy():
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class VideoFolder(Dataset):
    """Videos in ``root/<class>/<file>``; each item is one sampled clip and its class index.

    Args:
        root: Dataset folder; every sub-folder is a class (sorted by name -> index).
        sampler: Callable ``num_frames -> (T,) long indices`` (e.g.
            :class:`~videozoo.data.sampling.DenseSampler` or ``SegmentSampler``).
        size: Optional ``(H, W)``; frames are resized (bilinear) so clips can be batched.
        transform: Optional callable applied to the ``(3, T, H, W)`` float clip.
        extensions: File suffixes treated as videos.

    Items:
        ``(clip, label)`` with clip float32 ``(3, T, H, W)`` in [0, 1] and label int.

    Raises:
        FileNotFoundError: if ``root`` has no class folder with a video in it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        sampler: Callable[[int], torch.Tensor],
        size: tuple[int, int] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    ) -> None:
        self.root = Path(root)
        self.sampler, self.size, self.transform = sampler, size, transform
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir()) if self.root.is_dir() else []
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = []
        for c in self.classes:
            for f in sorted((self.root / c).rglob("*")):
                if f.is_file() and f.suffix.lower() in extensions:
                    self.samples.append((f, self.class_to_idx[c]))
        if not self.samples:
            raise FileNotFoundError(f"no videos ({', '.join(extensions)}) in class folders under {self.root}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        video = read_video(path)                                  # (F, H, W, 3) uint8
        idx = self.sampler(video.shape[0])
        clip = video[idx].permute(3, 0, 1, 2).float().div_(255)  # (3, T, H, W)
        if self.size is not None and tuple(clip.shape[-2:]) != tuple(self.size):
            clip = torch.nn.functional.interpolate(clip, size=tuple(self.size), mode="bilinear", align_corners=False)
            clip = clip.clamp_(0.0, 1.0)
        if self.transform is not None:
            clip = self.transform(clip)
        return clip, label
