"""arXiv metadata for the catalog: ``papers-kb add <id>`` and ``papers-kb enrich``.

Requests go through the ``arxiv`` package's :class:`arxiv.Client` (its URL building, paging
and Atom parsing). This module adds what the package does not do:

* a per-request timeout (the package's requests session has none, so a hung server hangs);
* retries of HTTP 429/503 and connection errors with exponential backoff that honours
  ``Retry-After`` (the package retries immediately and drops the response headers);
* batching: ``id_list`` of at most 100 ids with ``max_results`` set to the batch size
  (an unset ``max_results`` silently truncates; a very long URL fails with HTTP 414);
* matching records back by versionless id (they come back in date order, not request order)
  and refusing a response that answers a different id than asked;
* a cache folder (git-ignored) of the raw responses and of one JSON record per id, so a
  second run makes no request; the abstract is kept there only, never in ``data/``.

The endpoint is ``Client.query_url_format``; the environment variable
``PAPERS_KB_ARXIV_URL`` overrides it (tests point it at a local server).
Environment knobs: ``PAPERS_KB_ARXIV_DELAY`` (seconds between requests, default 3, arXiv's
one-request-per-3-seconds rule), ``PAPERS_KB_ARXIV_TIMEOUT`` (default 30 s),
``PAPERS_KB_ARXIV_BACKOFF`` (first backoff, default 3 s), ``PAPERS_KB_ARXIV_RETRIES``
(default 4), ``PAPERS_KB_ARXIV_CACHE`` (default ``.cache/arxiv``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import difflib
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import arxiv
import requests

from papers_kb.catalog import CatalogError, load_catalog, normalise_title
from papers_kb.files import atomic_write
from papers_kb.schema import Paper, is_arxiv_id

BATCH = 100
ACCEPTED_FORMS = ("1811.08383, 1811.08383v3, arXiv:1811.08383, https://arxiv.org/abs/1811.08383, "
                  "https://arxiv.org/pdf/1811.08383v2.pdf, or an old-style id such as hep-th/9901001")
STOPWORDS = {"a", "an", "the", "on", "of", "is", "are", "for", "to", "in", "with", "towards", "toward", "via",
             "and", "do", "what", "how", "when", "where", "why", "can", "from", "by", "at"}


class ArxivUnavailable(Exception):
    """arXiv could not be reached or did not answer usefully (message is one line)."""


class BadArxivId(ValueError):
    """The text is not an arXiv identifier in any accepted form."""


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Normalise an arXiv identifier given in any accepted form.

    Returns:
        ``(versionless id, version or None)``, e.g. ``("1811.08383", 3)``.

    Raises:
        BadArxivId: listing the accepted forms.
    """
    t = text.strip()
    t = re.sub(r"^(https?://)?(www\.|export\.|cn\.)?arxiv\.org/(abs|pdf)/", "", t, flags=re.I)
    t = re.sub(r"^arxiv:", "", t, flags=re.I)
    t = re.sub(r"\.pdf$", "", t)
    m = re.match(r"^(?P<id>\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?$", t)
    if not m or not is_arxiv_id(m.group("id")):
        raise BadArxivId(f"{text!r} is not an arXiv id; accepted forms: {ACCEPTED_FORMS}")
    return m.group("id"), int(m.group("v")) if m.group("v") else None


# --- fetching -------------------------------------------------------------------------------


@dataclass
class Record:
    """The facts of one arXiv record (what the cache keeps per id)."""

    arxiv_id: str
    version: int
    title: str
    authors: list[str]
    published: str  # ISO date of the first version
    updated: str
    primary_category: str | None
    categories: list[str]
    doi: str | None
    journal_ref: str | None
    comment: str | None
    abstract: str

    @classmethod
    def from_result(cls, r: arxiv.Result) -> "Record":
        vid, version = parse_arxiv_id(r.get_short_id())
        return cls(
            arxiv_id=vid, version=version or 1, title=re.sub(r"\s+", " ", r.title).strip(),
            authors=[a.name for a in r.authors], published=r.published.date().isoformat(),
            updated=r.updated.date().isoformat(), primary_category=r.primary_category,
            categories=list(r.categories), doi=r.doi, journal_ref=r.journal_ref,
            comment=re.sub(r"\s+", " ", r.comment).strip() if r.comment else None,
            abstract=re.sub(r"\s+", " ", r.summary).strip(),
        )


class _RecordingSession(requests.Session):
    """A requests session with a default timeout that remembers the last response."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.last: requests.Response | None = None
        self.count = 0

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        self.count += 1
        self.last = super().request(method, url, **kwargs)
        return self.last


@dataclass
class Fetcher:
    """Batched, cached, polite fetching of arXiv records through :class:`arxiv.Client`."""

    cache_dir: Path = field(default_factory=lambda: Path(os.environ.get("PAPERS_KB_ARXIV_CACHE", ".cache/arxiv")))
    url_format: str = field(default_factory=lambda: os.environ.get("PAPERS_KB_ARXIV_URL", arxiv.Client.query_url_format))
    delay: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_DELAY", "3")))
    timeout: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_TIMEOUT", "30")))
    backoff: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_BACKOFF", "3")))
    retries: int = field(default_factory=lambda: int(os.environ.get("PAPERS_KB_ARXIV_RETRIES", "4")))
    max_wait: float = 120.0
    requests_made: int = 0

    def __post_init__(self) -> None:
        if "{}" not in self.url_format:
            self.url_format = self.url_format.rstrip("?") + "?{}"
        self.client = arxiv.Client(page_size=BATCH, delay_seconds=self.delay, num_retries=0)
        self.client.query_url_format = self.url_format
        self.session = _RecordingSession(self.timeout)
        self.client._session = self.session  # the package's only hook for the HTTP session

    # cache ------------------------------------------------------------------------------
    def _cache_file(self, vid: str) -> Path:
        return self.cache_dir / "records" / (vid.replace("/", "_") + ".json")

    def cached(self, vid: str) -> Record | None:
        f = self._cache_file(vid)
        if f.is_file():
            return Record(**json.loads(f.read_text(encoding="utf-8")))
        return None

    def _store(self, rec: Record) -> None:
        atomic_write(self._cache_file(rec.arxiv_id), json.dumps(rec.__dict__, ensure_ascii=False, indent=1))

    def _store_raw(self, ids: list[str], raw: bytes) -> None:
        name = hashlib.sha1(",".join(ids).encode()).hexdigest()[:16]
        atomic_write(self.cache_dir / "raw" / f"{name}.xml", raw)

    # fetching ---------------------------------------------------------------------------
    def fetch(self, ids: Iterable[str], use_cache: bool = True) -> dict[str, Record]:
        """Records for versionless ``ids``; unknown ids are absent from the result.

        Raises:
            ArxivUnavailable: network failure, HTTP error after retries, malformed response,
                or a response naming ids that were not asked for.
        """
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Record] = {}
        todo = []
        for vid in wanted:
            rec = self.cached(vid) if use_cache else None
            if rec is not None:
                out[vid] = rec
            else:
                todo.append(vid)
        for i in range(0, len(todo), BATCH):
            batch = todo[i:i + BATCH]
            out.update(self._fetch_batch(batch))
        return out

    def _fetch_batch(self, batch: list[str]) -> dict[str, Record]:
        search = arxiv.Search(id_list=batch, max_results=len(batch))
        self.client.page_size = len(batch)  # the package sends page_size as max_results
        attempt = 0
        while True:
            try:
                before = self.session.count
                results = list(self.client.results(search))
                self.requests_made += self.session.count - before
                break
            except arxiv.HTTPError as exc:
                self.requests_made += 1
                if exc.status not in (429, 500, 502, 503, 504) or attempt >= self.retries:
                    raise ArxivUnavailable(f"arXiv could not be reached: HTTP {exc.status} from {self._host()}") from exc
                wait = self._retry_after() or self.backoff * (2 ** attempt)
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.requests_made += 1
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if attempt >= self.retries or _is_offline(exc):
                    raise ArxivUnavailable(f"arXiv could not be reached: {kind} ({self._host()})") from exc
                wait = self.backoff * (2 ** attempt)
            attempt += 1
            time.sleep(min(wait, self.max_wait))
        raw = self.session.last.content if self.session.last is not None else b""
        try:
            ET.fromstring(raw)
        except ET.ParseError as exc:
            raise ArxivUnavailable(f"arXiv could not be reached: malformed response ({exc})") from exc
        self._store_raw(batch, raw)
        got: dict[str, Record] = {}
        for r in results:
            rec = Record.from_result(r)
            got[rec.arxiv_id] = rec
        unexpected = sorted(set(got) - set(batch))
        if unexpected:
            raise ArxivUnavailable(f"arXiv answered with id(s) {', '.join(unexpected)} that were not asked for "
                                   f"({', '.join(batch[:5])}{'…' if len(batch) > 5 else ''})")
        for rec in got.values():
            self._store(rec)
        return got

    def _retry_after(self) -> float | None:
        resp = self.session.last
        if resp is None:
            return None
        value = resp.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())

    def _host(self) -> str:
        m = re.match(r"^\w+://([^/]+)", self.url_format)
        return m.group(1) if m else self.url_format


def _is_offline(exc: Exception) -> bool:
    """True when the failure is name resolution: no network at all, retrying won't help."""
    text = repr(exc)
    return "NameResolutionError" in text or "Temporary failure in name resolution" in text or "gaierror" in text


# --- building and updating entries --------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def make_key(authors: list[str], year: int, title: str, taken: set[str]) -> str:
    """Citation-style key: first author's family name + year + first significant title word.

    ``"Ji Lin", 2019, "TSM: Temporal Shift ..." -> "lin2019tsm"``; ``b``, ``c`` … on clashes.
    """
    first = authors[0] if authors else "anon"
    family = first.split(",")[0] if "," in first else first.split()[-1]
    family = re.sub(r"[^a-z]", "", _ascii(family)) or "anon"
    words = [re.sub(r"[^a-z0-9]", "", _ascii(w)) for w in re.split(r"[\s:]+", title)]
    word = next((w for w in words if w and w not in STOPWORDS), "paper")
    base = f"{family}{year}{word}"
    key, n = base, 1
    while key in taken:
        key = base + "bcdefghijklmnopqrstuvwxyz"[n - 1]
        n += 1
    return key


def arxiv_facts(rec: Record) -> dict[str, Any]:
    """The arXiv-derived fields of a Paper entry (what ``add``/``enrich`` write)."""
    facts: dict[str, Any] = {
        "authors": rec.authors,
        "arxiv_id": rec.arxiv_id,
        "arxiv": {k: v for k, v in {
            "published": _dt.date.fromisoformat(rec.published),
            "updated": _dt.date.fromisoformat(rec.updated),
            "version": rec.version,
            "primary_category": rec.primary_category,
            "categories": rec.categories,
            "journal_ref": rec.journal_ref,
            "comment": rec.comment,
        }.items() if v not in (None, [])},
    }
    if rec.doi:
        facts["doi"] = rec.doi
    return facts


def new_paper(rec: Record, key: str, stage: int | None, tags: list[str]) -> dict[str, Any]:
    """A Paper mapping (plain data, schema field order) built from an arXiv record."""
    year = int(rec.published[:4])
    data: dict[str, Any] = {"key": key, "title": rec.title}
    facts = arxiv_facts(rec)
    data["authors"] = facts.pop("authors")
    data["year"] = year
    data["venue"] = "arXiv"
    data["venue_type"] = "preprint"
    data.update(facts)
    if stage is not None:
        data["stage"] = stage
    if tags:
        data["tags"] = tags
    data["confirmed"] = f"arXiv API record {rec.arxiv_id}v{rec.version} (papers-kb add, {_dt.date.today().isoformat()})"
    return data


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    y.allow_unicode = True
    return y


def _dump(data: Any) -> str:
    import io

    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def update_entry_file(path: Path, rec: Record) -> bool:
    """Refresh the arXiv-derived fields of the paper in ``path`` in place (ruamel round trip,
    comments and hand-written fields kept). Returns whether the file changed."""
    y = _yaml()
    text = path.read_text(encoding="utf-8")
    doc = y.load(text)
    facts = arxiv_facts(rec)
    for k, v in facts.items():
        if k == "arxiv":
            current = dict(doc.get("arxiv") or {})
            current.update(v)
            doc["arxiv"] = current
        else:
            doc[k] = v
    import io

    buf = io.StringIO()
    y.dump(doc, buf)
    new = buf.getvalue()
    if new == text:
        return False
    atomic_write(path, new)
    return True


# --- disagreement check -------------------------------------------------------------------


def _family(name: str) -> str:
    fam = name.split(",")[0] if "," in name else name.split()[-1]
    return re.sub(r"[^a-z]", "", _ascii(fam))


def disagreements(p: Paper, rec: Record) -> list[str]:
    """What of title, first author and year disagrees between the entry and arXiv.

    Titles agree when the normalised title or an alias matches, or they are at least 85 %
    similar (arXiv titles change between versions); years agree when the entry's year is the
    first version's year or up to two years later (publication lags the preprint).
    """
    out = []
    titles = [normalise_title(t) for t in [p.title, *p.aliases]]
    arx = normalise_title(rec.title)
    if arx not in titles and max(difflib.SequenceMatcher(None, arx, t).ratio() for t in titles) < 0.85:
        out.append(f"title {p.title!r} vs arXiv {rec.title!r}")
    if p.authors and rec.authors and _family(p.authors[0]) != _family(rec.authors[0]):
        out.append(f"first author {p.authors[0]!r} vs arXiv {rec.authors[0]!r}")
    first_year = int(rec.published[:4])
    if p.year is not None and not first_year <= p.year <= first_year + 2:
        out.append(f"year {p.year} vs arXiv first version {rec.published}")
    return out


# --- commands -------------------------------------------------------------------------------


def add(root: Path, identifier: str, stage: int | None = None, why: str | None = None, tags: list[str] | None = None,
        key: str | None = None, dry_run: bool = False, force: bool = False, fetcher: Fetcher | None = None) -> int:
    """``papers-kb add``: fetch one record and write ``data/papers/<key>.yaml``. Returns exit status."""
    try:
        vid, _ = parse_arxiv_id(identifier)
    except BadArxivId as exc:
        print(exc, file=sys.stderr)
        return 2
    if stage is not None and not why and not force:
        print("--stage needs --why \"...\": the learning path says why each reading is there", file=sys.stderr)
        return 2
    cat = load_catalog(root / "data", root=root)
    existing = next((p for p in cat.papers.values() if p.arxiv_id == vid), None)
    fetcher = fetcher or Fetcher(cache_dir=root / os.environ.get("PAPERS_KB_ARXIV_CACHE", ".cache/arxiv"))
    if existing and not force:
        loc = cat.where[("papers", existing.key)]
        print(f"already in the catalog: {loc.path} (arXiv {vid}); use --force to refresh its arXiv fields",
              file=sys.stderr)
        return 1
    try:
        recs = fetcher.fetch([vid], use_cache=not force)
    except ArxivUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    if vid not in recs:
        print(f"arXiv has no record for {vid}", file=sys.stderr)
        return 1
    rec = recs[vid]
    if existing:  # --force: refresh arXiv-derived fields, keep hand-written ones
        path = root / cat.where[("papers", existing.key)].path
        if dry_run:
            print(_dump(arxiv_facts(rec)), end="")
            return 0
        before = path.read_text(encoding="utf-8")
        changed = update_entry_file(path, rec)
        try:
            load_catalog(root / "data", root=root)
        except CatalogError as exc:
            atomic_write(path, before)
            print(exc.report(), file=sys.stderr)
            return 1
        print(f"{'updated' if changed else 'unchanged'} {path.relative_to(root)}: {rec.title} ({rec.arxiv_id}v{rec.version})")
        return 0
    same_title = next((p for p in cat.papers.values() if normalise_title(p.title) == normalise_title(rec.title)), None)
    if same_title:
        loc = cat.where[("papers", same_title.key)]
        print(f"already in the catalog under another id: {loc.path} has the same title", file=sys.stderr)
        return 1
    taken = set(cat.papers)
    key = key or make_key(rec.authors, int(rec.published[:4]), rec.title, taken)
    if key in taken:
        print(f"key {key!r} is taken by {cat.where[('papers', key)].path}", file=sys.stderr)
        return 1
    data = new_paper(rec, key, stage, tags or [])
    Paper.model_validate(data)  # schema check before anything is written
    text = _dump(data)
    if dry_run:
        print(text, end="")
        return 0
    path = root / "data" / "papers" / f"{key}.yaml"
    stages_path = root / "data" / "stages.yaml"
    stages_before = stages_path.read_text(encoding="utf-8") if stages_path.exists() else None
    atomic_write(path, text)
    if stage is not None:
        _append_stage_item(stages_path, stage, key, why or "")
    try:
        load_catalog(root / "data", root=root)
    except CatalogError as exc:
        path.unlink()
        if stages_before is not None:
            atomic_write(stages_path, stages_before)
        print(exc.report(), file=sys.stderr)
        return 1
    print(f"wrote {path.relative_to(root)}: {rec.title} — {', '.join(rec.authors[:3])}"
          f"{' et al.' if len(rec.authors) > 3 else ''} ({rec.published[:4]}, {rec.primary_category})")
    return 0


def _append_stage_item(stages_path: Path, stage: int, key: str, why: str) -> None:
    y = _yaml()
    doc = y.load(stages_path.read_text(encoding="utf-8"))
    for st in doc:
        if st.get("number") == stage:
            st["items"].append({"paper": key, "why": why})
            break
    else:
        raise ValueError(f"stage {stage} not found in {stages_path}")
    import io

    buf = io.StringIO()
    y.dump(doc, buf)
    atomic_write(stages_path, buf.getvalue())


def enrich(root: Path, keys: list[str] | None = None, check: bool = False, fetcher: Fetcher | None = None) -> int:
    """``papers-kb enrich``: refresh (or, with ``check``, compare) every entry with an arXiv id."""
    cat = load_catalog(root / "data", root=root)
    unknown = [k for k in keys or [] if k not in cat.papers]
    if unknown:
        print(f"unknown paper key(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    papers = [p for p in cat.papers.values() if p.arxiv_id and (not keys or p.key in keys)]
    fetcher = fetcher or Fetcher(cache_dir=root / os.environ.get("PAPERS_KB_ARXIV_CACHE", ".cache/arxiv"))
    try:
        recs = fetcher.fetch(sorted(p.arxiv_id for p in papers))  # type: ignore[misc]
    except ArxivUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    missing = [p for p in papers if p.arxiv_id not in recs]
    problems = 0
    for p in missing:
        loc = cat.where[("papers", p.key)]
        print(f"{loc.path}:{loc.line}: arxiv_id: arXiv has no record for {p.arxiv_id}")
        problems += 1
    if check:
        for p in sorted(papers, key=lambda p: p.key):
            if p.arxiv_id in recs:
                for d in disagreements(p, recs[p.arxiv_id]):
                    loc = cat.where[("papers", p.key)]
                    print(f"{loc.path}:{loc.line}: {d}")
                    problems += 1
        print(f"checked {len(papers)} entries against arXiv: {problems} disagreement(s); "
              f"{fetcher.requests_made} request(s)", file=sys.stderr)
        return 1 if problems else 0
    changed = 0
    for p in papers:
        if p.arxiv_id in recs:
            changed += update_entry_file(root / cat.where[("papers", p.key)].path, recs[p.arxiv_id])
    load_catalog(root / "data", root=root)
    print(f"enriched {len(papers) - len(missing)} entries ({changed} changed) with {fetcher.requests_made} request(s)")
    return 1 if missing else 0


def load_cached_abstracts(cache_dir: Path) -> dict[str, str]:
    """Abstracts of the cached records by arXiv id (shown on paper pages; never committed)."""
    out = {}
    folder = cache_dir / "records"
    if folder.is_dir():
        for f in sorted(folder.glob("*.json")):
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if rec.get("abstract"):
                out[rec["arxiv_id"]] = rec["abstract"]
    return out


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``add`` and ``enrich`` on the ``papers-kb`` parser."""
    a = sub.add_parser("add", help="add a paper from its arXiv record")
    a.add_argument("identifier", help=f"arXiv id: {ACCEPTED_FORMS}")
    a.add_argument("--stage", type=int, choices=[1, 2, 3, 4], help="put it on the learning path (needs --why)")
    a.add_argument("--why", help="why read it at that point of the path")
    a.add_argument("--tag", action="append", default=[], help="tag (repeatable; must be in data/tags.yaml)")
    a.add_argument("--key", help="catalog key (default: citation style, e.g. lin2019tsm)")
    a.add_argument("--dry-run", action="store_true", help="print the YAML, write nothing")
    a.add_argument("--force", action="store_true", help="refresh the arXiv fields of an existing entry")
    a.set_defaults(func=lambda args: add(Path(args.root).resolve(), args.identifier, args.stage, args.why, args.tag,
                                         args.key, args.dry_run, args.force))
    e = sub.add_parser("enrich", help="refresh arXiv metadata of entries (batched, cached)")
    e.add_argument("keys", nargs="*", help="paper keys (default: all with an arXiv id)")
    e.add_argument("--check", action="store_true", help="change nothing; report title/author/year disagreements")
    e.set_defaults(func=lambda args: enrich(Path(args.root).resolve(), args.keys, args.check))
