"""Verify registered videozoo models and write ``data/reproduction/<alias>.json``.

Usage::

    python -m videozoo.verify [MODEL ...] [--out data/reproduction] [--checks builds,runs,...] [--fast]
    python -m videozoo.verify --compare data/reproduction --fast      # CI consistency mode

``MODEL`` is a paper key (``lin2019tsm``) or an alias (``tsm``); without one every registered
model is verified. Each model gets these checks (``--checks`` selects some, ``--fast``
drops ``motion``); every check records what it measured, and its status follows from the
measurement, never from a hand-written value:

``builds``
    The paper config is built (on the meta device when the model allows, else on the CPU);
    parameters are counted and FLOPs measured with ``torch.utils.flop_counter.FlopCounterMode``
    for one sample at the paper input. That counter counts 2 FLOPs per multiply-add
    (FLOPs = 2 x MACs); GMACs are recorded as well because many papers report MACs as
    "FLOPs". Passes when the paper config builds and runs a forward pass at the paper input
    (the issue's criterion); the gap to every reported figure is recorded next to it, and
    ``measured["params_match_reported"]`` says whether the count is within 10 % of one of them
    (a large gap is shown on the site, e.g. when a survey counts a different variant).
``runs``
    The tiny config, batch 2, forward and backward on the CPU: output ``(2, num_classes)``,
    finite loss and gradients, and bit-identical outputs when built and run twice with the
    same seed.
``reference``, ``inflation``
    Extra checks registered by the model file (:func:`videozoo.registry.register_check`);
    the status is the dict's ``passed``.
``motion``
    The tiny config with 8 classes is trained with AdamW on the synthetic motion dataset
    (:mod:`videozoo.data.synthetic`, opposite classes hold the same frames in reverse order)
    and evaluated on held-out clips. Expected: >= 90 % top-1 when the model is registered as
    ``temporal``, <= 30 % (chance 12.5 %) when it is not.  Models and variants may declare
    their own schedule; with ``image_pretrain_steps`` the model starts, as its paper does, from
    an image model, here trained on single synthetic frames (:func:`pretrain_image`).
``gpu``
    Only with CUDA: bf16 autocast forward + backward of the paper config at the paper input,
    clips/s and peak memory (``torch.cuda.max_memory_allocated``).

Input shapes: a model without ``clip_to_input`` takes ``config.input_shape()`` as it is. A
model with ``clip_to_input`` gets a standard clip ``(3, T, H, W)``: ``config.clip_shape()``
when the config defines it, else ``config.input_shape()`` when that is a clip, else a clip
derived from the input shape (see :func:`clip_shape`).

JSON is written atomically with sorted keys; re-running unchanged code changes only timing
fields, ``generated`` and ``environment``. Checks not selected in a run keep their previous
result from an existing file.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from videozoo.registry import ModelSpec, get_spec, list_models, make_config

__all__ = [
    "ALL_CHECKS", "clip_shape", "model_input", "check_builds", "check_runs", "check_extra",
    "check_motion", "pretrain_image", "check_gpu", "verify_model", "write_record", "compare", "main",
]

ALL_CHECKS = ("builds", "runs", "reference", "inflation", "motion", "gpu")
FAST_CHECKS = ("builds", "runs", "reference", "inflation", "gpu")
PARAM_TOLERANCE = 0.10          # builds: a params count this close to a reported figure "matches" it
MOTION_TEMPORAL_MIN = 90.0      # motion: held-out top-1 % expected of temporal models
MOTION_STATIC_MAX = 30.0        # motion: held-out top-1 % not to exceed for order-agnostic models
TIMING_KEYS = {"seconds", "clips_per_s", "forward_backward_s", "train_seconds", "build_s"}


# ----------------------------------------------------------------------------- helpers


def _round(x: Any, digits: int = 4) -> Any:
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
        return {str(k): _round(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, digits) for v in x]
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


def _shapes(inp: tuple) -> list[list[int]]:
    return [list(t.shape) for t in inp if isinstance(t, torch.Tensor)]


def _shape_str(shape: list[int]) -> str:
    return "x".join(str(v) for v in shape)


def _check(name: str, status: str, summary: str, measured: dict | None = None, expected: dict | None = None,
           seconds: float | None = None, reason: str | None = None) -> dict:
    out = {"name": name, "status": status, "summary": summary, "measured": _round(measured or {}),
           "expected": _round(expected or {})}
    if seconds is not None:
        out["seconds"] = round(seconds, 2)
    if reason is not None:
        out["reason"] = reason
    return out


def _error_check(name: str, exc: BaseException, start: float) -> dict:
    traceback.print_exc(file=sys.stderr)
    msg = f"{type(exc).__name__}: {exc}".strip()
    return _check(name, "failed", f"error: {msg[:300]}", {"error": msg[:2000]}, seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- builds


def _count_flops(model: nn.Module, inp: tuple) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inp)
    return int(counter.get_total_flops())


def check_builds(spec: ModelSpec) -> dict:
    """Paper config: parameter count and FLOPs at ``input_shape()``, compared with ``spec.reported``."""
    start = time.perf_counter()
    cfg = make_config(spec.key, "paper")
    gen = torch.Generator().manual_seed(0)
    cpu_inp = model_input(spec, cfg, 1, gen)
    device = "meta"
    try:
        with torch.device("meta"):
            model = spec.builder(cfg)
        model.eval()
        flops = _count_flops(model, tuple(torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t
                                          for t in cpu_inp))
    except Exception:  # not every model runs on meta tensors: build for real on the CPU
        device = "cpu"
        torch.manual_seed(0)
        model = spec.builder(cfg)
        model.eval()
        flops = _count_flops(model, cpu_inp)
    params = sum(p.numel() for p in model.parameters())
    params_m = params / 1e6
    gflops = flops / 1e9
    measured = {
        "params": params, "params_m": round(params_m, 4), "flops": flops, "gflops": gflops,
        "gmacs": gflops / 2, "input_shape": _shapes(cpu_inp), "device": device,
        "flops_convention": "FLOPs = 2 x MACs (torch.utils.flop_counter.FlopCounterMode)",
    }
    expected: dict[str, list[dict]] = {}
    gaps = []
    within = []
    for rep in spec.reported:
        entry = {"value": rep.value, "source": rep.source}
        if rep.note:
            entry["note"] = rep.note
        if rep.metric == "params_m":
            gap = (params_m - rep.value) / rep.value * 100 if rep.value else float("inf")
            entry["gap_pct"] = gap
            within.append(abs(gap) <= PARAM_TOLERANCE * 100)
            gaps.append(f"{rep.source}: {rep.value:g} M (gap {gap:+.1f} %)")
        elif rep.metric == "gflops":
            entry["gap_pct_vs_gflops"] = (gflops - rep.value) / rep.value * 100 if rep.value else None
            entry["gap_pct_vs_gmacs"] = (gflops / 2 - rep.value) / rep.value * 100 if rep.value else None
            gaps.append(f"{rep.source}: {rep.value:g} GFLOPs")
        else:
            entry["metric"] = rep.metric
        expected.setdefault(rep.metric, []).append(entry)
    expected["rule"] = "the paper config builds and runs forward at the paper input; gaps recorded"
    measured["params_match_reported"] = any(within) if within else None
    passed = True
    shape = " + ".join(_shape_str(s[1:]) for s in _shapes(cpu_inp))
    summary = (f"{params_m:.2f} M params, {gflops:.1f} GFLOPs ({gflops / 2:.1f} GMACs; FLOPs = 2 x MACs) at {shape}"
               + ("; " + "; ".join(gaps) if gaps else "; no reported figure")
               + ("" if not within or any(within) else f" (differs by more than {PARAM_TOLERANCE:.0%})"))
    return _check("builds", "passed" if passed else "failed", summary, measured, expected,
                  seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- runs


def _forward_backward(spec: ModelSpec, cfg: Any, seed: int) -> tuple[torch.Tensor, nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = spec.builder(cfg)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    inp = model_input(spec, cfg, 2, gen)
    out = model(*inp)
    target = torch.arange(2) % cfg.num_classes
    loss = nn.functional.cross_entropy(out.float(), target) if out.ndim == 2 else out.float().sum()
    loss.backward()
    return out.detach(), model, loss.detach()


def check_runs(spec: ModelSpec) -> dict:
    """Tiny config, batch 2, CPU forward+backward: shape, finite gradients, determinism."""
    start = time.perf_counter()
    cfg = make_config(spec.key, "tiny")
    t0 = time.perf_counter()
    out1, model, loss = _forward_backward(spec, cfg, seed=0)
    fb_s = time.perf_counter() - t0
    out2, _, _ = _forward_backward(spec, cfg, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    no_grad = sum(1 for p in params if p.grad is None)
    nonfinite = sum(1 for p in params if p.grad is not None and not torch.isfinite(p.grad).all())
    expected_shape = [2, cfg.num_classes]
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
    summary = (f"tiny config ({measured['params'] / 1e3:.1f} k params): output {_shape_str(list(out1.shape))}, "
               f"loss {loss.item():.3f}, " + ("finite grads, deterministic" if not problems else "; ".join(problems)))
    expected = {"output_shape": expected_shape, "finite_gradients": True, "deterministic": True}
    return _check("runs", "failed" if problems else "passed", summary, measured, expected,
                  seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- extra checks


def check_extra(spec: ModelSpec, name: str) -> dict:
    """Run ``spec.checks[name]()``; status from its ``passed``, the rest goes to ``measured``."""
    start = time.perf_counter()
    if name not in spec.checks:
        return _check(name, "not-run", f"no {name} check registered for this model",
                      reason=f"the model file registers no {name!r} check")
    result = dict(spec.checks[name]())
    passed = bool(result.pop("passed"))
    summary = str(result.pop("summary", "")) or f"{name} check {'passed' if passed else 'failed'}"
    expected = result.pop("expected", {})
    return _check(name, "passed" if passed else "failed", summary, result,
                  expected if isinstance(expected, dict) else {"value": expected},
                  seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- motion


def _batched_inputs(spec: ModelSpec, cfg: Any, clips: torch.Tensor, chunk: int = 256) -> tuple:
    if spec.clip_to_input is None:
        return (clips,)
    parts: list[tuple] = []
    with torch.no_grad():
        for i in range(0, clips.shape[0], chunk):
            inp = spec.clip_to_input(cfg, clips[i:i + chunk])
            parts.append(tuple(inp) if isinstance(inp, (tuple, list)) else (inp,))
    return tuple(torch.cat([p[j] for p in parts]) for j in range(len(parts[0])))


def precise_bn(model: nn.Module, inputs: tuple[torch.Tensor, ...], batch_size: int = 32, batches: int = 20) -> int:
    """Recompute BatchNorm running statistics as the plain average over ``batches`` training
    batches ("precise BN", as PySlowFast does before evaluation), so evaluation does not use
    statistics that lag behind the last optimisation steps. Weights are not changed.

    Returns the number of BatchNorm layers recalibrated (0: nothing to do).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    model.train()
    with torch.no_grad():
        for i in range(batches):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            model(*(x[sl] for x in inputs))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return len(bns)


def _adamw_cosine(model: nn.Module, lr: float, weight_decay: float, max_steps: int):
    """AdamW (no decay on biases, norms, tokens and embeddings of ndim <= 1) with a 5 % linear
    warm-up and cosine decay over ``max_steps``; returns ``(optimizer, scheduler)``."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = max(1, max_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, max_steps) / max_steps)))
    return opt, sched


def pretrain_image(
    spec: ModelSpec,
    cfg: Any,
    steps: int,
    n_train: int = 20000,
    n_test: int = 2000,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    bins: int = 12,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, dict]:
    """Train the image model that ``spec``'s video model is initialised from, on single frames.

    The stand-in for the paper's ImageNet pre-training (e.g. TimeSformer, arXiv 2102.05095,
    Sec. 4): the image model given by ``spec.image_init`` for ``cfg`` learns the orientation
    bin of the motion set's objects (:func:`videozoo.data.synthetic.make_orientation_dataset`),
    ``steps`` steps of AdamW with warm-up and cosine decay on random batches.

    Args:
        spec: Video model spec with ``image_init``.
        cfg: The video model's config (the image config follows from it).
        steps: Training steps (> 0).

    Returns:
        ``(state_dict, metrics)``: the image model's weights (its head sized for ``bins``), and
        the held-out orientation top-1 (%), chance (%), steps and seconds.

    Raises:
        ValueError: if ``spec`` has no ``image_init``, ``steps`` is not positive, or no
            registered model has the image config's class.
    """
    from videozoo.data.synthetic import make_orientation_dataset

    if spec.image_init is None or steps <= 0:
        raise ValueError(f"{spec.alias}: image pre-training needs spec.image_init and steps > 0 (steps={steps})")
    image_cfg = dataclasses.replace(spec.image_init[0](cfg), num_classes=bins)
    image_specs = [s for s in map(get_spec, list_models()) if s.config_cls is type(image_cfg)]
    if not image_specs:
        raise ValueError(f"{spec.alias}: no registered model takes a {type(image_cfg).__name__}")
    size = image_cfg.img_size
    t0 = time.perf_counter()
    x_train, y_train = make_orientation_dataset(n_train, size=size, bins=bins, seed=seed + 11)
    x_test, y_test = make_orientation_dataset(n_test, size=size, bins=bins, seed=seed + 12)
    torch.manual_seed(seed)
    model = image_specs[0].builder(image_cfg)
    opt, sched = _adamw_cosine(model, lr, weight_decay, steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, n_train, (batch_size,), generator=gen)
        loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log and (step + 1) % 500 == 0:
            log(f"  image pre-training step {step + 1}: loss {loss.item():.3f}")
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x_test[i:i + 500]).argmax(1) for i in range(0, n_test, 500)])
    metrics = {
        "model": image_specs[0].alias, "task": f"orientation of single frames, {bins} bins of {180 / bins:g} deg",
        "heldout_top1_pct": 100.0 * float((pred == y_test).float().mean()), "chance_pct": 100.0 / bins,
        "steps": steps, "batch_size": batch_size, "lr": lr, "n_train": n_train, "n_test": n_test,
        "train_seconds": time.perf_counter() - t0,
    }
    if log:
        log(f"  image pre-training: {metrics['heldout_top1_pct']:.1f} % held-out orientation top-1")
    return model.state_dict(), metrics


def train_motion(
    spec: ModelSpec,
    cfg: Any,
    n_train: int = 1600,
    n_test: int = 400,
    max_steps: int = 600,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    stop_train_acc: float = 0.98,
    image_pretrain_steps: int = 0,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    image_cache: dict | None = None,
) -> dict:
    """Train ``cfg`` on the synthetic motion set; return accuracies, steps and seconds.

    AdamW with a 5 % linear warm-up and cosine decay over ``max_steps``; stops early once the
    training accuracy over the last epoch reaches ``stop_train_acc``.  BatchNorm statistics are
    recomputed on training batches before the held-out evaluation (:func:`precise_bn`).
    With ``image_pretrain_steps > 0`` the model starts from an image model trained that many
    steps on single frames (:func:`pretrain_image`, through ``spec.image_init``, as the paper
    starts from ImageNet weights) instead of from random weights; that run's figures are
    returned under ``image_pretrain``.  Pass the same ``image_cache`` dict to several calls to
    train that image model once: a later call with the same image config, steps and seed
    reuses its weights.
    Accuracies are in %; ``heldout_per_class_top1_pct`` maps each class name to its held-out
    top-1 (so a pair of opposite classes left at chance shows by name); times are in seconds.
    """
    from videozoo.data.synthetic import CLASS_NAMES, make_motion_dataset

    _, T, H, W = clip_shape(cfg, spec)
    size = max(H, W)
    t_data = time.perf_counter()
    train_clips, train_y = make_motion_dataset(n_train, frames=T, size=size, seed=seed + 1)
    test_clips, test_y = make_motion_dataset(n_test, frames=T, size=size, seed=seed + 2)
    if (H, W) != (size, size):
        train_clips = train_clips[..., :H, :W].contiguous()
        test_clips = test_clips[..., :H, :W].contiguous()
    train_x = _batched_inputs(spec, cfg, train_clips)
    test_x = _batched_inputs(spec, cfg, test_clips)
    data_s = time.perf_counter() - t_data

    pretrained = None
    if image_pretrain_steps > 0:
        key = (spec.key, repr(spec.image_init[0](cfg)) if spec.image_init else None, image_pretrain_steps, seed)
        if image_cache is not None and key in image_cache:
            image_sd, pretrained = image_cache[key]
            if log:
                log("  image pre-training: reusing the image model trained earlier in this check")
        else:
            image_sd, pretrained = pretrain_image(spec, cfg, image_pretrain_steps, seed=seed, log=log)
            if image_cache is not None:
                image_cache[key] = (image_sd, pretrained)
    torch.manual_seed(seed)
    model = spec.builder(cfg)
    if pretrained is not None:
        spec.image_init[1](model, image_sd)
    opt, sched = _adamw_cosine(model, lr, weight_decay, max_steps)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, n_train // batch_size)
    step, correct, seen, train_acc = 0, 0, 0, 0.0
    t_train = time.perf_counter()
    model.train()
    while step < max_steps:
        perm = torch.randperm(n_train, generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            out = model(*(x[idx] for x in train_x))
            loss = nn.functional.cross_entropy(out, train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            correct += int((out.argmax(1) == train_y[idx]).sum())
            seen += idx.numel()
            if step >= max_steps:
                break
        train_acc = correct / max(seen, 1)
        if log:
            log(f"  step {step}: loss {loss.item():.3f}, train top-1 {100 * train_acc:.1f} %")
        correct, seen = 0, 0
        if train_acc >= stop_train_acc:
            break
    train_s = time.perf_counter() - t_train
    precise_bn(model, train_x, batch_size=batch_size, batches=min(20, steps_per_epoch))
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(*(x[i:i + 200] for x in test_x)).argmax(1) for i in range(0, n_test, 200)])
    hit = pred == test_y
    extra = {} if pretrained is None else {"image_pretrain": pretrained}
    per_class = {name: round(100.0 * float(hit[test_y == c].float().mean()), 2)
                 for c, name in enumerate(CLASS_NAMES) if (test_y == c).any()}
    return {
        "heldout_top1_pct": 100.0 * int(hit.sum()) / n_test, "heldout_per_class_top1_pct": per_class,
        "train_top1_pct": 100.0 * train_acc, "steps": step,
        "max_steps": max_steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "n_train": n_train, "n_test": n_test, "clip_shape": [3, T, H, W],
        "model_input_shape": [list(x.shape[1:]) for x in train_x], "train_seconds": train_s,
        "data_seconds": data_s, "chance_pct": 12.5, **extra,
    }


def _motion_verdict(acc: float, temporal: bool) -> tuple[bool, dict, str]:
    if temporal:
        return (acc >= MOTION_TEMPORAL_MIN, {"heldout_top1_pct": f">= {MOTION_TEMPORAL_MIN:g}", "temporal": True},
                f"expected >= {MOTION_TEMPORAL_MIN:g} %")
    return (acc <= MOTION_STATIC_MAX, {"heldout_top1_pct": f"<= {MOTION_STATIC_MAX:g}", "temporal": False},
            f"order-agnostic, expected <= {MOTION_STATIC_MAX:g} %")


def check_motion(spec: ModelSpec, max_steps: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Motion check: tiny config (8 classes) trained on the synthetic motion dataset.

    Training settings are :func:`train_motion`'s defaults updated by ``spec.motion`` (and
    ``max_steps`` when given). Every variant in ``spec.motion_variants`` (e.g. TimeSformer's
    space-only and joint attention) is trained the same way, with the variant's own settings
    on top (a ``max_steps`` given here still wins), and must meet its own expectation; the
    check passes when the model and all variants do.  Each variant's settings are recorded.
    """
    start = time.perf_counter()
    cli = {} if max_steps is None else {"max_steps": max_steps}  # the command line wins over everything
    settings = {**spec.motion, **cli}
    cfg = make_config(spec.key, "tiny", num_classes=8)
    image_cache: dict = {}  # the image model a video model starts from is trained once per check
    m = train_motion(spec, cfg, log=log, image_cache=image_cache, **settings)
    acc = m["heldout_top1_pct"]
    passed, expected, rule = _motion_verdict(acc, spec.temporal)
    name = getattr(cfg, "attention", None) or getattr(cfg, "variant", None) or "tiny"
    main_from = ", from a frame-trained image model" if "image_pretrain" in m else ""
    parts = [f"{acc:.1f} %" + (f" ({name}{main_from})" if spec.motion_variants else main_from)]
    if spec.motion_variants:
        m["variants"], expected["variants"] = {}, {}
        for vname, (overrides, temporal, vsettings) in spec.motion_variants.items():
            vset = {**spec.motion, **vsettings, **cli}
            if log:
                log(f"  variant {vname}: {overrides} {vsettings or ''}")
            vm = train_motion(spec, dataclasses.replace(cfg, **overrides), log=log, image_cache=image_cache, **vset)
            ok, vexp, vrule = _motion_verdict(vm["heldout_top1_pct"], temporal)
            passed = passed and ok
            m["variants"][vname] = {"overrides": overrides, "passed": ok, **{
                k: vm[k] for k in ("heldout_top1_pct", "heldout_per_class_top1_pct", "train_top1_pct", "steps",
                                   "max_steps", "lr", "n_train", "train_seconds", "image_pretrain") if k in vm}}
            expected["variants"][vname] = vexp
            start_from = ", from a frame-trained image model" if "image_pretrain" in vm else ""
            parts.append(f"{vm['heldout_top1_pct']:.1f} % ({vname}{start_from}, {vrule})")
    summary = (f"{', '.join(parts)} held-out top-1 on 8 motion classes (chance 12.5 %; "
               f"{'temporal model' if spec.temporal else 'order-agnostic model'}, {rule}) after {m['steps']} steps, "
               f"{m['train_seconds']:.0f} s on CPU")
    return _check("motion", "passed" if passed else "failed", summary, m, expected, seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- gpu


def check_gpu(spec: ModelSpec, batch_size: int = 8, iters: int = 5) -> dict:
    """bf16 autocast forward + backward of the paper config on CUDA: clips/s and peak memory."""
    start = time.perf_counter()
    if not torch.cuda.is_available():
        return _check("gpu", "not-run", "not run on GPU (no CUDA device)", reason="no CUDA device")
    dev = torch.device("cuda")
    cfg = make_config(spec.key, "paper")
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
        "dtype": "bfloat16 autocast", "input_shape": _shapes(inp),
    }
    summary = (f"{measured['clips_per_s']:.1f} clips/s forward+backward (bf16 autocast, batch {bs}) on "
               f"{measured['device_name']}, peak {peak:.2f} GiB")
    return _check("gpu", "passed", summary, measured, {"runs_on": "cuda"}, seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- records


def environment() -> dict:
    """Python, torch and machine description recorded with every result."""
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    try:
        import torchvision

        env["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a zoo dependency
        pass
    return env


def run_check(spec: ModelSpec, name: str, motion_steps: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run one named check, turning an exception into a failed check with the error text."""
    start = time.perf_counter()
    try:
        if name == "builds":
            return check_builds(spec)
        if name == "runs":
            return check_runs(spec)
        if name in ("reference", "inflation"):
            return check_extra(spec, name)
        if name == "motion":
            return check_motion(spec, max_steps=motion_steps, log=log)
        if name == "gpu":
            return check_gpu(spec)
        raise ValueError(f"unknown check {name!r}")
    except Exception as exc:  # a failing model must not stop the others
        return _error_check(name, exc, start)


def _command(alias: str, checks: list[str], out: str, motion_steps: int | None) -> str:
    parts = ["python", "-m", "videozoo.verify", alias]
    if set(checks) != set(ALL_CHECKS):
        parts += ["--checks", ",".join(c for c in ALL_CHECKS if c in checks)]
    if motion_steps is not None and "motion" in checks:
        parts += ["--motion-steps", str(motion_steps)]
    parts += ["--out", out]
    return " ".join(parts)


def verify_model(name: str, checks: list[str], out: str | os.PathLike | None = "data/reproduction",
                 motion_steps: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run ``checks`` for one model; merge with an existing record in ``out`` and return the record.

    The record is validated against ``papers_kb.schema.ReproductionRecord`` and, when ``out``
    is not ``None``, written to ``<out>/<alias>.json``.

    Raises:
        KeyError: unknown model. pydantic.ValidationError: if the record does not validate.
    """
    spec = get_spec(name)
    results: dict[str, dict] = {}
    path = Path(out) / f"{spec.alias}.json" if out is not None else None
    if path is not None and path.exists():
        try:
            for c in json.loads(path.read_text())["checks"]:
                results[c["name"]] = c
        except (ValueError, KeyError):
            results = {}
    for c in checks:
        if log:
            log(f"{spec.alias}: {c} ...")
        results[c] = run_check(spec, c, motion_steps=motion_steps, log=log)
        if log:
            log(f"{spec.alias}: {c} {results[c]['status']}: {results[c]['summary']}")
    names = [c for c in ALL_CHECKS if c in results]
    record = {
        "schema_version": 1,
        "paper": spec.key,
        "model": spec.alias,
        "source_file": spec.source_file,
        "command": _command(spec.alias, names, str(out if out is not None else "data/reproduction"), motion_steps),
        "environment": environment(),
        "generated": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "checks": [results[c] for c in names],
    }
    from papers_kb.schema import ReproductionRecord

    ReproductionRecord.model_validate(record)
    if path is not None:
        write_record(path, record)
    return record


def write_record(path: str | os.PathLike, record: dict) -> None:
    """Write ``record`` as JSON (sorted keys, 2-space indent) atomically via ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- compare (CI)

_COMPARED = {
    "builds": ("params", "flops", "input_shape"),
    "runs": ("output_shape", "params", "deterministic", "tensors_without_grad"),
}


def compare(names: list[str], directory: str | os.PathLike, checks: tuple[str, ...] = ("builds", "runs"),
            log: Callable[[str], None] = print) -> list[str]:
    """Re-run ``checks`` and list every difference from the committed records in ``directory``.

    Compared: each check's status and the deterministic measurements (parameter counts,
    FLOPs, output shapes); timings are ignored. A registered model without a record, or a
    record without a registered model, is a difference too.

    Returns:
        Human-readable differences (empty when everything matches).
    """
    directory = Path(directory)
    diffs: list[str] = []
    aliases = set()
    for name in names:
        spec = get_spec(name)
        aliases.add(spec.alias)
        path = directory / f"{spec.alias}.json"
        if not path.exists():
            diffs.append(f"{spec.alias}: no committed record {path}")
            continue
        committed = {c["name"]: c for c in json.loads(path.read_text())["checks"]}
        for c in checks:
            now = run_check(spec, c)
            old = committed.get(c)
            if old is None:
                diffs.append(f"{spec.alias}/{c}: not in the committed record")
                continue
            if old["status"] != now["status"]:
                diffs.append(f"{spec.alias}/{c}: status {old['status']} (committed) != {now['status']} (now)")
            for key in _COMPARED.get(c, ()):
                a, b = old.get("measured", {}).get(key), now["measured"].get(key)
                if a != b:
                    diffs.append(f"{spec.alias}/{c}: {key} {a!r} (committed) != {b!r} (now)")
        log(f"{spec.alias}: compared")
    if len(names) == len(list_models()):
        for p in sorted(directory.glob("*.json")):
            if p.stem not in aliases:
                diffs.append(f"{p.name}: record of a model that is not registered")
    return diffs


# ----------------------------------------------------------------------------- CLI


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m videozoo.verify", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", metavar="MODEL", help="paper keys or aliases (default: all registered)")
    p.add_argument("--out", default="data/reproduction", help="folder of <alias>.json records")
    p.add_argument("--checks", default=",".join(ALL_CHECKS), help=f"comma-separated subset of {','.join(ALL_CHECKS)}")
    p.add_argument("--fast", action="store_true", help="skip the motion check")
    p.add_argument("--motion-steps", type=int, default=None,
                   help="step budget of the motion check (default: the model's own, else 600)")
    p.add_argument("--compare", metavar="DIR", help="CI mode: re-run builds and runs, exit 1 on any difference")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 when every check ran passed or was not run, else 1."""
    args = _parse(argv)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    names = [get_spec(n).key for n in args.models] if args.models else list_models()
    if args.compare:
        diffs = compare(names, args.compare, log=log)
        for d in diffs:
            print(f"DIFF {d}")
        print(f"{len(names)} models compared with {args.compare}: {len(diffs)} difference(s)")
        return 1 if diffs else 0
    checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = set(checks) - set(ALL_CHECKS)
    if unknown:
        print(f"unknown check(s) {sorted(unknown)}; choose from {', '.join(ALL_CHECKS)}", file=sys.stderr)
        return 2
    if args.fast:
        checks = [c for c in checks if c != "motion"]
    failed = 0
    for name in names:
        record = verify_model(name, checks, out=args.out, motion_steps=args.motion_steps, log=log)
        statuses = {c["name"]: c["status"] for c in record["checks"] if c["name"] in checks}
        failed += sum(s == "failed" for s in statuses.values())
        print(f"{record['model']:<14} " + "  ".join(f"{k}={v}" for k, v in statuses.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
