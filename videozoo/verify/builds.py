"""Check ``builds``: the paper config's parameter count and FLOPs against reported figures.

Each :class:`~videozoo.registry.Reported` figure declares its kind (paper, survey, authors'
release) and a tolerance in %.  The check is

* ``failed`` when the paper config does not build or run, or when the gap to a checked figure
  (one with a tolerance) exceeds that figure's tolerance;
* ``unverified`` when it builds and runs but no figure is checked (none reported, or only
  figures of other configurations, declared with ``tolerance_pct=None``);
* ``passed`` only when at least one figure is checked and every checked figure is within its
  tolerance.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from videozoo.registry import ModelSpec, Reported, make_config
from videozoo.verify.common import make_check, model_input, shape_str, shapes

METRICS = {
    "params_m": ("params_m", "M params"),
    "gflops": ("gflops", "GFLOPs"),   # 2 FLOPs per multiply-add
    "gmacs": ("gmacs", "GMACs"),      # multiply-adds (what many papers call "FLOPs")
}
"""Reported metric -> (measured key, unit)."""
CPU_FALLBACK_MAX_PARAMS = 2e9   # larger models must run on the meta device; no fallback to a real CPU build


def _count_flops(model: nn.Module, inp: tuple) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inp)
    return int(counter.get_total_flops())


def compare_figure(measured: dict, rep: Reported) -> dict:
    """Compare one reported figure with the measurement.

    Args:
        measured: ``{"params_m", "gflops", "gmacs"}`` of the paper config.
        rep: The reported figure.

    Returns:
        ``{"value", "source", "kind", "tolerance_pct", "checked", ["note"], ["gap_pct",
        "within_tolerance"]}``; ``gap_pct`` is ``(measured - value) / value`` in %, and
        ``within_tolerance`` is ``None`` for a figure that is not checked.

    Raises:
        ValueError: unknown metric, or a zero reported value.
    """
    if rep.metric not in METRICS:
        raise ValueError(f"reported metric {rep.metric!r} unknown; expected one of {', '.join(METRICS)}")
    if not rep.value:
        raise ValueError(f"reported {rep.metric} of {rep.source!r} is 0")
    gap = (measured[METRICS[rep.metric][0]] - rep.value) / rep.value * 100
    entry = {"value": rep.value, "source": rep.source, "kind": rep.kind, "tolerance_pct": rep.tolerance_pct,
             "checked": rep.tolerance_pct is not None, "gap_pct": gap,
             "within_tolerance": None if rep.tolerance_pct is None else abs(gap) <= rep.tolerance_pct}
    if rep.note:
        entry["note"] = rep.note
    return entry


def check_builds(spec: ModelSpec) -> dict:
    """Paper config: parameter count and FLOPs at ``input_shape()``, compared with ``spec.reported``.

    Returns a check dict (evidence ``reported-figure``) whose status follows the module rules.
    """
    start = time.perf_counter()
    cfg = make_config(spec.alias, "paper")
    gen = torch.Generator().manual_seed(0)
    cpu_inp = model_input(spec, cfg, 1, gen)
    device = "meta"
    model = None
    try:
        with torch.device("meta"):
            model = spec.builder(cfg)
        model.eval()
        flops = _count_flops(model, tuple(torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t
                                          for t in cpu_inp))
    except Exception:  # not every model runs on meta tensors: build for real on the CPU
        # a multi-billion-parameter model (a video LLM) would not fit in CPU memory: never build it for real;
        # a video LLM whose meta build failed before it could be counted is refused too
        if (model is None and spec.video_qa) or (
                model is not None and sum(p.numel() for p in model.parameters()) > CPU_FALLBACK_MAX_PARAMS):
            raise
        device = "cpu"
        torch.manual_seed(0)
        model = spec.builder(cfg)
        model.eval()
        flops = _count_flops(model, cpu_inp)
    params = sum(p.numel() for p in model.parameters())
    params_m = params / 1e6
    gflops = flops / 1e9
    measured = {
        "params": params, "params_m": round(params_m, 4), "flops": flops, "gflops": gflops,
        "gmacs": gflops / 2, "input_shape": shapes(cpu_inp), "device": device,
        "flops_convention": "FLOPs = 2 x MACs (torch.utils.flop_counter.FlopCounterMode)",
    }
    figures = [compare_figure({"params_m": params_m, "gflops": gflops, "gmacs": gflops / 2}, rep)
               for rep in spec.reported]
    expected: dict = {}
    for rep, entry in zip(spec.reported, figures):
        expected.setdefault(rep.metric, []).append(entry)
    expected["rule"] = ("passed when every figure with a tolerance is within it (at least one); failed when one "
                        "is not; unverified when no figure is checked")
    checked = [f for f in figures if f["checked"]]
    outside = [f for f in checked if not f["within_tolerance"]]
    measured["figures_checked"] = len(checked)
    measured["figures_outside_tolerance"] = len(outside)
    status = "failed" if outside else "passed" if checked else "unverified"

    def describe(rep: Reported, f: dict) -> str:
        unit = METRICS[rep.metric][1]
        tol = f"tolerance {rep.tolerance_pct:g} %" if f["checked"] else "not checked: other configuration"
        out = "" if not f["checked"] or f["within_tolerance"] else ", OUTSIDE"
        return f"{rep.source} ({rep.kind}): {rep.value:g} {unit} (gap {f['gap_pct']:+.1f} %, {tol}{out})"

    shape = " + ".join(shape_str(s[1:]) for s in shapes(cpu_inp))
    summary = (f"{params_m:.2f} M params, {gflops:.1f} GFLOPs ({gflops / 2:.1f} GMACs; FLOPs = 2 x MACs) at {shape}; "
               + ("; ".join(describe(r, f) for r, f in zip(spec.reported, figures)) if figures
                  else "no reported figure to compare")
               + ("" if checked or not figures else "; no figure of this configuration to compare"))
    return make_check("builds", status, summary, measured, expected, seconds=time.perf_counter() - start,
                      evidence="reported-figure")
