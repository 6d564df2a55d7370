"""Checks a model file registers itself (``reference``, ``inflation``, ...).

Each is registered with the kind of evidence it is (:func:`videozoo.registry.register_check`);
the record stores it, so the site can tell an independent reference from a self-consistency
check.
"""

from __future__ import annotations

import time

from videozoo.registry import ModelSpec
from videozoo.verify.common import make_check


def check_extra(spec: ModelSpec, name: str) -> dict:
    """Run ``spec.checks[name]()``; status from its ``passed``, the rest goes to ``measured``.

    The dict may carry ``expected`` (moved to the record's ``expected``); a ``tolerance`` and a
    ``max_abs_diff`` are what ``verify --compare`` re-checks.
    """
    start = time.perf_counter()
    if name not in spec.checks:
        return make_check(name, "not-run", f"no {name} check registered for this model",
                          reason=f"the model file registers no {name!r} check")
    registered = spec.checks[name]
    result = dict(registered())
    passed = bool(result.pop("passed"))
    summary = str(result.pop("summary", "")) or f"{name} check {'passed' if passed else 'failed'}"
    expected = result.pop("expected", {})
    return make_check(name, "passed" if passed else "failed", summary, result,
                      expected if isinstance(expected, dict) else {"value": expected},
                      seconds=time.perf_counter() - start, evidence=registered.evidence)
