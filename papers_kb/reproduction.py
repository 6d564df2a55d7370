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
from typing import Any

from papers_kb.schema import Check, ReproductionRecord

LADDER = ("implemented", "verified", "learns-motion", "gpu-benchmarked")
CONTROL_LABEL = "control: cannot use frame order"
LABELS = {
    "none": "not implemented",
    "failing": "implementation failing its checks",
    "implemented": "implemented",
    "verified": "matches an independent implementation",
    "learns-motion": "learns frame order (synthetic task)",
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


_LIBRARIES = (
    ("timm", "timm"), ("transformers", "Hugging Face Transformers"), ("torchvision", "torchvision"),
    ("open_clip", "open_clip"), ("pytorchvideo", "PyTorchVideo"), ("ot.", "POT"), ("torch.nn", "PyTorch's own layers"),
    ("videozoo.references", "the paper's equations written out independently"),
)


def _references(measured: dict) -> str:
    """Reader-facing names of the references a check compared with (``measured["reference"]``)."""
    names: list[str] = []
    for part in str(measured.get("reference", "")).split(";"):
        part = part.strip()
        name = next((label for prefix, label in _LIBRARIES if part.startswith(prefix)), None)
        if name is None and part.startswith("videozoo."):
            name = "its own building blocks"
        if name and name not in names:
            names.append(name)
    return " and ".join(names) or "the reference"


def _diff(value: Any) -> str:
    """A maximum absolute difference as readers read it: ``exactly`` or ``to 4e-08``."""
    if value is None:
        return ""
    value = float(value)
    return "exactly" if value == 0 else f"to {value:.0e}"


def _pct(value: Any) -> str:
    """``: 97.2 %`` for a figure, nothing when the record has none."""
    return "" if value is None else f": {float(value):.1f} %"


def check_label(check: Check) -> str:
    """What a check proved, in the words a reader needs (the site's badges).

    Examples: "learns frame order: 97.2 % (worst of 3 seeds)", "control, cannot use frame
    order: 12.8 % (best of 3 seeds)", "matches timm to 4e-08", "self-consistency only: matches
    its own building blocks exactly", "unverified: no published figure", "not run: no CUDA
    device". Driven by the check's ``name``, ``status`` and ``evidence`` and its measured figures.
    """
    m, status, evidence = check.measured, check.status, check.evidence
    if status == "not-run":
        reason = check.reason or check.summary
        return f"not run: {reason.split(';')[0].strip()}" if check.name != "motion" else \
            "not counted: " + (check.reason or check.summary).split(";")[0].strip()
    if check.name == "builds":
        size = f"{m['params_m']:g} M parameters" if "params_m" in m else "builds"
        if status == "unverified":
            return f"{size}; unverified: no published figure of this configuration"
        if status == "failed":
            return f"{size}: outside the tolerance of the published figure"
        return f"{size}, as published"
    if check.name in ("runs", "gpu"):
        where = "on a GPU" if check.name == "gpu" else "on the CPU"
        return f"runs {where}: shapes, finite gradients, deterministic" if status == "passed" else f"fails to run {where}"
    if check.name in ("reference", "inflation"):
        what = "" if check.name == "reference" else "inflated from its image model, "
        diff = _diff(m.get("max_abs_diff"))
        if evidence == "self-consistency":
            verdict = f"matches {_references(m)} {diff}".strip() if status == "passed" else "differs"
            return f"self-consistency only: {what}{verdict}"
        if status == "passed":
            return f"{what}matches {_references(m)} {diff}".strip()
        return f"{what}differs from {_references(m)} ({m.get('max_abs_diff', '?')})"
    if check.name == "motion":
        n = len(m.get("per_seed", [])) or 1
        seeds = f"{n} seeds" if n > 1 else "1 seed"
        if evidence == "control":
            best = m.get("heldout_top1_pct_max", m.get("heldout_top1_pct"))
            if status == "passed":
                return f"control, cannot use frame order{_pct(best)} (best of {seeds}; chance 12.5 %)"
            return f"control failed, it can use frame order{_pct(best)} (best of {seeds})"
        worst = m.get("heldout_top1_pct_min", m.get("heldout_top1_pct"))
        if status == "passed":
            return f"learns frame order{_pct(worst)} (worst of {seeds})"
        return f"does not learn frame order{_pct(worst)} (worst of {seeds}; needs 90 %)"
    # zero-shot, video QA, memory and future kinds: the kind of evidence and the verdict
    kind = EVIDENCE_LABELS.get(evidence or "", check.name)
    return f"{check.name.replace('_', ' ')}: {status} ({kind})"


LESSON_CHECKS = {1: "motion", 2: "motion", 3: "zero_shot", 4: "video_qa"}
"""The miniature task whose results each stage page charts (DESIGN: frame order for Stages 1-2,
captions of unseen (object, motion) pairs for Stage 3, questions answered in words for Stage 4)."""


def lesson_rows(models: list[tuple[str, list[ReproductionRecord]]], check: str = "motion") -> list[dict]:
    """The rows of a stage's lesson chart: each model's result on its stage's miniature task
    next to the controls that cannot solve it.

    Args:
        models: ``(name readers know, records of the paper)`` in reading order.
        check: ``"motion"`` (frame order, Stages 1-2) or ``"zero_shot"`` / ``"video_qa"``
            (Stages 3-4: the model and the control its check names).

    Returns:
        ``[{"label", "value", "seeds", "control", "passed", "title"}]``: ``value`` is the worst
        seed's held-out top-1 (%) for a model, the best seed's for a control (the figure its
        verdict rests on); ``seeds`` every seed's. Checks that did not run are left out.
    """
    rows: list[dict] = []
    for name, records in models:
        for rec in records:
            for c in rec.checks:
                if c.name != check or c.status == "not-run":
                    continue
                own = name if rec.variant is None else f"{name} ({rec.model})"
                if check == "motion":
                    for r in motion_results(c):
                        control = r["evidence"] == "control"
                        seeds = [s for s in r["per_seed_pct"] if s is not None]
                        value = max(seeds) if control and seeds else r["min_pct"]
                        if value is None:
                            continue
                        label = own if not r["name"] else f"{own}, {r['name']}"
                        rows.append({"label": label, "value": float(value), "seeds": seeds, "control": control,
                                     "passed": r["passed"], "title": f"{label}: " + (
                                         f"control, {value:.1f} % at best" if control else f"{value:.1f} % at worst")
                                     + f" over {len(seeds)} seeds ({', '.join(f'{s:.1f}' for s in seeds)} %)"})
                else:
                    for role, data in (("model", c.measured.get("model")), ("control", c.measured.get("control"))):
                        fig = (data or {}).get("heldout_top1_pct")
                        if not isinstance(fig, dict) or "min" not in fig:
                            continue
                        control = role == "control"
                        value = fig["max"] if control else fig["min"]
                        label = own if not control else f"{data.get('name', 'control')} (control)"
                        seeds = list(fig.get("per_seed", []))
                        rows.append({"label": label, "value": float(value), "seeds": seeds, "control": control,
                                     "passed": c.status == "passed",
                                     "title": f"{label}: {value:.1f} % held-out top-1 "
                                              f"({'best' if control else 'worst'} of {len(seeds)} seeds)"})
    return rows
