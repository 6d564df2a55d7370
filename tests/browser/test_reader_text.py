"""Reader text of the built site: curation notes and file names stay out of it.

Pages show curation notes only inside their collapsed "Provenance" blocks, which are kept out
of the search index; everything else a reader sees, and everything search finds, names source
documents by their titles and speaks to readers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

# What must not reach a reader: maintainers' words for the source documents, how identifiers
# were looked up, and the documents' file names.
FORBIDDEN = [
    re.compile(r"\bthe seed\b", re.I),
    re.compile(r"\bseed\s*0\d\d\b", re.I),
    re.compile(r"bohrium", re.I),
    re.compile(r"NOT confirmed"),
    re.compile(r"Identifiers confirmed"),
    re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b"),
]


def reader_text(html: str) -> str:
    """The text of a page's article a reader sees expanded: Provenance blocks and code
    listings (source code is shown verbatim) left out, tags dropped, entities kept."""
    article = html.split('<article class="md-content__inner', 1)[-1].split("</article>", 1)[0]
    article = re.sub(r'<details class="note kb-provenance".*?</details>', " ", article, flags=re.S)
    article = re.sub(r'<div class="kb-code".*?</div>\s*(?=<|$)', " ", article, flags=re.S)
    article = re.sub(r"<pre.*?</pre>", " ", article, flags=re.S)
    return re.sub(r"<[^>]+>", " ", article)


def test_no_curation_words_or_file_names_in_pages(site_dir: Path) -> None:
    hits = []
    for page in sorted(site_dir.rglob("*.html")):
        text = reader_text(page.read_text(encoding="utf-8"))
        for pat in FORBIDDEN:
            for m in pat.finditer(text):
                hits.append(f"{page.relative_to(site_dir)}: {text[max(0, m.start() - 60):m.end() + 40]!r}")
    assert hits == [], f"{len(hits)} hits, first: " + "\n".join(hits[:15])


def test_no_curation_words_or_file_names_in_the_search_index(site_dir: Path) -> None:
    docs = json.loads((site_dir / "search/search_index.json").read_text(encoding="utf-8"))["docs"]
    hits = []
    for doc in docs:
        if "/code/" in doc["location"]:
            continue  # code pages: only the introduction is indexed (the listing is excluded)
        text = f"{doc['title']} {doc['text']}"
        for pat in FORBIDDEN:
            for m in pat.finditer(text):
                hits.append(f"{doc['location']}: {text[max(0, m.start() - 60):m.end() + 40]!r}")
    assert hits == [], f"{len(hits)} hits, first: " + "\n".join(hits[:15])


def test_provenance_is_collapsed_and_unsearched(site_dir: Path) -> None:
    """Provenance blocks are closed <details>, and their text is not in the search index."""
    html = (site_dir / "generated/papers/lin2019tsm.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<details class="note kb-provenance"[^>]*>(.*?)</details>', html, flags=re.S)
    assert len(blocks) == 1 and '<details class="note kb-provenance" open' not in html
    first_note = re.search(r"<li><strong>[^<]+</strong>\s*([^<]{20,})", blocks[0]).group(1).strip()
    index = (site_dir / "search/search_index.json").read_text(encoding="utf-8")
    assert json.dumps(first_note)[1:-1][:40] not in index
