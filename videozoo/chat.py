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
unless ``--config paper`` (a 7B model: about 28 GB in float32).  Before building, the model is
counted on the ``meta`` device and refused, with the figures, when its float32 weights would
not fit in the memory the chosen device has free; it is then built directly on that device.

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

__all__ = ["main", "ChatError", "load_video", "load_weights", "available_memory_bytes", "check_fits"]


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


def available_memory_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes, or ``None`` when it cannot be told.

    CUDA: ``torch.cuda.mem_get_info``.  CPU (Linux): ``MemAvailable`` of ``/proc/meminfo``,
    capped by the cgroup's ``memory.max`` less its ``memory.current`` when a container sets one.
    """
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            free = min(free, int(limit) - used) if free is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return free


def check_fits(spec, cfg, device: torch.device, what: str, headroom: float = 1.2) -> int:
    """Count the model of ``cfg`` on the ``meta`` device and refuse it when it cannot fit on ``device``.

    Nothing is allocated: the count comes from a ``meta`` build.  Needed memory is the float32
    weights (4 bytes per parameter) times ``headroom`` (activations, the key/value cache).

    Returns:
        The parameter count.

    Raises:
        ChatError: when the needed memory exceeds :func:`available_memory_bytes` of ``device``
            (both figures in GiB in the message).
    """
    with torch.device("meta"):
        params = sum(p.numel() for p in spec.builder(cfg).parameters())
    need = params * 4 * headroom
    free = available_memory_bytes(device)
    if free is not None and need > free:
        raise ChatError(f"{what} has {params / 1e9:.2f} B parameters: about {need / 2**30:.1f} GiB in float32, "
                        f"but {device} has {max(free, 0) / 2**30:.1f} GiB free; use the tiny config or a larger device")
    return params


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
    try:
        torch.device(args.device)
    except RuntimeError:
        p.error(f"--device {args.device!r} is not a device name (e.g. cpu, cuda, cuda:1)")
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
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ChatError(f"--device {args.device}: no CUDA device is available (use --device cpu)")
        what = f"{spec.alias} ({args.config} config)"
        check_fits(spec, cfg, device, what)   # before any real allocation (a 7B model is ~28 GB)
        clip = load_video(args.video, cfg.clip_shape()[1])
        video = spec.clip_to_input(cfg, clip)[0].to(device)
        torch.manual_seed(0)
        with device:
            model = spec.builder(cfg)
        if args.weights:
            load_weights(model, args.weights, what)
        model.eval()
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
