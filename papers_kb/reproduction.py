"""Reproduction status of a paper, derived from the checks ``videozoo.verify`` recorded.

The status is never stored: it is computed here from ``data/reproduction/*.json``, one record
per registered model name (a paper's model and each of its registered variants).  The ladder
of one record (each rung needs the ones below it):

1. ``implemented``      the paper config builds and the tiny config runs (checks ``builds``,
                        ``runs``).  A ``builds`` check that had no figure to compare is
                        ``unverified``: the rung is reached, and the status says the size is
                        unverified; a size outside its declared tolerance fails the rung.
2. ``verified``         at least one reference/inflation check whose evidence is an
                        *independent reference* passed, and no reference/inflation check failed.
                        Self-consistency checks are shown but never verify a model.
3. ``learns-motion``    the motion check, a *training* result over seeds, passed: on the
                        synthetic motion-order dataset the temporal model learns the classes on
                        every seed.  For an order-agnostic model the motion check is a
                        *control*: when it stays near chance the rung reads ``control`` and the
                        status "control: cannot use frame order", never "reproduced".
4. ``gpu-benchmarked``  the GPU check ran and passed.

A failed check stops the ladder at the rung below it.  A paper's status is that of its
least-advanced record (every registered configuration has to earn the paper's label).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from papers_kb.schema import Check, ReproductionRecord

LADDER = ("implemented", "verified", "learns-motion", "gpu-benchmarked")
CONTROL_LABEL = "control: cannot use frame order"
LABELS = {
    "none": "not implemented",
    "failing": "implementation failing its checks",
    "implemented": "implemented",
    "verified": "verified against an independent reference",
    "learns-motion": "motion behaviour reproduced",
    "control": CONTROL_LABEL,
    "gpu-benchmarked": "GPU-benchmarked",
}
RANK = ("none", "failing", "implemented", "verified", "control", "learns-motion", "gpu-benchmarked")
"""Levels from least to most advanced (a control ranks below a reproduced motion result)."""

EVIDENCE_LABELS = {
    "independent-reference": "independent reference",
    "self-consistency": "self-consistency (compared with its own code)",
    "control": CONTROL_LABEL,
    "training": "training result over seeds",
    "reported-figure": "compared with a reported figure",
    "smoke-test": "runs (smoke test)",
}
"""Reader-facing name of each evidence kind (``papers_kb.schema.EVIDENCE_KINDS``)."""


@dataclass(frozen=True)
class Status:
    """Derived status: ``level`` is a key of :data:`LABELS`; ``rungs`` says, for each rung of
    :data:`LADDER`, ``passed``, ``failed``, ``not-run``, ``missing`` (no check of the kind the
    rung needs), ``unverified`` (implemented, size not comparable) or ``control``
    (learns-motion: an order-agnostic control stayed near chance)."""

    level: str
    rungs: dict[str, str]

    @property
    def label(self) -> str:
        """Reader-facing label, e.g. ``"verified against an independent reference (size unverified)"``."""
        text = LABELS[self.level]
        if self.rungs.get("learns-motion") == "control" and self.level == "gpu-benchmarked":
            text += f"; {CONTROL_LABEL}"
        if self.rungs.get("implemented") == "unverified" and self.level not in ("none", "failing"):
            text += " (size unverified: no figure to compare)"
        return text


@dataclass(frozen=True)
class PaperStatus:
    """Status of a paper from all of its records: ``level`` is the least-advanced record's,
    ``models`` maps each registered name to its own :class:`Status`."""

    level: str
    models: dict[str, Status] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.models:
            return LABELS[self.level]
        weakest = min(self.models.values(), key=lambda s: RANK.index(s.level))
        return weakest.label


def evidence_label(check: Check) -> str:
    """Reader-facing kind of evidence of a check ("" for a check that did not run)."""
    return EVIDENCE_LABELS.get(check.evidence or "", "")


def motion_results(check: Check) -> list[dict]:
    """The motion check's results, one row per trained configuration, for the site.

    Returns:
        ``[{"name", "evidence", "label", "passed", "min_pct", "mean_pct", "per_seed_pct"}]``: the
        model itself first (``name`` ``""``), then each variant (e.g. TimeSformer's ``joint`` and
        ``space-only``); ``label`` is the reader-facing kind of evidence, "control: cannot use
        frame order" for a control.  Empty for a check without per-seed figures.
    """
    m = check.measured
    if "per_seed" not in m:
        return []

    def row(name: str, d: dict, evidence: str | None, passed: bool) -> dict:
        return {"name": name, "evidence": evidence, "label": EVIDENCE_LABELS.get(evidence or "", ""),
                "passed": passed, "min_pct": d.get("heldout_top1_pct_min"), "mean_pct": d.get("heldout_top1_pct_mean"),
                "per_seed_pct": [r.get("heldout_top1_pct") for r in d.get("per_seed", [])]}

    variants = m.get("variants", {})
    rows = [row("", m, check.evidence, bool(m.get("model_passed", check.status == "passed")))]
    rows += [row(name, v, v.get("evidence"), bool(v.get("passed"))) for name, v in variants.items()]
    return rows


def _rung(checks: list[Check]) -> str:
    ran = [c for c in checks if c.status != "not-run"]
    if not checks:
        return "missing"
    if any(c.status == "failed" for c in ran):
        return "failed"
    if ran and all(c.status == "passed" for c in ran) and len(ran) == len(checks):
        return "passed"
    if ran and all(c.status in ("passed", "unverified") for c in ran) and len(ran) == len(checks):
        return "unverified"
    return "not-run"


def _verified_rung(checks: list[Check]) -> str:
    if any(c.status == "failed" for c in checks):
        return "failed"
    independent = [c for c in checks if c.evidence == "independent-reference" and c.status == "passed"]
    return "passed" if independent else "missing"


def _motion_rung(checks: list[Check]) -> str:
    if not checks:
        return "missing"
    c = checks[0]
    if c.status == "failed":
        return "failed"
    if c.status != "passed":
        return "not-run"
    return "control" if c.evidence == "control" else "passed" if c.evidence == "training" else "missing"


def derive_status(record: ReproductionRecord | None) -> Status:
    """Compute the :class:`Status` of one reproduction record (``None``: not implemented)."""
    if record is None:
        return Status("none", {r: "missing" for r in LADDER})
    by_name: dict[str, list[Check]] = {}
    for c in record.checks:
        by_name.setdefault(c.name, []).append(c)
    rungs = {
        "implemented": _rung(by_name.get("builds", []) + by_name.get("runs", [])),
        "verified": _verified_rung(by_name.get("reference", []) + by_name.get("inflation", [])),
        "learns-motion": _motion_rung(by_name.get("motion", [])),
        "gpu-benchmarked": _rung(by_name.get("gpu", [])),
    }
    if rungs["implemented"] not in ("passed", "unverified"):
        return Status("failing" if rungs["implemented"] == "failed" else "none", rungs)
    level = "implemented"
    for rung in LADDER[1:]:
        state = rungs[rung]
        if state == "passed":
            level = rung
        elif state == "control":
            level = "control"
        else:
            break
    return Status(level, rungs)


def derive_paper_status(records: list[ReproductionRecord]) -> PaperStatus:
    """A paper's status from all of its records (one per registered name): the least-advanced
    record's level, and each record's own :class:`Status` under its model name."""
    if not records:
        return PaperStatus("none")
    models = {r.model: derive_status(r) for r in records}
    level = min((s.level for s in models.values()), key=RANK.index)
    return PaperStatus(level, models)
