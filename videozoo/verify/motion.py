"""Check ``motion``: the tiny config trained on the synthetic motion set (frame order matters)."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import torch
from torch import nn

from videozoo.registry import ModelSpec, get_spec, list_models, make_config
from videozoo.verify.common import clip_shape, make_check

MOTION_TEMPORAL_MIN = 90.0      # held-out top-1 % expected of temporal models
MOTION_STATIC_MAX = 30.0        # held-out top-1 % not to exceed for order-agnostic models


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


DEFAULT_SEEDS = (0, 1, 2)
"""Seeds of the motion check: each trains the model from its own initialisation, data order
and (for ``image_pretrain_steps``) image model; the verdict rests on the worst seed."""

CONTROL_LABEL = "control: cannot use frame order"

_SEED_KEYS = ("heldout_top1_pct", "heldout_per_class_top1_pct", "train_top1_pct", "steps", "train_seconds",
              "image_pretrain")
_SETTING_KEYS = ("max_steps", "batch_size", "lr", "weight_decay", "n_train", "n_test", "clip_shape",
                 "model_input_shape", "chance_pct")


def _expectation(temporal: bool) -> tuple[dict, str]:
    if temporal:
        return ({"heldout_top1_pct_min": f">= {MOTION_TEMPORAL_MIN:g}", "temporal": True},
                f"temporal: expected minimum over seeds >= {MOTION_TEMPORAL_MIN:g} %")
    return ({"heldout_top1_pct_max": f"<= {MOTION_STATIC_MAX:g}", "temporal": False},
            f"{CONTROL_LABEL}, expected maximum over seeds <= {MOTION_STATIC_MAX:g} %")


def _over_seeds(spec: ModelSpec, cfg: Any, seeds: tuple[int, ...], settings: dict, temporal: bool,
                log: Callable[[str], None] | None, image_cache: dict, label: str) -> dict:
    """Train ``cfg`` once per seed; per-seed figures, their mean / min / max and the verdict."""
    per_seed, last = [], {}
    for seed in seeds:
        if log:
            log(f"  {label}: seed {seed}")
        last = train_motion(spec, cfg, log=log, image_cache=image_cache, seed=seed, **settings)
        per_seed.append({"seed": seed, **{k: last[k] for k in _SEED_KEYS if k in last}})
    accs = [r["heldout_top1_pct"] for r in per_seed]
    lo, hi, mean = min(accs), max(accs), sum(accs) / len(accs)
    passed = lo >= MOTION_TEMPORAL_MIN if temporal else hi <= MOTION_STATIC_MAX
    return {"evidence": "training" if temporal else "control", "passed": passed, "seeds": list(seeds),
            "heldout_top1_pct_min": lo, "heldout_top1_pct_mean": mean, "heldout_top1_pct_max": hi,
            "per_seed": per_seed, **{k: last[k] for k in _SETTING_KEYS if k in last}}


def _seed_figures(m: dict) -> str:
    return " / ".join(f"{r['heldout_top1_pct']:.1f}" for r in m["per_seed"])


def check_motion(spec: ModelSpec, max_steps: int | None = None, log: Callable[[str], None] | None = None,
                 seeds: tuple[int, ...] | None = None) -> dict:
    """Motion check: tiny config (8 classes) trained on the synthetic motion dataset, once per seed.

    Training settings are :func:`train_motion`'s defaults updated by ``spec.motion`` (and
    ``max_steps`` when given). ``seeds`` (default ``spec.motion["seeds"]``, else
    :data:`DEFAULT_SEEDS`) are trained one after the other; every seed's held-out top-1 and
    per-class top-1 are recorded with their mean, minimum and maximum.  A temporal model passes
    when the minimum over seeds is >= :data:`MOTION_TEMPORAL_MIN` (evidence ``training``); an
    order-agnostic model is a control (evidence ``control``, "cannot use frame order") and passes
    when the maximum is <= :data:`MOTION_STATIC_MAX`.  Every variant in ``spec.motion_variants``
    (e.g. TimeSformer's space-only and joint attention) is trained the same way, with its own
    settings on top (a ``max_steps`` given here still wins), is judged on its own expectation,
    and records its own evidence kind; the check passes when the model and all variants do.

    Raises:
        ValueError: if no seed is given.
    """
    start = time.perf_counter()
    if spec.video_qa:
        return make_check("motion", "not-run", "a video LLM answers in words: motion questions are in video_qa",
                          reason="Stage 4 video LLMs are trained on the video QA task instead (check video_qa)")
    if spec.zero_shot is not None:
        return make_check("motion", "not-run", "a vision-language model: its training check is zero_shot",
                          reason="the model registers a zero_shot setting instead")
    cli = {} if max_steps is None else {"max_steps": max_steps}  # the command line wins over everything
    settings = {**spec.motion, **cli}
    seeds = tuple(seeds if seeds is not None else settings.pop("seeds", DEFAULT_SEEDS))
    settings.pop("seeds", None)
    if not seeds:
        raise ValueError(f"{spec.alias}: the motion check needs at least one seed")
    cfg = make_config(spec.alias, "tiny", num_classes=8)
    image_cache: dict = {}  # the image model a video model starts from is trained once per seed
    name = getattr(cfg, "attention", None) or getattr(cfg, "variant", None) or "tiny"
    m = _over_seeds(spec, cfg, seeds, settings, spec.temporal, log, image_cache, name)
    passed = m["model_passed"] = m.pop("passed")  # the model's own verdict; variants add theirs below
    evidence = m.pop("evidence")
    expected, rule = _expectation(spec.temporal)
    main_from = ", from a frame-trained image model" if "image_pretrain" in m["per_seed"][0] else ""
    parts = [f"min {m['heldout_top1_pct_min']:.1f} %, mean {m['heldout_top1_pct_mean']:.1f} % "
             f"(seeds {_seed_figures(m)} %{'; ' + name if spec.motion_variants else ''}{main_from})"]
    if spec.motion_variants:
        m["variants"], expected["variants"] = {}, {}
        for vname, (overrides, temporal, vsettings) in spec.motion_variants.items():
            vset = {**spec.motion, **vsettings, **cli}
            vset.pop("seeds", None)
            if log:
                log(f"  variant {vname}: {overrides} {vsettings or ''}")
            vm = _over_seeds(spec, dataclasses.replace(cfg, **overrides), seeds, vset, temporal, log, image_cache,
                             vname)
            passed = passed and vm["passed"]
            m["variants"][vname] = {"overrides": overrides, **vm}
            vexp, vrule = _expectation(temporal)
            expected["variants"][vname] = vexp
            start_from = ", from a frame-trained image model" if "image_pretrain" in vm["per_seed"][0] else ""
            parts.append(f"min {vm['heldout_top1_pct_min']:.1f} % (seeds {_seed_figures(vm)} %; {vname}{start_from}, "
                         f"{vrule})")
    total_s = sum(r["train_seconds"] for r in m["per_seed"])
    summary = (f"{', '.join(parts)} held-out top-1 on 8 motion classes (chance 12.5 %; {rule}); "
               f"{len(seeds)} seeds, {total_s:.0f} s of training on CPU for the main model")
    return make_check("motion", "passed" if passed else "failed", summary, m, expected,
                      seconds=time.perf_counter() - start, evidence=evidence)
