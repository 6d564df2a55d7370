"""Checks a model file registers itself (``reference``, ``inflation``, ...)."""

from __future__ import annotations

import time

from videozoo.registry import ModelSpec
from videozoo.verify.common import make_check


def check_extra(spec: ModelSpec, name: str) -> dict:
    """Run ``spec.checks[name]()``; status from its ``passed``, the rest goes to ``measured``."""
    start = time.perf_counter()
    if name not in spec.checks:
        return make_check(name, "not-run", f"no {name} check registered for this model",
                      reason=f"the model file registers no {name!r} check")
    result = dict(spec.checks[name]())
    passed = bool(result.pop("passed"))
    summary = str(result.pop("summary", "")) or f"{name} check {'passed' if passed else 'failed'}"
    expected = result.pop("expected", {})
    return make_check(name, "passed" if passed else "failed", summary, result,
                  expected if isinstance(expected, dict) else {"value": expected},
                  seconds=time.perf_counter() - start)

