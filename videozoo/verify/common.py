"""Helpers shared by the check modules: check records, input shapes, rounding, environment."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
import traceback
from typing import Any

import torch

from videozoo.registry import ModelSpec

TIMING_KEYS = {"seconds", "clips_per_s", "forward_backward_s", "train_seconds", "build_s"}

def round_floats(x: Any, digits: int = 4) -> Any:
    """Round floats to ``digits`` significant figures recursively; tensors/numpy to Python."""
    if isinstance(x, torch.Tensor):
        x = x.item() if x.numel() == 1 else x.tolist()
    if hasattr(x, "item") and not isinstance(x, (list, tuple, dict)) and type(x).__module__ == "numpy":
        x = x.item()
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        if not math.isfinite(x) or x == 0.0:
            return x if math.isfinite(x) else str(x)
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {str(k): round_floats(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [round_floats(v, digits) for v in x]
    return str(x)


def clip_shape(config: Any, spec: ModelSpec) -> tuple[int, int, int, int]:
    """The standard clip shape ``(3, T, H, W)`` for ``config``.

    Order of precedence: ``config.clip_shape()``; ``config.input_shape()`` when it is
    ``(3, T, H, W)``; ``(N, 3, H, W)`` segments -> T = N; ``(3, H, W)`` images -> T from a
    ``num_frames``/``frames``/``n_segment``/``num_segments`` field (default 8); ``(2L, H, W)``
    stacked flow -> T = L + 1.

    Raises:
        ValueError: if no clip shape can be derived.
    """
    if hasattr(config, "clip_shape"):
        return tuple(int(v) for v in config.clip_shape())
    s = tuple(int(v) for v in config.input_shape())
    if len(s) == 4 and s[0] == 3:
        return s
    if len(s) == 4 and s[1] == 3:
        return (3, s[0], s[2], s[3])
    if len(s) == 3:
        if s[0] == 3:
            t = next((getattr(config, f) for f in ("num_frames", "frames", "n_segment", "num_segments")
                      if isinstance(getattr(config, f, None), int)), 8)
            return (3, int(t), s[1], s[2])
        if s[0] % 2 == 0:
            return (3, s[0] // 2 + 1, s[1], s[2])
    raise ValueError(f"cannot derive a (3, T, H, W) clip from input_shape {s} of {type(config).__name__}")


def model_input(spec: ModelSpec, config: Any, batch: int, generator: torch.Generator | None = None) -> tuple:
    """Random model input for ``batch`` samples, as a tuple of positional arguments.

    Without ``clip_to_input``: ``rand(batch, *config.input_shape())``; with it: a random
    standard clip ``(batch, 3, T, H, W)`` in [0, 1] passed through ``clip_to_input``.
    """
    if spec.clip_to_input is None:
        return (torch.rand((batch, *config.input_shape()), generator=generator),)
    clip = torch.rand((batch, *clip_shape(config, spec)), generator=generator)
    with torch.no_grad():
        inp = spec.clip_to_input(config, clip)
    return tuple(inp) if isinstance(inp, (tuple, list)) else (inp,)


def shapes(inp: tuple) -> list[list[int]]:
    return [list(t.shape) for t in inp if isinstance(t, torch.Tensor)]


def shape_str(shape: list[int]) -> str:
    return "x".join(str(v) for v in shape)


def make_check(name: str, status: str, summary: str, measured: dict | None = None, expected: dict | None = None,
               seconds: float | None = None, reason: str | None = None, evidence: str | None = None) -> dict:
    """A check dict as stored in records (``papers_kb.schema.Check``); floats rounded to 4 significant
    figures.  ``evidence`` is one of ``papers_kb.schema.EVIDENCE_KINDS`` (required unless not run)."""
    out = {"name": name, "status": status, "summary": summary, "measured": round_floats(measured or {}),
           "expected": round_floats(expected or {})}
    if evidence is not None:
        out["evidence"] = evidence
    if seconds is not None:
        out["seconds"] = round(seconds, 2)
    if reason is not None:
        out["reason"] = reason
    return out


def error_check(name: str, exc: BaseException, start: float) -> dict:
    traceback.print_exc(file=sys.stderr)
    msg = f"{type(exc).__name__}: {exc}".strip()
    return make_check(name, "failed", f"error: {msg[:300]}", {"error": msg[:2000]}, seconds=time.perf_counter() - start)



def cpu_model() -> str:
    """The CPU's model name: the first ``model name`` line of ``/proc/cpuinfo`` on Linux, else
    :func:`platform.processor` (may be empty on some systems: then ``"unknown"``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict:
    """Python, torch and machine description recorded with every result: versions, platform,
    CPU model, CPU count, torch's intra-op thread count (``torch.get_num_threads()``; results of
    float reductions can differ in the last bits between thread counts) and the GPU name."""
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "machine": platform.machine(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a zoo dependency
        pass
    return env

