"""ALT (arXiv 2311.15619): region tokens, entity-to-region alignment, the adapter, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from videozoo.data.tokenizer import tokenize
from videozoo.models.alt import ALT, _reference_check, region_tokens
from videozoo.models.clip import normalize_pixels
from videozoo.registry import create, make_config

CAPTIONS = ["a red square moving left", "a blue circle moving up", "a green cross moving right"]


def _inputs(cfg, batch=2):
    g = torch.Generator().manual_seed(0)
    return (normalize_pixels(torch.rand(batch, *cfg.clip_shape(), generator=g)),
            tokenize(CAPTIONS, context_length=cfg.context_length))


def test_region_tokens_start_from_grid_cells_and_follow_k_means():
    patches = torch.randn(3, 16, 8)
    cells = patches.view(3, 2, 2, 2, 2, 8).permute(0, 1, 3, 2, 4, 5).reshape(3, 4, 4, 8).mean(2)
    assert torch.allclose(region_tokens(patches, 2, 0, 0.1), cells, atol=1e-6)
    # two well-separated groups of patches: the soft k-means centres land on the group means
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    grouped = torch.stack([a] * 8 + [b] * 8).unsqueeze(0) + 0.01 * torch.randn(1, 16, 2)
    centres = region_tokens(grouped, 2, 5, 0.05)
    assert torch.allclose(centres[0, 0], grouped[0, :8].mean(0), atol=0.02)
    assert torch.allclose(centres[0, -1], grouped[0, 8:].mean(0), atol=0.02)
    with pytest.raises(ValueError, match="region_grid"):
        region_tokens(torch.randn(1, 15, 4), 2, 1, 0.1)


def test_tiny_forward_backward_starts_from_clip():
    torch.manual_seed(0)
    model = create("alt", "tiny")
    video, text = _inputs(model.config)
    with torch.no_grad():   # the adapter's projection starts at zero: the embedding is CLIP's frame mean
        assert torch.allclose(model.video_embedding(video), F.normalize(model.encode_video(video).mean(1), dim=-1),
                              atol=1e-6)
    loss = model.contrastive_loss(video, text[:2])
    loss.backward()
    assert torch.isfinite(loss) and model.adapter_proj.weight.grad.abs().sum() > 0
    _, index = model.align(torch.randn(2, 8, 4, 64))
    assert index.shape == (2, model.config.entity_queries)


def test_reference_check_restated_equations():
    result = _reference_check()
    assert result["passed"], result["summary"]


def test_bad_input_names_argument_and_limit():
    torch.manual_seed(0)
    model = create("alt", "tiny")
    video, text = _inputs(model.config)
    with pytest.raises(ValueError, match="config.num_frames is 8"):
        model(video[:, :, :2], text)
    with pytest.raises(ValueError, match="empty class list"):
        model(video, text[:0])
    with pytest.raises(ValueError, match="entity_queries"):
        ALT(make_config("alt", "tiny", entity_queries=50))
    with pytest.raises(ValueError, match="ViT image tower"):
        ALT(make_config("alt", "tiny", vision_arch="resnet", vision_width=8, image_size=64))
