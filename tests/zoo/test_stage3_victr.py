"""VicTR (arXiv 2304.02560): video-conditioned text tokens, the restated equations, bad input."""

from __future__ import annotations

import pytest
import torch

from videozoo.data.tokenizer import tokenize
from videozoo.models.clip import normalize_pixels
from videozoo.models.victr import VicTR, _reference_check
from videozoo.registry import create, make_config

CAPTIONS = ["a red square moving left", "a blue circle moving up", "a green cross moving right"]


def _inputs(cfg, batch=2):
    g = torch.Generator().manual_seed(0)
    return (normalize_pixels(torch.rand(batch, *cfg.clip_shape(), generator=g)),
            tokenize(CAPTIONS, context_length=cfg.context_length))


def test_tiny_forward_backward_and_class_tokens_depend_on_the_clip():
    torch.manual_seed(0)
    model = create("victr", "tiny")
    video, text = _inputs(model.config)
    assert model(video, text).shape == (2, 3)
    loss = model.contrastive_loss(video, text[:2])
    loss.backward()
    assert torch.isfinite(loss) and model.temporal_position.grad is not None
    with torch.no_grad():
        v, z = model.video_conditioned_tokens(model.encode_video(video), model.encode_text(text))
    assert v.shape == (2, 8, 64) and z.shape == (2, 8, 3, 64)
    assert (z[0] - z[1]).abs().max() > 1e-4          # each clip gets its own class tokens


def test_sees_frame_order():
    torch.manual_seed(0)
    model = create("victr", "tiny").eval()
    video, text = _inputs(model.config)
    with torch.no_grad():
        assert (model(video, text) - model(video.flip(2), text)).abs().max() > 1e-4


def test_without_auxiliary_texts():
    torch.manual_seed(0)
    model = create("victr", "tiny", auxiliary_texts=())
    video, text = _inputs(model.config)
    assert model(video, text).shape == (2, 3)


def test_reference_check_restated_equations():
    result = _reference_check()
    assert result["passed"], result["summary"]


def test_bad_input_names_argument_and_limit():
    torch.manual_seed(0)
    model = create("victr", "tiny")
    video, text = _inputs(model.config)
    with pytest.raises(ValueError, match="config.num_frames is 8"):
        model(video[:, :, :3], text)
    with pytest.raises(ValueError, match="context length is 16"):
        model(video, torch.ones(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="empty class list"):
        model(video, text[:0])
    with pytest.raises(ValueError, match="victr_heads"):
        VicTR(make_config("victr", "tiny", victr_heads=5))
