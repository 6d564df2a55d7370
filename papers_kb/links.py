"""Link checking of the knowledge base: ``papers-kb check-links``.

Two independent checks:

* **internal** (offline): every ``href``/``src`` of the built ``site/`` that points inside the
  site resolves to an existing file, and every ``#fragment`` to an element ``id`` (or
  ``<a name>``) of the target page. Parsed with the standard library's :mod:`html.parser`.
* **external** (network): every URL of ``data/`` (papers' ``url``/``pdf``/``links``, the arXiv
  abs page built from ``arxiv_id``, datasets, repos, resources, seed documents) and of the
  rendered pages, deduplicated and checked concurrently with :class:`httpx.AsyncClient`
  under a global and a per-host concurrency limit. Each URL keeps where it came from
  (``data/papers/x.yaml:12`` and the field path ``links[0].url``).

Statuses of an external URL: ``ok``, ``moved`` (a 301/308 on the way, or an arXiv mirror:
use the final URL), ``rate-limited`` (429), ``timeout``, ``broken`` and ``excluded``. Only
``broken`` fails the command (exit 1).

Configuration (all optional) comes from ``[tool.papers-kb.check-links]`` of the project's
``pyproject.toml`` or from ``--config FILE`` (TOML; either that same table layout or the keys
at top level)::

    exclude = ["^https?://(www\\.)?example\\.org/"]   # URL regexes (re.search)
    concurrency = 32         # requests in flight, all hosts together
    per-host = 4             # requests in flight per host
    delay = 0.05             # politeness pause (s) of a per-host slot after each request
    timeout = 10.0           # per request (s), in all: connect, headers and body together
    retries = 2              # extra attempts on 5xx, timeouts, connection errors, 429
    backoff = 0.5            # first retry pause (s); doubles each retry
    max-redirects = 10
    max-retry-after = 30.0   # longest Retry-After (s) honoured on a 429
    ttl-days = 7             # an OK result younger than this is not requested again
    user-agent = "..."       # default: papers-kb-linkcheck/0.1 (+<project URL>)

    [tool.papers-kb.check-links.hosts."arxiv.org"]   # a host and its sub-domains
    per-host = 1             # also: concurrency (same meaning here)
    delay = 1.0
    method = "GET"           # skip HEAD for hosts that answer it badly
    skip = false             # true: never request, status "excluded"
    ok-status = [403]        # codes that count as OK (or: treat-403-as-ok = true)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import email.utils
import html.parser
import json
import os
import posixpath
import re
import sys
import time
import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urljoin, urlsplit

STATUSES = ("broken", "moved", "rate-limited", "timeout", "excluded", "ok")
VERSION = "0.1"
ASSET_TAGS = {"img", "script", "link", "source", "video", "audio", "iframe", "embed", "object", "track", "input"}
# (tag, attribute) pairs that hold a URL; srcset is split separately.
_URL_ATTRS = {
    ("a", "href"), ("area", "href"), ("link", "href"), ("img", "src"), ("script", "src"),
    ("source", "src"), ("video", "src"), ("video", "poster"), ("audio", "src"), ("iframe", "src"),
    ("embed", "src"), ("object", "data"), ("track", "src"), ("input", "src"),
}
_SRCSET = {("img", "srcset"), ("source", "srcset")}
# rel values of <link> that are not links to check: connection hints, and the canonical
# address of the page itself (the deployed site, which may not be online yet).
_SKIP_REL = {"canonical", "preconnect", "dns-prefetch"}
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


# =========================================================================================
# Internal check
# =========================================================================================


@dataclass(frozen=True, order=True)
class InternalProblem:
    """One broken internal reference: ``page`` (relative to the site), 1-based ``line``."""

    page: str
    line: int
    href: str
    reason: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.href} ({self.reason})"


@dataclass
class _PageRef:
    tag: str
    attr: str
    value: str
    line: int
    rel: str = ""


class _PageParser(html.parser.HTMLParser):
    """Collects element ids and URL-bearing attributes (with their line) of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[_PageRef] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        a = {k: (v or "") for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.ids.add(a["name"])
        rel = a.get("rel", "").lower()
        for k, v in a.items():
            if (tag, k) in _URL_ATTRS:
                self.refs.append(_PageRef(tag, k, v.strip(), line, rel))
            elif (tag, k) in _SRCSET:
                for part in v.split(","):
                    url = part.strip().split(" ")[0]
                    if url:
                        self.refs.append(_PageRef(tag, k, url, line, rel))

    handle_startendtag = handle_starttag


def parse_page(path: Path) -> _PageParser:
    """Parse one HTML file; returns the parser holding ``ids`` and ``refs``."""
    p = _PageParser()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    p.close()
    return p


def _is_external(value: str) -> bool:
    return bool(_SCHEME_RE.match(value)) or value.startswith("//")


def check_internal(site: Path | str, base_path: str = "/") -> tuple[list[InternalProblem], int, int]:
    """Check every internal link, asset and ``#anchor`` of a built site, offline.

    URLs are resolved as a static web server would: relative to the page's folder, ``/...``
    relative to the site root (after removing ``base_path``, the path part of the deployed
    ``site_url``), directory URLs to their ``index.html``; query strings are ignored and
    percent-encoding is decoded. Links with a scheme (``http:``, ``mailto:``, ``data:`` ...)
    or ``//host`` are not looked at here. A ``<base href>`` element is not supported (MkDocs
    does not write one).

    Args:
        site: the built site folder (``site/``).
        base_path: URL path the site is served under (``/`` or e.g. ``/papers-kb/``).

    Returns:
        ``(problems, pages, links)``: the broken references sorted by page and line, the number
        of HTML pages and of internal references checked.

    Raises:
        FileNotFoundError: when ``site`` is not a folder.
    """
    site = Path(site).resolve()
    if not site.is_dir():
        raise FileNotFoundError(f"site folder not found: {site} (run `papers-kb build` first)")
    base_path = "/" + base_path.strip("/") + "/" if base_path.strip("/") else "/"
    pages = sorted(site.rglob("*.html"))
    parsed: dict[str, _PageParser] = {}

    def get(rel: str) -> _PageParser:
        if rel not in parsed:
            parsed[rel] = parse_page(site / rel)
        return parsed[rel]

    problems: list[InternalProblem] = []
    n_links = 0
    for page in pages:
        rel_page = page.relative_to(site).as_posix()
        info = get(rel_page)
        page_dir = posixpath.dirname(rel_page)
        for ref in info.refs:
            value = ref.value
            if not value or _is_external(value):
                continue
            if ref.tag == "link" and set(ref.rel.split()) & _SKIP_REL:
                continue
            n_links += 1
            reason = _resolve_internal(site, page_dir, rel_page, value, ref, base_path, get)
            if reason:
                problems.append(InternalProblem(rel_page, ref.line, value, reason))
    return sorted(problems), len(pages), n_links


def _resolve_internal(site: Path, page_dir: str, rel_page: str, value: str, ref: _PageRef, base_path: str,
                      get: Callable[[str], _PageParser]) -> str | None:
    """Reason why ``value`` (found on ``rel_page``) does not resolve, or None when it does."""
    parts = urlsplit(value)
    path, frag = unquote(parts.path), unquote(parts.fragment)
    if not path:
        target = rel_page
    else:
        if path.startswith("/"):
            if not (path + "/").startswith(base_path) and path != base_path.rstrip("/"):
                return f"outside the site's base path {base_path}"
            joined = path[len(base_path):] if len(path) >= len(base_path) else ""
        else:
            joined = posixpath.join(page_dir, path)
        norm = posixpath.normpath(joined) if joined else "."
        if norm == ".." or norm.startswith("../"):
            return "points outside the site folder"
        norm = "" if norm == "." else norm
        fs = site / norm if norm else site
        if fs.is_dir():
            if (fs / "index.html").is_file():
                target = posixpath.join(norm, "index.html") if norm else "index.html"
            else:
                return f"folder {norm or '.'}/ has no index.html"
        elif fs.is_file():
            if path.endswith("/"):
                return f"{norm} is a file, not a folder"
            target = norm
        else:
            kind = "missing asset" if ref.tag in ASSET_TAGS else "no such page"
            return f"{kind}: {norm}"
    if frag and not frag.startswith(":~:") and target.endswith(".html"):
        if frag not in get(target).ids:
            where = "" if target == rel_page else f" on {target}"
            return f"missing anchor #{frag}{where}"
    return None


# =========================================================================================
# External check: collecting URLs
# =========================================================================================


@dataclass(frozen=True)
class Origin:
    """Where a URL was found: file (relative to the project root), 1-based line, field path."""

    file: str
    line: int
    field: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _field_locator(root: Path) -> Callable[[str, str, tuple, int], int]:
    """Returns ``line(file, key, loc, fallback)``: the line of field ``loc`` of entry ``key``."""
    from papers_kb.catalog import EntryLocator

    return EntryLocator(root).line


def catalog_urls(cat: Any) -> dict[str, list[Origin]]:
    """Every URL the catalog holds, each with the file, line and field it comes from.

    Walks papers (``url``, ``pdf``, ``links[i].url`` and the arXiv abs URL of ``arxiv_id``),
    datasets (``url``, ``links``), repos (``url``), resources (``url``) and seed documents
    (``url``). Order follows the data files.
    """
    root = Path(cat.root)
    locate = _field_locator(root)
    out: dict[str, list[Origin]] = defaultdict(list)

    def add(kind: str, key: str, url: str | None, loc: tuple) -> None:
        if not url:
            return
        where = cat.where.get((kind, key))
        if where is None:
            return
        fld = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(loc))
        out[url].append(Origin(where.path, locate(where.path, key, loc, where.line), fld))

    for key in sorted(cat.papers, key=lambda k: cat.where[("papers", k)].path):
        p = cat.papers[key]
        add("papers", key, p.url, ("url",))
        add("papers", key, p.pdf, ("pdf",))
        if p.arxiv_id:
            add("papers", key, f"https://arxiv.org/abs/{p.arxiv_id}", ("arxiv_id",))
        for i, link in enumerate(p.links):
            add("papers", key, link.url, ("links", i, "url"))
    for kind in ("datasets", "repos", "resources", "sources"):
        for key, e in sorted(getattr(cat, kind).items(), key=lambda kv: cat.where[(kind, kv[0])].path):
            add(kind, key, getattr(e, "url", None), ("url",))
            for i, link in enumerate(getattr(e, "links", []) or []):
                add(kind, key, link.url, ("links", i, "url"))
    return dict(out)


def site_urls(site: Path | str, prefix: str = "site") -> dict[str, list[Origin]]:
    """Every http(s) URL linked from the built pages, with ``site/<page>:line`` and ``<tag attr>``."""
    site = Path(site)
    out: dict[str, list[Origin]] = defaultdict(list)
    for page in sorted(site.rglob("*.html")):
        rel = f"{prefix}/{page.relative_to(site).as_posix()}"
        for ref in parse_page(page).refs:
            if not re.match(r"^https?://", ref.value, re.I):
                continue
            if ref.tag == "link" and set(ref.rel.split()) & _SKIP_REL:
                continue
            url = ref.value.split("#")[0]
            out[url].append(Origin(rel, ref.line, f"<{ref.tag} {ref.attr}>"))
    return dict(out)


# =========================================================================================
# External check: configuration, cache, arXiv mirrors
# =========================================================================================


@dataclass
class HostRule:
    """Per-host settings (applies to the host and its sub-domains; most specific wins)."""

    per_host: int | None = None
    delay: float | None = None
    method: str | None = None  # "GET" skips HEAD
    skip: bool = False
    ok_status: tuple[int, ...] = ()


@dataclass
class LinkConfig:
    """Settings of the external check; see the module docstring for the TOML keys."""

    exclude: list[str] = field(default_factory=list)
    concurrency: int = 32
    per_host: int = 4
    delay: float = 0.05
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    max_redirects: int = 10
    max_retry_after: float = 30.0
    ttl_days: float = 7.0
    user_agent: str | None = None
    hosts: dict[str, HostRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._exclude_re = [re.compile(p) for p in self.exclude]

    def excluded(self, url: str) -> bool:
        return any(r.search(url) for r in self._exclude_re)

    def rule(self, host: str) -> HostRule:
        host = host.lower().rstrip(".")
        best, best_len = HostRule(), -1
        for name, rule in self.hosts.items():
            n = name.lower().lstrip(".")
            if (host == n or host.endswith("." + n)) and len(n) > best_len:
                best, best_len = rule, len(n)
        return best

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> "LinkConfig":
        """Build from a TOML table (dash or underscore keys).

        Raises:
            ValueError: on an unknown key or a value of the wrong type.
        """
        norm = {k.replace("-", "_"): v for k, v in data.items()}
        hosts_raw = norm.pop("hosts", {}) or {}
        known = {f for f in cls.__dataclass_fields__ if f != "hosts"}
        unknown = set(norm) - known
        if unknown:
            raise ValueError(f"unknown check-links setting(s): {', '.join(sorted(unknown))}")
        for k, v in norm.items():
            default = cls.__dataclass_fields__[k].default
            if isinstance(default, (int, float)) and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"check-links setting {k.replace('_', '-')} must be a number >= 0, not {v!r}")
            if type(default) is int and not isinstance(v, int):
                raise ValueError(f"check-links setting {k.replace('_', '-')} must be a whole number, not {v!r}")
        if not isinstance(norm.get("exclude", []), list):
            raise ValueError("check-links setting exclude must be a list of regular expressions")
        hosts = {}
        for host, raw in hosts_raw.items():
            r = {k.replace("-", "_"): v for k, v in raw.items()}
            ok = tuple(int(c) for c in r.pop("ok_status", ()))
            if r.pop("treat_403_as_ok", False):
                ok += (403,)
            if "concurrency" in r:
                r["per_host"] = r.pop("concurrency")
            bad = set(r) - {"per_host", "delay", "method", "skip"}
            if bad:
                raise ValueError(f"unknown setting(s) for host {host!r}: {', '.join(sorted(bad))}")
            if r.get("method") and str(r["method"]).upper() not in ("GET", "HEAD"):
                raise ValueError(f"host {host!r}: method must be GET or HEAD")
            hosts[host] = HostRule(per_host=r.get("per_host"), delay=r.get("delay"),
                                   method=str(r["method"]).upper() if r.get("method") else None,
                                   skip=bool(r.get("skip", False)), ok_status=ok)
        try:
            return cls(**norm, hosts=hosts)
        except (TypeError, re.error) as exc:
            raise ValueError(f"bad check-links setting: {exc}") from exc


def load_config(root: Path | str | None = None, config_file: Path | str | None = None) -> LinkConfig:
    """Read ``[tool.papers-kb.check-links]`` from ``config_file`` or ``<root>/pyproject.toml``.

    A missing pyproject or section gives the defaults. ``config_file`` must exist.

    Raises:
        FileNotFoundError: ``config_file`` does not exist.
        ValueError: invalid TOML or settings.
    """
    path = Path(config_file) if config_file else (Path(root) / "pyproject.toml" if root else None)
    data: dict[str, Any] = {}
    project_url = None
    if path is not None and (config_file or path.exists()):
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        section = doc.get("tool", {}).get("papers-kb", {}).get("check-links")
        data = section if section is not None else ({} if "tool" in doc or "project" in doc else doc)
        urls = doc.get("project", {}).get("urls", {}) or {}
        project_url = urls.get("Repository") or urls.get("Homepage") or next(iter(urls.values()), None)
    if project_url is None and root is not None and config_file:
        py = Path(root) / "pyproject.toml"
        if py.exists():
            urls = tomllib.loads(py.read_text(encoding="utf-8")).get("project", {}).get("urls", {}) or {}
            project_url = urls.get("Repository") or urls.get("Homepage")
    cfg = LinkConfig.from_mapping(dict(data))
    if cfg.user_agent is None:
        cfg.user_agent = default_user_agent(project_url)
    return cfg


def default_user_agent(project_url: str | None = None) -> str:
    """``papers-kb-linkcheck/0.1 (+<project URL>)``; the URL comes from ``[project.urls]``."""
    return f"papers-kb-linkcheck/{VERSION} (+{project_url})" if project_url else f"papers-kb-linkcheck/{VERSION}"


_ARXIV_MIRROR_HOSTS = re.compile(r"^(xxx\.lanl\.gov|lanl\.arxiv\.org|export\.arxiv\.org|[a-z]{2}\.arxiv\.org|"
                                 r"arxiv-export\d*\.library\.cornell\.edu|arxiv\.org\.[a-z.]+|front\.math\.ucdavis\.edu)$")
_ARXIV_PATH = re.compile(r"^/(?:abs|pdf|ps|format)/(?P<id>\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})"
                         r"(?:v\d+)?(?:\.pdf)?/?$")


def arxiv_canonical(url: str) -> str | None:
    """The canonical ``https://arxiv.org/abs/<id>`` for a URL on an arXiv mirror, else None.

    Mirrors are ``xxx.lanl.gov``, ``export.arxiv.org``, ``lanl.arxiv.org`` and country
    mirrors such as ``cn.arxiv.org``; ``arxiv.org`` and ``www.arxiv.org`` are not mirrors.
    A version suffix (``v2``) and a ``.pdf`` ending are dropped. No request is made.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in ("arxiv.org", "www.arxiv.org") or not _ARXIV_MIRROR_HOSTS.match(host):
        return None
    m = _ARXIV_PATH.match(parts.path)
    if host == "front.math.ucdavis.edu" and not m:
        m = re.match(r"^/(?P<id>\d{4}\.\d{4,5})", parts.path)
    return f"https://arxiv.org/abs/{m.group('id')}" if m else None


@dataclass
class LinkResult:
    """The outcome for one URL.

    ``status`` is one of :data:`STATUSES`; ``code`` the last HTTP status (None without an
    answer); ``final_url`` where a ``moved`` URL should point; ``requests`` how many requests
    this run made for it (0 when cached, excluded or an arXiv mirror).
    """

    url: str
    status: str
    code: int | None = None
    final_url: str | None = None
    message: str = ""
    checked_at: float = 0.0
    requests: int = 0
    cached: bool = False
    origins: list[Origin] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["origins"] = [asdict(o) for o in self.origins]
        d["checked_at"] = _dt.datetime.fromtimestamp(self.checked_at, _dt.timezone.utc).isoformat(timespec="seconds")
        return d


class LinkCache:
    """URL results in a JSON file; OK results younger than ``ttl`` seconds are reused.

    A cache that cannot be read (not JSON, not UTF-8, another layout) is only a cache: it is
    started again, and ``warning`` says so in one line (the command prints it).
    """

    def __init__(self, path: Path | str | None, ttl: float):
        self.path = Path(path) if path else None
        self.ttl = ttl
        self.entries: dict[str, dict[str, Any]] = {}
        self.warning: str | None = None
        if self.path and self.path.exists():
            try:
                self.entries = self._read(self.path)
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self.warning = f"link cache {self.path} is unreadable ({exc}); starting a new one"

    @staticmethod
    def _read(path: Path) -> dict[str, dict[str, Any]]:
        """The entries of a cache file; ValueError naming what is wrong with its layout."""
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("urls", {}), dict):
            raise ValueError('expected {"version": 1, "urls": {URL: result}}')
        entries = {}
        for url, e in doc.get("urls", {}).items():
            if not isinstance(e, dict) or not isinstance(e.get("status"), str):
                raise ValueError(f"entry for {url} is not a result")
            try:
                float(e.get("checked_at", 0))
            except (TypeError, ValueError):
                raise ValueError(f"entry for {url} has checked_at {e.get('checked_at')!r}") from None
            entries[url] = e
        return entries

    def fresh(self, url: str, now: float) -> LinkResult | None:
        e = self.entries.get(url)
        if not e or e.get("status") != "ok" or now - float(e.get("checked_at", 0)) > self.ttl:
            return None
        return LinkResult(url, "ok", e.get("code"), e.get("final_url"), e.get("message", ""),
                          float(e["checked_at"]), 0, True)

    def update(self, results: Iterable[LinkResult]) -> None:
        for r in results:
            if r.cached or r.status == "excluded" or r.requests == 0:
                continue
            self.entries[r.url] = {"status": r.status, "code": r.code, "final_url": r.final_url,
                                   "message": r.message, "checked_at": r.checked_at}

    def save(self) -> None:
        """Write the cache (atomically). Raises papers_kb.files.WriteError when it cannot."""
        if self.path is None:
            return
        from papers_kb.files import atomic_write

        atomic_write(self.path, json.dumps({"version": 1, "urls": self.entries}, indent=1, sort_keys=True) + "\n")


# =========================================================================================
# External check: the concurrent checker
# =========================================================================================


class _Unusable(Exception):
    """A URL (or a redirect's target) that cannot be requested: its message says why."""


def _check_usable(url: str, redirect: bool = False) -> None:
    """Raise :class:`_Unusable` for a URL no HTTP request can be made to: another scheme
    (``mailto:``, ``javascript:``, ``data:`` ...), no host, a port out of range, a malformed
    host; otherwise return."""
    what = "redirected to" if redirect else "invalid URL"
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            shown = url if len(url) <= 80 else url[:77] + "..."
            raise _Unusable(f"redirected to a non-HTTP URL {shown}" if redirect else
                            f"invalid URL: not http(s): {shown}")
        if not parts.hostname:
            raise _Unusable(f"{what} {url}: no host")
        parts.port  # noqa: B018  -- raises ValueError for a port out of range
    except ValueError as exc:
        raise _Unusable(f"{'invalid redirect target' if redirect else 'invalid URL'} {url} ({exc})") from None


async def _refuse_unusable_redirect(response: Any) -> None:
    """httpx response hook: stop at a redirect whose Location cannot be followed (httpx would
    fail building the next request with a bare InvalidURL, losing the Location)."""
    if response.is_redirect and "location" in response.headers:
        _check_usable(urljoin(str(response.request.url), response.headers["location"]), redirect=True)


class _Retry(Exception):
    def __init__(self, status: str, code: int | None, message: str, wait: float | None = None):
        self.status, self.code, self.message, self.wait = status, code, message, wait


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


class LinkChecker:
    """Checks URLs concurrently; one instance per run.

    Every request (each HEAD/GET, each redirect hop, each retry) takes a slot of its host
    (``per_host``, or the host rule) and of the global limit (``concurrency``); a host slot
    is held ``delay`` seconds more after its request (politeness). HEAD is tried first, GET
    when HEAD is refused (405, 403, 501). Redirects are followed by hand up to
    ``max_redirects``: a 301/308 on the way makes the URL ``moved`` (to the final URL), a
    302/303/307 is followed silently, a URL seen twice is a loop (``broken``). 5xx, timeouts
    and connection errors are retried ``retries`` times with exponential backoff; a 429 waits
    for its ``Retry-After`` (at most ``max_retry_after`` s, else ``backoff``) and ends as
    ``rate-limited`` when still refused.

    Args:
        config: the settings.
        progress: called with ``(done, total)`` after each URL.

    Each host gets its own small :class:`httpx.AsyncClient` (connection pool of ``per_host``
    connections): one shared pool for hundreds of connections spends its time scanning them.
    """

    def __init__(self, config: LinkConfig, progress: Callable[[int, int], None] | None = None):
        self.cfg = config
        self.progress = progress
        self._host_sems: dict[str, asyncio.Semaphore] = {}
        self._clients: dict[str, Any] = {}
        self._ssl: Any = None
        self._global: asyncio.Semaphore | None = None

    def _client(self, host: str) -> Any:
        import httpx

        if host not in self._clients:
            if self._ssl is None:  # one TLS context for all clients: loading CA files is slow
                self._ssl = httpx.create_ssl_context()
            n = max(1, int(self.cfg.rule(host).per_host or self.cfg.per_host))
            self._clients[host] = httpx.AsyncClient(
                verify=self._ssl, timeout=httpx.Timeout(self.cfg.timeout), follow_redirects=False,
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                headers={"User-Agent": self.cfg.user_agent or default_user_agent()},
                event_hooks={"response": [_refuse_unusable_redirect]})
        return self._clients[host]

    def _host_sem(self, host: str) -> asyncio.Semaphore:
        if host not in self._host_sems:
            n = self.cfg.rule(host).per_host or self.cfg.per_host
            self._host_sems[host] = asyncio.Semaphore(max(1, int(n)))
        return self._host_sems[host]

    async def _send(self, method: str, url: str) -> Any:
        """One request under the host and global limits, done within ``timeout`` seconds in
        all (httpx's timeouts bound each read; a server trickling its headers would not hit
        them).

        A GET body is read only when it is announced as small (<= 64 KiB), so that the
        connection can be reused; a larger one (a PDF) is dropped unread with its connection.

        Raises:
            TimeoutError: no complete answer within ``timeout`` seconds.
        """
        host = (urlsplit(url).hostname or "").lower()
        rule = self.cfg.rule(host)
        delay = self.cfg.delay if rule.delay is None else rule.delay
        async with self._host_sem(host):
            try:
                assert self._global is not None
                async with self._global, asyncio.timeout(self.cfg.timeout):
                    client = self._client(host)
                    req = client.build_request(method, url)
                    if method == "HEAD":  # no body: a plain send keeps the connection alive
                        return await client.send(req)
                    resp = await client.send(req, stream=True)
                    try:
                        size = int(resp.headers.get("content-length", "-1"))
                    except ValueError:
                        size = -1
                    if 0 <= size <= 65536:
                        await resp.aread()
                    await resp.aclose()
                    return resp
            finally:
                if delay > 0:
                    await asyncio.sleep(delay)

    async def _fetch_once(self, url: str, counter: list[int]) -> tuple[str, int | None, str | None, str]:
        """Follow one URL's redirect chain once. Returns ``(status, code, final_url, message)``.

        Raises:
            _Retry: on a retryable outcome (5xx, 429, timeout, connection error).
        """
        import httpx

        seen = {url}
        current, moved = url, False
        for hop in range(self.cfg.max_redirects + 1):
            try:
                _check_usable(current, redirect=hop > 0)
            except _Unusable as exc:
                return "broken", None, current, str(exc)
            rule = self.cfg.rule(urlsplit(current).hostname or "")
            methods = ["GET"] if rule.method == "GET" else ["HEAD", "GET"]
            resp = None
            for method in methods:
                counter[0] += 1
                try:
                    resp = await self._send(method, current)
                except _Unusable as exc:  # from the response hook: a redirect to mailto:, data: ...
                    return "broken", None, current, str(exc)
                except httpx.InvalidURL as exc:
                    return "broken", None, current, f"invalid URL {current} ({exc})"
                except (httpx.TimeoutException, TimeoutError):
                    raise _Retry("timeout", None, f"no complete answer within {self.cfg.timeout:g} s")
                except httpx.RemoteProtocolError as exc:
                    raise _Retry("broken", None, f"connection dropped ({exc or 'no response'})")
                except httpx.ConnectError as exc:
                    raise _Retry("broken", None, f"cannot connect ({exc})")
                except httpx.TransportError as exc:
                    raise _Retry("broken", None, f"{type(exc).__name__}: {exc}")
                if method == "HEAD" and resp.status_code in (405, 403, 501):
                    continue
                break
            assert resp is not None
            code = resp.status_code
            if code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                nxt = urljoin(current, resp.headers["location"])
                if nxt in seen:
                    return "broken", code, nxt, f"redirect loop at {nxt}"
                seen.add(nxt)
                moved = moved or code in (301, 308)
                current = nxt
                continue
            if code == 429:
                raise _Retry("rate-limited", code, "HTTP 429 Too Many Requests",
                             _retry_after(resp.headers.get("retry-after"), time.time()))
            if code >= 500:
                raise _Retry("broken", code, f"HTTP {code} {resp.reason_phrase}".rstrip())
            if code < 400 or code in rule.ok_status:
                if moved:
                    return "moved", code, current, f"moved to {current}"
                return "ok", code, current if current != url else None, ""
            return "broken", code, current if current != url else None, f"HTTP {code} {resp.reason_phrase}".rstrip()
        return "broken", None, current, f"more than {self.cfg.max_redirects} redirects"

    async def check_one(self, url: str) -> LinkResult:
        """Check one URL with retries; never raises for network problems (nor for a URL that
        cannot be requested: that is ``broken``, with the reason)."""
        try:
            return await self._check_one(url)
        except Exception as exc:  # noqa: BLE001 -- one URL must not stop the run; reported as broken
            return LinkResult(url, "broken", None, None, f"cannot be checked: {type(exc).__name__}: {exc}",
                              time.time(), 0)

    async def _check_one(self, url: str) -> LinkResult:
        counter = [0]
        try:
            _check_usable(url)
        except _Unusable as exc:
            return LinkResult(url, "broken", None, None, str(exc), time.time(), 0)
        canon = arxiv_canonical(url)
        if canon:
            return LinkResult(url, "moved", None, canon, f"arXiv mirror: use {canon}", time.time(), 0)
        host = urlsplit(url).hostname or ""
        if self.cfg.excluded(url) or self.cfg.rule(host).skip:
            return LinkResult(url, "excluded", message="excluded by configuration", checked_at=time.time())
        last: _Retry | None = None
        attempts = 0
        for attempt in range(self.cfg.retries + 1):
            attempts += 1
            try:
                status, code, final, msg = await self._fetch_once(url, counter)
                return LinkResult(url, status, code, final, msg, time.time(), counter[0])
            except _Retry as r:
                last = r
                if attempt == self.cfg.retries:
                    break
                wait = self.cfg.backoff * (2 ** attempt)
                if r.status == "rate-limited" and r.wait is not None:
                    if r.wait > self.cfg.max_retry_after:
                        break  # asks for longer than we may wait: report it now
                    wait = r.wait
                await asyncio.sleep(wait)
        assert last is not None
        msg = last.message
        if last.status == "rate-limited" and last.wait is not None:
            msg += f" (Retry-After {last.wait:g} s)"
        if attempts > 1:
            msg += f" after {attempts} attempts"
        return LinkResult(url, last.status, last.code, None, msg, time.time(), counter[0])

    async def check_urls(self, urls: Iterable[str], cache: LinkCache | None = None) -> dict[str, LinkResult]:
        """Check distinct URLs concurrently; OK results fresh in ``cache`` are not requested."""
        urls = list(dict.fromkeys(urls))
        self._global = asyncio.Semaphore(max(1, self.cfg.concurrency))
        self._host_sems = {}
        results: dict[str, LinkResult] = {}
        todo = []
        now = time.time()
        for u in urls:
            hit = cache.fresh(u, now) if cache else None
            if hit:
                results[u] = hit
            else:
                todo.append(u)
        done = [len(results)]
        total = len(urls)

        async def one(u: str) -> None:
            results[u] = await self.check_one(u)
            done[0] += 1
            if self.progress:
                self.progress(done[0], total)

        try:
            await asyncio.gather(*(one(u) for u in todo))
        finally:
            clients, self._clients = list(self._clients.values()), {}
            for c in clients:
                await c.aclose()
        return {u: results[u] for u in urls}


def check_external(urls: dict[str, list[Origin]], config: LinkConfig, cache: LinkCache | None = None,
                   progress: Callable[[int, int], None] | None = None) -> list[LinkResult]:
    """Check every URL of ``urls`` (URL -> origins); results carry their origins.

    The cache, when given, is updated and saved.
    """
    checker = LinkChecker(config, progress=progress)
    res = asyncio.run(checker.check_urls(list(urls), cache))
    out = []
    for u, r in res.items():
        r.origins = list(urls[u])
        out.append(r)
    if cache is not None:
        cache.update(out)
        cache.save()
    return out


# =========================================================================================
# Reports and the command
# =========================================================================================


def summarize(results: list[LinkResult]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for r in results:
        counts[r.status] += 1
    return counts


def format_external(results: list[LinkResult], verbose: bool = False) -> str:
    """A table grouped by status (broken, moved, rate-limited, timeout; ok/excluded only
    with ``verbose``): ``file:line  field  url  (message)`` then one count line."""
    lines: list[str] = []
    by: dict[str, list[LinkResult]] = defaultdict(list)
    for r in results:
        by[r.status].append(r)
    shown = STATUSES if verbose else ("broken", "moved", "rate-limited", "timeout")
    for status in shown:
        group = sorted(by.get(status, []), key=lambda r: (str(r.origins[0]) if r.origins else "", r.url))
        if not group:
            continue
        lines.append(f"{status} ({len(group)})")
        rows = []
        for r in group:
            o = r.origins[0] if r.origins else Origin("?", 0, "")
            more = f" (+{len(r.origins) - 1} more)" if len(r.origins) > 1 else ""
            detail = r.message or (f"HTTP {r.code}" if r.code else "")
            rows.append((f"{o}{more}", o.field, r.url, detail))
        w0 = max(len(x[0]) for x in rows)
        w1 = max(len(x[1]) for x in rows)
        for a, b, c, d in rows:
            lines.append(f"  {a:<{w0}}  {b:<{w1}}  {c}" + (f"  ({d})" if d else ""))
    counts = summarize(results)
    cached = sum(1 for r in results if r.cached)
    lines.append("external: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
                 + f" ({len(results)} URLs, {cached} from cache)")
    return "\n".join(lines) + "\n"


def format_internal(problems: list[InternalProblem], pages: int, links: int) -> str:
    """Broken internal references grouped by page: ``page:`` then ``  line: href (reason)``."""
    lines: list[str] = []
    by: dict[str, list[InternalProblem]] = defaultdict(list)
    for p in problems:
        by[p.page].append(p)
    for page in sorted(by):
        lines.append(f"{page}:")
        lines.extend(f"  {p.line}: {p.href} ({p.reason})" for p in by[page])
    lines.append(f"internal: {len(problems)} broken of {links} links on {pages} pages")
    return "\n".join(lines) + "\n"


def _progress_printer() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty() or os.environ.get("CI"):
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\rchecking links {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _site_base_path(root: Path) -> str:
    """Path part of ``site_url`` in ``mkdocs.yml`` (``/`` when absent)."""
    cfg = root / "mkdocs.yml"
    if not cfg.exists():
        return "/"
    m = re.search(r"^site_url:\s*['\"]?([^'\"\s#]+)", cfg.read_text(encoding="utf-8"), re.M)
    return urlsplit(m.group(1)).path or "/" if m else "/"


def cmd_check_links(args: argparse.Namespace) -> int:
    """``papers-kb check-links``: exit 0, 1 on broken links, 2 on usage/config errors."""
    root = Path(args.root).resolve()
    internal = args.internal or not args.external
    external = args.external
    site = Path(args.site).resolve() if args.site else root / "site"
    failed = False
    payload: dict[str, Any] = {}

    if internal:
        try:
            problems, pages, links = check_internal(site, _site_base_path(root))
        except FileNotFoundError as exc:
            print(exc, file=sys.stderr)
            return 2
        sys.stdout.write(format_internal(problems, pages, links))
        payload["internal"] = {"pages": pages, "links": links, "broken": [asdict(p) for p in problems]}
        failed |= bool(problems)

    if external:
        from papers_kb.catalog import load_catalog

        try:
            cfg = load_config(root, args.config)
        except (OSError, ValueError) as exc:
            print(f"check-links configuration: {exc}", file=sys.stderr)
            return 2
        if args.timeout is not None:
            cfg.timeout = args.timeout
        cat = load_catalog(root / "data", root=root)
        urls: dict[str, list[Origin]] = {u: list(o) for u, o in catalog_urls(cat).items()}
        if site.is_dir():
            try:
                prefix = site.relative_to(root).as_posix()
            except ValueError:
                prefix = str(site)
            for u, origins in site_urls(site, prefix).items():
                urls.setdefault(u, []).extend(origins)
        else:
            print(f"note: {site} not built; checking the URLs of data/ only", file=sys.stderr)
        cache_path = Path(args.cache) if args.cache else root / ".cache" / "links.json"
        cache = None if args.no_cache else LinkCache(cache_path, cfg.ttl_days * 86400)
        if cache is not None and cache.warning:
            print(f"warning: {cache.warning}", file=sys.stderr)
        t0 = time.perf_counter()
        results = check_external(urls, cfg, cache, progress=_progress_printer())
        sys.stdout.write(format_external(results, verbose=args.verbose))
        print(f"checked in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        payload["external"] = {"summary": summarize(results), "results": [r.as_json() for r in results]}
        failed |= any(r.status == "broken" for r in results)

    if args.json:
        from papers_kb.files import atomic_write

        atomic_write(Path(args.json), json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if failed else 0


def add_cli(subparsers: Any) -> None:
    """Register ``check-links`` on the ``papers-kb`` sub-command parser."""
    p = subparsers.add_parser("check-links", help="check internal links of site/ and external URLs of data/ and site/",
                              description="Without --internal/--external only the internal check runs.")
    p.add_argument("--internal", action="store_true", help="check links, assets and anchors inside the built site")
    p.add_argument("--external", action="store_true", help="check every URL of data/ and the site over the network")
    p.add_argument("--site", default=None, help="built site folder (default: <root>/site)")
    p.add_argument("--cache", default=None, help="JSON cache of results (default: <root>/.cache/links.json)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--json", default=None, metavar="FILE", help="write machine-readable results to FILE")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="TOML settings (default: [tool.papers-kb.check-links] of <root>/pyproject.toml)")
    p.add_argument("--timeout", type=float, default=None, help="per-request timeout in seconds (overrides config)")
    p.add_argument("-v", "--verbose", action="store_true", help="also list ok and excluded URLs")
    p.set_defaults(func=cmd_check_links)
