"""OST (arXiv 2312.00096): Sinkhorn against POT, descriptors, order invariance, the reference check,
bad input."""

from __future__ import annotations

import pytest
import torch

from videozoo.data.tokenizer import tokenize
from videozoo.models.clip import normalize_pixels
from videozoo.models.ost import _reference_check, descriptor_ids, load_state_dict_from, sinkhorn, template_descriptors
from videozoo.registry import create, get_spec, make_config

ot = pytest.importorskip("ot")


def test_sinkhorn_meets_marginals_and_equals_pot():
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(3, 6, 4, generator=g, dtype=torch.float64)
    a = torch.rand(3, 6, generator=g, dtype=torch.float64) + 0.2
    b = torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.2
    a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    plan = sinkhorn(cost, 0.1, a, b, max_iter=5000, tol=1e-12)
    assert torch.allclose(plan.sum(2), a, atol=1e-9) and torch.allclose(plan.sum(1), b, atol=1e-9)
    for i in range(3):
        ref = ot.sinkhorn(a[i].numpy(), b[i].numpy(), cost[i].numpy(), 0.1, numItermax=5000, stopThr=1e-12)
        assert abs(plan[i].numpy() - ref).max() < 1e-9
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(cost, 0.0)


def test_template_descriptors():
    spatial, temporal = template_descriptors("a red square moving left")
    assert spatial[0] == "a red square" and len(spatial) == len(temporal) == 4
    assert temporal[0] == "a red square on the right" and temporal[-1] == "a red square on the left"
    assert template_descriptors("a red square moving left", 2)[1] == ("a red square on the right", "a red square on the left")
    assert template_descriptors("somebody dancing", 2) == (("somebody dancing",) * 2, ("somebody dancing",) * 2)
    ids = descriptor_ids(["a blue cross moving up"], 4, 16)
    assert ids.shape == (1, 8, 16)


def test_scores_do_not_depend_on_frame_order():
    torch.manual_seed(0)
    model = create("ost", "tiny").eval()
    cfg = model.config
    video = normalize_pixels(torch.rand(2, *cfg.clip_shape()))
    text = tokenize(["a red square moving left", "a red square moving right"], context_length=cfg.context_length)
    with torch.no_grad():
        assert (model(video, text) - model(video.flip(2), text)).abs().max() < 1e-5
    loss = model.contrastive_loss(video, text)
    loss.backward()
    assert torch.isfinite(loss) and model.text.token_embedding.weight.grad is not None


def test_paper_config_adds_no_parameters_to_clip():
    with torch.device("meta"):
        n = sum(p.numel() for p in get_spec("ost").builder(make_config("ost", "paper")).parameters())
    assert n == 149_620_737


def test_reference_check_against_pot_and_the_authors_code():
    result = _reference_check()
    assert result["passed"], result["summary"]


def test_bad_input_names_argument_and_limit():
    torch.manual_seed(0)
    model = create("ost", "tiny")
    cfg = model.config
    video = normalize_pixels(torch.rand(1, *cfg.clip_shape()))
    with pytest.raises(ValueError, match=r"\(A, 4, L\) descriptor ids"):
        model(video, torch.ones(2, 3, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="empty class list"):
        model(video, torch.ones(0, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="config.num_frames is 8"):
        model(video[:, :, :5], tokenize(["a red square moving left"], context_length=16))
    with pytest.raises(ValueError, match="context length is 16"):
        descriptor_ids(["a " + "very " * 20 + "long caption"], 4, 16)


def test_release_names_map_to_clip_names():
    """The release's OST module holds CLIP's tensors as image_encoder.* / text_encoder.*: renaming an
    OpenAI-layout state dict that way must map to the same tensors as the OpenAI layout itself."""
    from videozoo.models.clip import reference_open_clip

    pytest.importorskip("open_clip")
    openai = reference_open_clip(make_config("ost", "tiny").clip_config()).state_dict()
    release = {}
    for k, v in openai.items():
        if k.startswith("visual."):
            release["module.image_encoder." + k[len("visual."):]] = v
        elif k == "text_projection":
            release["module.text_encoder.text_projection"] = v
        elif k == "logit_scale":
            release["module.logit_scale"] = v
        elif k != "attn_mask":
            release["module.text_encoder." + k] = v
    mapped, direct = load_state_dict_from(release), load_state_dict_from(openai)
    assert set(mapped) == set(direct) == set(create("ost", "tiny").state_dict())
    assert all(mapped[k] is direct[k] for k in direct)
    with pytest.raises(ValueError, match="unexpected key"):
        load_state_dict_from({"text_encoder.x": torch.zeros(1), "prompt_learner.ctx": torch.zeros(1)})
