"""Command-line chat with a Stage 4 video LLM about a video file.

Usage::

    python -m videozoo.chat MODEL --video clip.mp4 [--weights model.pt] [--config tiny|paper]
                            [--question "which way does the square move?" ...] [--max-new-tokens 16]

``MODEL`` is a Stage 4 model's paper key, alias or variant (``videochatgpt``, ``videochat``).
The video is decoded with PyAV (:func:`videozoo.data.decode.read_video`), ``num_frames`` frames
are taken from the centres of equal segments (as Video-ChatGPT and VideoChat sample them) and
resized and normalised for the model's vision tower.  ``--weights`` loads a state dict saved
with ``torch.save(model.state_dict(), path)`` (e.g. after training on the video QA task); without
it the weights are random and the answers are noise.  The model is built from its tiny config
unless ``--config paper`` (a 7B model: tens of GB of memory).

Questions come from ``--question`` (repeatable) or, without it, one per line from standard
input; answers are printed one per line.  The conversation keeps its history, as the papers'
demos do.  Errors (unreadable video, weights that do not match the config, a question that
does not fit the LLM's context) are printed as one ``error:`` line, without a traceback; the
exit status is 1 when any occurred (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import torch

__all__ = ["main", "ChatError", "load_video", "load_weights"]


class ChatError(Exception):
    """An error reported to the user as one line (no traceback)."""


def load_video(path: str | Path, num_frames: int) -> torch.Tensor:
    """Decode a video file and take ``num_frames`` frames from the centres of equal segments.

    Returns:
        ``(1, 3, T, H, W)`` float clip in [0, 1] (a video with fewer frames repeats some).

    Raises:
        ChatError: if the file is missing or cannot be decoded.
    """
    from videozoo.data.decode import read_video
    from videozoo.data.sampling import segment_indices

    try:
        frames = read_video(path)                                    # (F, H, W, 3) uint8
    except FileNotFoundError:
        raise ChatError(f"cannot read video {path}: no such file") from None
    except Exception as exc:  # PyAV raises its own error classes for corrupt or non-video files
        raise ChatError(f"cannot read video {path}: {type(exc).__name__}: {exc}") from None
    idx = segment_indices(frames.shape[0], num_frames, train=False)
    return frames[idx].permute(3, 0, 1, 2).float().div_(255).unsqueeze(0)


def load_weights(model: torch.nn.Module, path: str | Path, what: str) -> None:
    """Load a state dict file into ``model`` (strict), reporting every mismatch at once.

    Raises:
        ChatError: unreadable file, not a state dict, or keys / shapes that differ from the model's.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ChatError(f"cannot read weights {path}: no such file") from None
    except Exception as exc:
        raise ChatError(f"cannot read weights {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ChatError(f"weights {path}: not a state dict (a mapping of parameter names to tensors)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} of other shape ({'; '.join(shapes[:3])})")
    if problems:
        raise ChatError(f"weights {path} do not match {what}: " + "; ".join(problems))
    model.load_state_dict(state)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m videozoo.chat",
                                description="Chat with a Stage 4 video LLM about a video file.")
    p.add_argument("model", metavar="MODEL", help="a Stage 4 model: paper key, alias or variant (e.g. videochatgpt)")
    p.add_argument("--video", required=True, help="video file (any format FFmpeg reads)")
    p.add_argument("--weights", help="state dict saved with torch.save(model.state_dict(), path)")
    p.add_argument("--config", choices=("tiny", "paper"), default="tiny", help="model config (default: tiny)")
    p.add_argument("--question", action="append", help="a question (repeatable); default: read lines from stdin")
    p.add_argument("--max-new-tokens", type=int, default=16, help="longest answer in tokens (default 16)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.max_new_tokens < 1:
        p.error("--max-new-tokens must be at least 1")
    return args


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """CLI entry point; returns the exit status (0, 1 when an error was reported)."""
    from videozoo.registry import get_spec, list_names, make_config

    args = _parse(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    failed = False
    try:
        try:
            spec = get_spec(args.model)
        except KeyError:
            raise ChatError(f"unknown model {args.model!r}; Stage 4 models: {', '.join(list_names(stage=4))}") from None
        if spec.stage != 4:
            raise ChatError(f"{args.model} is not a video LLM (stage {spec.stage}); Stage 4 models: "
                            f"{', '.join(list_names(stage=4))}")
        cfg = make_config(args.model, args.config)
        clip = load_video(args.video, cfg.clip_shape()[1])
        video = spec.clip_to_input(cfg, clip)[0].to(args.device)
        torch.manual_seed(0)
        model = spec.builder(cfg)
        if args.weights:
            load_weights(model, args.weights, f"{spec.alias} ({args.config} config)")
        model.to(args.device).eval()
    except ChatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from videozoo.layers.video_llm import ContextLengthError

    history: list[tuple[str, str]] = []
    interactive = not args.question and stdin.isatty()
    for line in args.question or stdin:
        question = line.strip()
        if not question:
            continue
        try:
            answer = model.answer(video, [question], max_new_tokens=args.max_new_tokens, histories=[history])[0]
        except ContextLengthError as exc:
            print(f"error: question {question[:40]!r} does not fit: {exc}", file=sys.stderr)
            failed = True
            continue
        history.append((question, answer))
        print(f"{'assistant> ' if interactive else ''}{answer}", file=stdout, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
