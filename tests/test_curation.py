"""Curation checks of ``papers-kb validate`` (issue 25): each check fails on a small bad fixture.

Author lists ("et al.", "Last, First", empty without a note), the year rule (venue year before the
arXiv id's year, preprint year), one kind per key, and result sources that cite the paper itself
or a repository file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import write
from papers_kb.catalog import CatalogError, arxiv_year, load_catalog
from papers_kb.schema import Result, ResultSource


def problems(project: Path) -> list[str]:
    with pytest.raises(CatalogError) as exc:
        load_catalog(project / "data", root=project)
    return [str(p) for p in exc.value.problems]


def paper(project: Path, key: str, body: str) -> None:
    write(project / f"data/papers/{key}.yaml", f"key: {key}\n" + body + "sources: [{doc: seed-a.txt}]\n")


def test_the_mini_project_passes_the_curation_checks(project: Path) -> None:
    cat = load_catalog(project / "data", root=project)
    assert not cat.warnings


def test_truncated_author_list_is_an_error(project: Path) -> None:
    paper(project, "doe2020truncated", "title: Truncated\nauthors: [Jane Doe, Max Muster, et al.]\nyear: 2020\n")
    found = problems(project)
    assert any("doe2020truncated.yaml:3: authors[2]: 'et al.' stands for a truncated author list" in p for p in found), found


def test_last_first_name_form_warns(project: Path) -> None:
    paper(project, "doe2020comma", "title: Comma\nauthors:\n- Jane Doe\n- Van Gool, Luc\nyear: 2020\n")
    warned = [str(w) for w in load_catalog(project / "data", root=project).warnings]
    assert any("doe2020comma.yaml:1: warning: authors[1]: 'Van Gool, Luc': write names as 'First Last'" in w
               for w in warned), warned


def test_no_authors_warns_unless_explained(project: Path) -> None:
    paper(project, "nobody2020anon", "title: Anonymous\nyear: 2020\n")
    paper(project, "nobody2020explained", "title: Explained\nyear: 2020\n"
          "authors_note: the only record of it names no authors\n")
    cat = load_catalog(project / "data", root=project)
    warned = [str(w) for w in cat.warnings]
    assert any("nobody2020anon.yaml:1: warning: authors: no authors" in w for w in warned), warned
    assert not any("nobody2020explained" in w for w in warned), warned


def test_venue_year_before_arxiv_year_needs_a_note(project: Path) -> None:
    paper(project, "late2024posted", 'title: Posted late\nauthors: [A B]\nyear: 2024\nvenue: NeurIPS\n'
          'venue_type: conference\narxiv_id: "2602.03589"\n')
    paper(project, "late2024noted", 'title: Posted late, noted\nauthors: [A B]\nyear: 2024\nvenue: NeurIPS\n'
          'venue_type: conference\narxiv_id: "2602.03590"\n'
          'year_note: published at NeurIPS 2024, posted to arXiv in 2026\n')
    found = problems(project)
    assert any("late2024posted.yaml:4: year: year 2024 precedes the year of arXiv id 2602.03589 (2026)" in p
               for p in found), found
    assert not any("late2024noted" in p for p in found), found


def test_preprint_year_is_the_arxiv_v1_year(project: Path) -> None:
    paper(project, "early2019preprint", 'title: Preprint\nauthors: [A B]\nyear: 2019\nvenue: arXiv\n'
          'venue_type: preprint\narxiv_id: "1811.00001"\n')
    found = problems(project)
    assert any("early2019preprint.yaml:4: year: a preprint's year is its arXiv v1 year (2018 for 1811.00001)" in p
               for p in found), found


def test_arxiv_year() -> None:
    assert arxiv_year("2602.03589") == 2026
    assert arxiv_year("0704.0001") == 2007
    assert arxiv_year("hep-th/9901001") == 1999
    assert arxiv_year("cs.CV/0101001") == 2001


def test_a_key_names_one_kind_only(project: Path) -> None:
    write(project / "data/repos/toyset.yaml", "key: toyset\nurl: https://github.com/example/toyset\n")
    found = problems(project)
    assert any("data/repos/toyset.yaml:1: key: key 'toyset' is also a dataset key (data/datasets/toyset.yaml:1)" in p
               for p in found), found


def test_result_sources_cite_paper_or_repository_file(project: Path) -> None:
    write(project / "data/results/own.yaml", """
        - {paper: lin2019tsm, method: TSM, dataset: toyset, metric: top1, value: 71.2, unit: "%", kind: paper-reported,
           frames: 8, clips: 1, crops: 1, resolution: 224, backbone: ResNet-50,
           source: {paper: lin2019tsm, section: Table 3}}
        - {paper: lin2019tsm, method: TSM, dataset: toyset, metric: top1, value: 74.1, unit: "%", kind: author-reported,
           source: {url: "https://github.com/MIT-HAN-LAB/temporal-shift-module/blob/abc/README.md",
                    repo: mit-han-lab-temporal-shift-module}}
        - {paper: lin2019tsm, method: TSM, dataset: toyset, metric: top1, value: 73.2, unit: "%", kind: library-measured,
           source: {url: "https://github.com/open-mmlab/mmaction2/blob/abc/metafile.yml"}}
        """)
    cat = load_catalog(project / "data", root=project)
    assert len(cat.results) == 6
    write(project / "data/results/bad.yaml", """
        - {paper: lin2019tsm, method: A, metric: top1, value: 1, unit: "%", kind: paper-reported,
           source: {paper: ghost2020}}
        - {paper: lin2019tsm, method: B, metric: top1, value: 1, unit: "%", kind: author-reported,
           source: {url: "https://github.com/someone/else/blob/abc/README.md", repo: mit-han-lab-temporal-shift-module}}
        - {paper: lin2019tsm, method: C, metric: top1, value: 1, unit: "%", kind: author-reported,
           source: {url: "https://github.com/a/b/blob/abc/README.md", repo: nosuchrepo}}
        - {paper: lin2019tsm, method: D, metric: top1, value: 1, unit: "%", kind: survey-reported,
           source: {paper: lin2019tsm}}
        - {paper: lin2019tsm, method: E, metric: top1, value: 1, unit: "%", kind: paper-reported,
           source: {paper: lin2019tsm, doc: seed-b.txt}}
        """)
    text = "\n".join(problems(project))
    assert "bad.yaml:2: source.paper: unknown paper 'ghost2020'" in text
    assert ("bad.yaml:4: source.url: https://github.com/someone/else/blob/abc/README.md is not a file of repo "
            "'mit-han-lab-temporal-shift-module'") in text
    assert "bad.yaml:6: source.repo: unknown repo 'nosuchrepo'" in text
    assert "bad.yaml:7: a survey-reported result needs source.doc" in text
    assert "bad.yaml:10: source: a result source names exactly one of 'doc'" in text


def test_result_source_model_rules() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        ResultSource()
    with pytest.raises(ValidationError, match="only meaningful together with 'url'"):
        ResultSource(paper="lin2019tsm", repo="x")
    with pytest.raises(ValidationError, match="a library-measured result needs source.url"):
        Result(paper="p", method="m", metric="top1", value=1, unit="%", kind="library-measured",
               source=ResultSource(doc="seed-a.txt"))
    ok = Result(paper="p", method="m", metric="top1", value=1, unit="%", kind="measured", backbone="ViT-B/16",
                source=ResultSource(url="https://example.org/x"))
    assert ok.backbone == "ViT-B/16"


def test_family_names_name_an_author_and_end_the_name(project: Path) -> None:
    paper(project, "doe2020family", "title: Family\nauthors: [Luc Van Gool]\nyear: 2020\n"
          "family_names: {Luc Van Gool: Van Gool}\n")
    load_catalog(project / "data", root=project)
    paper(project, "doe2020family", "title: Family\nauthors: [Luc Van Gool]\nyear: 2020\n"
          "family_names: {Luc Van Gool: Gool Van, Jane Doe: Doe}\n")
    text = "\n".join(problems(project))
    assert "family_names: 'Gool Van' is not the last words of 'Luc Van Gool'" in text
