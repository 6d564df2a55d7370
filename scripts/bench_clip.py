"""Forward throughput of videozoo's CLIP against open_clip's, same config and same weights.

Usage::

    python scripts/bench_clip.py [--model clip|clip_vit_b16|clip_vit_l14|clip_rn50] [--batch-sizes 1,8]
                                 [--iters 10] [--warmup 2] [--threads N] [--json OUT]

open_clip's model of the paper configuration (``open_clip.create_model(name, pretrained=None,
force_quick_gelu=True)``, random weights) is built, ours loads its weights through
``videozoo.models.clip.load_state_dict_from``, and both encode the same random images
(``encode_image``, images/s) and the same tokenised captions (``encode_text``, 77-token
context, texts/s) on the CPU in float32 under ``torch.inference_mode()``.  Timed iterations
alternate between the two models (ours, open_clip, ours, ...) so that drift in machine load
hits both alike; the medians of the per-iteration times give the throughputs and the ratio
ours / open_clip (> 1: ours is faster; the goal is >= 1.0).  The largest absolute difference
of the two models' embeddings is printed beside the timings.  Prints a Markdown table;
``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from videozoo.models.clip import OPEN_CLIP_NAMES, load_state_dict_from  # noqa: E402
from videozoo.registry import create  # noqa: E402

CAPTIONS = ["a red square moving left", "a photo of a dog playing in the snow", "two people riding bicycles",
            "a close-up of a bowl of soup", "a diagram of a neural network", "the skyline of a city at night",
            "a cat sleeping on a sofa", "a person cutting vegetables in a kitchen"]


def _time(fn, x) -> float:
    t0 = time.perf_counter()
    fn(x)
    return time.perf_counter() - t0


def bench_pair(ours_fn, ref_fn, x, iters: int, warmup: int) -> tuple[float, float]:
    """Median seconds per call of ``ours_fn(x)`` and ``ref_fn(x)``, timed alternately."""
    for _ in range(warmup):
        ours_fn(x)
        ref_fn(x)
    a, b = [], []
    for _ in range(iters):
        a.append(_time(ours_fn, x))
        b.append(_time(ref_fn, x))
    return statistics.median(a), statistics.median(b)


def run(model: str, batch_sizes: list[int], iters: int, warmup: int) -> list[dict]:
    """Benchmark rows: per tower and batch size, items/s of ours and open_clip and the ratio."""
    import open_clip

    from videozoo.data.tokenizer import tokenize

    name = OPEN_CLIP_NAMES[model]
    torch.manual_seed(0)
    ref = open_clip.create_model(name, pretrained=None, force_quick_gelu=True).eval()
    ours = create(model).eval()
    ours.load_state_dict(load_state_dict_from(ref.state_dict()))
    size = ours.config.image_size
    rows = []
    with torch.inference_mode():
        for bs in batch_sizes:
            images = torch.randn(bs, 3, size, size, generator=torch.Generator().manual_seed(bs))
            text = tokenize([CAPTIONS[i % len(CAPTIONS)] for i in range(bs)])
            for tower, x, ours_fn, ref_fn in (("image", images, ours.encode_image, ref.encode_image),
                                              ("text", text, ours.encode_text, ref.encode_text)):
                diff = (ours_fn(x) - ref_fn(x)).abs().max().item()
                t_ours, t_ref = bench_pair(ours_fn, ref_fn, x, iters, warmup)
                rows.append({"model": model, "open_clip_model": name, "tower": tower, "batch_size": bs,
                             "ours_per_s": bs / t_ours, "open_clip_per_s": bs / t_ref, "ratio": t_ref / t_ours,
                             "max_abs_diff": diff})
                print(f"{name} {tower} batch {bs}: ours {bs / t_ours:.2f}/s, open_clip {bs / t_ref:.2f}/s, "
                      f"ratio {t_ref / t_ours:.3f}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="clip", choices=sorted(OPEN_CLIP_NAMES), help="registered CLIP name")
    p.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per model (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations per model (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        if not batch_sizes or min(batch_sizes) < 1 or args.iters < 1 or args.warmup < 0:
            raise ValueError
    except ValueError:
        p.error(f"--batch-sizes must be positive integers separated by commas (got {args.batch_sizes!r}), "
                f"--iters >= 1, --warmup >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = run(args.model, batch_sizes, args.iters, args.warmup)
    print(f"CPU float32, {torch.get_num_threads()} thread(s), torch {torch.__version__}, {platform.machine()}; "
          f"median of {args.iters} alternated iterations\n")
    print("| model | tower | batch | ours (items/s) | open_clip (items/s) | ratio ours/open_clip | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['open_clip_model']} | {r['tower']} | {r['batch_size']} | {r['ours_per_s']:.2f} | "
              f"{r['open_clip_per_s']:.2f} | {r['ratio']:.3f} | {r['max_abs_diff']:.1e} |")
    if args.json is not None:
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__,
                                         "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
