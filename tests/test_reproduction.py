"""The reproduction status is derived from recorded checks, rung by rung, and from their evidence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from papers_kb.catalog import CatalogError, load_catalog
from papers_kb.reproduction import CONTROL_LABEL, derive_paper_status, derive_status, evidence_label
from papers_kb.schema import Check, ReproductionRecord

DEFAULT_EVIDENCE = {"builds": "reported-figure", "runs": "smoke-test", "reference": "independent-reference",
                    "inflation": "independent-reference", "motion": "training", "gpu": "smoke-test"}


def check(name: str, status: str, evidence: str | None = None) -> dict:
    out = {"name": name, "status": status, "summary": f"{name} {status}"}
    if status != "not-run":
        out["evidence"] = evidence or DEFAULT_EVIDENCE[name]
    return out


def record(model: str = "x", paper: str = "x2020y", variant: str | None = None, **statuses) -> ReproductionRecord:
    """``statuses``: check name -> status, or (status, evidence)."""
    checks = [check(n, *(s if isinstance(s, tuple) else (s,))) for n, s in statuses.items()]
    return ReproductionRecord(
        paper=paper, model=model, variant=variant, source_file="videozoo/models/x.py",
        command="python -m videozoo.verify x", generated=dt.datetime(2026, 1, 1), checks=checks)


def test_ladder():
    assert derive_status(None).level == "none"
    assert derive_status(record(builds="passed", runs="failed")).level == "failing"
    assert derive_status(record(builds="passed", runs="passed")).level == "implemented"
    full = record(builds="passed", runs="passed", reference="passed", inflation="not-run", motion="passed",
                  gpu="not-run")
    st = derive_status(full)
    assert st.level == "learns-motion" and st.rungs["gpu-benchmarked"] == "not-run"
    assert derive_status(record(builds="passed", runs="passed", reference="passed", motion="passed",
                                gpu="passed")).level == "gpu-benchmarked"
    # a failed reference check stops the ladder even if motion passed
    assert derive_status(record(builds="passed", runs="passed", reference="failed", motion="passed")).level == "implemented"
    assert derive_status(record(builds="passed", runs="passed", reference="passed", motion="failed")).level == "verified"


def test_no_independent_reference_blocks_verified():
    """A model with no independent reference is not 'verified', whatever else passed."""
    st = derive_status(record(builds="passed", runs="passed", motion="passed"))
    assert st.level == "implemented" and st.rungs["verified"] == "missing"


def test_self_consistency_never_verifies_a_model():
    st = derive_status(record(builds="passed", runs="passed", reference=("passed", "self-consistency"),
                              motion="passed"))
    assert st.level == "implemented" and st.rungs["verified"] == "missing"
    # with an independent reference next to it, the model is verified
    st = derive_status(record(builds="passed", runs="passed", reference="passed",
                              inflation=("passed", "self-consistency"), motion="passed"))
    assert st.level == "learns-motion"
    # a failing self-consistency check is still a failure
    st = derive_status(record(builds="passed", runs="passed", reference="passed",
                              inflation=("failed", "self-consistency"), motion="passed"))
    assert st.level == "implemented" and st.rungs["verified"] == "failed"


def test_a_size_outside_tolerance_fails_and_no_figure_is_unverified():
    assert derive_status(record(builds="failed", runs="passed", reference="passed")).level == "failing"
    st = derive_status(record(builds="unverified", runs="passed", reference="passed"))
    assert st.level == "verified" and st.rungs["implemented"] == "unverified"
    assert "size unverified" in st.label
    assert "unverified" not in derive_status(record(builds="passed", runs="passed", reference="passed")).label


def test_a_control_is_labelled_as_such_never_reproduced():
    st = derive_status(record(builds="passed", runs="passed", reference="passed", motion=("passed", "control")))
    assert st.level == "control" and st.rungs["learns-motion"] == "control"
    assert st.label == CONTROL_LABEL == "control: cannot use frame order"
    assert "reproduced" not in st.label
    gpu = derive_status(record(builds="passed", runs="passed", reference="passed", motion=("passed", "control"),
                               gpu="passed"))
    assert gpu.level == "gpu-benchmarked" and CONTROL_LABEL in gpu.label
    # a control that learnt the order-defined classes failed its check
    assert derive_status(record(builds="passed", runs="passed", reference="passed",
                                motion=("failed", "control"))).level == "verified"


def test_paper_status_comes_from_all_of_its_records():
    main = record("tsn", paper="p2016", builds="passed", runs="passed", reference="passed", motion="passed")
    variant = record("tsn_r50", paper="p2016", variant="ResNet-50 backbone", builds="failed", runs="passed")
    st = derive_paper_status([main, variant])
    assert st.level == "failing" and set(st.models) == {"tsn", "tsn_r50"}
    assert st.models["tsn"].level == "learns-motion" and st.label == st.models["tsn_r50"].label
    assert derive_paper_status([main]).level == "learns-motion"
    assert derive_paper_status([]).level == "none"


def test_checks_that_ran_must_say_what_evidence_they_are():
    with pytest.raises(ValidationError, match="no evidence kind"):
        Check(name="reference", status="passed", summary="ok")
    with pytest.raises(ValidationError):
        Check(name="reference", status="passed", summary="ok", evidence="looks-right")
    assert Check(name="gpu", status="not-run", summary="no GPU", reason="no CUDA device").evidence is None
    assert evidence_label(Check(name="reference", status="passed", summary="ok", evidence="self-consistency")
                          ).startswith("self-consistency")


def _write(path: Path, rec: ReproductionRecord) -> None:
    path.write_text(rec.model_dump_json())


def test_catalog_keeps_one_record_per_registered_name(project: Path):
    (project / "data/reproduction").mkdir()
    _write(project / "data/reproduction/tsm.json",
           record("tsm", paper="lin2019tsm", builds="passed", runs="passed"))
    _write(project / "data/reproduction/tsm_online.json",
           record("tsm_online", paper="lin2019tsm", variant="uni-directional shift", builds="unverified",
                  runs="passed"))
    cat = load_catalog(project / "data", root=project)
    assert set(cat.reproduction) == {"tsm", "tsm_online"}
    assert [r.model for r in cat.reproduction_of("lin2019tsm")] == ["tsm", "tsm_online"]
    # a record whose file name is not its model name, and a second record of one name, are errors
    _write(project / "data/reproduction/other.json", record("tsm", paper="lin2019tsm", builds="passed"))
    with pytest.raises(CatalogError) as err:
        load_catalog(project / "data", root=project)
    assert any("must be named tsm.json" in str(p) for p in err.value.problems)


def test_rendered_paper_page_shows_every_record_and_each_evidence_kind(project: Path):
    from papers_kb.render import render_pages

    (project / "data/reproduction").mkdir()
    _write(project / "data/reproduction/tsm.json",
           record("tsm", paper="lin2019tsm", builds="passed", runs="passed",
                  reference=("passed", "self-consistency")))
    _write(project / "data/reproduction/tsm_online.json",
           record("tsm_online", paper="lin2019tsm", variant="uni-directional shift", builds="passed",
                  runs="passed", reference="passed", motion=("passed", "control")))
    pages = {p.path: p.content for p in render_pages(load_catalog(project / "data", root=project))}
    page = next(text for path, text in pages.items() if path.endswith("papers/lin2019tsm.md"))
    assert "### <code>tsm</code>\n" in page and "### <code>tsm&#95;online</code>: uni-directional shift" in page
    assert "self-consistency (compared with its own code)" in page and "| independent reference |" in page
    assert CONTROL_LABEL in page
    repro = next(text for path, text in pages.items() if path.endswith("reproduction.md"))
    assert "<code>tsm&#95;online</code>" in repro and "<code>tsm</code>" in repro


def test_motion_results_list_the_model_and_its_variants_with_their_evidence():
    from papers_kb.reproduction import motion_results

    per_seed = [{"seed": s, "heldout_top1_pct": v} for s, v in enumerate((95.0, 92.0, 97.0))]
    control = [{"seed": s, "heldout_top1_pct": v} for s, v in enumerate((13.0, 12.5, 14.0))]
    c = Check(name="motion", status="passed", evidence="training", summary="...", measured={
        "per_seed": per_seed, "heldout_top1_pct_min": 92.0, "heldout_top1_pct_mean": 94.67, "model_passed": True,
        "variants": {"space-only": {"evidence": "control", "passed": True, "per_seed": control,
                                    "heldout_top1_pct_min": 12.5, "heldout_top1_pct_mean": 13.17}}})
    rows = motion_results(c)
    assert [r["name"] for r in rows] == ["", "space-only"]
    assert rows[0]["label"] == "training result over seeds" and rows[0]["per_seed_pct"] == [95.0, 92.0, 97.0]
    assert rows[1]["label"] == CONTROL_LABEL and rows[1]["min_pct"] == 12.5 and rows[1]["passed"]
    assert motion_results(Check(name="motion", status="not-run", summary="old", measured={"heldout_top1_pct": 13.0})) == []


def test_check_labels_say_what_each_check_proved():
    """Badges read as what the check showed, driven by status and evidence kind."""
    from papers_kb.reproduction import check_label

    def c(name, status, evidence=None, measured=None, summary="s", reason=None):
        return Check(name=name, status=status, evidence=evidence, measured=measured or {}, summary=summary,
                     reason=reason)

    seeds = {"per_seed": [{"heldout_top1_pct": 97.25}, {"heldout_top1_pct": 98.0}, {"heldout_top1_pct": 99.0}],
             "heldout_top1_pct_min": 97.25, "heldout_top1_pct_max": 99.0}
    assert check_label(c("motion", "passed", "training", seeds)) == "learns frame order: 97.2 % (worst of 3 seeds)"
    assert check_label(c("motion", "failed", "training", seeds)).startswith("does not learn frame order: 97.2 %")
    control = {"per_seed": [{}, {}, {}], "heldout_top1_pct_min": 11.0, "heldout_top1_pct_max": 12.75}
    assert check_label(c("motion", "passed", "control", control)) == \
        "control, cannot use frame order: 12.8 % (best of 3 seeds; chance 12.5 %)"
    ref = {"max_abs_diff": 4.47e-08, "reference": "timm.models.vision_transformer.VisionTransformer"}
    assert check_label(c("reference", "passed", "independent-reference", ref)) == "matches timm to 4e-08"
    assert check_label(c("reference", "passed", "independent-reference",
                         {"max_abs_diff": 0.0, "reference": "torch.nn.Transformer"})) == "matches PyTorch's own layers exactly"
    own = {"max_abs_diff": 0.0, "reference": "videozoo.models.vit.VisionTransformer"}
    assert check_label(c("inflation", "passed", "self-consistency", own)) == \
        "self-consistency only: inflated from its image model, matches its own building blocks exactly"
    assert check_label(c("builds", "unverified", "reported-figure", {"params_m": 23.71})) == \
        "23.71 M parameters; unverified: no published figure of this configuration"
    assert check_label(c("builds", "passed", "reported-figure", {"params_m": 24.33})) == "24.33 M parameters, as published"
    assert check_label(c("gpu", "not-run", summary="not run on GPU (no CUDA device)", reason="no CUDA device")) == \
        "not run: no CUDA device"


def test_lesson_rows_put_models_beside_controls():
    from papers_kb.reproduction import lesson_rows

    def motion(evidence, values, variants=None):
        m = {"per_seed": [{"heldout_top1_pct": v} for v in values], "heldout_top1_pct_min": min(values),
             "heldout_top1_pct_mean": sum(values) / len(values), "heldout_top1_pct_max": max(values)}
        if variants:
            m["variants"] = variants
        return Check(name="motion", status="passed", evidence=evidence, summary="s", measured=m)

    def rec(model, chk):
        return ReproductionRecord(paper="p2020x", model=model, source_file="videozoo/models/x.py", command="c",
                                  generated=dt.datetime(2026, 1, 1), checks=[chk])

    space_only = {"evidence": "control", "passed": True, "heldout_top1_pct_min": 12.0,
                  "per_seed": [{"heldout_top1_pct": 12.0}, {"heldout_top1_pct": 13.5}, {"heldout_top1_pct": 12.25}]}
    rows = lesson_rows([("TSN", [rec("tsn", motion("control", [12.75, 11.0, 12.0]))]),
                        ("TimeSformer", [rec("timesformer", motion("training", [94.75, 97.0, 96.0],
                                                                         {"space-only": space_only}))])])
    assert [(r["label"], r["value"], r["control"]) for r in rows] == [
        ("TSN", 12.75, True), ("TimeSformer", 94.75, False), ("TimeSformer, space-only", 13.5, True)]
    assert rows[1]["seeds"] == [94.75, 97.0, 96.0] and "at worst over 3 seeds" in rows[1]["title"]
