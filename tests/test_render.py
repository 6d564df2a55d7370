"""Rendering: deterministic, write-if-changed, escaping of hostile text."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import write
from papers_kb.build import render_site
from papers_kb.catalog import load_catalog
from papers_kb.cli import main
from papers_kb.render import cell, md, render_pages


def test_render_is_deterministic_and_skips_unchanged(project: Path) -> None:
    first = render_site(project)
    assert first.render.written and not first.render.removed
    snapshot = {p: p.read_bytes() for p in (project / "site_src/generated").rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in snapshot}
    second = render_site(project)
    assert second.render.written == [] and second.render.unchanged == second.pages
    assert {p: p.read_bytes() for p in snapshot} == snapshot
    assert {p: p.stat().st_mtime_ns for p in snapshot} == mtimes


def test_pages_for_every_entry(project: Path) -> None:
    render_site(project)
    gen = project / "site_src/generated"
    for key in ("simonyan2014twostream", "lin2019tsm", "bertasius2021spacetime"):
        assert (gen / f"papers/{key}.md").is_file()
    for n in range(1, 5):
        assert (gen / f"stages/stage-{n}.md").is_file()
    stage1 = (gen / "stages/stage-1.md").read_text()
    # ordered items, with why-read, links, prerequisites, code and a reproduction slot
    assert stage1.index("Two-Stream Convolutional") < stage1.index("Temporal Shift Module") < stage1.index("ToySet")
    assert "**Why read it.** Temporal modelling at 2D cost." in stage1
    assert "[arXiv](https://arxiv.org/abs/1811.08383)" in stage1
    assert "**Read first:** [Two-Stream](../papers/simonyan2014twostream.md)" in stage1
    assert "(official)" in stage1 and "**In videozoo:**" in stage1
    tsm = (gen / "papers/lin2019tsm.md").read_text()
    assert "| TSM | [ToySet](../datasets/toyset.md) | top-1 (%) | 74.1 |" in tsm
    assert "Builds on it: [TimeSformer](../papers/bertasius2021spacetime.md)" in tsm
    board = (gen / "leaderboards/toyset.md").read_text()
    assert board.index("| 1 | [TSM]") < board.index("| 2 | [TN]")
    assert '--8<-- "charts/toyset-top1-vs-year-wide.svg"' in board
    assert (gen / ".snippets/charts/toyset-top1-vs-year-wide.svg").read_text().startswith("<svg ")


def test_removed_entries_lose_their_pages(project: Path) -> None:
    render_site(project)
    (project / "data/resources/links.yaml").unlink()
    (project / "data/repos/mit-han-lab-temporal-shift-module.yaml").unlink()
    rep = render_site(project)
    assert rep.render.written  # the repos index changed
    assert "generated/repos/index.md" in rep.render.written


def test_hostile_text_renders_as_text(project: Path) -> None:
    write(project / "data/papers/evil2020script.yaml", """
        key: evil2020script
        title: "<script>alert(1)</script> {{ config }} *bold* [link](javascript:x) | pipe"
        summary: "{% raw %}{{ 7*7 }}{% endraw %} <img src=x onerror=alert(1)> `code` _u_ # h"
        sources: [{doc: seed-a.txt}]
        """)
    cat = load_catalog(project / "data", root=project)
    full = next(p for p in render_pages(cat) if p.path.endswith("evil2020script.md")).content
    front, page = full.split("\n---\n", 1)
    page = re.sub(r"```bibtex.*?```", "", page, flags=re.S)  # code blocks are shown verbatim, as text
    assert "<script>" not in front and "&lt;script&gt;" in front  # escaped title
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "{{ config }}" not in page and "&#123;&#123; config &#125;&#125;" in page
    assert "<img" not in page and "*bold*" not in page and "[link](javascript" not in page
    assert "{% raw %}" in page.replace("&#123;", "{").replace("&#125;", "}")  # shown, not executed
    assert cell("a | b\nc") == "a &#124; b c"
    # and in the built HTML nothing executable survives
    assert main(["--root", str(project), "build"]) == 0
    html = (project / "site/generated/papers/evil2020script.html").read_text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert md(None) == ""
