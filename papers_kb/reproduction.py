"""Reproduction status of a paper, derived from the checks ``videozoo.verify`` recorded.

The status is never stored: it is computed here from ``data/reproduction/*.json``.
The ladder (each rung needs the ones below it):

1. ``implemented``      the paper config builds and the tiny config runs (checks builds, runs)
2. ``verified``         every recorded reference/inflation check passed (at least one exists)
3. ``learns-motion``    the motion check passed: on the synthetic motion-order dataset a
                        temporal model learns the classes, an order-agnostic one (TSN with
                        average consensus, image models) stays near chance, as the papers say
4. ``gpu-benchmarked``  the GPU check ran and passed

A rung whose check does not apply (no independent reference exists) is skipped rather than
blocking the next one; a failed check stops the ladder there.
"""

from __future__ import annotations

from dataclasses import dataclass

from papers_kb.schema import Check, ReproductionRecord

LADDER = ("implemented", "verified", "learns-motion", "gpu-benchmarked")
LABELS = {
    "none": "not implemented",
    "failing": "implementation failing its checks",
    "implemented": "implemented",
    "verified": "verified against a reference",
    "learns-motion": "motion behaviour reproduced",
    "gpu-benchmarked": "GPU-benchmarked",
}


@dataclass(frozen=True)
class Status:
    """Derived status: ``level`` is a key of :data:`LABELS`; ``rungs`` says, for each rung
    of :data:`LADDER`, ``passed``, ``failed``, ``not-run`` or ``n/a``."""

    level: str
    rungs: dict[str, str]

    @property
    def label(self) -> str:
        return LABELS[self.level]


def _rung(checks: list[Check]) -> str:
    if not checks:
        return "n/a"
    if any(c.status == "failed" for c in checks):
        return "failed"
    if all(c.status == "passed" for c in checks):
        return "passed"
    return "not-run"


def derive_status(record: ReproductionRecord | None) -> Status:
    """Compute the :class:`Status` of a reproduction record (``None``: not implemented)."""
    if record is None:
        return Status("none", {r: "n/a" for r in LADDER})
    by_name: dict[str, list[Check]] = {}
    for c in record.checks:
        by_name.setdefault(c.name, []).append(c)
    refs = [c for c in by_name.get("reference", []) + by_name.get("inflation", []) if c.status != "not-run"]
    rungs = {
        "implemented": _rung(by_name.get("builds", []) + by_name.get("runs", [])),
        # reference/inflation checks a model does not have are recorded as not-run: they don't block
        "verified": _rung(refs),
        "learns-motion": _rung(by_name.get("motion", [])),
        "gpu-benchmarked": _rung(by_name.get("gpu", [])),
    }
    if rungs["implemented"] != "passed":
        return Status("failing" if rungs["implemented"] == "failed" else "none", rungs)
    level = "implemented"
    for rung in LADDER[1:]:
        state = rungs[rung]
        if state == "passed":
            level = rung
        elif state == "n/a" and rung == "verified":
            continue
        else:
            break
    return Status(level, rungs)
