"""``python -m videozoo.chat``: chat with a Stage 4 model about a video file (random weights)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("av")

from videozoo.chat import main  # noqa: E402
from videozoo.data.decode import write_video  # noqa: E402
from videozoo.data.synthetic import make_shape_clips  # noqa: E402
from videozoo.registry import create, get_spec, make_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    clips, _ = make_shape_clips(1, frames=20, size=48, seed=0)
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    write_video(path, (clips[0].permute(1, 2, 3, 0) * 255).round().to(torch.uint8), fps=10)
    return path


def _run(args, stdin: str = "") -> tuple[int, list[str]]:
    out = io.StringIO()
    rc = main(args, stdin=io.StringIO(stdin), stdout=out)
    return rc, out.getvalue().splitlines()


@pytest.mark.parametrize("name", ["videochatgpt", "videochat"])
def test_chat_answers_each_question_with_saved_weights(name, video, tmp_path, capsys):
    torch.manual_seed(123)
    model = create(name, "tiny").eval()
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    rc, lines = _run([name, "--video", str(video), "--weights", str(weights), "--max-new-tokens", "5",
                      "--question", "what colour is the square?", "--question", "which way does it move?"])
    assert rc == 0 and len(lines) == 2, capsys.readouterr().err
    # the same weights and the same frames, asked directly, give the same first answer
    from videozoo.chat import load_video

    spec, cfg = get_spec(name), make_config(name, "tiny")
    clip = spec.clip_to_input(cfg, load_video(video, cfg.num_frames))[0]
    assert model.answer(clip, ["what colour is the square?"], max_new_tokens=5) == [lines[0]]


def test_chat_reads_questions_from_stdin_and_skips_blank_lines(video):
    rc, lines = _run(["videochatgpt", "--video", str(video), "--max-new-tokens", "3"], stdin="what shape?\n\nwhy?\n")
    assert rc == 0 and len(lines) == 2


def test_chat_errors_are_one_line_without_traceback(video, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    rc, _ = _run(["videochatgpt", "--video", str(bad), "--question", "hi"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith(f"error: cannot read video {bad}") and "Traceback" not in err

    rc, _ = _run(["videochatgpt", "--video", str(tmp_path / "missing.mp4"), "--question", "hi"])
    assert rc == 1 and "no such file" in capsys.readouterr().err

    other = tmp_path / "videochat.pt"
    torch.save(create("videochat", "tiny").state_dict(), other)
    rc, _ = _run(["videochatgpt", "--video", str(video), "--weights", str(other), "--question", "hi"])
    err = capsys.readouterr().err
    assert rc == 1 and "do not match videochatgpt (tiny config)" in err and "missing" in err and "unexpected" in err

    wrong_shape = {k: v for k, v in create("videochatgpt", "tiny").state_dict().items()}
    wrong_shape["projector.proj.weight"] = torch.zeros(3, 3)
    torch.save(wrong_shape, tmp_path / "shape.pt")
    rc, _ = _run(["videochatgpt", "--video", str(video), "--weights", str(tmp_path / "shape.pt"), "--question", "hi"])
    err = capsys.readouterr().err
    assert rc == 1 and "projector.proj.weight: file (3, 3) vs model (64, 64)" in err

    (tmp_path / "junk.pt").write_text("junk")
    rc, _ = _run(["videochatgpt", "--video", str(video), "--weights", str(tmp_path / "junk.pt"), "--question", "hi"])
    assert rc == 1 and "cannot read weights" in capsys.readouterr().err

    rc, _ = _run(["tsm", "--video", str(video), "--question", "hi"])
    assert rc == 1 and "not a video LLM" in capsys.readouterr().err


def test_a_question_longer_than_the_context_is_refused_and_the_chat_goes_on(video, capsys):
    long = "what " * 600
    rc, lines = _run(["videochatgpt", "--video", str(video), "--max-new-tokens", "3", "--question", long,
                      "--question", "what colour?"])
    err = capsys.readouterr().err
    assert rc == 1 and len(lines) == 1
    assert "does not fit" in err and "context of 512 tokens" in err and "Traceback" not in err


def test_command_line_entry_point(video, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    ok = subprocess.run([sys.executable, "-m", "videozoo.chat", "videochat", "--video", str(video),
                         "--question", "what colour is the circle?", "--max-new-tokens", "3"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "videozoo.chat", "videochat", "--video", str(tmp_path / "none.mp4")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: cannot read video")
    assert "Traceback" not in bad.stderr


def test_paper_config_is_counted_on_meta_and_refused_when_it_does_not_fit(video, monkeypatch, capsys):
    """A 7B config is never built for real where it cannot fit: the count comes from a meta build."""
    import videozoo.chat as chat

    monkeypatch.setattr(chat, "available_memory_bytes", lambda device: 4 * 2**30)

    def must_not_decode(*args, **kwargs):  # the refusal comes before anything is decoded or allocated
        raise AssertionError("the paper config was not refused before decoding the video")

    monkeypatch.setattr(chat, "load_video", must_not_decode)
    rc, lines = _run(["videochatgpt", "--video", str(video), "--config", "paper", "--device", "cpu",
                      "--question", "what shape?"])
    err = capsys.readouterr().err
    assert rc == 1 and lines == []
    assert err.startswith("error: videochatgpt (paper config) has 7.05 B parameters") and "4.0 GiB free" in err
    assert "Traceback" not in err


def test_check_fits_counts_the_tiny_config_and_lets_it_through():
    from videozoo.chat import check_fits

    spec, cfg = get_spec("videochat"), make_config("videochat", "tiny")
    params = check_fits(spec, cfg, torch.device("cpu"), "videochat (tiny config)")
    assert params == sum(p.numel() for p in create("videochat", "tiny").parameters())


def test_cuda_device_without_cuda_is_one_error_line(video, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, lines = _run(["videochat", "--video", str(video), "--device", "cuda", "--question", "what shape?"])
    err = capsys.readouterr().err
    assert rc == 1 and lines == [] and err.startswith("error: --device cuda: no CUDA device") and "Traceback" not in err
