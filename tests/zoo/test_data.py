"""Tests of videozoo.data: sampling indices, Farneback flow, synthetic motion clips, decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videozoo.data.sampling import DenseSampler, SegmentSampler, dense_indices, segment_indices
from videozoo.data.synthetic import CLASS_NAMES, MotionDataset, make_motion_dataset, make_orientation_dataset
from videozoo.layers.consensus import SegmentConsensus


# ----------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("frames,segments", [(100, 8), (37, 5), (8, 8), (9, 3), (3, 8)])
def test_segment_indices_one_per_segment(frames, segments):
    gen = torch.Generator().manual_seed(0)
    for train in (True, False):
        for _ in range(20):
            idx = segment_indices(frames, segments, train=train, generator=gen)
            assert idx.shape == (segments,) and idx.dtype == torch.long
            assert idx.min() >= 0 and idx.max() < frames
            assert (idx[1:] >= idx[:-1]).all()
            if frames >= segments:
                # every index lies inside its own segment [floor(k F / N), floor((k + 1) F / N))
                for k, i in enumerate(idx.tolist()):
                    assert k * frames // segments <= i < (k + 1) * frames // segments


def test_segment_indices_test_mode_is_centre_and_train_mode_varies():
    assert segment_indices(80, 8, train=False).tolist() == [5 + 10 * k for k in range(8)]
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack([segment_indices(80, 8, train=True, generator=gen) for _ in range(200)])
    # random offsets cover the whole segment (10 frames) and stay in it
    offsets = draws - torch.arange(8) * 10
    assert offsets.min() == 0 and offsets.max() == 9
    assert SegmentSampler(8, train=False)(80).tolist() == segment_indices(80, 8, train=False).tolist()


def test_dense_indices_stride_and_bounds():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = dense_indices(64, 8, stride=4, train=True, generator=gen)
        assert (idx.diff() == 4).all() and idx.min() >= 0 and idx.max() < 64
    centre = dense_indices(64, 8, stride=4, train=False)
    span = 7 * 4 + 1
    assert centre[0] == (64 - span) // 2 and (centre.diff() == 4).all()
    short = dense_indices(5, 8, stride=2, train=False)  # shorter than the span: clamp to last frame
    assert short.tolist() == [0, 2, 4, 4, 4, 4, 4, 4]
    assert DenseSampler(8, 2, train=False)(30).tolist() == dense_indices(30, 8, 2, train=False).tolist()
    with pytest.raises(ValueError):
        dense_indices(0, 8)


# ----------------------------------------------------------------------------- consensus


def test_segment_consensus_modes():
    x = torch.randn(2, 5, 7)
    assert torch.allclose(SegmentConsensus("avg")(x), x.sum(1) / 5)
    assert torch.equal(SegmentConsensus("max")(x), torch.stack([x[:, i] for i in range(5)]).max(0).values)
    assert torch.equal(SegmentConsensus("identity")(x), x)
    with pytest.raises(ValueError):
        SegmentConsensus("median")


# ----------------------------------------------------------------------------- flow


def _translating_square(dx: int, dy: int, frames: int = 5, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    texture = rng.random((12, 12))
    out = np.full((frames, size, size), 0.3)
    for t in range(frames):
        y0, x0 = 14 + dy * t, 14 + dx * t
        out[t, y0:y0 + 12, x0:x0 + 12] = 0.4 + 0.6 * texture
    return out


@pytest.mark.parametrize("dx,dy", [(2, 0), (-2, 0), (0, 3), (1, -1)])
def test_farneback_flow_sign_and_magnitude(dx, dy):
    pytest.importorskip("cv2")
    from videozoo.data.flow import farneback_flow

    frames = _translating_square(dx, dy)
    flow = farneback_flow(frames)
    assert flow.shape == (4, 48, 48, 2) and flow.dtype == np.float32
    for t in range(4):
        y0, x0 = 14 + dy * t, 14 + dx * t
        inner = flow[t, y0 + 3:y0 + 9, x0 + 3:x0 + 9].reshape(-1, 2).mean(0)
        assert inner[0] == pytest.approx(dx, abs=0.35)
        assert inner[1] == pytest.approx(dy, abs=0.35)
    # far from the object nothing moves
    assert np.abs(flow[:, :4, :4]).max() < 0.2


def test_stack_flow_layout_and_clip_helper():
    pytest.importorskip("cv2")
    from videozoo.data.flow import clip_to_flow_stack, normalise_flow, stack_flow

    flow = np.random.default_rng(0).normal(size=(6, 8, 9, 2)).astype(np.float32)
    stacked = stack_flow(flow, L=3, start=2)
    assert stacked.shape == (6, 8, 9)
    for k in range(3):
        assert np.array_equal(stacked[2 * k].numpy(), flow[2 + k, ..., 0])
        assert np.array_equal(stacked[2 * k + 1].numpy(), flow[2 + k, ..., 1])
    with pytest.raises(ValueError):
        stack_flow(flow, L=5, start=2)
    big = np.full((1, 4, 4, 2), 50.0, dtype=np.float32)
    big[0, 0, 0] = -50.0
    assert normalise_flow(big, bound=20, subtract_mean=False).max() == 1.0
    assert normalise_flow(big, bound=20, subtract_mean=False).min() == -1.0
    small = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 5, 5, 2)).astype(np.float32)
    centred = normalise_flow(small, bound=20, subtract_mean=True)
    assert np.abs(centred.mean(axis=(1, 2))).max() < 1e-6  # mean flow subtraction
    assert np.allclose(centred * 20, small - small.mean(axis=(1, 2), keepdims=True), atol=1e-5)

    # a right-moving square in a (B, 3, T, H, W) clip gives positive x channels on the square
    frames = torch.from_numpy(_translating_square(2, 0, frames=4, size=48)).float()
    clip = frames[None, None].expand(1, 3, -1, -1, -1)
    out = clip_to_flow_stack(clip, bound=20, subtract_mean=False)
    assert out.shape == (1, 6, 48, 48)
    assert out[0, 0, 18:22, 18:22].mean() == pytest.approx(2 / 20, abs=0.02)  # x of flow 0
    assert out[0, 1, 18:22, 18:22].abs().mean() < 0.02                      # y of flow 0


# ----------------------------------------------------------------------------- synthetic motion


def test_motion_dataset_shapes_balance_and_determinism():
    clips, labels = make_motion_dataset(96, frames=8, size=32, seed=3)
    assert clips.shape == (96, 3, 8, 32, 32) and clips.dtype == torch.float32
    assert labels.shape == (96,) and labels.dtype == torch.long
    assert clips.min() >= 0 and clips.max() <= 1
    assert torch.bincount(labels, minlength=8).tolist() == [12] * 8
    again, labels2 = make_motion_dataset(96, frames=8, size=32, seed=3)
    assert torch.equal(clips, again) and torch.equal(labels, labels2)
    other, _ = make_motion_dataset(96, frames=8, size=32, seed=4)
    assert not torch.equal(clips, other)
    assert len(CLASS_NAMES) == 8
    ds = MotionDataset(16, frames=4, size=16, seed=0)
    clip, label = ds[3]
    assert clip.shape == (3, 4, 16, 16) and isinstance(label, int) and len(ds) == 16


def test_opposite_class_is_exact_time_reversal():
    clips, labels = make_motion_dataset(64, frames=8, size=32, seed=7)
    flipped, flipped_labels = make_motion_dataset(64, frames=8, size=32, seed=7, labels=labels ^ 1)
    assert torch.equal(flipped_labels, labels ^ 1)
    assert torch.equal(flipped, clips.flip(2))
    # hence both classes of a pair hold the same multiset of frames
    a = clips[0].permute(1, 0, 2, 3).reshape(8, -1)
    b = flipped[0].permute(1, 0, 2, 3).reshape(8, -1)
    assert torch.equal(a[torch.argsort(a.sum(1))], b[torch.argsort(b.sum(1))])
    # and no clip equals its own reversal (else the pair would be indistinguishable):
    # 2x2-averaged differences stay below ~0.1 for pixel noise alone, the object contrast is >= 0.22
    diff = (clips - clips.flip(2)).mean(1)  # (n, T, H, W)
    pooled = torch.nn.functional.avg_pool2d(diff.abs(), 2)
    assert pooled.amax(dim=(1, 2, 3)).min() > 0.15


def _object_stats(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centroid x, y and area of the bright object per frame (independent measurement)."""
    # object colours are >= 0.6 on each channel, background <= 0.35 + texture + noise
    mask = (clips.min(dim=1).values > 0.52).float()  # (n, T, H, W)
    area = mask.sum(dim=(2, 3)).clamp(min=1)
    ys = torch.arange(clips.shape[-2]).float()[:, None]
    xs = torch.arange(clips.shape[-1]).float()[None, :]
    cx = (mask * xs).sum(dim=(2, 3)) / area
    cy = (mask * ys).sum(dim=(2, 3)) / area
    return cx, cy, area


def test_motion_classes_move_as_named():
    clips, labels = make_motion_dataset(160, frames=8, size=32, seed=11)
    cx, cy, area = _object_stats(clips)
    dx, dy, ratio = cx[:, -1] - cx[:, 0], cy[:, -1] - cy[:, 0], area[:, -1] / area[:, 0]
    assert (dx[labels == 0] > 5).all() and (dx[labels == 1] < -5).all()   # right / left
    assert (dy[labels == 2] > 5).all() and (dy[labels == 3] < -5).all()   # down / up (rows grow downwards)
    assert (ratio[labels == 6] > 1.3).all() and (ratio[labels == 7] < 1 / 1.3).all()  # approach / recede
    steady = labels < 6
    assert ((ratio[steady] - 1).abs() < 0.25).all()  # other objects keep their size
    still = (labels >= 4) & (labels <= 5)
    assert dx[still].abs().max() < 1.5 and dy[still].abs().max() < 1.5    # rotation stays in place


def test_rotation_direction():
    clips, labels = make_motion_dataset(80, frames=8, size=32, seed=5)
    mask = (clips.min(dim=1).values > 0.52).float()
    ys = torch.arange(32).float()[:, None].expand(32, 32)
    xs = torch.arange(32).float()[None, :].expand(32, 32)
    signs = []
    for i in torch.nonzero((labels == 4) | (labels == 5)).flatten().tolist():
        angles = []
        for t in range(8):
            m = mask[i, t]
            w = m.sum()
            mx, my = (m * xs).sum() / w, (m * ys).sum() / w
            cxx = (m * (xs - mx) ** 2).sum() / w
            cyy = (m * (ys - my) ** 2).sum() / w
            cxy = (m * (xs - mx) * (ys - my)).sum() / w
            angles.append(0.5 * torch.atan2(2 * cxy, cxx - cyy))  # principal axis, y down
        a = torch.stack(angles)
        step = torch.remainder(a.diff() + torch.pi / 2, torch.pi) - torch.pi / 2  # wrap to [-90, 90) deg
        signs.append((torch.sign(step.median()).item(), labels[i].item()))
    # clockwise on screen (x right, y down) means the axis angle grows
    assert all((s > 0) == (lab == 4) for s, lab in signs)


def test_orientation_labels_follow_the_objects_principal_axis():
    images, labels = make_orientation_dataset(400, size=32, bins=12, seed=3)
    assert images.shape == (400, 3, 32, 32) and labels.dtype == torch.long
    assert labels.min() >= 0 and labels.max() < 12 and torch.bincount(labels, minlength=12).min() > 10
    again, labels_again = make_orientation_dataset(400, size=32, bins=12, seed=3)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    # principal axis of the bright object (second moments, y down) against the bin centre
    mask = (images.min(dim=1).values > 0.52).float()
    ys = torch.arange(32).float()[:, None]
    xs = torch.arange(32).float()[None, :]
    w = mask.sum((1, 2))
    dx = xs - ((mask * xs).sum((1, 2)) / w)[:, None, None]
    dy = ys - ((mask * ys).sum((1, 2)) / w)[:, None, None]
    cxx, cyy, cxy = ((mask * d).sum((1, 2)) / w for d in (dx * dx, dy * dy, dx * dy))
    axis = 0.5 * torch.atan2(2 * cxy, cxx - cyy)
    centre = (labels.float() + 0.5) * torch.pi / 12
    err_deg = (torch.remainder(axis - centre + torch.pi / 2, torch.pi) - torch.pi / 2).abs() * 180 / torch.pi
    assert err_deg.median() < 7.5                   # half a bin (bins are 15 deg wide)
    assert (err_deg < 15.0).float().mean() > 0.9    # at most the neighbouring bin
    with pytest.raises(ValueError, match="bins >= 2"):
        make_orientation_dataset(4, bins=1)


# ----------------------------------------------------------------------------- decoding


def test_read_video_and_video_folder(tmp_path):
    pytest.importorskip("av")
    from videozoo.data.decode import VideoFolder, read_video, write_video

    frames = torch.zeros(12, 16, 24, 3, dtype=torch.uint8)
    frames[..., 0] = (torch.arange(12) * 20).to(torch.uint8)[:, None, None]  # red ramps over time
    for cls in ("jump", "run"):
        (tmp_path / cls).mkdir()
        write_video(tmp_path / cls / "a.mkv", frames, codec="ffv1")  # lossless
    (tmp_path / "run" / "notes.txt").write_text("not a video")
    video = read_video(tmp_path / "jump" / "a.mkv")
    assert video.shape == (12, 16, 24, 3) and video.dtype == torch.uint8
    assert torch.equal(video, frames)

    ds = VideoFolder(tmp_path, SegmentSampler(4, train=False), size=(8, 8))
    assert ds.classes == ["jump", "run"] and len(ds) == 2
    clip, label = ds[1]
    assert label == 1 and clip.shape == (3, 4, 8, 8)
    expected_idx = segment_indices(12, 4, train=False)
    assert torch.allclose(clip[0, :, 0, 0] * 255, (expected_idx * 20).float(), atol=1e-3)
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.mp4")
