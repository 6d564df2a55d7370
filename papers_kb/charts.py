"""Charts drawn at build time with matplotlib, as SVG that the pages include inline.

Two charts per dataset with top-1 results (top-1 against year, top-1 against parameters in
millions on a log scale), and, on the stage pages, the temporal-order lesson of the
reproduction checks (held-out top-1 of each model on the synthetic motion task, worst of its
seeds, next to the order-agnostic controls).

What makes them readable in a page:

* ink (text, axes, grid) is ``currentColor`` and each series colour a CSS variable
  (``--kb-series-N``, set for the light and the dark scheme in ``site.css``), so the same SVG
  follows Material's colour scheme; the background is transparent;
* every point is numbered with its rank in the table under the chart (the numbers are placed
  so that they do not overlap, with a thin leader line when moved away) and carries a
  ``<title>`` shown on hover;
* each chart is drawn twice, wide (desktop) and narrow (phone), and the page shows one;
* ids are prefixed per chart, so that several charts can share a page.

The SVGs are deterministic (no dates, fixed hash salt per chart): an unchanged catalog
leaves them byte-identical. Nothing is fetched from elsewhere, so the site works offline.
"""

from __future__ import annotations

import functools
import io
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable

from papers_kb.catalog import Catalog
from papers_kb.reproduction import LESSON_CHECKS, lesson_rows
from papers_kb.render import (GENERATED, LESSON_AXES, Page, PageSpec, leaderboard_results, params_by_result, plain_text,
                              stage_lesson_models)

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

INK = "#010203"
"""Drawing colour of text, axes and grid; becomes ``currentColor`` in the page."""
SERIES = [f"#0102{i:02x}" for i in range(10, 18)]
"""Drawing colour of series N; becomes ``var(--kb-series-N)`` (site.css sets both schemes)."""
FALLBACK = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e67e00", "#8c564b", "#e377c2", "#17becf"]
"""Series colours where the CSS variables are missing (the SVG opened on its own)."""
SIZES = {"wide": (7.2, 4.9), "narrow": (4.6, 6.4)}
"""Figure size in inches per rendering; at 72 dpi one unit of the SVG is one point."""
MARGINS = {"left": 0.62, "right": 0.12, "top": 0.12, "bottom": 0.95}
"""Margins around the axes in inches (room for tick labels, axis titles and the legend): a
fixed layout, so that a chart is drawn once."""
FONT = 9  # pt


@dataclass(frozen=True)
class Point:
    """One point of a scatter chart: position, its number in the key, series and hover text."""

    x: float
    y: float
    number: int
    series: str
    title: str


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart (values in %): ``value`` is drawn (the worst seed), ``marks``
    are drawn as dots on it (each seed), ``control`` bars are hatched and named as such."""

    label: str
    value: float
    title: str
    marks: tuple[float, ...] = ()
    control: bool = False
    passed: bool = True


@dataclass
class Chart:
    """A chart as the page includes it: one SVG per rendering (``wide``, ``narrow``)."""

    svgs: dict[str, str] = field(default_factory=dict)


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, imported when a chart is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rc() -> dict[str, Any]:
    return {
        "svg.fonttype": "none", "font.size": FONT, "text.color": INK, "axes.edgecolor": INK,
        "axes.labelcolor": INK, "xtick.color": INK, "ytick.color": INK, "grid.color": INK,
        "grid.alpha": 0.18, "axes.linewidth": 0.8, "legend.frameon": False, "figure.dpi": 72,
        "savefig.dpi": 72,
    }


def _save(fig, uid: str) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": uid, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    plt.close(fig)
    return buf.getvalue()


def _figure(width: float, height: float, left: float = MARGINS["left"], bottom: float = MARGINS["bottom"]):
    """A figure of ``width`` x ``height`` inches with one axes inside fixed margins (inches)."""
    fig, ax = _pyplot().subplots(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - MARGINS["right"] / width, top=1 - MARGINS["top"] / height,
                        bottom=bottom / height)
    return fig, ax


def _clean_text(text: str) -> str:
    """Text from data for a chart: one line without control characters (they would make the
    SVG ill-formed), ``$`` escaped (matplotlib reads ``$...$`` as mathtext)."""
    return plain_text(text).replace("$", r"\$")


def inline_svg(raw: bytes, uid: str, titles: dict[str, str], label: str) -> str:
    """matplotlib's SVG made fit for inclusion in a page.

    Args:
        raw: the SVG file matplotlib wrote.
        uid: a prefix unique in the page for the ids the SVG keeps (clip paths, markers).
        titles: hover text by the ``gid`` of an element: becomes its ``<title>`` child.
        label: the accessible name of the chart (its first ``<title>``).

    Returns:
        One ``<svg>`` element as text, without XML declaration, size or metadata: ink in
        ``currentColor``, series colours as CSS variables, fonts inherited from the page.
    """
    root = ET.fromstring(raw)
    for meta in root.findall(f"{{{SVG_NS}}}metadata"):
        root.remove(meta)
    referenced = set(re.findall(rb"url\(#([^)]+)\)", raw)) | set(re.findall(rb'xlink:href="#([^"]+)"', raw))
    referenced = {r.decode() for r in referenced}
    for el in root.iter():
        el_id = el.get("id")
        if el_id in titles:
            title = ET.Element(f"{{{SVG_NS}}}title")
            title.text = titles[el_id]
            el.insert(0, title)
            el.set("class", "kb-point")
        if el_id is not None and el_id not in referenced:
            del el.attrib["id"]
        elif el_id is not None:
            el.set("id", f"{uid}-{el_id}")
    for attr in ("width", "height"):
        root.attrib.pop(attr, None)
    root.set("role", "img")
    name = ET.Element(f"{{{SVG_NS}}}title")  # the chart's accessible name (data stays out of attributes)
    name.text = label
    root.insert(0, name)
    text = ET.tostring(root, encoding="unicode")
    for ref in referenced:
        text = text.replace(f"url(#{ref})", f"url(#{uid}-{ref})").replace(f'href="#{ref}"', f'href="#{uid}-{ref}"')
    text = re.sub(r"font-family:[^;\"]+", "font-family: inherit", text)
    text = text.replace(INK, "currentColor")
    for i, colour in enumerate(SERIES):
        text = text.replace(colour, f"var(--kb-series-{i}, {FALLBACK[i]})")
    return text


# --- scatter charts with a numbered key ------------------------------------------------------


def _dodge(points: list[Point], width: float, y_step: float) -> list[float]:
    """x positions of year points spread sideways (at most ``width`` years) where points of one
    year would overlap: each point takes the nearest free slot."""
    slots = [0.0]
    for k in range(1, 6):
        slots += [k * width / 5, -k * width / 5]
    placed: list[tuple[float, float]] = []
    xs = []
    for p in points:
        for dx in slots:
            x = p.x + dx
            if all(abs(x - qx) > width / 6 or abs(p.y - qy) > y_step for qx, qy in placed):
                break
        placed.append((x, p.y))
        xs.append(x)
    return xs


def _place_labels(ax, pts: list[tuple[float, float, str]], radius: float) -> list[tuple[float, float, bool]]:
    """Offsets (points) of each number label from its point so that labels overlap neither each
    other nor any point, inside the axes where possible; ``True`` when moved far (leader line)."""
    to_disp = ax.transData.transform
    bbox = ax.get_window_extent()
    disp = [to_disp((x, y)) for x, y, _ in pts]
    occupied = [(px - radius, py - radius, px + radius, py + radius) for px, py in disp]
    directions = [(1, 0.6), (-1, 0.6), (1, -0.6), (-1, -0.6), (0, 1), (0, -1), (1, 0), (-1, 0),
                  (0.5, 1), (-0.5, 1), (0.5, -1), (-0.5, -1)]
    out = []

    def overlap(a, b) -> float:
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        return w * h if w > 0 and h > 0 else 0.0

    for (px, py), (_, _, text) in zip(disp, pts):
        w, h = 0.62 * FONT * len(text) + 1, FONT + 1
        best = None
        for ring in range(8):
            gap = radius + 1 + ring * 6
            for ux, uy in directions:
                norm = math.hypot(ux, uy)
                cx = px + ux / norm * (gap + w / 2 * abs(ux / norm))
                cy = py + uy / norm * (gap + h / 2 * abs(uy / norm))
                rect = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                outside = (rect[0] < bbox.x0 or rect[2] > bbox.x1 or rect[1] < bbox.y0 or rect[3] > bbox.y1)
                cost = 20 * sum(overlap(rect, o) for o in occupied) + (1e6 if outside else 0) + ring * 5
                if best is None or cost < best[0]:
                    best = (cost, rect, cx - px, cy - py, ring > 0)
            if best[0] < ring * 5 + 1:
                break
        occupied.append(best[1])
        out.append((best[2], best[3], best[4]))
    return out


def scatter(points: list[Point], series: list[str], *, x_label: str, y_label: str, uid: str, label: str,
            log_x: bool = False, years: bool = False) -> Chart:
    """A numbered scatter chart (see the module docstring), wide and narrow.

    Args:
        points: the points; ``number`` is the key shown next to each.
        series: series names in legend order (each point's ``series`` is one of them).
        x_label, y_label: axis titles.
        uid: id prefix unique in the page.
        label: the chart's accessible name.
        log_x: log-scaled x axis (parameters).
        years: x values are years: integer ticks, and points of one year spread sideways.
    """
    chart = Chart()
    colour = {s: SERIES[i % len(SERIES)] for i, s in enumerate(series)}
    for size, (w_in, h_in) in SIZES.items():
        plt = _pyplot()
        with plt.rc_context(_rc()):
            bottom = MARGINS["bottom"] + (0.2 if size == "narrow" and len(series) > 2 else 0)
            fig, ax = _figure(w_in, h_in, bottom=bottom)
            ys = [p.y for p in points]
            span = (max(ys) - min(ys)) if points else 1.0
            xs = _dodge(points, 0.7, span / 40) if years else [p.x for p in points]
            titles = {}
            for i, (p, x) in enumerate(zip(points, xs)):
                gid = f"kbpt{i}"
                ax.scatter([x], [p.y], s=30, color=colour[p.series], zorder=3, gid=gid, linewidths=0)
                titles[gid] = p.title
            for s in series:
                if any(p.series == s for p in points):
                    ax.scatter([], [], s=30, color=colour[s], label=_clean_text(s))
            if log_x:
                ax.set_xscale("log")
            if points:
                lo, hi = min(ys), max(ys)
                pad = max(span * 0.08, 1.0)
                ax.set_ylim(lo - pad, hi + pad)
                if years:
                    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
                    first, last = math.floor(min(p.x for p in points)), math.ceil(max(p.x for p in points))
                    step = 1 if size == "wide" or last - first <= 6 else 2
                    ax.set_xticks(range(first, last + 1, step))
                elif log_x:
                    ax.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
                else:
                    xspan = max(xs) - min(xs) or 1.0
                    ax.set_xlim(min(xs) - 0.08 * xspan, max(xs) + 0.08 * xspan)
            ax.set_xlabel(x_label)
            ax.set_ylabel(y_label)
            ax.grid(True, linewidth=0.6)
            for spine in ("top", "right"):
                ax.spines[spine].set_visible(False)
            offsets = _place_labels(ax, [(x, p.y, str(p.number)) for p, x in zip(points, xs)], radius=3.2)
            for i, (p, x, (dx, dy, far)) in enumerate(zip(points, xs, offsets)):
                ax.annotate(str(p.number), (x, p.y), xytext=(dx, dy), textcoords="offset points",
                            ha="center", va="center", fontsize=FONT - 1, gid=f"kblb{i}", zorder=4,
                            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": INK, "alpha": 0.6,
                                        "shrinkA": 0, "shrinkB": 3} if far else None)
                titles[f"kblb{i}"] = p.title
            if sum(1 for s in series if any(p.series == s for p in points)) > 1:
                ncol = min(len(series), 4 if size == "wide" else 2)
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.48 / (h_in - MARGINS["top"] - bottom)),
                          ncol=ncol, fontsize=FONT, handletextpad=0.3, columnspacing=1.2)
            raw = _save(fig, f"{uid}-{size}")
        chart.svgs[size] = inline_svg(raw, f"{uid}-{size}", titles, label)
    return chart


def bars(items: list[Bar], *, x_label: str, uid: str, label: str, chance: float | None = None,
         expected: float | None = None) -> Chart:
    """A horizontal bar chart of percentages (0-100), wide and narrow.

    Args:
        items: bars, top to bottom.
        x_label: axis title.
        uid: id prefix unique in the page.
        label: the chart's accessible name.
        chance: a dashed line at the chance level (%), labelled "chance".
        expected: a dotted line at the level a passing model must reach (%).
    """
    chart = Chart()
    for size, (w_in, _) in SIZES.items():
        plt = _pyplot()
        with plt.rc_context(_rc()):
            fig, ax = _figure(w_in, 0.34 * len(items) + 0.95, left=1.7 if size == "wide" else 1.35, bottom=0.55)
            titles = {}
            for i, b in enumerate(items):
                gid = f"kbpt{i}"
                y = len(items) - 1 - i
                ax.barh([y], [b.value], height=0.62, color=INK if b.control else SERIES[0 if b.passed else 1],
                        alpha=0.28 if b.control else 0.9, hatch="///" if b.control else None, edgecolor=INK,
                        linewidth=0.6, gid=gid, zorder=2)
                titles[gid] = b.title
                if b.marks:
                    ax.scatter(list(b.marks), [y] * len(b.marks), s=9, color=INK, zorder=3, linewidths=0)
                end = max([b.value, *b.marks]) if b.marks else b.value
                ax.text(min(end, 100) + 1.5, y, f"{b.value:.1f} %", va="center", fontsize=FONT - 1)
            ax.set_yticks(range(len(items)))
            ax.set_yticklabels([_clean_text(b.label) for b in reversed(items)])
            ax.set_xlim(0, 112)
            ax.set_xticks(range(0, 101, 25))
            ax.set_ylim(-0.6, len(items) - 0.4)
            if chance is not None:
                ax.axvline(chance, color=INK, linestyle="--", linewidth=0.8, alpha=0.7, zorder=1)
                ax.text(chance, len(items) - 0.45, " chance", fontsize=FONT - 1, va="bottom", ha="left")
            if expected is not None:
                ax.axvline(expected, color=INK, linestyle=":", linewidth=0.9, alpha=0.8, zorder=1)
                ax.text(expected, len(items) - 0.45, "pass ", fontsize=FONT - 1, va="bottom", ha="right")
            ax.set_xlabel(x_label)
            ax.grid(True, axis="x", linewidth=0.6)
            for spine in ("top", "right"):
                ax.spines[spine].set_visible(False)
            raw = _save(fig, f"{uid}-{size}")
        chart.svgs[size] = inline_svg(raw, f"{uid}-{size}", titles, label)
    return chart


# --- the site's charts -----------------------------------------------------------------------


def _chart_specs(stem: str, draw: Callable[..., Chart], **args: Any) -> list[PageSpec]:
    """The page specs of one chart, ``generated/.snippets/charts/<stem>-{wide,narrow}.svg``:
    ``draw(**args)`` is called once, when the first of its files must be rendered, and the
    inputs of each file are the drawing function's name and ``args`` (the points, labels ...)."""
    chart = functools.cache(functools.partial(draw, **args))
    inputs = [draw.__name__, args]
    return [PageSpec(f"{GENERATED}/.snippets/charts/{stem}-{size}.svg",
                     functools.partial(lambda size: chart().svgs[size] + "\n", size), [*inputs, size])
            for size in SIZES]


def leaderboard_charts(cat: Catalog) -> list[Page]:
    """Chart snippets ``generated/.snippets/charts/<dataset>-top1-vs-{year,params}-{wide,narrow}.svg``
    (see :func:`leaderboard_chart_specs`)."""
    return [spec.page() for spec in leaderboard_chart_specs(cat)]


def leaderboard_chart_specs(cat: Catalog) -> list[PageSpec]:
    """The charts of :func:`leaderboard_charts` as page specs, each drawn only when its points change.

    Points are numbered with their rank on the leaderboard page. A parameter count that counts
    only the trained part of a model (``Result.trainable_only``: e.g. a side network on a
    frozen backbone) is not plotted as model size; the page says so under the chart.
    """
    specs: list[PageSpec] = []
    for dkey in sorted({r.dataset for r in cat.results if r.metric == "top1" and r.dataset}):
        rows = leaderboard_results(cat, dkey)
        params = params_by_result(cat, rows)
        name = cat.datasets[dkey].name
        # series in order of their best result: colours do not depend on how families are spelt
        families = list(dict.fromkeys(r.family or "other" for r in rows))
        by_year, by_size = [], []
        for rank, r in enumerate(rows, 1):
            year = r.year or cat.papers[r.paper].year
            title = f"{rank}. {r.method}: {r.value:g} % top-1"
            if year:
                by_year.append(Point(year, r.value, rank, r.family or "other", f"{title} ({year})"))
            size = params.get(id(r))
            if size is not None and not size.trainable_only:
                by_size.append(Point(size.value, r.value, rank, r.family or "other",
                                     f"{title}, {size.value:g} M parameters"))
        specs += _chart_specs(f"{dkey}-top1-vs-year", scatter, points=by_year, series=families, x_label="year",
                              y_label="top-1 accuracy (%)", uid=f"{dkey}-year",
                              label=f"{name}: top-1 accuracy by year", years=True)
        specs += _chart_specs(f"{dkey}-top1-vs-params", scatter, points=by_size, series=families,
                              x_label="parameters (millions, log scale)", y_label="top-1 accuracy (%)",
                              uid=f"{dkey}-params", label=f"{name}: top-1 accuracy against model size", log_x=True)
    return specs


def lesson_charts(cat: Catalog) -> list[Page]:
    """Each stage's lesson chart, ``generated/.snippets/charts/stage-<n>-lesson-{wide,narrow}.svg``
    (see :func:`lesson_chart_specs`)."""
    return [spec.page() for spec in lesson_chart_specs(cat)]


def lesson_chart_specs(cat: Catalog) -> list[PageSpec]:
    """The lesson charts as page specs: the models' results on the stage's miniature task (worst
    seed) beside the controls that cannot solve it (best seed, hatched), with the chance level
    and the pass line; each drawn only when its bars change."""
    specs: list[PageSpec] = []
    for n in sorted(cat.stages):
        check = LESSON_CHECKS.get(n)
        rows = lesson_rows(stage_lesson_models(cat, n), check) if check else []
        if not rows:
            continue
        items = [Bar(r["label"], r["value"], r["title"], tuple(r["seeds"]), r["control"], r["passed"]) for r in rows]
        chance = 12.5 if check == "motion" else None
        specs += _chart_specs(f"stage-{n}-lesson", bars, items=items, x_label=LESSON_AXES[check],
                              uid=f"stage-{n}-lesson", label=f"Stage {n}: " + LESSON_AXES[check], chance=chance,
                              expected=90 if check == "motion" else None)
    return specs
