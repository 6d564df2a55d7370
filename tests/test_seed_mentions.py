"""An entry cites a seed document only if that document mentions it (issue 25).

``sources`` in data/ is provenance: "this entry was found in that document". The check reads
the seed documents themselves (../shared/seeds/, or $PAPERS_KB_SEEDS), so it is a test over
the seeds, skipped when they are absent, rather than a ``papers-kb validate`` check: the seeds
are inputs kept outside the repository, and copying evidence snippets into data/ would keep a
second copy of their text that could drift from them.

An entry counts as mentioned when the document contains, after lower-casing and dropping
everything but letters and digits, one of its identifiers: a paper's title, alias, short name
(as a whole word), arXiv id or a URL of it; a dataset's name, alias or URL; a repository's URL
or owner/name; a resource's URL or title. Seed links recorded as errata ("seed link <id>" in a
source note) count as the paper's arXiv id. A dataset paper's short name that is also the name
of its dataset ("Kinetics") names the dataset, not the paper, and does not count.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import REPO
from papers_kb.catalog import load_catalog, normalise_repo_url

SEEDS = Path(os.environ.get("PAPERS_KB_SEEDS", REPO.parent / "shared" / "seeds"))
pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed documents not found at {SEEDS}")


def squash(text: str) -> str:
    """Lower-case letters and digits only (CJK characters kept), for loose matching."""
    return re.sub(r"[^0-9a-z\u3400-\u9fff]+", "", text.lower())


def url_forms(url: str) -> set[str]:
    return {squash(normalise_repo_url(url))}


def identifiers(kind: str, entry, dataset_names: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """(substrings to find in the squashed text, short names to find as whole words).

    ``dataset_names``: lower-cased names and aliases of the datasets this paper introduces.
    """
    long_ids: set[str] = set()
    words: set[str] = set()
    if kind == "papers":
        long_ids |= {squash(t) for t in [entry.title, *entry.aliases]}
        if entry.arxiv_id:
            long_ids.add(squash(entry.arxiv_id))
        for s in entry.sources:
            long_ids |= {squash(m) for m in re.findall(r"seed link (\d{4}\.\d{4,5})", s.note or "")}
        for u in [entry.url, entry.pdf, *[l.url for l in entry.links]]:
            if u:
                long_ids |= url_forms(u)
        if entry.short_name and entry.short_name.lower() not in dataset_names:
            words.add(entry.short_name.lower())
    elif kind == "datasets":
        long_ids |= {squash(t) for t in [entry.name, *entry.aliases]}
        for u in [entry.url, *[l.url for l in entry.links]]:
            if u:
                long_ids |= url_forms(u)
    elif kind == "repos":
        long_ids |= url_forms(entry.url)
        if entry.name:
            long_ids.add(squash(entry.name))
    else:  # resources
        long_ids |= url_forms(entry.url) | {squash(entry.title)}
    return {i for i in long_ids if len(i) >= 4}, words


def mentions(text: str, squashed: str, kind: str, entry, dataset_names: frozenset[str] = frozenset()) -> bool:
    long_ids, words = identifiers(kind, entry, dataset_names)
    if any(i in squashed for i in long_ids):
        return True
    lowered = text.lower()
    return any(re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", lowered) for w in words)


@pytest.fixture(scope="module")
def cat():
    return load_catalog(REPO / "data", root=REPO)


@pytest.fixture(scope="module")
def seeds() -> dict[str, tuple[str, str]]:
    out = {}
    for p in sorted(SEEDS.glob("*.txt")):
        text = p.read_text(encoding="utf-8")
        out[p.name] = (text, squash(text))
    return out


def introduced_names(cat, paper: str) -> frozenset[str]:
    """Lower-cased names and aliases of the datasets that list ``paper`` as introducing them."""
    return frozenset(n.lower() for d in cat.datasets.values() if paper in d.papers for n in [d.name, *d.aliases])


def test_every_cited_seed_mentions_the_entry(cat, seeds):
    missing = []
    for kind in ("papers", "datasets", "repos", "resources"):
        for key, entry in getattr(cat, kind).items():
            names = introduced_names(cat, key) if kind == "papers" else frozenset()
            for doc in sorted({s.doc for s in entry.sources}):
                text, squashed = seeds[doc]
                if not mentions(text, squashed, kind, entry, names):
                    missing.append(f"{kind}/{key} cites {doc}")
    assert not missing, "entries citing a seed that does not mention them:\n" + "\n".join(missing)


def test_the_check_fails_on_an_unmentioned_entry(cat, seeds):
    """The matcher is not vacuous: a paper the seed does not name is reported."""
    ghost = cat.papers["lin2019tsm"].model_copy(update={"title": "A Paper No Seed Names", "aliases": [],
                                                         "short_name": "QQQX", "arxiv_id": None,
                                                         "url": None, "pdf": None, "links": [], "sources": []})
    text, squashed = seeds["003_cde90359197f8a1e.txt"]
    assert not mentions(text, squashed, "papers", ghost)
    assert mentions(text, squashed, "papers", cat.papers["lin2019tsm"])
    # a dataset paper is not "mentioned" by its dataset's name alone
    kinetics = cat.papers["kay2017kinetics"].model_copy(update={"title": "Untitled", "aliases": [], "arxiv_id": None})
    text4, squashed4 = seeds["004_0cc10244232e8ce7.txt"]
    assert mentions(text4, squashed4, "papers", kinetics)
    assert not mentions(text4, squashed4, "papers", kinetics, introduced_names(cat, "kay2017kinetics"))
