"""MovieChat (tiny configs, random weights): memory consolidation, streaming, modes, checks, chat."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch

pytest.importorskip("transformers")

from videozoo.data.long_video import EarlyEvidenceVideo  # noqa: E402
from videozoo.models.moviechat import (  # noqa: E402
    MovieChat,
    MovieChatConfig,
    MovieChatMemory,
    consolidate,
    extended_positions,
    windows_of,
)
from videozoo.layers.vision import normalise_frames  # noqa: E402
from videozoo.references import moviechat as ref  # noqa: E402
from videozoo.registry import get_spec, make_config  # noqa: E402
from videozoo.verify import run_check  # noqa: E402


def test_consolidation_merges_the_most_similar_adjacent_pair_first():
    a, b, c = torch.randn(3, 2, 4, dtype=torch.float64)
    frames = torch.stack([a, b, b + 1e-3 * c, c])          # frames 1 and 2 are nearly the same
    out = consolidate(frames, 3)
    assert out.shape == (3, 2, 4)
    assert torch.allclose(out[1], (frames[1] + frames[2]) / 2) and torch.equal(out[0], a) and torch.equal(out[2], c)
    assert torch.equal(consolidate(frames, 10), frames)    # nothing to do below the target
    with pytest.raises(ValueError, match="target"):
        consolidate(frames, 0)


def test_consolidation_equals_the_papers_algorithm_on_random_frames():
    gen = torch.Generator().manual_seed(1)
    for n, target in ((9, 2), (20, 7), (33, 1)):
        frames = torch.randn(n, 3, 5, generator=gen, dtype=torch.float64)
        frames[4] = frames[3] + 0.01                        # some near-duplicates
        got = consolidate(frames, target)
        assert torch.allclose(got, torch.stack(ref.consolidate(list(frames), target)), atol=1e-12)


def test_memory_stays_bounded_and_follows_the_reference_stream():
    gen = torch.Generator().manual_seed(2)
    frames = torch.randn(500, 2, 3, generator=gen, dtype=torch.float64)
    memory = MovieChatMemory(short_length=8, merge_length=2, long_length=6)
    for start in range(0, 500, 7):                          # any grouping: frames enter one by one
        memory.add(frames[start:start + 7])
        assert memory.short.shape[0] <= 8 and (memory.long is None or memory.long.shape[0] <= 6)
    memory.flush()
    long, short = ref.stream_memory(list(frames), 8, 2, 6)
    assert torch.allclose(memory.long, torch.stack(long)) and torch.allclose(memory.short, torch.stack(short))
    assert memory.frames_seen == 500 and memory.nbytes() == (6 + 2) * 2 * 3 * 8
    with pytest.raises(ValueError, match="merge_length"):
        MovieChatMemory(4, 4, 8)


def test_breakpoint_reads_long_short_and_current_frame():
    memory = MovieChatMemory(short_length=6, merge_length=2, long_length=4)
    memory.add(torch.randn(9, 2, 3))                        # two consolidations (every 4 new frames), 1 more
    assert memory.long.shape[0] == 4 and memory.short.shape[0] == 3
    current = torch.randn(2, 3)
    out = memory.read("breakpoint", current=current)
    assert out.shape[0] == 4 + 3 + 1 and torch.equal(out[-1], current)
    cut = memory.read("breakpoint", current=current, max_frames=6)          # the oldest short-term frames go
    assert cut.shape[0] == 6 and torch.equal(cut[4], memory.short[-1])
    with pytest.raises(ValueError, match="current"):
        memory.read("breakpoint")
    with pytest.raises(ValueError, match="mode"):
        memory.read("local")
    with pytest.raises(ValueError, match="no frame"):
        MovieChatMemory(6, 2, 4).read("global")


def test_extended_positions_keep_the_learned_ones_and_match_the_reference():
    p = torch.randn(5, 7, dtype=torch.float64)
    q = extended_positions(p, 0.01)
    assert q.shape == (25, 7) and torch.allclose(q[:5], p)
    assert torch.allclose(q, ref.extended_positions(p, 0.01))


def test_streaming_a_clip_equals_encoding_it_at_once():
    torch.manual_seed(0)
    cfg = dataclasses.replace(MovieChatConfig.tiny(), num_frames=21)
    model = MovieChat(cfg).eval()
    clip = torch.rand(1, 3, 21, 32, 32)
    video = normalise_frames(clip, 32)
    with torch.no_grad():
        whole = model.encode_video(video)
        streamed = model.encode_stream(windows_of(iter(clip[0].transpose(0, 1)), 5, 32))
    assert whole.shape == (1, cfg.num_video_tokens, cfg.llm.hidden_size)
    assert torch.allclose(whole, streamed, atol=1e-5)
    bp = MovieChat(dataclasses.replace(cfg, mode="breakpoint")).eval()
    bp.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(bp.encode_video(video), whole, atol=1e-4)   # the modes read different memory
    with pytest.raises(ValueError, match="mode"):
        MovieChat(dataclasses.replace(cfg, mode="local"))


def test_long_video_is_rendered_lazily_and_answers_come_back():
    video = EarlyEvidenceVideo(300, evidence_frac=0.05, seed=4)
    assert video.evidence_frames == 15 and len(video) == 300
    assert video.frame(0).shape == (3, 32, 32) and torch.equal(video.frame(7), video.frame(7))
    assert (video.frame(0) - video.frame(299)).abs().max() > 0.3            # the object is there at the start only
    with pytest.raises(IndexError):
        video.frame(300)
    torch.manual_seed(0)
    model = MovieChat(MovieChatConfig.tiny()).eval()
    answers = model.answer_stream(windows_of(iter(video), 16, 32), [q for _, q, _ in video.qa()], max_new_tokens=3)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_registration_checks_and_paper_count_on_meta():
    spec = get_spec("moviechat")
    assert spec.key == "song2024moviechat" and spec.stage == 4 and spec.memory["kind"] == "long_video"
    assert spec.video_qa["expected_min_pct"]["direction"] >= 90
    with torch.device("meta"):
        model = spec.builder(make_config("moviechat", "paper"))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # Vicuna-7B (6738 M) + EVA ViT-g (986 M) + BLIP-2 Q-Former (~105 M) + video Q-Former + projection
    assert 7800 < params < 7900
    result = run_check(spec, "reference")
    assert result["status"] == "passed", result["summary"]
    assert result["measured"]["max_abs_diff"] <= 1e-5
    runs = run_check(spec, "runs")
    assert runs["status"] == "passed", runs["summary"]


def test_memory_probe_reports_a_bounded_memory(tmp_path):
    from videozoo.verify.memory import _probe

    torch.manual_seed(0)
    cfg = make_config("moviechat", "tiny")
    weights = tmp_path / "w.pt"
    torch.save(MovieChat(cfg).state_dict(), weights)
    out = _probe(str(weights), frames=150, seed=1, evidence_frac=0.05)
    assert out["long_memory_frames"] <= cfg.long_memory_length and out["memory_bytes"] > 0
    assert out["rss_growth_mib"] >= 0 and set(out["answers"]) == {"colour", "shape"}


def test_chat_with_moviechat(tmp_path):
    pytest.importorskip("av")
    from videozoo.chat import main
    from videozoo.data.decode import write_video

    video = EarlyEvidenceVideo(40, seed=0)
    path = tmp_path / "clip.mp4"
    write_video(path, (video.clip().permute(1, 2, 3, 0) * 255).round().to(torch.uint8), fps=10)
    out = io.StringIO()
    rc = main(["moviechat", "--video", str(path), "--question", "what colour is the square?", "--max-new-tokens", "3"],
              stdin=io.StringIO(""), stdout=out)
    assert rc == 0 and len(out.getvalue().splitlines()) == 1
