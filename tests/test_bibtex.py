"""BibTeX export: bibtexparser round trip, an independent reader (pybtex), stable keys."""

from __future__ import annotations

from pathlib import Path

import bibtexparser
import pytest

from conftest import REPO, write
from papers_kb.bibtex import export_bibtex, paper_entry, protect_capitals
from papers_kb.catalog import load_catalog
from papers_kb.cli import main
from papers_kb.schema import Paper

pybtex = pytest.importorskip("pybtex")
from pybtex import errors as pybtex_errors  # noqa: E402
from pybtex.database import parse_string  # noqa: E402
from pybtex.plugin import find_plugin  # noqa: E402

REQUIRED = {"inproceedings": "booktitle", "article": "journal", "misc": None, "online": None}


def independent_read(text: str) -> int:
    """Parse and format with pybtex's plain style in strict mode: any warning raises."""
    pybtex_errors.set_strict_mode(True)
    data = parse_string(text, "bibtex")
    style = find_plugin("pybtex.style.formatting", "plain")()
    formatted = list(style.format_bibliography(data).entries)
    for key, entry in data.entries.items():
        if not entry.persons.get("author"):
            # only papers whose authors could not be confirmed, exported as @misc with a note
            assert entry.type == "misc" and entry.fields.get("note") == "Authors not confirmed", f"{key}: empty author"
        for fld in ("title", "year"):
            assert entry.fields.get(fld, "").strip(), f"{key}: empty {fld}"
        need = REQUIRED.get(entry.type)
        if need:
            assert entry.fields.get(need, "").strip(), f"{key}: empty {need}"
        if entry.type in ("misc", "online") and "arxiv.org" in entry.fields.get("url", ""):
            assert entry.fields.get("eprint"), f"{key}: arXiv preprint without eprint"
    return len(formatted)


@pytest.fixture(scope="module")
def real_catalog():
    return load_catalog(REPO / "data", root=REPO)


def test_real_catalog_round_trip_and_independent_reader(real_catalog) -> None:
    text = export_bibtex(real_catalog)
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks
    keys = [e.key for e in lib.entries]
    assert len(keys) == len(set(keys)) == len(real_catalog.papers)
    for e in lib.entries:
        p = next(p for p in real_catalog.papers.values() if (p.citation_key or p.key) == e.key)
        expected = paper_entry(p)
        assert e.entry_type == expected.entry_type
        assert {f.key: f.value for f in e.fields} == {f.key: f.value.strip("{}") if f.key == "month" else f.value
                                                       for f in expected.fields}
    assert independent_read(text) == len(real_catalog.papers)
    unauthored = [p.key for p in real_catalog.papers.values() if not p.authors]
    assert len(unauthored) <= 5, unauthored  # the few the sources could not confirm
    assert independent_read(export_bibtex(real_catalog, biblatex=True).replace("@online", "@misc")) == len(keys)


def test_entry_types_and_fields(project: Path) -> None:
    cat = load_catalog(project / "data", root=project)
    text = export_bibtex(cat)
    assert "@inproceedings{lin2019tsm," in text
    assert "booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)}" in text
    write(project / "data/papers/doe2020preprint.yaml", """
        key: doe2020preprint
        title: "Video & Audio_Fusion: 50% of 3D CNNs #1"
        authors: [Mario Lučić, "Perez Rúa, Juan Manuel", Hildegard Kühne]
        year: 2020
        venue: arXiv
        venue_type: preprint
        arxiv_id: "2001.00001"
        arxiv: {published: 2020-01-02, primary_category: cs.CV}
        sources: [{doc: seed-a.txt}]
        """)
    cat = load_catalog(project / "data", root=project)
    bib = export_bibtex(cat, keys=["doe2020preprint"])
    assert bib.startswith("@misc{doe2020preprint,")
    assert "Lu{\\v{c}}i{\\'c}, Mario and Perez R{\\'u}a, Juan Manuel and K{\\\"u}hne, Hildegard" in bib
    assert "{\\&}" in bib and "{\\%}" in bib and "{\\_}" in bib and "{\\#}" in bib and "{{3D}}" not in bib
    assert "{3D} {CNNs}" in bib and "archivePrefix = {arXiv}" in bib and "primaryClass = {cs.CV}" in bib
    assert "month = jan" in bib
    latex = export_bibtex(cat, keys=["doe2020preprint"], biblatex=True)
    assert latex.startswith("@online{doe2020preprint,") and "Lučić, Mario" in latex and "Kühne" in latex
    assert independent_read(bib) == 1


def test_selection_by_stage_tag_key(project: Path, capsys) -> None:
    assert main(["--root", str(project), "export", "--bibtex", "--stage", "1"]) == 0
    out = capsys.readouterr().out
    assert "{lin2019tsm," in out and "{simonyan2014twostream," in out and "bertasius" not in out
    assert main(["--root", str(project), "export", "--bibtex", "--tag", "transformer"]) == 0
    assert capsys.readouterr().out.count("@") == 1


def test_keys_stable_when_unrelated_paper_added(project: Path) -> None:
    before = [e.key for e in bibtexparser.parse_string(export_bibtex(load_catalog(project / "data"))).entries]
    write(project / "data/papers/lin2019other.yaml", """
        key: lin2019other
        title: Another paper by a Lin in 2019
        authors: [Ji Lin]
        year: 2019
        sources: [{doc: seed-a.txt}]
        """)
    after = [e.key for e in bibtexparser.parse_string(export_bibtex(load_catalog(project / "data"))).entries]
    assert set(before) < set(after) and "lin2019tsm" in after and len(after) == len(before) + 1


def test_pinned_citation_key() -> None:
    p = Paper(key="x2020y", title="T", authors=["A B"], year=2020, citation_key="Custom:2020")
    assert paper_entry(p).key == "Custom:2020"


def test_capital_protection() -> None:
    assert protect_capitals("{TSM}: a Temporal Shift") == "{TSM}: a Temporal Shift"
    assert protect_capitals("ViViT: A Video Vision Transformer") == "{ViViT}: A Video Vision Transformer"
    assert protect_capitals("R(2+1)D and CLIP") == "{R(2+1)D} and {CLIP}"


def test_page_only_fields_do_not_change_an_entry(real_catalog) -> None:
    # the BibTeX downloads are not written again when only these fields change: check that
    # paper_entry indeed never shows them (each set to another value, BibTeX and BibLaTeX)
    from papers_kb.bibtex import PAGE_ONLY_FIELDS, write as write_bib
    from papers_kb.schema import Link, Relation, SourceRef

    other = {"short_name": "Other name", "aliases": ["Another alias"], "authors_note": "other note",
             "year_note": "other note", "links": [Link(kind="blog", url="https://example.org/post")],
             "tags": ["other-tag"], "summary": "Another summary.", "notes": "Other notes.",
             "related": [Relation(paper="someone2020other", kind="see-also")], "confirmed": "other",
             "sources": [SourceRef(doc="other.txt")]}
    assert set(other) == PAGE_ONLY_FIELDS
    for p in real_catalog.papers.values():
        changed = p.model_copy(update=other)
        for biblatex in (False, True):
            assert write_bib([changed], biblatex) == write_bib([p], biblatex), p.key
