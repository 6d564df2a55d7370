"""The reproduction status is derived from recorded checks, rung by rung."""

from __future__ import annotations

import datetime as dt

from papers_kb.reproduction import derive_status
from papers_kb.schema import ReproductionRecord


def record(**statuses: str) -> ReproductionRecord:
    return ReproductionRecord(
        paper="x2020y", model="x", source_file="videozoo/models/x.py", command="python -m videozoo.verify x",
        generated=dt.datetime(2026, 1, 1),
        checks=[{"name": n, "status": s, "summary": f"{n} {s}"} for n, s in statuses.items()])


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
    # no reference exists: the rung is skipped
    assert derive_status(record(builds="passed", runs="passed", motion="passed")).level == "learns-motion"
    assert derive_status(record(builds="passed", runs="passed", reference="passed", motion="failed")).level == "verified"
