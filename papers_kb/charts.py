"""Leaderboard charts, drawn at build time with matplotlib into SVG files.

Two charts per dataset with top-1 results: top-1 accuracy against year coloured by method
family, and top-1 against parameters (millions, log scale) for the results whose parameter
count is known. The SVGs are deterministic (fixed hash salt, no date metadata) so an
unchanged catalog leaves them byte-identical, and they embed no fonts or scripts from
elsewhere, so the site works offline.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from papers_kb.catalog import Catalog  # noqa: E402
from papers_kb.render import GENERATED, Page, plain_text  # noqa: E402

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _svg(fig) -> bytes:
    buf = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "papers-kb", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "papers-kb"}, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _label(text: str) -> str:
    """Text from data for a chart: one line without control characters (they would make the
    SVG ill-formed), ``$`` escaped (matplotlib reads ``$...$`` as mathtext)."""
    return plain_text(text).replace("$", r"\$")


def leaderboard_charts(cat: Catalog) -> list[Page]:
    """SVG pages ``generated/leaderboards/<dataset>-top1-vs-{year,params}.svg``."""
    pages: list[Page] = []
    params = {(r.paper, r.method): r.value for r in cat.results if r.metric == "params"}
    datasets = sorted({r.dataset for r in cat.results if r.metric == "top1" and r.dataset})
    for dkey in datasets:
        rows = [r for r in cat.results_on(dkey) if r.metric == "top1"]
        families = sorted({r.family or "other" for r in rows})
        colour = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(families)}
        name = _label(cat.datasets[dkey].name)

        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
        for fam in families:
            pts = sorted(((r.year or cat.papers[r.paper].year or 0, r.value, r.method) for r in rows
                          if (r.family or "other") == fam and (r.year or cat.papers[r.paper].year)))
            if not pts:
                continue
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=colour[fam], label=_label(fam), s=36, zorder=3)
            for x, y, label in pts:
                ax.annotate(_label(label), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xlabel("year")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"{name}: top-1 accuracy by year")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        pages.append(Page(f"{GENERATED}/leaderboards/{dkey}-top1-vs-year.svg", _svg(fig)))

        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
        drawn = False
        for fam in families:
            pts = [(params[(r.paper, r.method)], r.value, r.method) for r in rows
                   if (r.family or "other") == fam and (r.paper, r.method) in params]
            if not pts:
                continue
            drawn = True
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=colour[fam], label=_label(fam), s=36, zorder=3)
            for x, y, label in pts:
                ax.annotate(_label(label), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        if drawn:
            ax.set_xscale("log")
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no parameter counts reported for these results", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_xlabel("parameters (millions, log scale)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"{name}: top-1 accuracy against model size")
        ax.grid(True, alpha=0.3)
        pages.append(Page(f"{GENERATED}/leaderboards/{dkey}-top1-vs-params.svg", _svg(fig)))
    return pages
