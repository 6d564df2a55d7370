"""Throughput and peak memory of every videozoo model's paper config at its paper input.

Usage::

    python scripts/bench_zoo.py [--models tsm,c3d] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
                                [--batch-size B] [--iters N] [--warmup W] [--json OUT] [--no-context]
    python scripts/bench_zoo.py --vs-reference [--models vit,swin,video_swin,timesformer] [...]

For each model: random weights, ``eval()`` mode, ``torch.inference_mode()``; forward passes
on random inputs of the paper's per-sample shape (see ``videozoo.verify.model_input``;
``clip_to_input`` such as optical flow is computed once, outside the timing). Reported:
clips/s over ``--iters`` timed iterations after ``--warmup`` untimed ones, and peak memory:
on CUDA ``torch.cuda.max_memory_allocated`` (GiB, includes the weights); on the CPU the peak
resident set size sampled every 5 ms during the model's build and run minus the RSS before
it (weights + activations + allocator caching; an estimate, as the allocator may reuse
memory freed by the previous model).
torchvision's ``r2plus1d_18`` and ``s3d`` (random weights, 16x112x112 and 16x224x224 clips)
are timed in the same run as context unless ``--no-context``.
Prints a Markdown table; ``--json`` also writes the rows.

``--vs-reference`` times ours against the reference implementation of the same paper config
instead (ViT-B/16 vs timm ``VisionTransformer``, Swin-T vs timm ``SwinTransformer``, Video
Swin-T at 32x224x224 vs torchvision ``SwinTransformer3d``, TimeSformer-B divided attention at
8x224x224 vs Hugging Face ``TimesformerForVideoClassification``): the reference is built with
random weights, ours loads them through the model file's ``load_state_dict_from``, both get
the same input on the same device, and the largest absolute difference of their logits is
reported next to the timings. Timed iterations alternate between the two models (ours,
reference, ours, ...) so that drift in machine load hits both alike; the medians of the
per-iteration times give clips/s and the ratio ours / reference (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from videozoo.registry import get_spec, list_models, make_config  # noqa: E402
from videozoo.verify import model_input  # noqa: E402

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _rss_mib() -> float:
    """Current resident set size in MiB (``/proc/self/statm``; peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


class _RssMonitor:
    """Samples the process RSS every few milliseconds in a thread; ``peak`` in MiB."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak = interval, _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            self._stop.wait(self.interval)

    def __enter__(self) -> "_RssMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def bench(model: nn.Module, inputs: tuple, device: torch.device, dtype: torch.dtype, iters: int, warmup: int,
          rss_before: float, monitor: _RssMonitor | None = None) -> dict:
    """Time ``iters`` forward passes; return clips/s and peak memory (GiB).

    Args:
        model: Module already on ``device``. inputs: positional inputs with batch first.
        dtype: Autocast dtype (``float32`` runs without autocast).
    """
    batch = inputs[0].shape[0]
    use_autocast = dtype != torch.float32
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=use_autocast):
        for _ in range(warmup):
            model(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
    if device.type == "cuda":
        peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        mem_kind = "cuda max_memory_allocated"
    else:
        peak_gib = max(0.0, (monitor.peak if monitor else _rss_mib()) - rss_before) / 1024
        mem_kind = "CPU peak RSS above the RSS before building the model"
    return {"clips_per_s": batch * iters / elapsed, "ms_per_batch": 1000 * elapsed / iters, "batch_size": batch,
            "peak_memory_gib": peak_gib, "memory": mem_kind}


def _context_models() -> list[tuple[str, callable, tuple[int, ...]]]:
    from torchvision.models import video as tvv

    return [
        ("torchvision r2plus1d_18", lambda: tvv.r2plus1d_18(weights=None), (3, 16, 112, 112)),
        ("torchvision s3d", lambda: tvv.s3d(weights=None), (3, 16, 224, 224)),
    ]


def run(models: list[str], device: torch.device, dtype: torch.dtype, batch_size: int, iters: int, warmup: int,
        context: bool = True) -> list[dict]:
    """Benchmark the named registered models (and torchvision context models); return table rows."""
    rows = []
    jobs: list[tuple[str, callable, callable, str]] = []
    for name in models:
        spec = get_spec(name)
        cfg = make_config(name, "paper")

        def build(spec=spec, cfg=cfg):
            torch.manual_seed(0)
            return spec.builder(cfg)

        def make_inputs(spec=spec, cfg=cfg):
            return model_input(spec, cfg, batch_size, torch.Generator().manual_seed(0))

        jobs.append((spec.alias, build, make_inputs, spec.key))
    if context:
        for label, ctor, shape in _context_models():
            jobs.append((label, ctor, lambda shape=shape: (torch.rand(batch_size, *shape),), "context"))
    for label, build, make_inputs, key in jobs:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rss_before = _rss_mib()
        row = {"model": label, "paper": key}
        try:
            with _RssMonitor() as monitor:
                model = build().to(device).eval()
                inputs = tuple(x.to(device) for x in make_inputs())
                row["input_shape"] = [list(x.shape[1:]) for x in inputs]
                row["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
                row.update(bench(model, inputs, device, dtype, iters, warmup, rss_before, monitor))
        except Exception as exc:  # one model failing must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            model = inputs = None
        rows.append(row)
        print(f"{label}: " + (row.get("error") or f"{row['clips_per_s']:.2f} clips/s"), file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------- ours vs reference


def _reference_pairs() -> dict[str, callable]:
    """Builders ``() -> (ours, reference, input_shape, call_reference)`` for the paper configs."""

    def vit():
        from videozoo.models import vit as m

        cfg = m.ViTConfig.paper()
        ref = m.reference_model(cfg)
        ours = m.VisionTransformer(cfg)
        ours.load_state_dict(m.load_state_dict_from("timm", ref.state_dict()))
        return ours, ref, (3, cfg.img_size, cfg.img_size), "timm VisionTransformer", lambda r, x: r(x)

    def swin():
        from videozoo.models import swin as m

        cfg = m.SwinConfig.paper()
        ref = m.reference_model(cfg)
        ours = m.SwinTransformer(cfg)
        ours.load_state_dict(m.load_state_dict_from("timm", ref.state_dict()))
        return ours, ref, (3, cfg.img_size, cfg.img_size), "timm SwinTransformer", lambda r, x: r(x)

    def video_swin():
        from videozoo.models import video_swin as m

        cfg = m.VideoSwinConfig.paper()
        ref = m.reference_model(cfg)
        ours = m.VideoSwinTransformer(cfg)
        ours.load_state_dict(m.load_state_dict_from("torchvision", ref.state_dict()))
        return (ours, ref, (3, cfg.num_frames, cfg.img_size, cfg.img_size), "torchvision SwinTransformer3d",
                lambda r, x: r(x))

    def timesformer():
        from videozoo.models import timesformer as m

        cfg = m.TimeSformerConfig.paper()
        ref = m.reference_model(cfg)
        ours = m.TimeSformer(cfg)
        ours.load_state_dict(m.load_state_dict_from("hf", ref.state_dict()))
        return (ours, ref, (3, cfg.num_frames, cfg.img_size, cfg.img_size),
                "transformers TimesformerForVideoClassification", m.hf_logits)

    return {"vit": vit, "swin": swin, "video_swin": video_swin, "timesformer": timesformer}


REFERENCE_MODELS = ("vit", "swin", "video_swin", "timesformer")


def run_vs_reference(models: list[str], device: torch.device, dtype: torch.dtype, batch_size: int, iters: int,
                     warmup: int) -> list[dict]:
    """Time ours and the reference on the same input, alternating; return one row per model.

    Each row has ``clips_per_s_ours``, ``clips_per_s_reference`` (medians over ``iters``
    alternating iterations), ``ratio`` (ours / reference; > 1 means ours is faster) and
    ``max_abs_diff`` of the logits (float32 weights; computed under the benchmark's dtype).
    """
    pairs = _reference_pairs()
    rows = []
    for name in models:
        if name not in pairs:
            raise SystemExit(f"--vs-reference: no reference for {name!r}; choose from {', '.join(pairs)}")
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        row: dict = {"model": name}
        try:
            torch.manual_seed(0)
            ours, ref, shape, ref_name, call_ref = pairs[name]()
            ours, ref = ours.to(device).eval(), ref.to(device).eval()
            x = torch.rand(batch_size, *shape, generator=torch.Generator().manual_seed(0)).to(device)
            runners = {"ours": lambda: ours(x), "reference": lambda: call_ref(ref, x)}
            times: dict[str, list[float]] = {"ours": [], "reference": []}
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                outs = {k: f().float() for k, f in runners.items()}
                for _ in range(max(0, warmup - 1)):
                    for f in runners.values():
                        f()
                for i in range(iters):
                    order = ("ours", "reference") if i % 2 == 0 else ("reference", "ours")
                    for k in order:
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        t0 = time.perf_counter()
                        runners[k]()
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        times[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            row.update({
                "reference": ref_name, "input_shape": list(shape), "batch_size": batch_size, "iters": iters,
                "params_m": sum(p.numel() for p in ours.parameters()) / 1e6,
                "clips_per_s_ours": batch_size / med["ours"], "clips_per_s_reference": batch_size / med["reference"],
                "ratio": med["reference"] / med["ours"],
                "max_abs_diff": (outs["ours"] - outs["reference"]).abs().max().item(),
            })
        except Exception as exc:  # one model failing must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            ours = ref = x = runners = None
        rows.append(row)
        print(f"{name}: " + (row.get("error") or f"ratio {row['ratio']:.2f}"), file=sys.stderr, flush=True)
    return rows


def markdown_vs_reference(rows: list[dict], device: str, dtype: str) -> str:
    """Ours-vs-reference rows as a Markdown table."""
    lines = [f"Device: {device}, dtype: {dtype}, torch {torch.__version__}, {platform.platform()}", "",
             "| model | reference | input (per clip) | batch | ours clips/s | reference clips/s "
             "| ratio ours/reference | max abs diff of logits |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} | | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['reference']} | {'x'.join(map(str, r['input_shape']))} | {r['batch_size']} "
                     f"| {r['clips_per_s_ours']:.2f} | {r['clips_per_s_reference']:.2f} | {r['ratio']:.2f}x "
                     f"| {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def markdown(rows: list[dict], device: str, dtype: str) -> str:
    """Rows as a Markdown table."""
    lines = [f"Device: {device}, dtype: {dtype}, torch {torch.__version__}, {platform.platform()}", "",
             "| model | input (per clip) | params (M) | batch | clips/s | ms/batch | peak memory (GiB) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | | | | error: {r['error']} | | |")
            continue
        shape = " + ".join("x".join(map(str, s)) for s in r["input_shape"])
        lines.append(f"| {r['model']} | {shape} | {r['params_m']:.2f} | {r['batch_size']} | {r['clips_per_s']:.2f} "
                     f"| {r['ms_per_batch']:.1f} | {r['peak_memory_gib']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="", help="comma-separated keys/aliases (default: all registered)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--iters", type=int, default=None, help="timed iterations (default 3 on CPU, 20 on GPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 1 on CPU, 5 on GPU)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the rows as JSON")
    p.add_argument("--no-context", action="store_true", help="skip torchvision r2plus1d_18 and s3d")
    p.add_argument("--vs-reference", action="store_true",
                   help="time ours against the reference implementation (vit, swin, video_swin, timesformer)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    iters = args.iters if args.iters is not None else (20 if device.type == "cuda" else 3)
    warmup = args.warmup if args.warmup is not None else (5 if device.type == "cuda" else 1)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()})"
    if args.vs_reference:
        rows = run_vs_reference(models or list(REFERENCE_MODELS), device, DTYPES[args.dtype], args.batch_size,
                                iters, warmup)
        print(markdown_vs_reference(rows, dev_name, args.dtype))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"device": dev_name, "dtype": args.dtype, "iters": iters,
                                                   "torch": torch.__version__, "threads": torch.get_num_threads(),
                                                   "rows": rows}, indent=2, sort_keys=True))
        return 1 if any("error" in r for r in rows) else 0
    # Stage 4 video LLMs (7B paper configs) are timed generating by their gpu check, not here
    models = models or [m for m in list_models() if get_spec(m).stage < 4]
    rows = run(models, device, DTYPES[args.dtype], args.batch_size, iters, warmup, context=not args.no_context)
    print(markdown(rows, dev_name, args.dtype))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"device": dev_name, "dtype": args.dtype, "iters": iters,
                                               "torch": torch.__version__, "rows": rows}, indent=2, sort_keys=True))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
