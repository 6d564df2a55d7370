"""BIKE (arXiv 2301.00182): concept spotting, attribute sentences, the bidirectional loss, the
reference check against the authors' recorded outputs, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from videozoo.data.tokenizer import tokenize
from videozoo.layers.nce import soft_target_nce
from videozoo.models.bike import BIKE, _reference_check, bike_nce_loss, concept_spotting_logits, load_state_dict_from
from videozoo.models.clip import normalize_pixels
from videozoo.registry import create, get_spec, make_config


def _inputs(cfg, batch=2, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = normalize_pixels(torch.rand(batch, *cfg.clip_shape(), generator=g))
    text = tokenize(["a red square moving left", "a blue circle moving up", "a green cross moving right",
                     "a yellow triangle moving down"][:classes], context_length=cfg.context_length)
    return video, text


@pytest.mark.parametrize("name", ["bike", "bike_vitb32_va"])
def test_tiny_forward_backward(name):
    torch.manual_seed(0)
    model = create(name, "tiny")
    video, text = _inputs(model.config)
    assert model(video, text).shape == (2, 3)
    loss = model.contrastive_loss(video, text[:2])
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.video_head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_paper_configs_match_release_counts_on_meta():
    for name, count in (("bike", 168_574_465), ("bike_vitb32_va", 171_281_665)):
        with torch.device("meta"):
            model = get_spec(name).builder(make_config(name, "paper"))
        assert sum(p.numel() for p in model.parameters()) == count


def test_concept_spotting_equals_explicit_loops():
    torch.manual_seed(1)
    B, T, N, L, D = 2, 4, 3, 5, 8
    frames, words, cls = torch.randn(B, T, D), torch.randn(N, L, D), torch.randn(N, D)
    out = concept_spotting_logits(frames, words, cls, temperature=0.1)
    ref = torch.zeros(B, N)
    for b in range(B):
        v = F.normalize(frames[b], dim=-1)
        for n in range(N):
            w = F.normalize(words[n], dim=-1)
            saliency = torch.stack([torch.softmax(v @ w[l] / 0.1, dim=0) for l in range(L)]).mean(0)   # (T,)
            ref[b, n] = (saliency[:, None] * v).sum(0) @ F.normalize(cls[n], dim=-1)
    assert torch.allclose(out, ref, atol=1e-6)


def test_video_branch_sees_frame_order_but_clip_does_not():
    torch.manual_seed(0)
    bike, clip = create("bike", "tiny").eval(), create("clip", "tiny").eval()
    video, text = _inputs(bike.config)
    with torch.no_grad():
        assert (bike(video, text) - bike(video.flip(2), text)).abs().max() > 1e-4
        assert (clip(video, text) - clip(video.flip(2), text)).abs().max() < 1e-4


def test_attribute_sentences_equal_the_tokenizer_and_fit_the_context():
    torch.manual_seed(0)
    model = create("bike_vitb32_va", "tiny")
    lex = model.config.attribute_lexicon
    idx = torch.tensor([[0, 5, 3], [19, 2, 1], [4, 4, 4]])
    ref = tokenize([f"{model.config.attribute_prompt} " + ",".join(lex[i] for i in row) for row in idx.tolist()],
                   context_length=model.config.context_length)
    assert torch.equal(model.attribute_sentences(idx), ref)
    with pytest.raises(ValueError, match="context length is 16"):
        create("bike_vitb32_va", "tiny", attribute_topk=12)


def test_bidirectional_loss_is_the_average_of_both_directions():
    torch.manual_seed(2)
    logits, labels = torch.randn(4, 4), torch.tensor([0, 1, 0, 2])
    gt = (labels[:, None] == labels[None]).float()
    kl = torch.nn.KLDivLoss(reduction="mean")     # the release's NCELoss, written with torch's module
    one = lambda x: kl(x.log_softmax(1), (gt * 10).softmax(1)) * 4
    assert torch.allclose(soft_target_nce(logits, labels), one(logits))
    assert torch.allclose(bike_nce_loss(logits, labels), (one(logits) + one(logits.t())) / 2)
    with pytest.raises(ValueError, match="square"):
        bike_nce_loss(torch.randn(2, 3))


def test_reference_check_against_the_authors_code():
    result = _reference_check()
    assert result["passed"], result["summary"]
    assert result["max_abs_diff"] < 1e-5
    assert all(t["passed"] and t["matched"] == t["entries"] for t in result["tables"].values())


def test_bad_input_names_argument_and_limit():
    torch.manual_seed(0)
    model = create("bike", "tiny")
    video, text = _inputs(model.config)
    with pytest.raises(ValueError, match="config.num_frames is 8"):
        model(video[:, :, :4], text)
    with pytest.raises(ValueError, match="context length is 16"):
        model(video, torch.ones(2, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="empty class list"):
        model(video, text[:0])
    with pytest.raises(ValueError, match="interaction"):
        BIKE(make_config("bike", "tiny", interaction="XX"))
    with pytest.raises(ValueError, match="unexpected key"):
        load_state_dict_from({"token_embedding.weight": torch.zeros(1)}, {"transformer.foo": torch.zeros(1)})


def test_release_checkpoint_layouts_load():
    torch.manual_seed(0)
    model = create("bike", "tiny")
    sd = model.state_dict()
    flat = load_state_dict_from({"model_state_dict.logit_scale": sd["logit_scale"],
                                 "fusion_model_state_dict.frame_position_embeddings.weight":
                                     sd["video_head.frame_position_embeddings.weight"],
                                 "fusion_model_state_dict.transformer.resblocks.0.ln_1.weight":
                                     sd["video_head.blocks.0.norm1.weight"]})
    nested = load_state_dict_from({"model_state_dict": {"logit_scale": sd["logit_scale"]},
                                   "fusion_model_state_dict": {"transformer.resblocks.0.attn.in_proj_weight":
                                                               sd["video_head.blocks.0.attn.qkv.weight"]}})
    assert set(flat) == {"logit_scale", "video_head.frame_position_embeddings.weight", "video_head.blocks.0.norm1.weight"}
    assert set(nested) == {"logit_scale", "video_head.blocks.0.attn.qkv.weight"}
