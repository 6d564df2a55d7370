"""Check ``runs``: the tiny config's forward and backward pass on the CPU."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from videozoo.registry import ModelSpec, make_config
from videozoo.verify.common import make_check, model_input, shape_str


def _forward_backward(spec: ModelSpec, cfg: Any, seed: int) -> tuple[torch.Tensor, nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = spec.builder(cfg)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    inp = model_input(spec, cfg, 2, gen)
    out = model(*inp)
    if out.ndim == 2:
        loss = nn.functional.cross_entropy(out.float(), torch.arange(2) % out.shape[1])
    else:  # e.g. a video LLM's logits (B, L, V)
        loss = out.float().sum()
    loss.backward()
    return out.detach(), model, loss.detach()


def check_runs(spec: ModelSpec) -> dict:
    """Tiny config, batch 2, CPU forward+backward: shape, finite gradients, determinism."""
    start = time.perf_counter()
    cfg = make_config(spec.alias, "tiny")
    t0 = time.perf_counter()
    out1, model, loss = _forward_backward(spec, cfg, seed=0)
    fb_s = time.perf_counter() - t0
    out2, _, _ = _forward_backward(spec, cfg, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    no_grad = sum(1 for p in params if p.grad is None)
    nonfinite = sum(1 for p in params if p.grad is not None and not torch.isfinite(p.grad).all())
    # a config may say its output shape (a video LLM: logits (B, L, V)); else (B, num_classes)
    expected_shape = list(cfg.output_shape(2)) if hasattr(cfg, "output_shape") else [2, cfg.num_classes]
    same = out1.shape == out2.shape and torch.equal(out1, out2)
    diff = (out1.float() - out2.float()).abs().max().item() if out1.shape == out2.shape else float("inf")
    measured = {
        "output_shape": list(out1.shape), "loss": loss.item(), "output_finite": bool(torch.isfinite(out1).all()),
        "params": sum(p.numel() for p in model.parameters()), "tensors_without_grad": no_grad,
        "tensors_with_nonfinite_grad": nonfinite, "deterministic": bool(same), "max_abs_diff_same_seed": diff,
        "forward_backward_s": fb_s,
    }
    problems = []
    if list(out1.shape) != expected_shape:
        problems.append(f"output {list(out1.shape)} != {expected_shape}")
    if not measured["output_finite"] or not math.isfinite(measured["loss"]):
        problems.append("non-finite output")
    if nonfinite:
        problems.append(f"{nonfinite} gradient tensors not finite")
    if no_grad == len(params):
        problems.append("no parameter received a gradient")
    if not same:
        problems.append(f"same seed gave different outputs (max diff {diff:.3g})")
    summary = (f"tiny config ({measured['params'] / 1e3:.1f} k params): output {shape_str(list(out1.shape))}, "
               f"loss {loss.item():.3f}, " + ("finite grads, deterministic" if not problems else "; ".join(problems)))
    expected = {"output_shape": expected_shape, "finite_gradients": True, "deterministic": True}
    return make_check("runs", "failed" if problems else "passed", summary, measured, expected,
                      seconds=time.perf_counter() - start, evidence="smoke-test")

