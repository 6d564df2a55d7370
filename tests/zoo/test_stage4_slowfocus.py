"""SlowFocus (tiny configs, random weights): mixed-frequency sampling, grounding, mixing, checks, chat."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch

pytest.importorskip("transformers")

from videozoo.models.slowfocus import (  # noqa: E402
    GROUNDING_QUESTION,
    MultiFrequencyMixing,
    SlowFocus,
    SlowFocusConfig,
    clip_to_input,
    format_segment,
    format_timestamp,
    grid_pool,
    high_frequency_indices,
    low_frequency_indices,
    merge_indices,
    parse_segments,
)
from videozoo.references import slowfocus as ref  # noqa: E402
from videozoo.registry import get_spec, make_config  # noqa: E402
from videozoo.verify import run_check  # noqa: E402


def test_sampling_follows_the_release():
    assert low_frequency_indices(100, 25) == list(range(0, 100, 4))
    assert low_frequency_indices(90, 25, video_fps=30.0) == list(range(0, 90, 30))     # 1 frame per second
    assert high_frequency_indices(0.23, 0.45, 100, 5) == [23, 28, 34, 39, 45]
    assert high_frequency_indices(0.5, 0.52, 100, 4) == [50, 50, 51, 52]                 # short segment: repeats
    assert high_frequency_indices(0.9, 1.0, 16, 3) == [14, 14, 15]
    with pytest.raises(ValueError, match="inside"):
        high_frequency_indices(0.6, 0.2, 100, 4)
    for T, nl, nh, s, e in ((100, 25, 20, 0.1, 0.3), (16, 4, 4, 0.0, 1.0), (37, 7, 5, 0.4, 0.41)):
        low, high = ref.low_frequency_indices(T, nl), ref.high_frequency_indices(s, e, T, nh)
        frames, lp, hp = merge_indices(low, high)
        assert (frames, lp, hp) == ref.merge(low, high)
        assert frames == sorted(frames) and [frames[p] for p in lp] == low and [frames[p] for p in hp] == high
    assert merge_indices([0, 4], [4, 5]) == ([0, 4, 4, 5], [0, 1], [2, 3])          # low first on ties


def test_timestamps_and_grounding_answers_round_trip():
    assert format_timestamp(0.234, 100) == "23" and format_timestamp(1.0, 100) == "99"
    assert format_timestamp(0.05, 1000) == "050" and format_segment(0.2, 0.45, 100) == "from 20 to 45"
    assert parse_segments("from 20 to 45") == [(0.2, 0.45)]
    assert parse_segments("between 05 and 61, then 070 to 900.") == [(0.05, 0.61), (0.07, 0.9)]
    assert parse_segments("from 45 to 23") == [] and parse_segments("no idea") == []
    for text in ("from 20 to 45", "x 99 and 100", "7 to 8"):
        assert parse_segments(text) == ref.segments_in(text)


def test_grid_pool_and_mixing_equal_the_written_out_statement():
    x = torch.randn(3, 16, 5, dtype=torch.float64)
    pooled = grid_pool(x, 2)
    assert pooled.shape == (3, 4, 5)
    assert torch.allclose(pooled[1], ref.grid_pool(x[1], 2))
    with pytest.raises(ValueError, match="grid"):
        grid_pool(torch.randn(15, 4), 2)
    torch.manual_seed(0)
    mix = MultiFrequencyMixing(6).double()
    low, high = torch.randn(1, 8, 6, dtype=torch.float64), torch.randn(1, 4, 6, dtype=torch.float64)
    new_low, new_high = mix(low, high)
    w = {k: v.detach() for k, v in mix.state_dict().items()}
    ref_low, ref_high = ref.mix(low[0], high[0], w["low_proj.weight"], w["low_proj.bias"],
                                w["high_proj.weight"], w["high_proj.bias"])
    assert torch.allclose(new_low[0].detach(), ref_low) and torch.allclose(new_high[0].detach(), ref_high)


def test_tokens_depend_on_the_segment_and_follow_time_order():
    torch.manual_seed(0)
    cfg = SlowFocusConfig.tiny()
    model = SlowFocus(cfg).eval()
    video, ids = clip_to_input(cfg, torch.rand(2, *cfg.clip_shape()))
    with torch.no_grad():
        whole = model.encode_video(video)
        focused = model.encode_video(video, [(0.5, 0.75), (0.0, 0.2)])
        logits = model(video, ids)
    assert whole.shape == focused.shape == (2, cfg.num_video_tokens, cfg.llm.hidden_size) == (2, 32, 64)
    assert not torch.allclose(whole, focused) and logits.shape == cfg.output_shape(2)
    frames, low_pos, high_pos = model.sample(16, [(0.5, 0.75)])
    assert frames[0].tolist() == sorted(frames[0].tolist())
    assert set(frames[0, high_pos[0]].tolist()) <= set(range(8, 13))
    assert model.encode_low(video).shape == (2, model.num_low_tokens, 64)
    no_mix = SlowFocus(dataclasses.replace(cfg, mixing=False))
    assert no_mix.mixing is None
    with pytest.raises(ValueError, match="multiple"):
        SlowFocus(dataclasses.replace(cfg, num_frames=18))


def test_grounding_answer_chooses_the_dense_frames():
    """A tiny model taught to answer the grounding question with one interval samples that interval densely."""
    torch.manual_seed(0)
    cfg = SlowFocusConfig.tiny()
    model = SlowFocus(cfg)
    video = clip_to_input(cfg, torch.rand(4, *cfg.clip_shape()))[0]
    question = "which way does the square move?"
    target = format_segment(0.5, 0.75, cfg.grounding_bins)
    from videozoo.layers.prompt import collate, encode_conversation

    seqs = [encode_conversation(model.tokenizer, model.template, GROUNDING_QUESTION.format(question=question),
                                model.num_low_tokens, answer=target)] * 4
    batch = collate(seqs, model.tokenizer.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):   # the grounding pass reads the low-frequency tokens only
        from videozoo.layers.prompt import splice_video_embeds

        embeds = splice_video_embeds(model.llm.get_input_embeddings()(batch["input_ids"]),
                                     batch["input_ids"] == model.video_token_id, model.encode_low(video))
        logits = model.llm(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert model.ground(video, [question] * 4) == [(0.5, 0.75)] * 4
    answers = model.answer(video, [question] * 4, max_new_tokens=3, ground=True)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)


def test_registration_checks_and_paper_count_on_meta():
    spec = get_spec("slowfocus")
    assert spec.key == "nie2024slowfocus" and spec.stage == 4 and spec.clip_to_input is clip_to_input
    assert make_config("slowfocus", "paper").num_video_tokens == (25 + 20) * 64
    with torch.device("meta"):
        model = spec.builder(make_config("slowfocus", "paper"))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # Vicuna-7B v1.5 (6738 M) + CLIP ViT-L/14 (303 M) + MLP projector (21 M) + temporal embedding + mixing
    assert 7050 < params < 7080
    result = run_check(spec, "reference")
    assert result["status"] == "passed", result["summary"]
    runs = run_check(spec, "runs")
    assert runs["status"] == "passed", runs["summary"]


def test_chat_with_slowfocus(tmp_path):
    pytest.importorskip("av")
    from videozoo.chat import main
    from videozoo.data.decode import write_video
    from videozoo.data.synthetic import make_shape_clips

    clips, _ = make_shape_clips(1, frames=20, size=48, seed=0)
    path = tmp_path / "clip.mp4"
    write_video(path, (clips[0].permute(1, 2, 3, 0) * 255).round().to(torch.uint8), fps=10)
    out = io.StringIO()
    rc = main(["slowfocus", "--video", str(path), "--max-new-tokens", "3"], stdin=io.StringIO("which way?\n"),
              stdout=out)
    assert rc == 0 and len(out.getvalue().splitlines()) == 1
