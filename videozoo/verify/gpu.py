"""Check ``gpu``: bf16 autocast forward + backward of the paper config on CUDA."""

from __future__ import annotations

import time

import torch

from videozoo.registry import ModelSpec, make_config
from videozoo.verify.common import make_check, model_input, shapes


def check_gpu(spec: ModelSpec, batch_size: int = 8, iters: int = 5) -> dict:
    """bf16 autocast forward + backward of the paper config on CUDA: clips/s and peak memory."""
    start = time.perf_counter()
    if not torch.cuda.is_available():
        return make_check("gpu", "not-run", "not run on GPU (no CUDA device)", reason="no CUDA device")
    dev = torch.device("cuda")
    cfg = make_config(spec.alias, "paper")
    torch.manual_seed(0)
    model = spec.builder(cfg).to(dev)
    model.train()
    bs = batch_size
    while True:
        try:
            inp = tuple(t.to(dev) for t in model_input(spec, cfg, bs))
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            for i in range(iters + 2):
                if i == 2:
                    torch.cuda.synchronize(dev)
                    t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(*inp)
                out.float().sum().backward()
                model.zero_grad(set_to_none=True)
            torch.cuda.synchronize(dev)
            elapsed = time.perf_counter() - t0
            break
        except torch.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            if bs == 1:
                raise
            bs //= 2
    peak = torch.cuda.max_memory_allocated(dev) / 2**30
    measured = {
        "device_name": torch.cuda.get_device_name(dev), "batch_size": bs, "iters": iters,
        "clips_per_s": bs * iters / elapsed, "peak_memory_gib": peak, "model_memory_gib": base / 2**30,
        "dtype": "bfloat16 autocast", "input_shape": shapes(inp),
    }
    summary = (f"{measured['clips_per_s']:.1f} clips/s forward+backward (bf16 autocast, batch {bs}) on "
               f"{measured['device_name']}, peak {peak:.2f} GiB")
    return make_check("gpu", "passed", summary, measured, {"runs_on": "cuda"}, seconds=time.perf_counter() - start,
                      evidence="smoke-test")

