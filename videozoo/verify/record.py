"""Run checks for a registered name, write its record, and compare committed records with the code."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from videozoo.registry import ModelSpec, get_spec, list_names
from videozoo.verify.common import environment, error_check


def _all_checks() -> tuple[str, ...]:
    from videozoo.verify import ALL_CHECKS

    return ALL_CHECKS


def evidence_of(spec: ModelSpec, name: str) -> str | None:
    """The evidence kind a check of ``name`` records for ``spec`` (``None`` if the kind says nothing)."""
    from videozoo.verify import KINDS

    kind = KINDS.get(name)
    if kind is None:
        return None
    return kind.evidence(spec, name) if callable(kind.evidence) else kind.evidence


def run_check(spec: ModelSpec, name: str, motion_steps: int | None = None,
              log: Callable[[str], None] | None = None, motion_seeds: tuple[int, ...] | None = None) -> dict:
    """Run one named check (a key of :data:`videozoo.verify.KINDS`), turning an exception into a
    failed check with the error text (and the evidence kind the check would have recorded).

    Raises:
        ValueError: for an unknown check name (reported as a failed check).
    """
    from videozoo.verify import KINDS

    start = time.perf_counter()
    try:
        if name not in KINDS:
            raise ValueError(f"unknown check {name!r}; known: {', '.join(KINDS)}")
        result = KINDS[name].run(spec, name, {"motion_steps": motion_steps, "motion_seeds": motion_seeds, "log": log})
    except Exception as exc:  # a failing model must not stop the others
        result = error_check(name, exc, start)
    if result["status"] != "not-run" and "evidence" not in result:
        evidence = evidence_of(spec, name)
        if evidence is not None:
            result["evidence"] = evidence
    return result


def _command(alias: str, checks: list[str], out: str, motion_steps: int | None,
             motion_seeds: tuple[int, ...] | None) -> str:
    parts = ["python", "-m", "videozoo.verify", alias]
    if set(checks) != set(_all_checks()):
        parts += ["--checks", ",".join(c for c in _all_checks() if c in checks)]
    if motion_steps is not None and "motion" in checks:
        parts += ["--motion-steps", str(motion_steps)]
    if motion_seeds is not None and "motion" in checks:
        parts += ["--seeds", ",".join(str(s) for s in motion_seeds)]
    parts += ["--out", out]
    return " ".join(parts)


def _stale(check: dict) -> dict:
    """A committed check recorded under rules this code no longer applies, marked ``not-run``.

    Today: a motion result without per-seed figures (recorded with one seed, before the check
    trained three) or any result of a check that ran without an evidence kind.  Its figures stay
    in ``measured`` and the reason says why it no longer counts; rerun the check to replace it.
    """
    if check.get("status") == "not-run":
        return check
    if check.get("name") == "motion" and "per_seed" not in check.get("measured", {}):
        reason = "recorded with a single seed before the motion check trained 3 seeds; rerun the motion check"
    elif "evidence" not in check:
        reason = "recorded before checks declared their kind of evidence; rerun the check"
    else:
        return check
    return {**check, "status": "not-run", "reason": reason,
            "summary": f"not counted ({reason}); earlier result: {check.get('summary', '')}"}


def verify_model(name: str, checks: list[str], out: str | os.PathLike | None = "data/reproduction",
                 motion_steps: int | None = None, log: Callable[[str], None] | None = None,
                 motion_seeds: tuple[int, ...] | None = None) -> dict:
    """Run ``checks`` for one registered name; merge with an existing record in ``out`` and return it.

    Checks not run now keep their committed result, except those recorded under rules that no
    longer apply (see :func:`_stale`), which become ``not-run`` with the reason.  The record is
    validated against ``papers_kb.schema.ReproductionRecord`` and, when ``out`` is not ``None``,
    written to ``<out>/<name>.json``.

    Raises:
        KeyError: unknown model. pydantic.ValidationError: if the record does not validate.
    """
    spec = get_spec(name)
    results: dict[str, dict] = {}
    path = Path(out) / f"{spec.alias}.json" if out is not None else None
    if path is not None and path.exists():
        try:
            for c in json.loads(path.read_text())["checks"]:
                results[c["name"]] = _stale(c)
        except (ValueError, KeyError):
            results = {}
    for c in checks:
        if log:
            log(f"{spec.alias}: {c} ...")
        results[c] = run_check(spec, c, motion_steps=motion_steps, log=log, motion_seeds=motion_seeds)
        if log:
            log(f"{spec.alias}: {c} {results[c]['status']}: {results[c]['summary']}")
    names = [c for c in _all_checks() if c in results]
    record = {
        "schema_version": 1,
        "paper": spec.key,
        "model": spec.alias,
        **({"variant": spec.variant.description or f"a registered configuration of {spec.key}"}
           if spec.variant is not None else {}),
        "source_file": spec.source_file,
        "command": _command(spec.alias, names, str(out if out is not None else "data/reproduction"), motion_steps,
                            motion_seeds),
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


_COMPARED = {
    "builds": ("params", "flops", "input_shape", "figures_checked", "figures_outside_tolerance"),
    "runs": ("output_shape", "params", "deterministic", "tensors_without_grad"),
}
"""Deterministic measurements that must be equal between the record and a re-run."""

_UNDER_TOLERANCE = ("reference", "inflation")
"""Checks whose measured ``max_abs_diff`` must stay within their own ``tolerance`` in a re-run,
rather than equal the committed value (float results differ in the last bits across machines)."""


def _compare_check(alias: str, c: str, old: dict, now: dict) -> list[str]:
    diffs = []
    if old["status"] != now["status"]:
        diffs.append(f"{alias}/{c}: status {old['status']} (committed) != {now['status']} (now)")
    if old.get("evidence") != now.get("evidence"):
        diffs.append(f"{alias}/{c}: evidence {old.get('evidence')!r} (committed) != {now.get('evidence')!r} (now)")
    for key in _COMPARED.get(c, ()):
        a, b = old.get("measured", {}).get(key), now["measured"].get(key)
        if a != b:
            diffs.append(f"{alias}/{c}: {key} {a!r} (committed) != {b!r} (now)")
    if c in _UNDER_TOLERANCE and now["status"] != "not-run":
        m = now["measured"]
        diff, tol = m.get("max_abs_diff"), m.get("tolerance")
        if isinstance(diff, (int, float)) and isinstance(tol, (int, float)):
            if not diff <= tol:
                diffs.append(f"{alias}/{c}: max abs diff {diff:.3g} now exceeds the check's tolerance {tol:g}")
            old_tol = old.get("measured", {}).get("tolerance")
            if old_tol != tol:
                diffs.append(f"{alias}/{c}: tolerance {old_tol!r} (committed) != {tol!r} (now)")
        elif now["status"] == "passed":
            diffs.append(f"{alias}/{c}: passed without a numeric max_abs_diff and tolerance to re-check")
    return diffs


def compare(names: list[str], directory: str | os.PathLike, checks: tuple[str, ...] | None = None,
            log: Callable[[str], None] = print) -> list[str]:
    """Re-run ``checks`` (default: every check ``--fast`` runs, the reference and inflation checks
    included) and list every difference from the committed records in ``directory``.

    Compared: each check's status and evidence kind; the deterministic measurements (parameter
    counts, FLOPs, output shapes, how many figures were checked and how many fell outside their
    tolerance); for reference and inflation checks, that the re-measured ``max_abs_diff`` stays
    within the check's ``tolerance`` and that the tolerance is the committed one.  Timings are
    ignored.  A registered name without a record, or (when every registered name is compared)
    a record whose name is not registered, is a difference too.

    Returns:
        Human-readable differences (empty when everything matches).
    """
    from videozoo.verify import FAST_CHECKS

    checks = tuple(c for c in FAST_CHECKS if c != "gpu") if checks is None else checks
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
        record = json.loads(path.read_text())
        if record.get("paper") != spec.key:
            diffs.append(f"{spec.alias}: record names paper {record.get('paper')!r}, the registry {spec.key!r}")
        committed = {c["name"]: c for c in record["checks"]}
        for c in checks:
            now = run_check(spec, c)
            old = committed.get(c)
            if old is None:
                diffs.append(f"{spec.alias}/{c}: not in the committed record")
                continue
            diffs += _compare_check(spec.alias, c, old, now)
        log(f"{spec.alias}: compared")
    if set(aliases) == set(list_names()):
        for p in sorted(directory.glob("*.json")):
            if p.stem not in aliases:
                diffs.append(f"{p.name}: record of a name that is not registered")
    return diffs
