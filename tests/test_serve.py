"""``papers-kb serve``'s MkDocs hooks: incremental render before each build, and pages that
include a re-written snippet rebuilt by the dirty build."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conftest import write
from papers_kb import serve
from papers_kb.build import render_site


def test_pages_including_a_written_snippet_are_built_again(project: Path) -> None:
    render_site(project)
    config = SimpleNamespace(config_file_path=str(project / "mkdocs.yml"), docs_dir=str(project / "site_src"))
    serve.on_pre_build(config)
    assert serve._includers == set()  # nothing rendered, nothing to rebuild
    # a new paper changes the counts of the home page's snippet, not index.md itself
    write(project / "data/papers/extra2020paper.yaml", """
        key: extra2020paper
        title: An extension
        sources: [{doc: seed-a.txt}]
        """)
    serve.on_pre_build(config)
    assert "index.md" in serve._includers and "about.md" not in serve._includers
    site = project / "site"
    pages = {}
    for uri in ("index.md", "about.md"):
        dest = write(site / uri.replace(".md", ".html"), "old\n")
        pages[uri] = SimpleNamespace(src_uri=uri, abs_dest_path=str(dest))
    serve.on_files(list(pages.values()), config)
    assert not Path(pages["index.md"].abs_dest_path).exists()  # the dirty build makes it again
    assert Path(pages["about.md"].abs_dest_path).exists()


def test_including_pages_reads_snippet_lines(tmp_path: Path) -> None:
    write(tmp_path / "index.md", 'Intro\n\n--8<-- "home.md"\n')
    write(tmp_path / "generated/leaderboards/k.md", '--8<-- "charts/k-top1-vs-year-wide.svg"\n')
    write(tmp_path / "generated/papers/p.md", "mentions home.md and charts/k-top1-vs-year-wide.svg only in text\n")
    write(tmp_path / "generated/.snippets/home.md", '--8<-- "home.md"\n')  # snippets are not pages
    assert serve.including_pages(tmp_path, ["home.md"]) == ["index.md"]
    assert serve.including_pages(tmp_path, ["charts/k-top1-vs-year-wide.svg", "home.md"]) == [
        "generated/leaderboards/k.md", "index.md"]
    assert serve.including_pages(tmp_path, ["charts/other.svg"]) == []
