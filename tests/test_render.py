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
    index = (gen / "papers/index.md").read_text()
    assert f"All {len(list((project / 'data/papers').glob('*.yaml')))} papers" in index
    assert "| [TSM: Temporal Shift Module for Efficient Video Understanding](lin2019tsm.md) (TSM) | 2019 |" in index
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


def test_pages_readers_follow(project: Path) -> None:
    """Breadcrumbs, previous/next along the path, aliases, grouped sources, provenance."""
    write(project / "data/papers/lin2019tsm.yaml", """
        key: lin2019tsm
        title: "TSM: Temporal Shift Module for Efficient Video Understanding"
        short_name: TSM
        aliases: [Temporal Shift Module for Efficient Video Understanding, tsm, Temporal Shift Module,
                  temporal shift module]
        authors: [Ji Lin, Chuang Gan, Song Han]
        year: 2019
        venue: ICCV
        venue_type: conference
        arxiv_id: "1811.08383"
        stage: 1
        tags: [temporal]
        notes: Seed 002 lists it twice; per seed-b.txt it is a 2D CNN.
        confirmed: arXiv abs page via search (bohrium record)
        sources:
          - {doc: seed-a.txt, section: Stage1}
          - {doc: seed-b.txt, section: Table 1, note: the seed rounds the figure}
          - {doc: seed-a.txt, section: Stage1}
        """)
    tags = project / "data/tags.yaml"
    tags.write_text(tags.read_text() + "- {key: temporal, name: Temporal modelling, group: approach}\n")
    render_site(project)
    gen = project / "site_src" / "generated"
    tsm = (gen / "papers/lin2019tsm.md").read_text()
    head, provenance = tsm.split("<summary>Provenance</summary>", 1)
    # breadcrumbs: Home > Papers > Stage 1 > TSM
    assert '[Home](../../index.md) › [Papers](index.md) › [Stage 1](../stages/stage-1.md) › TSM</nav>' in head
    # aliases: the title again (after "TSM: ") and the short name are dropped, duplicates once
    assert "*Also known as:* Temporal Shift Module\n" in head
    # the venue line and the aliases are separate paragraphs; tags are chips that link
    assert "[arXiv](https://arxiv.org/abs/1811.08383) · [PDF](https://arxiv.org/pdf/1811.08383)\n\n*Also" in head
    assert "[Temporal modelling](../tags/temporal.md){ .md-tag }" in head
    # each source document once, with its sections, by title
    assert head.count("[Seed A](../sources.md#src-seed-a-txt)") == 1
    assert "[Seed B](../sources.md#src-seed-b-txt): “Table 1”" in head
    # curation notes only in the collapsed block, documents by title
    for word in ("confirmed", "bohrium", "seed-b.txt", "rounds the figure"):
        assert word not in head
    assert "**Identifiers and facts checked:** arXiv abs page via search (bohrium record)" in provenance
    assert "per survey (seed-b.txt)" not in provenance and "per Seed B it is a 2D CNN" in provenance
    assert "**In Seed B:** the seed rounds the figure" in provenance
    # reported results come before the reproduction section
    assert tsm.index("## Reported results") < tsm.index("## Reproduction in videozoo") if "## Reproduction" in tsm \
        else "## Reported results" in tsm
    # previous and next reading along the path: Two-Stream before, ToySet (a dataset) after
    assert "[← Two-Stream](../papers/simonyan2014twostream.md){ rel=\"prev\" }" in provenance
    assert "[ToySet →](../datasets/toyset.md){ rel=\"next\" }" in provenance
    toyset = (gen / "datasets/toyset.md").read_text()
    assert "[Divided Space-Time →](../papers/bertasius2021spacetime.md)" in toyset or "stage-2" not in toyset
    # stage N links stage N+1 (rel=next); the last stage leads on to the papers
    for n in (1, 2, 3):
        page = (gen / f"stages/stage-{n}.md").read_text()
        assert f"(stage-{n + 1}.md){{ rel=\"next\" }}" in page
    assert "(../papers/index.md)" in (gen / "stages/stage-4.md").read_text()


def test_staged_paper_links_its_videozoo_file_and_the_repository_when_configured(project: Path) -> None:
    import datetime as _dt

    from papers_kb.build import site_source_url
    from papers_kb.render import render_pages
    from papers_kb.schema import Check, ReproductionRecord

    cat = load_catalog(project / "data", root=project)
    cat.reproduction = {"tsm": ReproductionRecord(
        paper="lin2019tsm", model="tsm", source_file="videozoo/models/tsm.py", command="c",
        generated=_dt.datetime(2026, 1, 1),
        checks=[Check(name="runs", status="passed", evidence="smoke-test", summary="ok")])}
    plain = next(p.content for p in render_pages(cat) if p.path.endswith("papers/lin2019tsm.md"))
    assert "[videozoo/models/tsm.py](../code/tsm.md)" in plain and "in the repository" not in plain
    (project / "pyproject.toml").write_text('[tool.papers-kb.site]\nsource-url = "https://example.org/kb/blob/main"\n')
    url = site_source_url(project)
    page = next(p.content for p in render_pages(cat, source_url=url) if p.path.endswith("papers/lin2019tsm.md"))
    assert "([in the repository](https://example.org/kb/blob/main/videozoo/models/tsm.py))" in page


def _generated(project: Path) -> dict[str, bytes]:
    gen = project / "site_src"
    return {str(p.relative_to(gen)): p.read_bytes() for p in (gen / "generated").rglob("*") if p.is_file()}


def _full_render(project: Path) -> dict[str, bytes]:
    from papers_kb.build import cached_abstracts, page_producers, site_source_url

    cat = load_catalog(project / "data", root=project)
    return {pg.path: pg.content.encode() if isinstance(pg.content, str) else pg.content
            for pg in render_pages(cat, extra=page_producers(), abstracts=cached_abstracts(project),
                                   source_url=site_source_url(project))}


def test_incremental_render_renders_only_the_pages_that_depend_on_an_edit(project: Path) -> None:
    first = render_site(project)
    assert len(first.render.rendered) == first.pages and first.render.unchanged == 0
    tsm = project / "data/papers/lin2019tsm.yaml"
    # a summary is shown on the paper's own page only (not in its BibTeX entry)
    tsm.write_text(tsm.read_text() + "summary: Shifts channels along time.\n")
    rep = render_site(project)
    assert rep.render.written == rep.render.rendered == ["generated/papers/lin2019tsm.md"]
    assert rep.render.unchanged == rep.pages - 1
    assert _generated(project) == _full_render(project)
    # a page count is in the BibTeX entry: the downloads that hold it are written again
    tsm.write_text(tsm.read_text() + "pages: 7083-7093\n")
    rep = render_site(project)
    assert {"generated/bib/all.bib", "generated/bib/stage-1.bib"} <= set(rep.render.written)
    assert "generated/bib/stage-2.bib" not in rep.render.rendered
    assert _generated(project) == _full_render(project)
    # a short name is shown wherever the paper is linked: index, stage, the pages of the papers
    # it builds on and that build on it ...; the other pages are not rendered
    tsm.write_text(tsm.read_text().replace("short_name: TSM", "short_name: TSM-renamed"))
    rep = render_site(project)
    assert {"generated/papers/lin2019tsm.md", "generated/papers/index.md", "generated/stages/stage-1.md",
            "generated/papers/bertasius2021spacetime.md", "generated/papers/simonyan2014twostream.md"} \
        <= set(rep.render.written)
    assert not {"generated/papers/radford2021learning.md", "generated/papers/maaz2024videochatgpt.md",
                "generated/stages/stage-3.md", "generated/resources.md"} & set(rep.render.rendered)
    assert rep.render.unchanged == rep.pages - len(rep.render.rendered)
    assert _generated(project) == _full_render(project)
    # a new paper relating to TSM: its page, and TSM's page shows the relation back
    write(project / "data/papers/extra2020paper.yaml", """
        key: extra2020paper
        title: An extension
        related: [{paper: lin2019tsm, kind: extends}]
        sources: [{doc: seed-a.txt}]
        """)
    rep = render_site(project)
    assert {"generated/papers/extra2020paper.md", "generated/papers/lin2019tsm.md"} <= set(rep.render.written)
    assert _generated(project) == _full_render(project)
    # removing it removes its page and renders the pages that linked to it again
    (project / "data/papers/extra2020paper.yaml").unlink()
    rep = render_site(project)
    assert rep.render.removed == ["generated/papers/extra2020paper.md"]
    assert "generated/papers/lin2019tsm.md" in rep.render.written
    assert _generated(project) == _full_render(project)


def test_render_cache_is_only_a_cache(project: Path) -> None:
    render_site(project)
    page = project / "site_src/generated/papers/lin2019tsm.md"
    good = page.read_bytes()
    page.write_text("edited by hand\n")  # a generated file changed behind the cache's back
    rep = render_site(project)
    assert rep.render.written == ["generated/papers/lin2019tsm.md"] and page.read_bytes() == good
    (project / ".cache/render/pages.json").write_text("{not json")
    rep = render_site(project)
    assert len(rep.render.rendered) == rep.pages and rep.render.written == []
    assert len(render_site(project, incremental=False).render.rendered) == rep.pages
    assert _generated(project) == _full_render(project)


def test_bib_downloads_are_the_export_of_the_real_catalog() -> None:
    from conftest import REPO
    from papers_kb.bibtex import bib_downloads, export_bibtex

    cat = load_catalog(REPO / "data", root=REPO)
    pages = {pg.path.rsplit("/", 1)[-1]: pg.content for pg in bib_downloads(cat)}
    assert pages["all.bib"] == export_bibtex(cat)
    for n in sorted(cat.stages):
        assert pages[f"stage-{n}.bib"] == export_bibtex(cat, stage=n)
