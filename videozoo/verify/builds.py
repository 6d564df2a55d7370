"""Check ``builds``: the paper config's parameter count and FLOPs against reported figures."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from videozoo.registry import ModelSpec, make_config
from videozoo.verify.common import make_check, model_input, shape_str, shapes

PARAM_TOLERANCE = 0.10          # a params count this close to a reported figure "matches" it


def _count_flops(model: nn.Module, inp: tuple) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inp)
    return int(counter.get_total_flops())


def check_builds(spec: ModelSpec) -> dict:
    """Paper config: parameter count and FLOPs at ``input_shape()``, compared with ``spec.reported``."""
    start = time.perf_counter()
    cfg = make_config(spec.alias, "paper")
    gen = torch.Generator().manual_seed(0)
    cpu_inp = model_input(spec, cfg, 1, gen)
    device = "meta"
    try:
        with torch.device("meta"):
            model = spec.builder(cfg)
        model.eval()
        flops = _count_flops(model, tuple(torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t
                                          for t in cpu_inp))
    except Exception:  # not every model runs on meta tensors: build for real on the CPU
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
    expected: dict[str, list[dict]] = {}
    gaps = []
    within = []
    for rep in spec.reported:
        entry = {"value": rep.value, "source": rep.source}
        if rep.note:
            entry["note"] = rep.note
        if rep.metric == "params_m":
            gap = (params_m - rep.value) / rep.value * 100 if rep.value else float("inf")
            entry["gap_pct"] = gap
            within.append(abs(gap) <= PARAM_TOLERANCE * 100)
            gaps.append(f"{rep.source}: {rep.value:g} M (gap {gap:+.1f} %)")
        elif rep.metric == "gflops":
            entry["gap_pct_vs_gflops"] = (gflops - rep.value) / rep.value * 100 if rep.value else None
            entry["gap_pct_vs_gmacs"] = (gflops / 2 - rep.value) / rep.value * 100 if rep.value else None
            gaps.append(f"{rep.source}: {rep.value:g} GFLOPs")
        else:
            entry["metric"] = rep.metric
        expected.setdefault(rep.metric, []).append(entry)
    expected["rule"] = "the paper config builds and runs forward at the paper input; gaps recorded"
    measured["params_match_reported"] = any(within) if within else None
    passed = True
    shape = " + ".join(shape_str(s[1:]) for s in shapes(cpu_inp))
    summary = (f"{params_m:.2f} M params, {gflops:.1f} GFLOPs ({gflops / 2:.1f} GMACs; FLOPs = 2 x MACs) at {shape}"
               + ("; " + "; ".join(gaps) if gaps else "; no reported figure")
               + ("" if not within or any(within) else f" (differs by more than {PARAM_TOLERANCE:.0%})"))
    return make_check("builds", "passed" if passed else "failed", summary, measured, expected,
                  seconds=time.perf_counter() - start)

