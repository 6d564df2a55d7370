"""Charts: inline SVG in currentColor with CSS-variable series, a title per point, ids unique
per chart, deterministic, hostile labels as text; trainable-only parameter counts not plotted."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from papers_kb import charts
from papers_kb.charts import Bar, Point

SVG = "{http://www.w3.org/2000/svg}"


def _points() -> list[Point]:
    return [Point(2019, 74.1, 1, "2D CNNs", "1. TSM: 74.1 % top-1 (2019)"),
            Point(2019, 74.0, 2, "2D CNNs", "2. TSM twin: 74.0 % top-1 (2019)"),
            Point(2021, 80.7, 3, "transformers", "3. <script>alert(1)</script> $x$ & co")]


def test_scatter_is_inline_svg_in_page_colours() -> None:
    chart = charts.scatter(_points(), ["2D CNNs", "transformers"], x_label="year", y_label="top-1 (%)",
                           uid="t-year", label="test chart", years=True)
    assert set(chart.svgs) == {"wide", "narrow"}
    for size, svg in chart.svgs.items():
        root = ET.fromstring(svg)
        assert root.tag == f"{SVG}svg" and "width" not in root.attrib and root.get("viewBox")
        assert root.get("role") == "img" and root[0].tag == f"{SVG}title" and root[0].text == "test chart"
        assert "currentColor" in svg and charts.INK not in svg
        assert "var(--kb-series-0" in svg and "var(--kb-series-1" in svg
        assert not any(c in svg for c in charts.SERIES)
        assert "<?xml" not in svg and "DOCTYPE" not in svg and "metadata" not in svg
        # every point and its number carry the point's title; the hostile one is text only
        titles = [t.text for t in root.iter(f"{SVG}title")]
        assert titles.count("1. TSM: 74.1 % top-1 (2019)") == 2 and len(titles) == 7
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        # the numbers 1..3 are drawn
        texts = {t.text for t in root.iter(f"{SVG}text")}
        assert {"1", "2", "3"} <= texts
        # ids kept are the referenced ones, prefixed per chart and rendering
        ids = [el.get("id") for el in root.iter() if el.get("id")]
        assert ids and all(i.startswith(f"t-year-{size}-") for i in ids)
        for ref in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', svg):
            assert (ref[0] or ref[1]) in ids


def test_charts_are_deterministic() -> None:
    a = charts.bars([Bar("TSM", 97.2, "TSM: 97.2 %", (97.2, 98.0, 99.1))], x_label="held-out top-1 (%)",
                    uid="b", label="bars", chance=12.5, expected=90)
    b = charts.bars([Bar("TSM", 97.2, "TSM: 97.2 %", (97.2, 98.0, 99.1))], x_label="held-out top-1 (%)",
                    uid="b", label="bars", chance=12.5, expected=90)
    assert a.svgs == b.svgs
    assert "97.2 %" in a.svgs["wide"]


def test_trainable_only_params_are_not_plotted(project) -> None:
    from conftest import write
    from papers_kb.catalog import load_catalog
    from papers_kb.render import Views, leaderboards

    write(project / "data/results/side.yaml", """
        - paper: lin2019tsm
          method: SideNet
          metric: params
          value: 4.0
          unit: M
          trainable_only: true
          kind: paper-reported
          source: {paper: lin2019tsm, section: Table 9}
        - paper: lin2019tsm
          method: SideNet
          dataset: toyset
          metric: top1
          value: 99.5
          unit: '%'
          kind: paper-reported
          source: {paper: lin2019tsm, section: Table 9}
        """)
    cat = load_catalog(project / "data", root=project)
    board = next(b for b in leaderboards(cat, Views(cat)) if b["key"] == "toyset")
    assert board["rows"][0]["method"] == "SideNet" and board["rows"][0]["trainable_only"]
    assert board["not_plotted"] == [{"method": "SideNet", "params": "4", "rank": 1}]
    pages = {p.path: p.content for p in charts.leaderboard_charts(cat)}
    params_svg = pages["generated/.snippets/charts/toyset-top1-vs-params-wide.svg"]
    year_svg = pages["generated/.snippets/charts/toyset-top1-vs-year-wide.svg"]
    assert "SideNet" not in params_svg and "1. SideNet: 99.5 % top-1" in year_svg
