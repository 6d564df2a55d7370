"""Catalog loading: every kind of bad input gives its own path:line error, all in one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write
from papers_kb.catalog import CatalogError, load_catalog, normalise_repo_url
from papers_kb.cli import main


def problems(project: Path) -> list[str]:
    with pytest.raises(CatalogError) as exc:
        load_catalog(project / "data", root=project)
    return [str(p) for p in exc.value.problems]


def test_mini_catalog_loads_with_indexes(project: Path) -> None:
    cat = load_catalog(project / "data", root=project)
    assert set(cat.papers) == {"simonyan2014twostream", "lin2019tsm", "bertasius2021spacetime",
                               "radford2021learning", "maaz2024videochatgpt"}
    assert cat.stage_item("lin2019tsm") == (1, 2)
    assert cat.stage_item("toyset") == (1, 3)
    assert cat.prerequisites_of("lin2019tsm") == ["simonyan2014twostream"]
    assert cat.built_on_by("lin2019tsm") == ["bertasius2021spacetime"]
    assert [r.key for r in cat.repos_of("lin2019tsm")] == ["mit-han-lab-temporal-shift-module"]
    assert [d.key for d in cat.datasets_of("simonyan2014twostream")] == ["toyset"]
    assert cat.entries_from("seed-b.txt") == {"papers": 1, "datasets": 0, "repos": 0, "resources": 0, "results": 3}
    assert cat.where[("papers", "lin2019tsm")].line == 1
    assert not cat.warnings


def test_every_bad_input_reported_at_once_with_lines(project: Path) -> None:
    d = project / "data"
    # 1 YAML syntax error (line 3)
    write(d / "papers/broken.yaml", """
        key: broken
        title: Broken
        authors: [unclosed
        """)
    # 2 wrong type (year) on line 3, 3 unknown field on line 4
    write(d / "papers/wrongtype.yaml", """
        key: wrongtype
        title: Wrong type
        year: nineteen
        colour: blue
        """)
    # 4 bad arXiv id on line 3, 5 javascript: URL on line 4
    write(d / "papers/badids.yaml", """
        key: badids
        title: Bad ids
        arxiv_id: "18110.8383"
        url: "javascript:alert(1)"
        """)
    # 6 dangling reference: a result naming an unknown paper (line 2)
    write(d / "results/dangling.yaml", """
        - method: Ghost
          paper: nosuchpaper
          metric: top1
          value: 50
          unit: "%"
          kind: paper-reported
          source: {doc: seed-a.txt}
        """)
    # 7 duplicate key: a second dataset file reusing key toyset
    write(d / "datasets/toyset-again.yaml", """
        key: toyset
        name: Toy again
        """)
    # 8 duplicate arXiv id (TSM's) under another key
    write(d / "papers/tsmcopy2019.yaml", """
        key: tsmcopy2019
        title: A different title
        arxiv_id: "1811.08383"
        """)
    found = problems(project)
    text = "\n".join(found)
    assert "data/papers/broken.yaml:3: YAML syntax error" in text
    assert "data/papers/wrongtype.yaml:3: year:" in text
    assert "data/papers/wrongtype.yaml:4: colour: unknown field" in text
    assert "data/papers/badids.yaml:3: arxiv_id: '18110.8383' is not an arXiv id" in text
    assert "data/papers/badids.yaml:4: url: 'javascript:alert(1)': only http:// and https:// URLs" in text
    assert "data/results/dangling.yaml:2: paper: unknown paper 'nosuchpaper'" in text
    assert ("data/datasets/toyset.yaml:1: key: duplicate dataset key 'toyset' "
            "(first defined at data/datasets/toyset-again.yaml:1)") in text
    assert "data/papers/tsmcopy2019.yaml:3: arxiv_id: duplicate arXiv id 1811.08383" in text


def test_validate_cli_exit_status_and_message(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--root", str(project), "validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: 5 papers, 1 datasets, 1 repos, 3 results")
    write(project / "data/papers/lin2019tsm.yaml", """
        key: lin2019tsm
        title: TSM
        arxiv_id: 1811.08383v2
        stage: 1
        """)
    assert main(["--root", str(project), "validate"]) == 1
    err = capsys.readouterr().err
    assert "data/papers/lin2019tsm.yaml:3: arxiv_id: '1811.08383v2': store the arXiv id without its version suffix" in err
    assert err.strip().endswith("1 problem(s) found")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("year", "1800", "greater than or equal to 1950"),
        ("stage", "5", "less than or equal to 4"),
        ("doi", "doi:10.1/x", "is not a DOI"),
        ("pdf", "ftp://example.org/a.pdf", "only http:// and https://"),
    ],
)
def test_field_validators(project: Path, field: str, value: str, message: str) -> None:
    write(project / "data/papers/extra2020paper.yaml", f"""
        key: extra2020paper
        title: Extra
        {field}: "{value}"
        """)
    assert any(message in p and "extra2020paper.yaml:3" in p for p in problems(project))


def test_result_units_and_ranges(project: Path) -> None:
    write(project / "data/results/more.yaml", """
        - {paper: lin2019tsm, method: TSM, metric: top1, value: 120, unit: "%", kind: measured, source: {doc: seed-a.txt}}
        - {paper: lin2019tsm, method: TSM, metric: params, value: 24.3, unit: "%", kind: measured, source: {doc: seed-a.txt}}
        - {paper: lin2019tsm, method: TSM, metric: params, value: -1, unit: M, kind: measured, source: {doc: seed-a.txt}}
        """)
    text = "\n".join(problems(project))
    assert "more.yaml:1" in text and "accuracy must be between 0 and 100" in text
    assert "more.yaml:2" in text and "metric 'params' must have unit 'M'" in text
    assert "more.yaml:3" in text and "params must be > 0" in text


def test_stage_consistency_and_prerequisites(project: Path) -> None:
    write(project / "data/papers/radford2021learning.yaml", """
        key: radford2021learning
        title: Learning Transferable Visual Models From Natural Language Supervision
        stage: 2
        sources: [{doc: seed-a.txt}]
        """)
    stages = (project / "data/stages.yaml").read_text().replace("prerequisites: [radford2021learning]",
                                                                   "prerequisites: [nobody2020]")
    (project / "data/stages.yaml").write_text(stages)
    text = "\n".join(problems(project))
    assert "radford2021learning.yaml:3: stage: paper is listed in stage 3" in text
    assert "data/stages.yaml:" in text and "unknown prerequisite 'nobody2020'" in text


def test_duplicate_repo_url_is_case_and_slash_insensitive(project: Path) -> None:
    write(project / "data/repos/copy.yaml", """
        key: copy
        url: https://github.com/mit-han-lab/temporal-shift-module/
        """)
    assert any("duplicate repository URL" in p for p in problems(project))
    assert normalise_repo_url("https://www.GitHub.com/a/B.git?tab=readme") == "github.com/a/b"


def test_reproduction_record_must_name_a_known_paper(project: Path) -> None:
    rec = {"paper": "ghost2020", "model": "ghost", "source_file": "videozoo/models/ghost.py",
           "command": "python -m videozoo.verify ghost", "generated": "2026-01-01T00:00:00Z",
           "checks": [{"name": "builds", "status": "passed", "evidence": "reported-figure", "summary": "ok"}]}
    (project / "data/reproduction").mkdir()
    (project / "data/reproduction/ghost.json").write_text(json.dumps(rec))
    assert any("unknown paper 'ghost2020'" in p for p in problems(project))


def test_export_json_has_the_top_level_keys(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "kb.json"
    assert main(["--root", str(project), "export", "--json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert {"papers", "datasets", "repos", "results", "stages"} <= set(data)
    assert [p["key"] for p in data["papers"]][:2] == ["bertasius2021spacetime", "lin2019tsm"]
    assert data["stages"][0]["items"][1]["prerequisites"] == ["simonyan2014twostream"]


def test_schema_command_writes_json_schemas(project: Path, tmp_path: Path) -> None:
    assert main(["--root", str(project), "schema", "-o", str(tmp_path / "schemas")]) == 0
    paper = json.loads((tmp_path / "schemas/paper.schema.json").read_text())
    assert paper["additionalProperties"] is False and "arxiv_id" in paper["properties"]
