"""Check ``zero_shot``: captions of unseen (object, motion) pairs (Stage 3 vision-language models).

The task (:mod:`videozoo.data.captions`): clips of a coloured shape moving right, left, down
or up, captioned ``"a red square moving left"``; 64 classes in 32 opposite pairs whose clips
hold the same frames in reverse order.  As the papers start from released CLIP weights, the
tiny config of the model starts from a tiny CLIP pre-trained contrastively on captioned single
frames (``"a red square in the top left"``, :func:`pretrain_clip`: objects and places, never a
direction), one pre-training per seed shared by the model and its control.  It is then trained
with its contrastive loss (``model.contrastive_loss(video, text)``, CLIP's symmetric InfoNCE
unless the model adds its own terms) on fresh clips of the 48 seen classes, ``batch_size``
distinct classes per step (so no two pairs of a batch share a caption).  It is then asked to
classify clips of the 16 held-out classes (8 opposite pairs, never seen in training) against
the captions of all 64 classes, by ``model(video, text)`` logits.

The held-out test set consists of *twins*: every clip is there together with its exact time
reversal, which belongs to the opposite class.  A model that cannot see the order of frames
(CLIP averaging its frame embeddings) gives both twins the same scores, so at most one twin of
each pair can be right: its held-out top-1 cannot exceed 50 % and its direction accuracy is
50 %, by construction.

Measured, per seed (3 seeds; the model's registration declares the rules, checked on the worst
seed, before the runs):

``heldout_top1_pct``
    Held-out clips, 64-way over all captions (generalised zero-shot); chance 1/64.
``heldout_only_top1_pct``
    Held-out clips, 16-way over the held-out captions only (conventional zero-shot).
``direction_top1_pct``
    Held-out clips: the true caption scores above the caption of the same object moving the
    opposite way (direction alone); chance 50 %.
``object_top1_pct``
    Held-out clips: the 64-way prediction names the right shape and colour; chance 1/16.
``motion_top1_pct``
    Held-out clips: the 64-way prediction names the right direction; chance 1/4.
``same_prediction_reversed_pct``
    Twin pairs whose two clips receive the same 64-way prediction (100 % for an
    order-agnostic model).
``seen_top1_pct``
    Fresh clips of the 48 seen classes, 64-way.
``seen_direction_top1_pct``
    Fresh clips of the seen classes: the true caption above the opposite direction's (did the
    model learn direction at all on the pairs it was trained on?).

A model's ``zero_shot`` registration setting (:class:`videozoo.registry.ModelSpec`) holds
``expect`` (``{"heldout_top1_pct": ">= 60"}``: for ``>=`` the minimum over seeds must meet it,
for ``<=`` the maximum), ``role`` (``"model"`` or ``"control"``), optionally ``control`` (a
registered model trained with its own settings on the same seeds beside it, e.g. ``"clip"``,
whose own rules must hold too), ``config`` (fields replaced in the tiny config) and training
settings replacing :func:`train_zero_shot`'s defaults.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import torch
from torch import nn

from videozoo.registry import ModelSpec, get_spec, make_config
from videozoo.verify.common import make_check

ZERO_SHOT_SEEDS = (0, 1, 2)
_RESERVED = ("expect", "role", "control", "config", "rationale")
_METRICS = ("heldout_top1_pct", "heldout_only_top1_pct", "direction_top1_pct", "object_top1_pct",
            "motion_top1_pct", "same_prediction_reversed_pct", "seen_top1_pct", "seen_direction_top1_pct")


def _video_input(spec: ModelSpec, cfg: Any, clips: torch.Tensor) -> torch.Tensor:
    """The model's video input for standard clips: ``clip_to_input(cfg, clips)[0]`` (the
    captions it would add are replaced by the task's), or the clips themselves."""
    if spec.clip_to_input is None:
        return clips
    with torch.no_grad():
        out = spec.clip_to_input(cfg, clips)
    return out[0] if isinstance(out, (tuple, list)) else out


def _adamw_cosine(model: nn.Module, lr: float, weight_decay: float, steps: int):
    from videozoo.verify.motion import _adamw_cosine as make

    return make(model, lr, weight_decay, steps)


@torch.no_grad()
def _logits(model: nn.Module, video: torch.Tensor, text: torch.Tensor, chunk: int = 100) -> torch.Tensor:
    return torch.cat([model(video[i:i + chunk], text) for i in range(0, video.shape[0], chunk)])


def clip_config_of(cfg: Any) -> Any:
    """The CLIP config inside a Stage 3 model's config: ``cfg.clip_config()`` when the config
    defines it, else ``cfg`` itself (CLIP's own config, or a subclass of it)."""
    return cfg.clip_config() if hasattr(cfg, "clip_config") else cfg


def pretrain_clip(
    clip_cfg: Any,
    seed: int = 0,
    steps: int = 3000,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    n_test_per_class: int = 5,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, dict]:
    """CLIP pre-trained contrastively on captioned single frames, the stand-in for the
    image-text pre-training every Stage 3 model starts from (CLIP, arXiv 2103.00020, Sec. 2).

    Frames of the task's objects anywhere in a 3 x 3 grid, captioned
    ``"a red square in the top left"`` (:func:`videozoo.data.captions.make_caption_frames`),
    ``batch_size`` distinct captions of the 144 per step, one fresh frame each.  A single frame
    holds no motion, so this teaches objects and where they are, never a direction.

    Args:
        clip_cfg: The registered ``clip`` model's config to train.
        steps: AdamW steps (5 % warm-up, cosine decay).

    Returns:
        ``(state_dict, metrics)``: the CLIP weights and the 144-way top-1 on fresh frames
        (object and cell), object-only and cell-only top-1 (%), steps and seconds.
    """
    from videozoo.data.captions import FRAME_CLASSES, frame_captions, make_caption_frames
    from videozoo.data.tokenizer import tokenize

    n_classes = len(FRAME_CLASSES)
    if not 2 <= batch_size <= n_classes or steps < 1:
        raise ValueError(f"need 2 <= batch_size <= {n_classes} and steps >= 1, got {batch_size}, {steps}")
    spec = get_spec("clip")
    size = clip_cfg.image_size
    text = tokenize(frame_captions(), context_length=clip_cfg.context_length)

    def images(frames: torch.Tensor) -> torch.Tensor:   # the model's input for one-frame clips
        return _video_input(spec, clip_cfg, frames[:, :, None])[:, :, 0]

    torch.manual_seed(seed)
    model = spec.builder(clip_cfg)
    opt, sched = _adamw_cosine(model, lr, weight_decay, steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    recent: list[float] = []
    for step in range(steps):
        labels = torch.randperm(n_classes, generator=gen)[:batch_size]
        frames = make_caption_frames(labels, size=size, seed=3_000_000 * (seed + 1) + step)
        loss = model.contrastive_loss(images(frames), text[labels])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = (recent + [loss.item()])[-50:]
        if log and (step + 1) % 500 == 0:
            log(f"  seed {seed} CLIP pre-training step {step + 1}: contrastive loss {sum(recent) / len(recent):.3f}")
    model.eval()
    y = torch.arange(n_classes).repeat_interleave(n_test_per_class)
    pred = _logits(model, images(make_caption_frames(y, size=size, seed=30_000 + seed)), text).argmax(1)
    metrics = {
        "task": "single frames captioned 'a {colour} {shape} in the {row} {column}', 144 captions",
        "top1_pct": 100.0 * float((pred == y).float().mean()),
        "object_top1_pct": 100.0 * float((pred // 9 == y // 9).float().mean()),
        "cell_top1_pct": 100.0 * float((pred % 9 == y % 9).float().mean()),
        "final_loss": sum(recent) / len(recent), "steps": steps, "batch_size": batch_size, "lr": lr,
        "train_seconds": time.perf_counter() - t0,
    }
    if log:
        log(f"  seed {seed} CLIP pre-training: {metrics['top1_pct']:.1f} % top-1 on fresh frames "
            f"(object {metrics['object_top1_pct']:.1f} %, cell {metrics['cell_top1_pct']:.1f} %)")
    return model.state_dict(), metrics


def _init_from_clip(model: nn.Module, state_dict: dict) -> int:
    """Load pre-trained CLIP weights into a Stage 3 model: ``model.load_clip_state_dict(sd)``
    when it defines it, else ``load_state_dict(sd, strict=False)`` (a CLIP subclass); returns
    the number of the model's own parameter tensors left at their initialisation.

    Raises:
        ValueError: if weights of the CLIP find no place in the model.
    """
    if hasattr(model, "load_clip_state_dict"):
        return int(model.load_clip_state_dict(state_dict) or 0)
    result = model.load_state_dict(state_dict, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{type(model).__name__} has no place for CLIP weights {result.unexpected_keys[:5]}; "
                         "define load_clip_state_dict(state_dict)")
    return len(result.missing_keys)


def train_zero_shot(
    spec: ModelSpec,
    cfg: Any,
    seed: int = 0,
    steps: int = 1500,
    batch_size: int = 32,
    lr: float = 5e-4,
    weight_decay: float = 0.1,
    clip_pretrain_steps: int = 3000,
    clip_pretrain_lr: float = 1e-3,
    clip_pretrain_batch_size: int = 64,
    n_twins: int = 25,
    n_seen_test: int = 5,
    log: Callable[[str], None] | None = None,
    pretrain_cache: dict | None = None,
) -> dict:
    """Train ``cfg`` contrastively on the seen classes; measure the zero-shot figures on one seed.

    With ``clip_pretrain_steps > 0`` the model starts, as Stage 3 papers start from released
    CLIP weights, from a CLIP pre-trained that many steps on captioned single frames
    (:func:`pretrain_clip`; its figures are returned under ``clip_pretrain``); pass the same
    ``pretrain_cache`` to several calls (a model and its control) to pre-train once per CLIP
    config, schedule and seed, so both start from the same weights.

    Args:
        spec: A Stage 3 model: ``model(video, text) -> (B, N)`` logits and
            ``model.contrastive_loss(video, text)`` for ``B`` matched pairs.
        cfg: Its (tiny) config; ``clip_shape()`` gives ``(3, T, H, W)``, ``context_length`` the
            caption length.
        seed: Seeds the model, the class sampling and the rendered clips.
        steps: AdamW steps on clips (5 % warm-up, cosine decay).
        batch_size: Distinct seen classes per step, one fresh clip each (<= 48).
        n_twins: Twin pairs per held-out opposite pair (8 pairs: ``16 n_twins`` test clips).
        n_seen_test: Test clips per seen class.

    Returns:
        The figures of the module docstring (%, per seed), the final training loss, the
        temperature, sizes and seconds.

    Raises:
        ValueError: ``batch_size`` outside ``[2, 48]`` or ``steps < 1``.
    """
    from videozoo.data.captions import CLASSES, class_captions, heldout_classes, make_caption_clips, seen_classes
    from videozoo.data.tokenizer import tokenize

    seen, held = torch.tensor(seen_classes()), torch.tensor(heldout_classes())
    if not 2 <= batch_size <= len(seen) or steps < 1:
        raise ValueError(f"need 2 <= batch_size <= {len(seen)} and steps >= 1, got {batch_size}, {steps}")
    _, T, H, W = cfg.clip_shape()
    size = max(H, W)
    text = tokenize(class_captions(), context_length=cfg.context_length)        # (64, L)
    pretrained = None
    if clip_pretrain_steps > 0:
        clip_cfg = clip_config_of(cfg)
        key = (repr(clip_cfg), clip_pretrain_steps, clip_pretrain_lr, clip_pretrain_batch_size, seed)
        if pretrain_cache is not None and key in pretrain_cache:
            pretrained = pretrain_cache[key]
        else:
            pretrained = pretrain_clip(clip_cfg, seed=seed, steps=clip_pretrain_steps, lr=clip_pretrain_lr,
                                       batch_size=clip_pretrain_batch_size, log=log)
            if pretrain_cache is not None:
                pretrain_cache[key] = pretrained
    torch.manual_seed(seed)
    model = spec.builder(cfg)
    new_tensors = _init_from_clip(model, pretrained[0]) if pretrained is not None else None
    opt, sched = _adamw_cosine(model, lr, weight_decay, steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    recent: list[float] = []
    for step in range(steps):
        labels = seen[torch.randperm(len(seen), generator=gen)[:batch_size]]
        clips = make_caption_clips(labels, frames=T, size=size, seed=1_000_000 * (seed + 1) + step)
        loss = model.contrastive_loss(_video_input(spec, cfg, clips[..., :H, :W]), text[labels])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        recent = (recent + [loss.item()])[-50:]
        if log and (step + 1) % 250 == 0:
            log(f"  seed {seed} step {step + 1}: contrastive loss {sum(recent) / len(recent):.3f}")
    train_s = time.perf_counter() - t0

    model.eval()
    forward = held[held % 2 == 0].repeat_interleave(n_twins)                    # right / down classes
    fwd_clips = make_caption_clips(forward, frames=T, size=size, seed=10_000 + seed)
    test_y = torch.cat([forward, forward ^ 1])
    test_video = _video_input(spec, cfg, torch.cat([fwd_clips, fwd_clips.flip(2)])[..., :H, :W])
    logits = _logits(model, test_video, text)                                 # (16 n_twins, 64)
    pred = logits.argmax(1)
    only = held[logits[:, held].argmax(1)]
    n = forward.numel()
    rows = torch.arange(len(test_y))
    seen_y = seen.repeat_interleave(n_seen_test)
    seen_video = _video_input(spec, cfg, make_caption_clips(seen_y, frames=T, size=size, seed=20_000 + seed)[..., :H, :W])
    seen_logits = _logits(model, seen_video, text)
    seen_pred = seen_logits.argmax(1)
    seen_rows = torch.arange(len(seen_y))

    def pct(x: torch.Tensor) -> float:
        return 100.0 * float(x.float().mean())

    per_class = {CLASSES[c].caption: pct((pred == test_y)[test_y == c]) for c in held.tolist()}
    return {
        "heldout_top1_pct": pct(pred == test_y),
        "heldout_only_top1_pct": pct(only == test_y),
        "direction_top1_pct": pct(logits[rows, test_y] > logits[rows, test_y ^ 1]),
        "object_top1_pct": pct(pred // 4 == test_y // 4),
        "motion_top1_pct": pct(pred % 4 == test_y % 4),
        "same_prediction_reversed_pct": pct(pred[:n] == pred[n:]),
        "seen_top1_pct": pct(seen_pred == seen_y),
        "seen_direction_top1_pct": pct(seen_logits[seen_rows, seen_y] > seen_logits[seen_rows, seen_y ^ 1]),
        "heldout_per_class_top1_pct": per_class,
        "final_loss": sum(recent) / len(recent),
        "temperature_scale": float(model.temperature_scale().detach()) if hasattr(model, "temperature_scale") else None,
        "steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "n_heldout_test": len(test_y), "n_seen_test": len(seen_y), "clip_shape": [3, T, H, W],
        "train_seconds": train_s, "seed": seed,
        **({} if pretrained is None else {"clip_pretrain": pretrained[1], "tensors_not_from_clip": new_tensors}),
    }


def _rule(expr: str) -> tuple[str, float]:
    op, value = expr.split()
    if op not in (">=", "<="):
        raise ValueError(f"zero-shot rule {expr!r}: the operator must be >= or <=")
    return op, float(value)


def _run_seeds(spec: ModelSpec, seeds: tuple[int, ...], log: Callable[[str], None] | None,
               pretrain_cache: dict | None = None) -> dict:
    """Train ``spec`` on every seed: for each figure of :data:`_METRICS` its ``per_seed`` values,
    ``mean``, ``min`` and ``max`` (a key of the returned dict named after the figure), the
    verdict of each declared rule, and the per-seed runs."""
    settings = {k: v for k, v in spec.zero_shot.items() if k not in _RESERVED}
    expect = dict(spec.zero_shot.get("expect", {}))
    for metric, expr in expect.items():  # a typo must fail loudly, before hours of training
        if metric not in _METRICS:
            raise ValueError(f"{spec.alias}: zero_shot expects unknown figure {metric!r}; known: {', '.join(_METRICS)}")
        _rule(expr)
    cfg = make_config(spec.alias, "tiny", **spec.zero_shot.get("config", {}))
    runs = []
    for seed in seeds:
        if log:
            log(f"  {spec.alias} zero-shot, seed {seed}")
        runs.append(train_zero_shot(spec, cfg, seed=seed, log=log, pretrain_cache=pretrain_cache, **settings))
        if log:
            log("  " + ", ".join(f"{m} {runs[-1][m]:.1f}" for m in _METRICS))
    summary = {m: {"per_seed": [r[m] for r in runs], "mean": sum(r[m] for r in runs) / len(runs),
                   "min": min(r[m] for r in runs), "max": max(r[m] for r in runs)} for m in _METRICS}
    verdicts = {}
    for metric, expr in expect.items():
        op, value = _rule(expr)
        worst = summary[metric]["min"] if op == ">=" else summary[metric]["max"]
        verdicts[metric] = {"rule": expr, "worst_seed": worst, "passed": worst >= value if op == ">=" else worst <= value}
    return {"role": spec.zero_shot.get("role", "model"), **summary, "verdicts": verdicts,
            "passed": all(v["passed"] for v in verdicts.values()), "seeds": list(seeds), "runs": runs,
            "config": dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else repr(cfg),
            "settings": settings}


def check_zero_shot(spec: ModelSpec, seeds: tuple[int, ...] = ZERO_SHOT_SEEDS,
                    log: Callable[[str], None] | None = None) -> dict:
    """The zero-shot check of a Stage 3 model (and of its control, when it names one).

    ``not-run`` for models without a ``zero_shot`` setting.  Passes when every declared rule
    holds on the worst seed, for the model and for its control.
    """
    start = time.perf_counter()
    if spec.zero_shot is None:
        return make_check("zero_shot", "not-run", "no zero-shot setting: not a vision-language model",
                          reason="the model registers no zero_shot setting")
    cache: dict = {}  # the model and its control start from the same pre-trained CLIP per seed
    result = _run_seeds(spec, seeds, log, cache)
    measured: dict[str, Any] = {"model": result, "chance_pct": {
        "heldout_top1_pct": 100 / 64, "heldout_only_top1_pct": 100 / 16, "direction_top1_pct": 50.0,
        "object_top1_pct": 100 / 16, "motion_top1_pct": 25.0}}
    expected: dict[str, Any] = {"model": {m: v["rule"] for m, v in result["verdicts"].items()}}
    if "rationale" in spec.zero_shot:
        expected["rationale"] = spec.zero_shot["rationale"]
    passed = result["passed"]
    control_name = spec.zero_shot.get("control")
    if control_name:
        control = get_spec(control_name)
        if control.zero_shot is None:
            raise ValueError(f"{spec.alias}: zero-shot control {control_name!r} has no zero_shot setting")
        measured["control"] = {"name": control.alias, **_run_seeds(control, seeds, log, cache)}
        expected["control"] = {m: v["rule"] for m, v in measured["control"]["verdicts"].items()}
        passed = passed and measured["control"]["passed"]

    def line(name: str, r: dict) -> str:
        f = r
        return (f"{name}: held-out top-1 {f['heldout_top1_pct']['mean']:.1f} % (worst seed "
                f"{f['heldout_top1_pct']['min']:.1f}), direction {f['direction_top1_pct']['mean']:.1f} %, "
                f"object {f['object_top1_pct']['mean']:.1f} %")

    failed = [f"{m} {v['worst_seed']:.1f} (rule {v['rule']})" for m, v in result["verdicts"].items() if not v["passed"]]
    parts = [line(spec.alias + (" (frame-averaging control)" if result["role"] == "control" else ""), result)]
    if "control" in measured:
        parts.append(line(f"control {measured['control']['name']}", measured["control"]))
    summary = (f"{'; '.join(parts)} over seeds {', '.join(map(str, seeds))}: 16 held-out (object, direction) "
               f"classes vs all 64 captions (chance 1.6 %; direction chance 50 %)"
               + (f"; failed: {', '.join(failed)}" if failed else ""))
    return make_check("zero_shot", "passed" if passed else "failed", summary, measured, expected,
                      seconds=time.perf_counter() - start)
