"""Check ``gpu``: bf16 autocast forward + backward of the paper config on CUDA; for a Stage 4
video LLM, bf16 generation speed (time to first token, tokens/s) at its tiny and paper configs."""

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
    if spec.video_qa:  # a video LLM is timed generating, not training
        return check_gpu_generation(spec)
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



def measure_generation(spec: ModelSpec, config: str, device: str | torch.device, dtype: torch.dtype,
                       new_tokens: int = 64, repeats: int = 3) -> dict:
    """Time a video LLM answering one question about one random clip (batch 1, greedy, KV cache).

    The model is built directly on ``device`` in ``dtype`` (a 7B paper config in bfloat16 needs
    about 15 GB), fed :func:`model_input`'s clip and prompt; times include the video encoding,
    the prefill and the decoding (:func:`videozoo.layers.generation.time_generation`).

    Returns:
        ``time_to_first_token_s``, ``decode_tokens_per_s``, ``total_s``, ``new_tokens``, the
        prompt length, ``params_m``, the config name and, on CUDA, ``peak_memory_gib``.
    """
    from videozoo.layers.generation import time_generation

    dev = torch.device(device)
    cfg = make_config(spec.alias, config)
    saved = torch.get_default_dtype()
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with dev:
            model = spec.builder(cfg)
    finally:
        torch.set_default_dtype(saved)
    model.eval()
    video, ids = (t.to(dev) for t in model_input(spec, cfg, 1, torch.Generator().manual_seed(0)))
    video = video.to(dtype)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode():
        out = time_generation(lambda n, m: model.generate(video, ids, max_new_tokens=n, min_new_tokens=m),
                              new_tokens, repeats=repeats, synchronize=sync)
    out.update({"config": config, "prompt_tokens": int(ids.shape[1]), "dtype": str(dtype).replace("torch.", ""),
                "params_m": sum(p.numel() for p in model.parameters()) / 1e6})
    if dev.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    del model
    return out


def check_gpu_generation(spec: ModelSpec) -> dict:
    """Stage 4 ``gpu`` check: bf16 generation at the tiny and the paper config on CUDA.

    Time to first token (s) and decoding speed (tokens/s) for one clip and one question, batch
    1, 64 new tokens; a config that does not fit the device is recorded as out of memory.
    """
    start = time.perf_counter()
    dev = torch.device("cuda")
    results: dict = {}
    for config in ("tiny", "paper"):
        try:
            results[config] = measure_generation(spec, config, dev, torch.bfloat16)
        except torch.OutOfMemoryError as exc:
            results[config] = {"error": f"out of memory: {str(exc).splitlines()[0][:200]}"}
        torch.cuda.empty_cache()
    measured = {"device_name": torch.cuda.get_device_name(dev), "dtype": "bfloat16", "batch_size": 1, **results}
    parts = [f"{c}: {r['time_to_first_token_s'] * 1e3:.0f} ms to first token, {r['decode_tokens_per_s']:.0f} tokens/s"
             if "error" not in r else f"{c}: {r['error']}" for c, r in results.items()]
    summary = f"bf16 greedy generation, batch 1, on {measured['device_name']}: " + "; ".join(parts)
    passed = "error" not in results["tiny"]
    return make_check("gpu", "passed" if passed else "failed", summary, measured, {"runs_on": "cuda"},
                      seconds=time.perf_counter() - start, evidence="smoke-test")
