"""Check ``memory``: a Stage 4 model's memory keeps what a long video showed, at a bounded cost.

Two kinds, chosen by the model's registration (``register_model(memory={"kind": ...})``, with
the expected figures declared there before any run):

``long_video`` (MovieChat)
    The tiny model is trained end to end, through its memory, on short videos
    (:class:`videozoo.data.long_video.EarlyEvidenceVideo`, 24 frames) whose only object is
    visible in the first 1-3 frames, to answer its colour and shape.  It is then shown videos of
    1,000 and 10,000 frames, rendered frame by frame and streamed (64 frames encoded at a time,
    never the whole video), whose object is visible only in the first 5 %, and asked the same
    questions.  The
    control is the same model shown only the last window of each video (what a model without a
    long-term memory keeps): it should be at chance (colour 25 %, shape 33 %).  Memory: the
    first test video of each length is streamed in a fresh subprocess that reports its resident
    set size (``/proc/self/statm``, sampled after every window, and ``ru_maxrss`` from
    :func:`resource.getrusage`) from the start of the stream, after a short warm-up video, to
    its end; the growth must stay under ``peak_rss_growth_max_mib`` at both lengths.  The
    memory's own size (frames held, bytes) is recorded too.  Three seeds (data, initialisation,
    batch order); pass when the worst seed reaches every ``expected_min_pct``, the control's best
    seed stays at or below every ``control_max_pct`` and the memory bound holds.
``object_counting`` (VideoAgent)
    The tiny model (random weights: counting does not depend on them) builds the memory of
    synthetic videos (:class:`videozoo.data.long_video.CountingVideo`, 6 segments of 8 frames,
    objects that leave and come back) into SQLite files, and its tools, driven by the
    deterministic :class:`videozoo.models.videoagent.RuleController`, answer ``"how many <colour>
    <shape>s appear?"`` for every colour and shape.  Exact match is expected at 100 %.  The
    control builds the memory without re-identification (every track an object, the release's
    ``use_reid=False``): it overcounts objects that come back.  Restart: a fresh subprocess
    reopens every file and answers again, without the model; its answers must be the same.
    Three seeds of 10 videos each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from videozoo.registry import ModelSpec, make_config
from videozoo.verify.common import make_check

__all__ = ["MEMORY_DEFAULTS", "check_memory", "train_long_video", "main"]

MEMORY_DEFAULTS: dict[str, Any] = {
    "seeds": (0, 1, 2),
    # long_video
    "train_frames": 24, "evidence_frames": (1, 3), "max_steps": 400, "batch_size": 12, "lr": 1e-3,
    "weight_decay": 0.05, "test_lengths": (1000, 10000), "test_videos": {"1000": 8, "10000": 2},
    "evidence_frac": 0.05, "max_new_tokens": 4,
    # object_counting
    "videos_per_seed": 10, "num_segments": 6, "segment_frames": 8, "frame_size": 64,
}
"""Settings a model's ``memory=`` registration may override (same names)."""

_LOG = Callable[[str], None] | None
ENCODE_FRAMES = 64
"""Frames encoded per call while streaming a long video.  The memory takes them one by one (the
grouping changes nothing but speed, and bounds what is held at once)."""


def _rss_mib() -> float:
    """Current resident set size of this process, MiB (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB (``ru_maxrss``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- long_video (MovieChat)


def _training_batch(model: Any, cfg: Any, settings: dict, gen: torch.Generator, step: int, seed: int) -> dict:
    from videozoo.data.long_video import EarlyEvidenceVideo
    from videozoo.layers.vision import normalise_frames

    T, (lo, hi) = settings["train_frames"], settings["evidence_frames"]
    clips, questions, answers = [], [], []
    for i in range(settings["batch_size"]):
        e = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        video = EarlyEvidenceVideo(T, evidence_frac=e / T, size=cfg.vision.image_size,
                                   seed=1_000_000 * (seed + 1) + step * settings["batch_size"] + i)
        kind, q, a = video.qa()[int(torch.randint(0, 2, (1,), generator=gen))]
        clips.append(video.clip())
        questions.append(q)
        answers.append(a)
    video = normalise_frames(torch.stack(clips), cfg.vision.image_size)
    return {"video": video, **model.prompt(questions, answers=answers)}


def train_long_video(spec: ModelSpec, cfg: Any, seed: int, settings: dict, log: _LOG = None) -> tuple[Any, dict]:
    """Train the tiny model on early-evidence videos; returns ``(model, training record)``."""
    from videozoo.verify.motion import _adamw_cosine

    torch.manual_seed(seed)
    model = spec.builder(cfg)
    opt, sched = _adamw_cosine(model, settings["lr"], settings["weight_decay"], settings["max_steps"])
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(settings["max_steps"]):
        batch = _training_batch(model, cfg, settings, gen, step, seed)
        loss = model.loss(batch["video"], batch["input_ids"], batch["attention_mask"], batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step + 1) % 100 == 0:
            log(f"  step {step + 1}: loss {sum(losses[-50:]) / len(losses[-50:]):.3f}")
    model.eval()
    return model, {"train_loss": sum(losses[-50:]) / len(losses[-50:]), "steps": settings["max_steps"],
                   "train_seconds": time.perf_counter() - t0}


def _stream_answers(model: Any, cfg: Any, video: Any, last_window_only: bool = False) -> dict:
    """Stream ``video`` window by window and answer its questions; ``{kind: (answer, truth)}``."""
    from videozoo.models.moviechat import windows_of

    frames = iter(video) if not last_window_only else (video.frame(t) for t in range(
        max(len(video) - cfg.window_frames, 0), len(video)))
    qa = video.qa()
    answers = model.answer_stream(windows_of(frames, ENCODE_FRAMES, cfg.vision.image_size),
                                  [q for _, q, _ in qa], max_new_tokens=4)
    return {kind: (ans, truth) for (kind, _, truth), ans in zip(qa, answers)}


def _probe(weights: str, frames: int, seed: int, evidence_frac: float) -> dict:
    """In a fresh process: stream one long video after a warm-up, reporting memory (see module docstring)."""
    from videozoo.data.long_video import EarlyEvidenceVideo
    from videozoo.models.moviechat import windows_of
    from videozoo.registry import get_spec

    spec = get_spec("moviechat")
    cfg = make_config("moviechat", "tiny")
    model = spec.builder(cfg)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    warm = EarlyEvidenceVideo(64, evidence_frac=0.05, size=cfg.vision.image_size, seed=seed + 77)
    _stream_answers(model, cfg, warm)
    video = EarlyEvidenceVideo(frames, evidence_frac=evidence_frac, size=cfg.vision.image_size, seed=seed)
    rss0, max0 = _rss_mib(), _maxrss_mib()
    peak = rss0
    memory = model.new_memory()

    def windows():
        nonlocal peak
        for w in windows_of(iter(video), ENCODE_FRAMES, cfg.vision.image_size):
            yield w
            peak = max(peak, _rss_mib())

    t0 = time.perf_counter()
    with torch.no_grad():
        memory, current = model.stream(windows(), memory)
        memory.flush()
        tokens = model.read_memory(memory.read("global")[None])
    qa = video.qa()
    batch = model.prompt([q for _, q, _ in qa], padding_side="left")
    from videozoo.layers.generation import greedy_generate
    from videozoo.layers.prompt import splice_video_embeds

    with torch.no_grad():
        embeds = splice_video_embeds(model.llm.get_input_embeddings()(batch["input_ids"]),
                                     batch["input_ids"] == model.video_token_id, tokens.expand(len(qa), -1, -1))
        out = greedy_generate(model.llm, embeds, batch["attention_mask"], 4, model.stop_token_ids,
                              model.tokenizer.pad_token_id)
    answers = model.decode_answers(out)
    return {
        "frames": frames, "stream_seconds": time.perf_counter() - t0, "rss_start_mib": rss0,
        "rss_peak_sampled_mib": max(peak, _rss_mib()), "rss_growth_mib": max(peak, _rss_mib()) - rss0,
        "ru_maxrss_before_mib": max0, "ru_maxrss_after_mib": _maxrss_mib(),
        "ru_maxrss_growth_mib": _maxrss_mib() - max0, "long_memory_frames": int(memory.long.shape[0]),
        "memory_bytes": memory.nbytes(),
        "answers": {kind: [ans, truth] for (kind, _, truth), ans in zip(qa, answers)},
    }


def _subprocess(args: list[str]) -> Any:
    """Run ``python -m videozoo.verify.memory ARGS`` in a fresh interpreter (this checkout's videozoo) and
    return its last stdout line as JSON."""
    import videozoo

    root = str(Path(videozoo.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-m", "videozoo.verify.memory", *args], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise RuntimeError(f"videozoo.verify.memory {args[0]} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_probe(weights: str, frames: int, seed: int, evidence_frac: float) -> dict:
    return _subprocess(["probe-moviechat", "--weights", weights, "--frames", str(frames), "--seed", str(seed),
                        "--evidence-frac", str(evidence_frac)])


def _check_long_video(spec: ModelSpec, settings: dict, log: _LOG) -> dict:
    from videozoo.data.long_video import EarlyEvidenceVideo

    start = time.perf_counter()
    cfg = make_config(spec.alias, "tiny")
    expected_min = dict(spec.memory.get("expected_min_pct", {}))
    control_max = dict(spec.memory.get("control_max_pct", {}))
    growth_max = float(spec.memory.get("peak_rss_growth_max_mib", 16.0))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in settings["seeds"]:
            if log:
                log(f"  memory (long video) seed {seed}: training")
            model, record = train_long_video(spec, cfg, seed, settings, log)
            weights = os.path.join(tmp, f"moviechat_{seed}.pt")
            torch.save(model.state_dict(), weights)
            per_length = {}
            for length in settings["test_lengths"]:
                hits = {"colour": [], "shape": []}
                control = {"colour": [], "shape": []}
                n = int(settings["test_videos"][str(length)])
                probe = None
                for k in range(n):
                    vseed = 7_000_000 + 1000 * seed + k
                    if k == 0:   # the first video is streamed in a fresh process that measures memory
                        probe = _run_probe(weights, length, vseed, settings["evidence_frac"])
                        got = {kind: tuple(v) for kind, v in probe["answers"].items()}
                    else:
                        video = EarlyEvidenceVideo(length, settings["evidence_frac"], cfg.vision.image_size, vseed)
                        got = _stream_answers(model, cfg, video)
                    video = EarlyEvidenceVideo(length, settings["evidence_frac"], cfg.vision.image_size, vseed)
                    ctl = _stream_answers(model, cfg, video, last_window_only=True)
                    for kind in hits:
                        hits[kind].append(got[kind][0] == got[kind][1])
                        control[kind].append(ctl[kind][0] == ctl[kind][1])
                per_length[str(length)] = {
                    "videos": n, "evidence_frames": max(1, round(settings["evidence_frac"] * length)),
                    "exact_match_pct": {k: 100.0 * sum(v) / len(v) for k, v in hits.items()},
                    "control_exact_match_pct": {k: 100.0 * sum(v) / len(v) for k, v in control.items()},
                    "memory_probe": {k: v for k, v in probe.items() if k != "answers"},
                }
                if log:
                    log(f"  seed {seed}, {length} frames: {per_length[str(length)]['exact_match_pct']}, control "
                        f"{per_length[str(length)]['control_exact_match_pct']}, RSS growth "
                        f"{probe['rss_growth_mib']:.1f} MiB (ru_maxrss {probe['ru_maxrss_growth_mib']:.1f} MiB)")
            runs.append({"seed": seed, **record, "by_length": per_length})

    lengths = [str(n) for n in settings["test_lengths"]]
    kinds = ("colour", "shape")
    worst = {k: min(r["by_length"][n]["exact_match_pct"][k] for r in runs for n in lengths) for k in kinds}
    ctl_best = {k: max(r["by_length"][n]["control_exact_match_pct"][k] for r in runs for n in lengths) for k in kinds}
    growth = {n: max(r["by_length"][n]["memory_probe"]["rss_growth_mib"] for r in runs) for n in lengths}
    maxrss_growth = {n: max(r["by_length"][n]["memory_probe"]["ru_maxrss_growth_mib"] for r in runs) for n in lengths}
    held = {n: max(r["by_length"][n]["memory_probe"]["long_memory_frames"] for r in runs) for n in lengths}
    failures = [f"{k} {worst[k]:.1f} % < {v:g} %" for k, v in expected_min.items() if worst[k] < v]
    failures += [f"control {k} {ctl_best[k]:.1f} % > {v:g} %" for k, v in control_max.items() if ctl_best[k] > v]
    failures += [f"RSS grew {max(growth[n], maxrss_growth[n]):.1f} MiB at {n} frames > {growth_max:g} MiB"
                 for n in lengths if max(growth[n], maxrss_growth[n]) > growth_max]
    failures += [f"long-term memory held {held[n]} frames > {cfg.long_memory_length}" for n in lengths
                 if held[n] > cfg.long_memory_length]
    measured = {
        "worst_seed_exact_match_pct": worst, "control_best_seed_exact_match_pct": ctl_best,
        "rss_growth_mib_worst_seed": growth, "ru_maxrss_growth_mib_worst_seed": maxrss_growth,
        "long_memory_frames": held, "chance_pct": {"colour": 25.0, "shape": 100.0 / 3},
        "runs": runs, "settings": {k: settings[k] for k in (
            "seeds", "train_frames", "evidence_frames", "max_steps", "batch_size", "lr", "weight_decay",
            "test_lengths", "test_videos", "evidence_frac")},
        "memory_measure": ("resident set size of a fresh subprocess from the start of the stream (after a 64-frame "
                           "warm-up video) to its end: /proc/self/statm sampled after every window, and ru_maxrss"),
        "control_view": "the same model shown only the last window of each video",
    }
    expected = {"rule": "worst seed >= expected_min_pct at every length; the last-window control's best seed <= "
                        "control_max_pct; RSS growth <= peak_rss_growth_max_mib at every length",
                "expected_min_pct": expected_min, "control_max_pct": control_max,
                "peak_rss_growth_max_mib": growth_max}
    summary = (f"evidence in the first 5 % of {' and '.join(f'{int(n):,}' for n in lengths)}-frame videos, "
               f"{len(runs)} seeds, worst seed: colour {worst['colour']:.0f} %, shape {worst['shape']:.0f} %; "
               f"last-window control (best seed): colour {ctl_best['colour']:.0f} %, shape {ctl_best['shape']:.0f} % "
               f"(chance 25 / 33 %); RSS growth while streaming "
               + ", ".join(f"{int(n):,} frames {max(growth[n], maxrss_growth[n]):.1f} MiB" for n in lengths)
               + f", long-term memory {max(held.values())} frames"
               + ("; " + "; ".join(failures) if failures else ""))
    return make_check("memory", "failed" if failures else "passed", summary, measured, expected,
                      seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- object_counting (VideoAgent)


def _answer_counts(files: list[str], questions: list[list[str]]) -> list[list[str | None]]:
    """Reopen memory files (no model) and answer counting questions with the rule controller."""
    from videozoo.models.videoagent import AgentMemory, RuleController, VideoAgentTools, run_agent

    out = []
    for path, qs in zip(files, questions):
        tools = VideoAgentTools(AgentMemory(path))
        out.append([run_agent(q, tools, RuleController()).answer for q in qs])
    return out


def _check_object_counting(spec: ModelSpec, settings: dict, log: _LOG) -> dict:
    from videozoo.data.long_video import CountingVideo
    from videozoo.models.videoagent import RuleController, VideoAgentTools, run_agent

    start = time.perf_counter()
    cfg = make_config(spec.alias, "tiny")
    expected_exact = float(spec.memory.get("expected_exact_pct", 100.0))
    control_max = float(spec.memory.get("control_max_pct", 80.0))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in settings["seeds"]:
            torch.manual_seed(seed)
            model = spec.builder(cfg).eval()
            hits, ctl_hits, files, questions, answers, truth_objects, found = [], [], [], [], [], 0, 0
            tracks_vs = [0, 0]
            for k in range(settings["videos_per_seed"]):
                video = CountingVideo(settings["num_segments"], settings["segment_frames"], settings["frame_size"],
                                      seed=100_000 * (seed + 1) + k)
                path = os.path.join(tmp, f"videoagent_{seed}_{k}.sqlite")
                memory = model.build_memory(iter(video), video.segment_frames, path)
                control = model.build_memory(iter(video), video.segment_frames, path + ".noreid", use_reid=False)
                qa = video.counting_questions()
                tools, ctools = VideoAgentTools(memory, model), VideoAgentTools(control, model)
                got = [run_agent(q, tools, RuleController()).answer for q, _ in qa]
                hits += [g == a for g, (_, a) in zip(got, qa)]
                ctl_hits += [run_agent(q, ctools, RuleController()).answer == a for q, a in qa]
                files.append(path)
                questions.append([q for q, _ in qa])
                answers.append(got)
                truth_objects += len(video.objects)
                found += memory.query("SELECT COUNT(*) FROM Objects")[0][0]
                tracks_vs[0] += control.query("SELECT COUNT(*) FROM Objects")[0][0]
                tracks_vs[1] += video.appearances
            # restart: a fresh interpreter reopens the files and answers again, without the model
            again = _subprocess(["answer-counts", "--json", json.dumps({"files": files, "questions": questions})])
            same = sum(a == b for xs, ys in zip(answers, again) for a, b in zip(xs, ys))
            total = sum(len(xs) for xs in answers)
            run = {"seed": seed, "videos": len(files), "questions": len(hits),
                   "exact_match_pct": 100.0 * sum(hits) / len(hits),
                   "control_exact_match_pct": 100.0 * sum(ctl_hits) / len(ctl_hits),
                   "restart_same_answers_pct": 100.0 * same / total,
                   "objects_in_memory": found, "objects_in_videos": truth_objects,
                   "tracks_without_reid": tracks_vs[0], "appearances_in_videos": tracks_vs[1],
                   "file_bytes_first_video": os.path.getsize(files[0])}
            runs.append(run)
            if log:
                log(f"  memory (object counting) seed {seed}: exact {run['exact_match_pct']:.1f} %, control "
                    f"{run['control_exact_match_pct']:.1f} %, after restart {run['restart_same_answers_pct']:.0f} % "
                    f"the same, objects {found}/{truth_objects}")
    worst = min(r["exact_match_pct"] for r in runs)
    ctl_best = max(r["control_exact_match_pct"] for r in runs)
    restart = min(r["restart_same_answers_pct"] for r in runs)
    failures = []
    if worst < expected_exact:
        failures.append(f"exact match {worst:.1f} % < {expected_exact:g} %")
    if ctl_best > control_max:
        failures.append(f"control {ctl_best:.1f} % > {control_max:g} %")
    if restart < 100.0:
        failures.append(f"only {restart:.1f} % of the answers are the same after a restart")
    measured = {"worst_seed_exact_match_pct": worst, "control_best_seed_exact_match_pct": ctl_best,
                "restart_same_answers_pct": restart, "runs": runs,
                "settings": {k: settings[k] for k in ("seeds", "videos_per_seed", "num_segments", "segment_frames",
                                                      "frame_size")},
                "control_view": "the same memory built without re-identification (every track an object)",
                "restart": "a fresh Python process reopens each SQLite file and answers with the rule controller, "
                           "without the model"}
    expected = {"rule": "worst seed exact match >= expected_exact_pct; control's best seed <= control_max_pct; "
                        "every answer the same after a restart",
                "expected_exact_pct": expected_exact, "control_max_pct": control_max}
    n_q = sum(r["questions"] for r in runs)
    summary = (f"'how many <colour> <shape>s appear?' over {sum(r['videos'] for r in runs)} synthetic videos "
               f"({n_q} questions, {len(runs)} seeds) answered from the SQLite object memory: worst seed exact match "
               f"{worst:.1f} %; control without re-identification (best seed) {ctl_best:.1f} %; after a restart "
               f"{restart:.0f} % of the answers are the same"
               + ("; " + "; ".join(failures) if failures else ""))
    return make_check("memory", "failed" if failures else "passed", summary, measured, expected,
                      seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- entry points


def check_memory(spec: ModelSpec, log: _LOG = None) -> dict:
    """Memory check (see the module docstring); ``not-run`` for a model that registers no memory."""
    kind = spec.memory.get("kind")
    if not kind:
        return make_check("memory", "not-run", "no memory to check: the model registers no memory settings",
                          reason="the model registers no memory settings (MovieChat and VideoAgent do)")
    settings = {**MEMORY_DEFAULTS, **{k: v for k, v in spec.memory.items() if k in MEMORY_DEFAULTS}}
    if kind == "long_video":
        return _check_long_video(spec, settings, log)
    if kind == "object_counting":
        return _check_object_counting(spec, settings, log)
    raise ValueError(f"unknown memory check kind {kind!r}; expected 'long_video' or 'object_counting'")


def main(argv: list[str] | None = None) -> int:
    """The subprocess entry points of the check (``probe-moviechat``, ``answer-counts``); prints one JSON line."""
    p = argparse.ArgumentParser(prog="python -m videozoo.verify.memory")
    sub = p.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe-moviechat")
    probe.add_argument("--weights", required=True)
    probe.add_argument("--frames", type=int, required=True)
    probe.add_argument("--seed", type=int, required=True)
    probe.add_argument("--evidence-frac", type=float, default=0.05)
    counts = sub.add_parser("answer-counts")
    counts.add_argument("--json", required=True, help='{"files": [...], "questions": [[...], ...]}')
    args = p.parse_args(argv)
    if args.command == "probe-moviechat":
        print(json.dumps(_probe(args.weights, args.frames, args.seed, args.evidence_frac)))
    else:
        job = json.loads(args.json)
        print(json.dumps(_answer_counts(job["files"], job["questions"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
