"""The knowledge base holds everything the five seed documents link to (issue 3).

These tests read the seed documents themselves (../shared/seeds/, or $PAPERS_KB_SEEDS) and
check the catalog against them: every arXiv id and GitHub URL they link, and every number of
the survey's Table 1 as a result attached to the right paper and dataset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import REPO
from papers_kb.catalog import load_catalog, normalise_repo_url, normalise_title

SEEDS = Path(os.environ.get("PAPERS_KB_SEEDS", REPO.parent / "shared" / "seeds"))
pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed documents not found at {SEEDS}")

ARXIV_LINK = re.compile(r"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})(?:v\d+)?|arXiv:(\d{4}\.\d{4,5})", re.I)
GITHUB_LINK = re.compile(r"https?://github\.com/[^\s)\]\"'<>]+", re.I)
SURVEY = "003_cde90359197f8a1e.txt"


@pytest.fixture(scope="module")
def cat():
    return load_catalog(REPO / "data", root=REPO)


@pytest.fixture(scope="module")
def seeds() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}


def test_every_seed_is_a_source(cat, seeds):
    assert set(seeds) == set(cat.sources)
    for name in seeds:
        assert sum(cat.entries_from(name).values()) > 0, f"nothing recorded from {name}"


def test_every_linked_arxiv_id_is_in_the_catalog(cat, seeds):
    have = {p.arxiv_id for p in cat.papers.values() if p.arxiv_id}
    # a seed link that a primary source shows to be a typo is recorded on the right paper
    # as a source note "seed link <id>"
    errata = {m for p in cat.papers.values() for s in p.sources
              for m in re.findall(r"seed link (\d{4}\.\d{4,5})", s.note or "")}
    missing = {}
    for name, text in seeds.items():
        for m in ARXIV_LINK.finditer(text):
            aid = m.group(1) or m.group(2)
            if aid not in have and aid not in errata:
                missing.setdefault(name, set()).add(aid)
    assert not missing, f"arXiv ids linked in the seeds but not in data/: {missing}"
    assert len(have) >= 100


def test_every_linked_github_url_is_in_the_catalog(cat, seeds):
    urls = set()
    for r in cat.repos.values():
        urls.add(normalise_repo_url(r.url))
    for entries in (cat.papers.values(), cat.datasets.values(), cat.resources.values()):
        for e in entries:
            for u in [getattr(e, "url", None), getattr(e, "pdf", None), *[l.url for l in getattr(e, "links", [])]]:
                if u:
                    urls.add(normalise_repo_url(u))
    missing = {}
    for name, text in seeds.items():
        for m in GITHUB_LINK.finditer(text):
            u = normalise_repo_url(m.group(0).rstrip(".,;"))
            parts = u.split("/")
            if len(parts) > 3 and parts[3] in ("pulls", "issues", "wiki", "releases"):
                u = "/".join(parts[:3])  # a page of the repository, not a path inside it
            if u.endswith(")-official"):
                u = u[: -len(")-official")]
            if u not in urls:
                missing.setdefault(name, set()).add(m.group(0))
    assert not missing, f"GitHub links of the seeds not in data/: {missing}"
    assert len(cat.repos) >= 85


def _references(text: str) -> dict[int, str]:
    refs = {}
    for m in re.finditer(r"^- \[(\d+)\] (.+?)(?=^- \[|\Z)", text, re.M | re.S):
        body = " ".join(m.group(2).split())
        start, end = body.find("“"), body.rfind("”")
        if not 0 <= start < end:
            start, end = body.find('"'), body.rfind('"')
        refs[int(m.group(1))] = body[start + 1:end] if 0 <= start < end else body
    return refs


def _table1(text: str) -> list[dict]:
    block = text[text.index("Table 1. Comparison"):text.index("3. COMPARISON")]
    rows, family = [], None
    cols = ("params", "hmdb51", "kinetics-400", "something-something-v2")
    for line in block.splitlines()[1:]:
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if not cells:
            continue
        if cells[1] == "Year":
            family = cells[0]
            continue
        m = re.match(r"^(.*?) \[(\d+)\]$", cells[0])
        assert m, line
        values = dict(zip(cols, cells[2:6]))
        rows.append({"method": m.group(1), "ref": int(m.group(2)), "year": int(cells[1]), "family": family,
                     "values": {k: float(v) for k, v in values.items() if v != "-"}})
    return rows


def test_every_table1_number_is_a_result_on_the_right_paper(cat, seeds):
    text = seeds[SURVEY]
    refs = _references(text)
    assert len(refs) == 45
    rows = _table1(text)
    assert len(rows) == 32
    titles = {normalise_title(t): p.key for p in cat.papers.values() for t in [p.title, *p.aliases]}
    results = [r for r in cat.results if r.source.doc == SURVEY and r.source.section == "Table 1"]
    checked = 0
    for row in rows:
        ref_title = normalise_title(refs[row["ref"]])
        paper = titles.get(ref_title) or next(
            (k for t, k in titles.items() if t and (ref_title.startswith(t) or t.startswith(ref_title))), None)
        assert paper, f"reference [{row['ref']}] {refs[row['ref']]!r} has no paper entry"
        for col, value in row["values"].items():
            metric = "params" if col == "params" else "top1"
            dataset = None if col == "params" else col
            match = [r for r in results if r.paper == paper and r.method == row["method"] and r.metric == metric
                     and r.dataset == dataset and abs(r.value - value) < 1e-9]
            assert len(match) == 1, f"Table 1 {row['method']} {col}={value}: {len(match)} results on {paper}"
            r = match[0]
            assert r.unit == ("M" if metric == "params" else "%") and r.kind == "survey-reported"
            assert r.year == row["year"] and r.family == row["family"]
            checked += 1
    assert checked == len(results) == 77


def test_learning_path_follows_seed_000(cat, seeds):
    text = seeds["000_d9b43978ac8825f5.txt"]
    # every stage of the seed has the same number of readings here (Video Swin added after Swin)
    counts = [len(re.findall(r"^\S.*$", part, re.M)) for part in re.split(r"^## Stage\d.*$", text, flags=re.M)[1:]]
    ours = [len(cat.stages[n].items) for n in (1, 2, 3, 4)]
    assert ours == [counts[0], counts[1] + 1, counts[2], counts[3]], (ours, counts)
    assert [i.ref for i in cat.stages[1].items][-1] == "finegym"
    for n, stage in cat.stages.items():
        for item in stage.items:
            if item.paper:
                assert cat.papers[item.paper].stage == n


def test_entries_cite_their_sources_and_many_are_shared(cat):
    assert not cat.warnings
    multi = [e for e in [*cat.papers.values(), *cat.datasets.values(), *cat.repos.values()]
             if len({s.doc for s in e.sources}) > 1]
    assert len(multi) >= 20
    for p in cat.papers.values():
        assert p.sources, p.key
