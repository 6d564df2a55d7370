"""LaIAR (arXiv 2404.01591): scene descriptions of the synthetic clips, the shared DT-Former, the
transfer terms, the restated equations, bad input."""

from __future__ import annotations

import pytest
import torch

from videozoo.data.captions import CLASSES, make_caption_clips
from videozoo.data.scene_graphs import PHRASES, describe_frames
from videozoo.data.tokenizer import tokenize
from videozoo.models.clip import normalize_pixels
from videozoo.models.laiar import LaIAR, _reference_check
from videozoo.registry import create, make_config


def test_descriptions_name_colour_and_follow_the_motion():
    labels = torch.arange(64)
    clips = make_caption_clips(labels, frames=8, size=32, seed=3)
    idx = describe_frames(clips)
    assert idx.shape == (64, 8) and int(idx.max()) < len(PHRASES) - 1       # an object in every frame
    for i, cls in enumerate(CLASSES):
        words = [PHRASES[j].split() for j in idx[i].tolist()]
        assert all(w[0] == cls.colour for w in words)
        cols = [("left", "center", "right").index(w[-1]) for w in words]
        rows = [("top", "middle", "bottom").index(w[-2]) for w in words]
        moving = {"right": cols, "left": cols[::-1], "down": rows, "up": rows[::-1]}[cls.direction]
        assert moving == sorted(moving)                                       # monotonic along the motion
    assert describe_frames(torch.zeros(1, 3, 2, 16, 16)).tolist() == [[len(PHRASES) - 1] * 2]
    with pytest.raises(ValueError, match="pixels"):
        describe_frames(torch.zeros(1, 2, 16, 16))


def test_tiny_forward_backward_and_loss_terms():
    torch.manual_seed(0)
    model = create("laiar", "tiny")
    cfg = model.config
    labels = torch.tensor([1, 22])
    video = normalize_pixels(make_caption_clips(labels, frames=8, size=32, seed=1))
    text = tokenize(["a red square moving left", "a green circle moving down"], context_length=cfg.context_length)
    assert torch.equal(model.describe(video), describe_frames(make_caption_clips(labels, frames=8, size=32, seed=1)))
    terms = model.loss_terms(video, text)
    assert set(terms) == {"video", "language", "joint", "select", "transfer"}
    assert all(torch.isfinite(v) for v in terms.values())
    loss = model.contrastive_loss(video, text)
    loss.backward()
    assert model.visual_proj.weight.grad is not None and model.dtformer.query.grad is not None
    assert model(video, text).shape == (2, 2)
    _, _, selection = model.video_model(video)
    assert torch.allclose(selection.sum(1), torch.ones(2))


def test_reference_check_restated_equations():
    result = _reference_check()
    assert result["passed"], result["summary"]


def test_bad_input_names_argument_and_limit():
    torch.manual_seed(0)
    model = create("laiar", "tiny")
    video = normalize_pixels(torch.rand(2, *model.config.clip_shape()))
    text = tokenize(["a red square moving left"], context_length=16)
    with pytest.raises(ValueError, match="config.num_frames is 8"):
        model(video[:, :, :4], text)
    with pytest.raises(ValueError, match="one caption per clip"):
        model.contrastive_loss(video, text)
    with pytest.raises(ValueError, match="empty class list"):
        model(video, text[:0])
    with pytest.raises(ValueError, match="dtformer_heads"):
        LaIAR(make_config("laiar", "tiny", dtformer_heads=3))
