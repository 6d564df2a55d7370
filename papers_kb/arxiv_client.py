"""arXiv metadata for the catalog: ``papers-kb add <id>`` and ``papers-kb enrich``.

Requests go through the ``arxiv`` package's :class:`arxiv.Client` (its URL building, paging
and Atom parsing). This module adds what the package does not do:

* HTTP through httpx (the package's only hook, its session, is replaced): httpx's own
  timeouts and redirect handling (at most ``MAX_REDIRECTS``; a loop ends there), and a
  deadline on each whole request, because httpx's timeouts bound each read, so a server
  trickling bytes could hold a request forever;
* retries of HTTP 429/503 and connection errors with exponential backoff that honours
  ``Retry-After`` up to a limit, announcing each wait of a second or more (the package retries
  immediately and drops the response headers); a longer ``Retry-After`` ends the command;
* batching: ``id_list`` of at most 100 ids with ``max_results`` set to the batch size
  (an unset ``max_results`` silently truncates; a very long URL fails with HTTP 414);
* matching records back by versionless id (they come back in date order, not request order)
  and refusing a response that answers a different id than asked, or an entry whose id is
  not an arXiv id;
* a cache folder (git-ignored) of the raw responses and of one JSON record per id, so a
  second run makes no request; the abstract is kept there only, never in ``data/``.

Every failure of the service ends in one line naming the endpoint and the reason.

Writing: ``add`` and ``enrich`` hold the lock on ``data/`` (:func:`papers_kb.files.data_lock`)
while they read the catalog, choose keys and write, and write all their files as one
:class:`papers_kb.files.Transaction` (``add --stage`` changes two files: both or neither). A
record whose title and first author both disagree with the entry is not written without
``--force``, and a DOI the schema rejects is never written.

The endpoint is ``Client.query_url_format``; the environment variable
``PAPERS_KB_ARXIV_URL`` overrides it (tests point it at a local server).
Environment knobs: ``PAPERS_KB_ARXIV_DELAY`` (seconds between requests, default 3, arXiv's
one-request-per-3-seconds rule), ``PAPERS_KB_ARXIV_TIMEOUT`` (total seconds per request,
default 30), ``PAPERS_KB_ARXIV_BACKOFF`` (first backoff, default 3 s),
``PAPERS_KB_ARXIV_RETRIES`` (default 4), ``PAPERS_KB_ARXIV_MAX_WAIT`` (longest wait before a
retry, default 60 s), ``PAPERS_KB_ARXIV_CACHE`` (default ``.cache/arxiv``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import httpx
from pydantic import ValidationError

from papers_kb.catalog import CatalogError, load_catalog, normalise_title
from papers_kb.files import Transaction, atomic_write, data_lock
from papers_kb.schema import DOI_RE, Paper, is_arxiv_id

BATCH = 100
MAX_REDIRECTS = 5
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


class _Session:
    """What :class:`arxiv.Client` needs of its session, over httpx.

    ``get(url, headers=...)`` returns an :class:`httpx.Response` (``status_code``, ``content``,
    ``headers``) read completely within ``timeout`` seconds in all: httpx's own timeouts
    bound each connect and read, ``asyncio.timeout`` the whole request, and httpx follows at
    most ``max_redirects`` redirects. The last response is kept for ``Retry-After``.

    Raises (from ``get``):
        TimeoutError: no complete answer within ``timeout`` seconds.
        httpx.HTTPError: httpx's errors (connection, protocol, too many redirects, bad URL).
    """

    def __init__(self, timeout: float, max_redirects: int = MAX_REDIRECTS):
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.last: httpx.Response | None = None
        self.count = 0

    def get(self, url: str, headers: dict | None = None, **_: Any) -> httpx.Response:
        self.count += 1
        self.last = None
        self.last = asyncio.run(self._get(url, headers or {}))
        return self.last

    async def _get(self, url: str, headers: dict) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True,
                                     max_redirects=self.max_redirects) as client:
            async with asyncio.timeout(self.timeout):
                return await client.get(url, headers=headers)


@dataclass
class Fetcher:
    """Batched, cached, polite fetching of arXiv records through :class:`arxiv.Client`."""

    cache_dir: Path = field(default_factory=lambda: Path(os.environ.get("PAPERS_KB_ARXIV_CACHE", ".cache/arxiv")))
    url_format: str = field(default_factory=lambda: os.environ.get("PAPERS_KB_ARXIV_URL", arxiv.Client.query_url_format))
    delay: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_DELAY", "3")))
    timeout: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_TIMEOUT", "30")))
    backoff: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_BACKOFF", "3")))
    retries: int = field(default_factory=lambda: int(os.environ.get("PAPERS_KB_ARXIV_RETRIES", "4")))
    max_wait: float = field(default_factory=lambda: float(os.environ.get("PAPERS_KB_ARXIV_MAX_WAIT", "60")))
    requests_made: int = 0

    def __post_init__(self) -> None:
        if "{}" not in self.url_format:
            self.url_format = self.url_format.rstrip("?") + "?{}"
        self.client = arxiv.Client(page_size=BATCH, delay_seconds=self.delay, num_retries=0)
        self.client.query_url_format = self.url_format
        self.session = _Session(self.timeout)
        self.client._session = self.session  # type: ignore[assignment]  # the package's only HTTP hook

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
        where = self._endpoint()
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
                    raise ArxivUnavailable(f"arXiv could not be reached: HTTP {exc.status} ({where})") from exc
                asked = self._retry_after()
                if asked is not None and asked > self.max_wait:
                    raise ArxivUnavailable(
                        f"arXiv could not be reached: HTTP {exc.status} ({where}) asks to retry after {asked:g} s, "
                        f"more than the {self.max_wait:g} s limit (PAPERS_KB_ARXIV_MAX_WAIT); try again later") from exc
                wait, why = (asked, "as its Retry-After asks") if asked is not None else (
                    self.backoff * (2 ** attempt), "before retrying")
                reason = f"HTTP {exc.status}"
            except (TimeoutError, httpx.TimeoutException) as exc:
                self.requests_made += 1
                if attempt >= self.retries:
                    raise ArxivUnavailable(f"arXiv could not be reached: timed out (no complete answer within "
                                           f"{self.timeout:g} s) ({where})") from exc
                wait, why, reason = self.backoff * (2 ** attempt), "before retrying", "timed out"
            except httpx.TooManyRedirects as exc:
                self.requests_made += 1
                raise ArxivUnavailable(f"arXiv could not be reached: too many redirects (more than "
                                       f"{MAX_REDIRECTS}) ({where})") from exc
            except (httpx.TransportError, httpx.InvalidURL) as exc:
                self.requests_made += 1
                if attempt >= self.retries or _is_offline(exc) or isinstance(exc, (httpx.UnsupportedProtocol,
                                                                                      httpx.InvalidURL)):
                    raise ArxivUnavailable(f"arXiv could not be reached: connection failed "
                                           f"({type(exc).__name__}: {exc or 'no answer'}) ({where})") from exc
                wait, why, reason = self.backoff * (2 ** attempt), "before retrying", "connection failed"
            attempt += 1
            wait = min(wait, self.max_wait)
            if wait >= 1:
                print(f"arXiv: {reason} ({where}); waiting {wait:g} s {why} (retry {attempt} of {self.retries})",
                      file=sys.stderr)
            time.sleep(wait)
        raw = self.session.last.content if self.session.last is not None else b""
        try:
            ET.fromstring(raw)
        except ET.ParseError as exc:
            raise ArxivUnavailable(f"arXiv could not be reached: malformed response ({exc}) ({where})") from exc
        got: dict[str, Record] = {}
        for r in results:
            try:
                rec = Record.from_result(r)
            except BadArxivId as exc:
                raise ArxivUnavailable(f"arXiv answered with an entry whose id {r.entry_id!r} is not an arXiv id "
                                       f"({where})") from exc
            got[rec.arxiv_id] = rec
        unexpected = sorted(set(got) - set(batch))
        if unexpected:
            raise ArxivUnavailable(f"arXiv answered with id(s) {', '.join(unexpected)} that were not asked for "
                                   f"({', '.join(batch[:5])}{'…' if len(batch) > 5 else ''})")
        self._store_raw(batch, raw)
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

    def _endpoint(self) -> str:
        """The API URL without its query (``https://export.arxiv.org/api/query``)."""
        return self.url_format.split("?")[0]


def _is_offline(exc: Exception) -> bool:
    """True when the failure is name resolution: no network at all, retrying won't help."""
    text = repr(exc) + str(exc)
    return any(t in text for t in ("Name or service not known", "Temporary failure in name resolution",
                                   "gaierror", "nodename nor servname"))


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
    doi = record_doi(rec)
    if doi:
        facts["doi"] = doi
    return facts


def record_doi(rec: Record) -> str | None:
    """The record's DOI when the schema accepts it (arXiv's field is free text: it may hold
    several DOIs, spaces or a URL); otherwise None (see :func:`doi_warning`)."""
    return rec.doi if rec.doi and DOI_RE.match(rec.doi) else None


def doi_warning(rec: Record) -> str | None:
    """One line when the record's DOI is not written because the schema rejects it."""
    if rec.doi and not record_doi(rec):
        return f"arXiv {rec.arxiv_id}: doi {rec.doi!r} is not a DOI the schema accepts; not written"
    return None


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


def _to_plain(node: Any) -> Any:
    """ruamel round-trip nodes -> plain Python, for schema validation."""
    if isinstance(node, dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    return node


def updated_entry(text: str, rec: Record) -> tuple[str, Any]:
    """The paper file ``text`` with its arXiv-derived fields refreshed from ``rec`` (ruamel
    round trip: comments and hand-written fields kept). Returns ``(new text, plain mapping)``."""
    import io

    y = _yaml()
    doc = y.load(text)
    facts = arxiv_facts(rec)
    for k, v in facts.items():
        if k == "arxiv":
            current = dict(doc.get("arxiv") or {})
            current.update(v)
            doc["arxiv"] = current
        else:
            doc[k] = v
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue(), _to_plain(doc)


def update_entry_file(path: Path, rec: Record) -> bool:
    """Refresh the arXiv-derived fields of the paper in ``path`` (see :func:`updated_entry`),
    written atomically. Returns whether the file changed.

    Raises:
        pydantic.ValidationError: the refreshed entry breaks the schema; nothing is written.
    """
    text = path.read_text(encoding="utf-8")
    new, plain = updated_entry(text, rec)
    Paper.model_validate(plain)
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


def identity_mismatch(p: Paper, rec: Record) -> str | None:
    """Why ``rec`` is probably another paper than ``p``: its title and its first author both
    disagree (see :func:`disagreements`; an entry without authors counts as disagreeing).
    None when at least one of them agrees."""
    found = disagreements(p, rec)
    title = next((d for d in found if d.startswith("title ")), None)
    author = next((d for d in found if d.startswith("first author ")), None)
    if title and (author or not p.authors):
        return f"{title}; {author or 'no authors in the entry'}"
    return None


def _schema_problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors())


# --- commands -------------------------------------------------------------------------------


def add(root: Path, identifier: str, stage: int | None = None, why: str | None = None, tags: list[str] | None = None,
        key: str | None = None, dry_run: bool = False, force: bool = False, fetcher: Fetcher | None = None) -> int:
    """``papers-kb add``: fetch one record and write ``data/papers/<key>.yaml`` (and, with
    ``stage``, its item in ``data/stages.yaml``, in the same transaction). Returns exit status.

    The catalog is read and the files written holding the lock on ``data/``; the record is
    fetched between the two, without it, so the key is chosen against the catalog as it is
    when writing (a concurrent ``add`` that took the derived key makes this one take the
    next suffix).

    Raises:
        papers_kb.files.WriteError: ``data/`` cannot be locked or written (read-only ...).
    """
    try:
        vid, _ = parse_arxiv_id(identifier)
    except BadArxivId as exc:
        print(exc, file=sys.stderr)
        return 2
    if stage is not None and not why and not force:
        print("--stage needs --why \"...\": the learning path says why each reading is there", file=sys.stderr)
        return 2
    data_dir = root / "data"
    lock = contextlib.nullcontext if dry_run else data_lock
    with lock(data_dir):
        cat = load_catalog(data_dir, root=root)
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
    if (warning := doi_warning(rec)) is not None:
        print(warning, file=sys.stderr)
    if dry_run and existing:
        print(_dump(arxiv_facts(rec)), end="")
        return 0
    with lock(data_dir):
        cat = load_catalog(data_dir, root=root)  # again, under the lock: what is there now
        existing = next((p for p in cat.papers.values() if p.arxiv_id == vid), None)
        if existing:
            if not force:
                loc = cat.where[("papers", existing.key)]
                print(f"already in the catalog: {loc.path} (arXiv {vid}); use --force to refresh its arXiv fields",
                      file=sys.stderr)
                return 1
            return _refresh(root, cat, existing, rec, force=True)
        same_title = next((p for p in cat.papers.values() if normalise_title(p.title) == normalise_title(rec.title)),
                          None)
        if same_title:
            loc = cat.where[("papers", same_title.key)]
            print(f"already in the catalog under another id: {loc.path} has the same title", file=sys.stderr)
            return 1
        papers_dir = data_dir / "papers"
        taken = set(cat.papers) | ({f.stem for f in papers_dir.glob("*.yaml")} if papers_dir.is_dir() else set())
        key = key or make_key(rec.authors, int(rec.published[:4]), rec.title, taken)
        if key in taken:
            where = cat.where.get(("papers", key))
            print(f"key {key!r} is taken by {where.path if where else f'data/papers/{key}.yaml'}", file=sys.stderr)
            return 1
        data = new_paper(rec, key, stage, tags or [])
        try:
            Paper.model_validate(data)  # schema check before anything is written
        except ValidationError as exc:
            print(f"arXiv {rec.arxiv_id}: the entry would break the schema ({_schema_problems(exc)}); "
                  "nothing written", file=sys.stderr)
            return 1
        text = _dump(data)
        if dry_run:
            print(text, end="")
            return 0
        path = papers_dir / f"{key}.yaml"
        txn = Transaction(data_dir)
        txn.write(path, text)
        if stage is not None:
            stages_path = data_dir / "stages.yaml"
            txn.write(stages_path, _with_stage_item(txn.read_text(stages_path) or "", stages_path, stage, key, why or ""))
        before = txn.commit()
        try:
            load_catalog(data_dir, root=root)
        except CatalogError as exc:
            Transaction.undo(data_dir, before)
            print(exc.report(), file=sys.stderr)
            return 1
    print(f"wrote {path.relative_to(root)}: {rec.title} — {', '.join(rec.authors[:3])}"
          f"{' et al.' if len(rec.authors) > 3 else ''} ({rec.published[:4]}, {rec.primary_category})")
    return 0


def _refresh(root: Path, cat: Any, p: Paper, rec: Record, force: bool) -> int:
    """``add --force`` on an existing entry: refresh its arXiv-derived fields (lock held)."""
    loc = cat.where[("papers", p.key)]
    path = root / loc.path
    if not force and (why := identity_mismatch(p, rec)):
        print(f"{loc.path}:{loc.line}: not updated: {why}", file=sys.stderr)
        return 1
    before_text = path.read_text(encoding="utf-8")
    new, plain = updated_entry(before_text, rec)
    try:
        Paper.model_validate(plain)
    except ValidationError as exc:
        print(f"{loc.path}: not updated: the arXiv fields would break the schema ({_schema_problems(exc)})",
              file=sys.stderr)
        return 1
    txn = Transaction(root / "data")
    txn.write(path, new)
    before = txn.commit()
    try:
        load_catalog(root / "data", root=root)
    except CatalogError as exc:
        Transaction.undo(root / "data", before)
        print(exc.report(), file=sys.stderr)
        return 1
    print(f"{'updated' if new != before_text else 'unchanged'} {loc.path}: {rec.title} ({rec.arxiv_id}v{rec.version})")
    return 0


def _with_stage_item(text: str, stages_path: Path, stage: int, key: str, why: str) -> str:
    """``data/stages.yaml`` text with ``key`` appended to stage ``stage`` (ruamel round trip)."""
    import io

    y = _yaml()
    doc = y.load(text)
    for st in doc or []:
        if st.get("number") == stage:
            st["items"].append({"paper": key, "why": why})
            break
    else:
        raise ValueError(f"stage {stage} not found in {stages_path}")
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def enrich(root: Path, keys: list[str] | None = None, check: bool = False, fetcher: Fetcher | None = None,
           force: bool = False) -> int:
    """``papers-kb enrich``: refresh (or, with ``check``, compare) every entry with an arXiv id.

    All refreshed files are written as one transaction holding the lock on ``data/``, and
    taken back if the catalog no longer validates. An entry whose record has a disagreeing
    title and first author (probably a wrong id) is left as it is unless ``force``; a DOI the
    schema rejects is not written (one line each). Returns the exit status.

    Raises:
        papers_kb.files.WriteError: ``data/`` cannot be locked or written (read-only ...).
    """
    data_dir = root / "data"
    lock = contextlib.nullcontext if check else data_lock
    with lock(data_dir):
        cat = load_catalog(data_dir, root=root)
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
    refused = 0
    with data_lock(data_dir):
        cat = load_catalog(data_dir, root=root)  # again, under the lock
        txn = Transaction(data_dir)
        for p in sorted(papers, key=lambda p: p.key):
            rec = recs.get(p.arxiv_id or "")
            if rec is None or p.key not in cat.papers:
                continue
            loc = cat.where[("papers", p.key)]
            if not force and (why := identity_mismatch(cat.papers[p.key], rec)):
                print(f"{loc.path}:{loc.line}: not updated: {why}; it looks like another paper "
                      "(use --force if the arxiv_id is right)", file=sys.stderr)
                refused += 1
                continue
            if (warning := doi_warning(rec)) is not None:
                print(f"{loc.path}: {warning}", file=sys.stderr)
            path = root / loc.path
            text = path.read_text(encoding="utf-8")
            new, plain = updated_entry(text, rec)
            try:
                Paper.model_validate(plain)
            except ValidationError as exc:
                print(f"{loc.path}: not updated: the arXiv fields would break the schema ({_schema_problems(exc)})",
                      file=sys.stderr)
                refused += 1
                continue
            if new != text:
                txn.write(path, new)
        before = txn.commit()
        try:
            load_catalog(data_dir, root=root)
        except CatalogError as exc:
            Transaction.undo(data_dir, before)
            print(exc.report(), file=sys.stderr)
            print("enrich: nothing written (the refreshed entries do not validate)", file=sys.stderr)
            return 1
    print(f"enriched {len(papers) - len(missing) - refused} entries ({len(before)} changed) with "
          f"{fetcher.requests_made} request(s){f'; {refused} not updated' if refused else ''}")
    return 1 if missing or refused else 0


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
    e.add_argument("--force", action="store_true",
                   help="also update entries whose arXiv title and first author both disagree")
    e.set_defaults(func=lambda args: enrich(Path(args.root).resolve(), args.keys, args.check, force=args.force))
