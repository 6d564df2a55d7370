"""Run checks for a model, write its record, and compare committed records with the code."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from videozoo.registry import ModelSpec, get_spec, list_models
from videozoo.verify.common import environment, error_check


def _all_checks() -> tuple[str, ...]:
    from videozoo.verify import ALL_CHECKS

    return ALL_CHECKS

def run_check(spec: ModelSpec, name: str, motion_steps: int | None = None,
              log: Callable[[str], None] | None = None) -> dict:
    """Run one named check (a key of :data:`videozoo.verify.KINDS`), turning an exception into a
    failed check with the error text.

    Raises:
        ValueError: for an unknown check name (reported as a failed check).
    """
    from videozoo.verify import KINDS

    start = time.perf_counter()
    try:
        if name not in KINDS:
            raise ValueError(f"unknown check {name!r}; known: {', '.join(KINDS)}")
        return KINDS[name].run(spec, name, {"motion_steps": motion_steps, "log": log})
    except Exception as exc:  # a failing model must not stop the others
        return error_check(name, exc, start)


def _command(alias: str, checks: list[str], out: str, motion_steps: int | None) -> str:
    parts = ["python", "-m", "videozoo.verify", alias]
    if set(checks) != set(_all_checks()):
        parts += ["--checks", ",".join(c for c in _all_checks() if c in checks)]
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
    names = [c for c in _all_checks() if c in results]
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

