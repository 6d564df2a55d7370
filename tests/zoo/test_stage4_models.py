"""Stage 4 models: Video-ChatGPT and VideoChat (tiny configs, random weights)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

pytest.importorskip("transformers")

from videozoo.layers.prompt import VIDEO_TOKEN  # noqa: E402
from videozoo.models.video_chatgpt import VideoChatGPT, VideoChatGPTConfig, spatiotemporal_pool  # noqa: E402
from videozoo.models.videochat import GlobalRelationAggregator, VideoChat, VideoChatConfig  # noqa: E402
from videozoo.references.video_chatgpt import spatiotemporal_features  # noqa: E402
from videozoo.registry import get_spec, list_names, make_config  # noqa: E402
from videozoo.verify import run_check  # noqa: E402
from videozoo.verify.common import model_input  # noqa: E402

MODELS = ["videochatgpt", "videochat"]


def test_stage4_registrations():
    assert {"videochatgpt", "videochat", "videochat_13b"} <= set(list_names(stage=4))
    for name in MODELS:
        spec = get_spec(name)
        assert spec.stage == 4 and spec.video_qa["expected_min_pct"]["direction"] >= 90
        assert spec.check_evidence["reference"] == "independent-reference"
    assert get_spec("maaz2024videochatgpt").alias == "videochatgpt"
    assert make_config("videochat_13b", "paper").llm.num_layers == 40
    assert make_config("videochat_13b", "tiny") == make_config("videochat", "tiny")


def test_spatiotemporal_pool_matches_the_papers_equations():
    x = torch.randn(3, 5, 7, 4, dtype=torch.float64)
    out = spatiotemporal_pool(x)
    assert out.shape == (3, 5 + 7, 4)
    for b in range(3):
        assert torch.allclose(out[b], spatiotemporal_features(x[b]), atol=1e-12)
    # the first T tokens follow the frames' order; the last N do not depend on it
    rev = spatiotemporal_pool(x.flip(1))
    assert torch.allclose(rev[:, :5], out[:, :5].flip(1)) and torch.allclose(rev[:, 5:], out[:, 5:])


@pytest.mark.parametrize("name", MODELS)
def test_tiny_model_forward_shapes_and_video_positions(name):
    spec, cfg = get_spec(name), make_config(name, "tiny")
    torch.manual_seed(0)
    model = spec.builder(cfg).eval()
    video, ids = model_input(spec, cfg, 2)
    assert video.shape == (2, 3, cfg.num_frames, 32, 32)
    assert int((ids[0] == model.video_token_id).sum()) == model.num_video_tokens == cfg.num_video_tokens
    with torch.no_grad():
        tokens = model.encode_video(video)
        logits = model(video, ids)
    assert tokens.shape == (2, cfg.num_video_tokens, cfg.llm.hidden_size)
    assert logits.shape == cfg.output_shape(2) and torch.isfinite(logits).all()
    assert model.tokenizer.convert_tokens_to_ids(VIDEO_TOKEN) == model.video_token_id


def test_video_chatgpt_tokens_are_t_plus_n_and_wrong_frame_count_is_refused():
    cfg = VideoChatGPTConfig.tiny()
    assert cfg.num_video_tokens == 8 + 16 and VideoChatGPTConfig.paper().num_video_tokens == 100 + 256
    model = VideoChatGPT(cfg).eval()
    with pytest.raises(ValueError, match="8 frames"):
        model.encode_video(torch.randn(1, 3, 5, 32, 32))


def test_videochat_frame_order_reaches_the_llm_only_through_the_aggregation():
    torch.manual_seed(0)
    model = VideoChat(VideoChatConfig.tiny()).eval()
    with torch.no_grad():
        for p in model.aggregation.parameters():   # leave the identity start: make the layers do something
            p.add_(torch.randn_like(p) * 0.1)
        model.video_query.add_(torch.randn_like(model.video_query))
    video = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        fwd, rev = model.visual_tokens(video), model.visual_tokens(video.flip(2))   # (1, 8 * 17 + 1, C)
        # the frame tokens of the reversed clip are the same tokens in reversed frame order ...
        assert torch.allclose(rev[:, :-1].view(8, 17, -1).flip(0), fwd[:, :-1].view(8, 17, -1), atol=1e-5)
        # ... and only the aggregated video token tells the two apart
        assert (fwd[:, -1] - rev[:, -1]).abs().max() > 1e-3
        assert (model.encode_video(video) - model.encode_video(video.flip(2))).abs().max() > 1e-6
        no_agg = VideoChat(dataclasses.replace(VideoChatConfig.tiny(), aggregation_layers=0)).eval()
        assert torch.allclose(no_agg.encode_video(video), no_agg.encode_video(video.flip(2)), atol=1e-5)


def test_aggregator_starts_as_identity():
    layer = GlobalRelationAggregator(16, 4, 32)
    q = torch.randn(2, 1, 16)
    assert torch.equal(layer(q, torch.randn(2, 3, 5, 16)), q)


def test_paper_configs_count_on_meta():
    counts = {}
    for name in ("videochatgpt", "videochat", "videochat_13b"):
        with torch.device("meta"):
            model = get_spec(name).builder(make_config(name, "paper"))
        counts[name] = sum(p.numel() for p in model.parameters()) / 1e6
    # Vicuna-7B (6738 M) + CLIP ViT-L/14 (303 M) + the 1024 -> 4096 projector (4.2 M) + 3 added tokens
    assert abs(counts["videochatgpt"] - 7045.8) < 1
    # Vicuna-7B + EVA ViT-g (986 M) + 8 aggregation layers + Q-Former (105 M) + 96 queries + projection
    assert 7900 < counts["videochat"] < 8100 and counts["videochat_13b"] - counts["videochat"] > 6000


@pytest.mark.parametrize("name", MODELS)
def test_reference_check_passes(name):
    result = run_check(get_spec(name), "reference")
    assert result["status"] == "passed", result["summary"]
    assert result["measured"]["max_abs_diff"] <= 1e-5
    assert result["measured"]["kv_cache_equals_no_cache"] and result["measured"]["kv_cache_equals_argmax_loop"]


@pytest.mark.parametrize("name", MODELS)
def test_runs_check_and_builds_on_meta(name):
    spec = get_spec(name)
    runs = run_check(spec, "runs")
    assert runs["status"] == "passed", runs["summary"]
    assert runs["measured"]["output_shape"] == list(make_config(name, "tiny").output_shape(2))
    builds = run_check(spec, "builds")
    # the 7B of the release names counts the LLM alone: shown, not checked, so builds is unverified
    assert builds["status"] == "unverified" and builds["measured"]["device"] == "meta"
    assert run_check(spec, "motion")["status"] == "not-run"


def test_answer_returns_words_and_training_lowers_the_loss():
    torch.manual_seed(0)
    cfg = VideoChatGPTConfig.tiny()
    model = VideoChatGPT(cfg)
    video = torch.randn(4, 3, 8, 32, 32)
    batch = model.prompt(["what colour is the square?"] * 4, answers=["red", "blue", "red", "green"])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model.loss(video, **batch).item()
    for _ in range(30):
        loss = model.loss(video, **batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2
    model.eval()
    answers = model.answer(video, ["what colour is the square?"] * 4, max_new_tokens=3)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)
    assert sum(a == t for a, t in zip(answers, ["red", "blue", "red", "green"])) >= 3   # memorised


def test_generation_timing_of_the_gpu_check_runs_on_any_device():
    from videozoo.verify.gpu import measure_generation

    out = measure_generation(get_spec("videochat"), "tiny", "cpu", torch.bfloat16, new_tokens=4, repeats=1)
    assert out["config"] == "tiny" and out["dtype"] == "bfloat16" and out["prompt_tokens"] > 16
    assert out["time_to_first_token_s"] > 0 and out["decode_tokens_per_s"] > 0
    assert torch.get_default_dtype() == torch.float32          # the model was built in bf16 and the default restored
    if not torch.cuda.is_available():
        assert run_check(get_spec("videochat"), "gpu")["status"] == "not-run"
