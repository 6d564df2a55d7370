"""Check ``video_qa``: a tiny video LLM trained end to end answers questions about clips in words.

The task is :mod:`videozoo.data.video_qa`: one coloured shape moving right, left, down or up;
questions about its direction, colour and shape, each answered with one word.  The model's
tiny config (vision tower, bridge, projector and LLM all small and randomly initialised) is
trained on the answers' tokens (cross-entropy, as the papers' instruction tuning) and then
answers held-out clips by greedy generation; the score is exact match of the generated words
with the true answer, per question kind.

The control is the same model trained and tested on clips that show one frame: a frame drawn
at random for each clip, repeated in every frame slot (so the model, its token count and its
prompt are unchanged; see :func:`one_frame` for why not a fixed frame).  It can still read colour and shape, but not the direction, which only the order
of frames tells (chance 25 %).

Three seeds (data, initialisation and batch order change with the seed); the model passes when
the *worst* seed reaches every ``expected_min_pct`` and the control's *best* seed stays at or
below every ``control_max_pct``, the figures the model file declares in ``video_qa=`` at
registration, before any run.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from videozoo.registry import ModelSpec, make_config
from videozoo.verify.common import clip_shape, make_check
from videozoo.verify.motion import _adamw_cosine

__all__ = ["VIDEO_QA_DEFAULTS", "train_video_qa", "check_video_qa", "one_frame"]

VIDEO_QA_DEFAULTS: dict[str, Any] = {
    "n_train_clips": 2000, "n_test_clips": 200, "max_steps": 1000, "batch_size": 16, "lr": 1e-3,
    "weight_decay": 0.05, "max_new_tokens": 4, "seeds": (0, 1, 2),
}
"""Training settings a model's ``video_qa=`` registration may override (same names)."""
_TRAIN_KEYS = ("n_train_clips", "n_test_clips", "max_steps", "batch_size", "lr", "weight_decay", "max_new_tokens")


def one_frame(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The control's view: ``(B, 3, T, H, W)`` -> one frame per clip, repeated ``T`` times (same shape).

    The frame is drawn uniformly at random for each clip.  A fixed frame (say the middle one)
    would leak the direction: a clip moving left is the clip moving right played backwards, so
    its frame ``k`` is the other's frame ``T - 1 - k``, one step further along the path when
    ``T`` is even.  A uniformly drawn frame has the same distribution for both directions.
    """
    B, _, T = clips.shape[:3]
    idx = torch.randint(0, T, (B,), generator=generator)
    return clips[torch.arange(B), :, idx].unsqueeze(2).expand_as(clips).contiguous()


def _video_input(spec: ModelSpec, cfg: Any, clips: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The model's video input for ``[0, 1]`` clips (the first element of ``clip_to_input``)."""
    with torch.no_grad():
        return torch.cat([spec.clip_to_input(cfg, clips[i:i + chunk])[0] for i in range(0, clips.shape[0], chunk)])


def train_video_qa(
    spec: ModelSpec,
    cfg: Any,
    seed: int = 0,
    control: bool = False,
    n_train_clips: int = 2000,
    n_test_clips: int = 200,
    max_steps: int = 1000,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    max_new_tokens: int = 4,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train ``cfg`` on the video QA task and return held-out exact-match accuracies.

    AdamW (no decay on parameters of ndim <= 1) with a 5 % linear warm-up and cosine decay over
    ``max_steps``; each step draws ``batch_size`` questions at random from the
    ``3 n_train_clips`` training questions.

    Args:
        spec: A Stage 4 model (its builder returns a :class:`videozoo.layers.video_llm.VideoLLM`
            and its ``clip_to_input`` gives the video input first).
        cfg: Its tiny config.
        seed: Seed of the data (train ``1000 + seed``, test ``2000 + seed``), the initialisation
            and the batch order.
        control: Train and test on :func:`one_frame` clips (frames drawn with seed ``3000 + seed``).

    Returns:
        ``heldout_exact_match_pct`` (all questions) and ``heldout_by_kind_pct`` (per kind), in %;
        ``train_loss`` (mean of the last 50 steps), ``steps``, ``train_seconds``, sizes, and a
        few ``examples`` (question, answer, truth).
    """
    from videozoo.data.video_qa import QUESTION_KINDS, make_video_qa
    from videozoo.layers.prompt import collate, encode_conversation

    _, T, H, W = clip_shape(cfg, spec)
    t0 = time.perf_counter()
    train = make_video_qa(n_train_clips, frames=T, size=H, seed=1000 + seed)
    test = make_video_qa(n_test_clips, frames=T, size=H, seed=2000 + seed)
    frame_gen = torch.Generator().manual_seed(3000 + seed)
    view = (lambda c: one_frame(c, frame_gen)) if control else (lambda c: c)
    train_video = _video_input(spec, cfg, view(train.clips))
    test_video = _video_input(spec, cfg, view(test.clips))
    torch.manual_seed(seed)
    model = spec.builder(cfg)
    seqs = [encode_conversation(model.tokenizer, model.template, q, model.num_video_tokens, answer=a)
            for q, a in zip(train.questions, train.answers)]
    data_s = time.perf_counter() - t0

    opt, sched = _adamw_cosine(model, lr, weight_decay, max_steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses: list[float] = []
    t_train = time.perf_counter()
    for step in range(max_steps):
        idx = torch.randint(0, len(seqs), (batch_size,), generator=gen)
        batch = collate([seqs[i] for i in idx.tolist()], model.tokenizer.pad_token_id)
        loss = model.loss(train_video[train.clip_index[idx]], **batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step + 1) % 250 == 0:
            log(f"  step {step + 1}: loss {sum(losses[-50:]) / len(losses[-50:]):.3f}")
    train_s = time.perf_counter() - t_train

    model.eval()
    predictions: list[str] = []
    for i in range(0, len(test), 150):
        sl = slice(i, i + 150)
        predictions += model.answer(test_video[test.clip_index[sl]], test.questions[sl], max_new_tokens=max_new_tokens)
    hits = [p == a for p, a in zip(predictions, test.answers)]
    by_kind = {k: 100.0 * sum(h for h, kk in zip(hits, test.kinds) if kk == k) / test.kinds.count(k)
               for k in QUESTION_KINDS}
    return {
        "heldout_exact_match_pct": 100.0 * sum(hits) / len(hits), "heldout_by_kind_pct": by_kind,
        "train_loss": sum(losses[-50:]) / len(losses[-50:]), "steps": max_steps, "batch_size": batch_size, "lr": lr,
        "n_train_questions": len(seqs), "n_test_questions": len(test), "clip_shape": [3, T, H, W],
        "video_tokens": model.num_video_tokens, "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_s, "data_seconds": data_s,
        "examples": [[q, p, a] for q, p, a in list(zip(test.questions, predictions, test.answers))[:6]],
    }


def _summarise(runs: list[dict]) -> dict:
    """Every seed's per-kind accuracy with the mean and the minimum over seeds."""
    kinds = runs[0]["heldout_by_kind_pct"].keys()
    per_kind = {k: [r["heldout_by_kind_pct"][k] for r in runs] for k in kinds}
    overall = [r["heldout_exact_match_pct"] for r in runs]
    return {
        "by_kind_per_seed_pct": per_kind, "by_kind_mean_pct": {k: sum(v) / len(v) for k, v in per_kind.items()},
        "by_kind_min_pct": {k: min(v) for k, v in per_kind.items()},
        "by_kind_max_pct": {k: max(v) for k, v in per_kind.items()},
        "exact_match_per_seed_pct": overall, "exact_match_mean_pct": sum(overall) / len(overall),
        "exact_match_min_pct": min(overall),
    }


def check_video_qa(spec: ModelSpec, log: Callable[[str], None] | None = None) -> dict:
    """Video QA check (see the module docstring); ``not-run`` for a model without ``video_qa`` settings."""
    from videozoo.data.video_qa import CHANCE_PCT

    start = time.perf_counter()
    if not spec.video_qa or spec.clip_to_input is None:
        return make_check("video_qa", "not-run", "not a video LLM: no video QA settings registered",
                          reason="the model registers no video_qa settings (Stage 4 video LLMs do)")
    settings = {**VIDEO_QA_DEFAULTS, **{k: v for k, v in spec.video_qa.items() if k in VIDEO_QA_DEFAULTS}}
    expected_min = dict(spec.video_qa.get("expected_min_pct", {}))
    control_max = dict(spec.video_qa.get("control_max_pct", {}))
    cfg = make_config(spec.alias, "tiny")
    train_kw = {k: settings[k] for k in _TRAIN_KEYS}
    runs, controls = [], []
    for seed in settings["seeds"]:
        for control, out in ((False, runs), (True, controls)):
            if log:
                log(f"  video QA seed {seed}{' (one-frame control)' if control else ''}")
            out.append(train_video_qa(spec, cfg, seed=seed, control=control, log=log, **train_kw))
            if log:
                log(f"  held-out exact match {out[-1]['heldout_exact_match_pct']:.1f} % "
                    f"{ {k: round(v, 1) for k, v in out[-1]['heldout_by_kind_pct'].items()} }")
    model_sum, control_sum = _summarise(runs), _summarise(controls)
    failures = [f"{k} {model_sum['by_kind_min_pct'][k]:.1f} % < {v:g} %" for k, v in expected_min.items()
                if model_sum["by_kind_min_pct"][k] < v]
    failures += [f"control {k} {control_sum['by_kind_max_pct'][k]:.1f} % > {v:g} %" for k, v in control_max.items()
                 if control_sum["by_kind_max_pct"][k] > v]
    keep = ("train_loss", "steps", "train_seconds", "examples")
    measured = {
        "model": model_sum, "control": control_sum, "chance_pct": CHANCE_PCT, "settings": {
            **train_kw, "seeds": list(settings["seeds"]), "clip_shape": runs[0]["clip_shape"],
            "video_tokens": runs[0]["video_tokens"], "params": runs[0]["params"],
            "n_train_questions": runs[0]["n_train_questions"], "n_test_questions": runs[0]["n_test_questions"]},
        "runs": [{"seed": s, **{k: r[k] for k in keep}} for s, r in zip(settings["seeds"], runs)],
        "control_runs": [{"seed": s, **{k: r[k] for k in keep}} for s, r in zip(settings["seeds"], controls)],
        "control_view": "one frame per clip, drawn uniformly at random, repeated in every frame slot",
    }
    expected = {"rule": "worst seed >= expected_min_pct per question kind; the one-frame control's best seed "
                        "<= control_max_pct", "expected_min_pct": expected_min, "control_max_pct": control_max}

    def fmt(s: dict) -> str:
        return ", ".join(f"{k} {s['by_kind_mean_pct'][k]:.1f} % (min {s['by_kind_min_pct'][k]:.1f})"
                         for k in s["by_kind_mean_pct"])

    summary = (f"held-out exact match over {len(runs)} seeds, mean (worst): {fmt(model_sum)}; one-frame control: "
               f"{fmt(control_sum)}; chance: direction {CHANCE_PCT['direction']:.0f} %, colour "
               f"{CHANCE_PCT['colour']:.0f} %, shape {CHANCE_PCT['shape']:.0f} %"
               + ("; " + "; ".join(failures) if failures else ""))
    return make_check("video_qa", "failed" if failures else "passed", summary, measured, expected,
                      seconds=time.perf_counter() - start, evidence="training")
