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


BILLION_LAUGHS = """\
key: laughs2020
title: Billion laughs
lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
j: &j [*i,*i,*i,*i,*i,*i,*i,*i,*i]
k: &k [*j,*j,*j,*j,*j,*j,*j,*j,*j]
l: &l [*k,*k,*k,*k,*k,*k,*k,*k,*k]
m: &m [*l,*l,*l,*l,*l,*l,*l,*l,*l]
"""


def test_alias_bomb_is_refused_before_expansion(project: Path) -> None:
    # 9**13 (2.5e12) strings if expanded; refused at the first alias instead
    assert len(BILLION_LAUGHS.encode()) < 600
    (project / "data/papers/laughs2020.yaml").write_text(BILLION_LAUGHS)
    found = problems(project)
    assert "data/papers/laughs2020.yaml:4: b[0]: YAML alias *a is not allowed" in "\n".join(found)
    assert len([p for p in found if "laughs2020" in p]) == 1


def test_any_alias_is_refused(project: Path) -> None:
    write(project / "data/papers/alias2020.yaml", """
        key: alias2020
        title: Alias
        aliases: &names [One, Two]
        notes: *names
        """)
    assert any(p.startswith("data/papers/alias2020.yaml:4: notes: YAML alias *names is not allowed")
               for p in problems(project))


def test_oversize_file_is_reported_unread(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papers_kb.catalog as catalog

    assert catalog.MAX_FILE_BYTES == 1 << 20
    write(project / "data/papers/big2020.yaml", "key: big2020\ntitle: Big\nsummary: " + "x" * (1 << 20) + "\n")
    found = problems(project)
    assert found[0].startswith("data/papers/big2020.yaml: file is 1,048,610 bytes; a YAML file under data/ may "
                               "hold at most 1,048,576 bytes (split it into several files)")
    monkeypatch.setattr(catalog, "MAX_FILE_BYTES", 100)  # applies to the list files too
    assert any(p.startswith("data/stages.yaml: file is") for p in problems(project))


@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "{}\n", "[]\n", "---\n"])
def test_empty_entry_file_is_an_error(project: Path, text: str) -> None:
    (project / "data/datasets/nothing.yaml").write_text(text)
    assert "data/datasets/nothing.yaml: file is empty: an entry file holds one mapping (or a list of mappings)" \
        in problems(project)


def test_duplicate_yaml_keys_and_tags_are_errors(project: Path) -> None:
    write(project / "data/papers/dupkey2020.yaml", """
        key: dupkey2020
        title: First
        sources:
          - {doc: seed-a.txt, doc: seed-b.txt}
        title: Second
        """)
    write(project / "data/papers/tagged2020.yaml", """
        key: tagged2020
        title: !!python/object:os.system echo
        """)
    text = "\n".join(problems(project))
    assert "data/papers/dupkey2020.yaml:4: sources[0].doc: duplicate key (first at line 4)" in text
    assert "data/papers/tagged2020.yaml:2: title: unsupported YAML tag" in text


def test_yaml_12_scalars(project: Path) -> None:
    # YAML 1.2 core schema: `no` is text (a language code), 010 is ten, dates are dates
    write(project / "data/resources/more.yaml", """
        - key: norsk
          title: Norsk
          url: https://example.org/no
          kind: blog
          lang: no
          date: 2021-03-01
        """)
    cat = load_catalog(project / "data", root=project)
    assert cat.resources["norsk"].lang == "no" and str(cat.resources["norsk"].date) == "2021-03-01"


def test_indexes_answer_as_scans_of_the_real_catalog() -> None:
    """The look-ups read indexes built once; they must answer as a scan of every entry would."""
    from conftest import REPO

    cat = load_catalog(REPO / "data", root=REPO)
    papers = sorted(cat.papers.values(), key=lambda p: (-(p.year or 0), p.key))
    assert cat.sorted_papers() == papers
    items = [(n, i, item) for n in sorted(cat.stages) for i, item in enumerate(cat.stages[n].items, 1)]
    for key in [*cat.papers, *cat.datasets]:
        assert cat.stage_item(key) == next(((n, i) for n, i, item in items if item.ref == key), None)
        assert cat.prerequisites_of(key) == next((list(item.prerequisites) for _, _, item in items
                                                  if item.ref == key), [])
        assert cat.built_on_by(key) == [item.ref for _, _, item in items if key in item.prerequisites]
    for key, paper in cat.papers.items():
        assert cat.repos_of(key) == sorted((r for r in cat.repos.values() if key in r.papers),
                                           key=lambda r: (r.official is not True, r.key))
        assert cat.results_of(key) == [r for r in cat.results if r.paper == key]
        ds = {d.key for d in cat.datasets.values() if key in d.papers} | {r.dataset for r in cat.results
                                                                         if r.paper == key and r.dataset}
        assert [d.key for d in cat.datasets_of(key)] == sorted(ds)
        related = [(r.kind, r.paper) for r in paper.related]
        for p in cat.papers.values():
            for r in p.related:
                if r.paper == key and not any(o == p.key for _, o in related):
                    related.append((f"{r.kind} (of)", p.key))
        assert cat.related_of(key) == related
        assert cat.reproduction_of(key) == sorted((r for r in cat.reproduction.values() if r.paper == key),
                                                  key=lambda r: (r.variant is not None, r.model))
    assert sum(bool(cat.related_of(k)) for k in cat.papers) >= 2  # both directions of a relation are checked
    for tag in cat.tags:
        assert cat.papers_with_tag(tag) == [p for p in papers if tag in p.tags]
    for dataset in cat.datasets:
        assert cat.results_on(dataset) == [r for r in cat.results if r.dataset == dataset]
    for doc in [*cat.sources, "no-such-doc"]:
        expected = {kind: sum(1 for e in entries if any(s.doc == doc for s in e.sources))
                    for kind, entries in (("papers", cat.papers.values()), ("datasets", cat.datasets.values()),
                                          ("repos", cat.repos.values()), ("resources", cat.resources.values()))}
        expected["results"] = sum(1 for r in cat.results if r.source.doc == doc)
        assert cat.entries_from(doc) == expected


def test_yaml_values_match_the_round_trip_parser_on_every_data_file() -> None:
    """PyYAML (C loader, YAML 1.2 scalars) reads data/ as the round-trip parser that
    rewrites files (ruamel.yaml) does."""
    from ruamel.yaml import YAML

    from conftest import REPO
    from papers_kb.catalog import compose_yaml, yaml_to_python

    def plain(node):  # ruamel's round-trip types -> the plain Python types they subclass
        if isinstance(node, dict):
            return {str(k): plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        for t in (bool, str, int, float):
            if isinstance(node, t):
                return t(node)
        return node

    files = sorted((REPO / "data").rglob("*.yaml"))
    assert len(files) > 300
    for f in files:
        text = f.read_text(encoding="utf-8")
        ours = yaml_to_python(compose_yaml(text))
        theirs = plain(YAML(typ="rt").load(text))
        assert ours == theirs and repr(ours) == repr(theirs), f
    text = "a: no\nb: 010\nc: 1:20\nd: 1e3\ne: 0o17\nf: 2021-03-01\ng: ~\nh: .inf\ni: TRUE\n"
    assert repr(yaml_to_python(compose_yaml(text))) == repr(plain(YAML(typ="rt").load(text)))
