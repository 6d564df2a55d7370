"""Catalog -> Markdown pages under ``site_src/generated/`` via Jinja templates.

Templates receive plain view objects (dicts, lists, strings) built here, never the loader.
Rendering is deterministic (same catalog -> byte-identical files) and writes a file only
when its content changed; files that are no longer produced are removed.

**One escaping path.** Every ``{{ value }}`` a template prints goes through the environment's
``finalize`` hook with autoescaping on: a plain string becomes Markdown-safe text (:func:`md`:
HTML-escaped, Markdown/Jinja control characters and line-leading list markers as entities,
newlines folded), so a title holding ``<script>``, ``{{ x }}`` or ``[x](javascript:...)`` is
shown as text. Only the context filters produce markup, each for one place of a page:
``url`` (a link target), ``title`` (a link title), ``fm`` (a front-matter value), ``code``
(inline code) and ``fenced`` (a fenced code block). Templates never mark anything
safe themselves.

**Paths from data stay inside the project.** Every page is written inside
``site_src/generated/``, and a reproduction record's ``source_file`` is read only from inside
``videozoo/`` (the schema checks both; :class:`UnsafePath` is raised if they get past it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from papers_kb.catalog import Catalog
from papers_kb.files import atomic_write
from papers_kb.reproduction import (LABELS, LADDER, LESSON_CHECKS, check_label, derive_paper_status, evidence_label,
                                    lesson_rows, motion_results)
from papers_kb.schema import KEY_RE, Paper, Result, SourceDoc

TEMPLATES = Path(__file__).parent / "templates"
GENERATED = "generated"  # folder inside site_src/
CODE_ROOT = "videozoo"  # reproduction source files are read from inside this project folder only

METRIC_LABELS = {
    "top1": "top-1 (%)", "top5": "top-5 (%)", "params": "params (M)", "gflops": "GFLOPs",
    "fps": "frames/s", "latency": "latency (ms)", "gpus": "GPUs", "speedup": "speed-up (x)", "other": "value",
}
KIND_LABELS = {"paper-reported": "reported by the paper", "author-reported": "released by the authors",
               "library-measured": "measured by a library", "survey-reported": "reported by a survey",
               "measured": "measured here"}

_MD_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_[]{}|~$#!"}
_MD_TABLE = str.maketrans(_MD_SPECIAL)
_TITLE_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_[]{}|~$#!()"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls but tab/newline/CR
_BREAK = re.compile(r"\s*[\r\n\u2028\u2029\x85]\s*")
_SNIPPET_LINE = re.compile(r"^(\s*)(-+8<-+)", re.M)  # pymdownx.snippets include syntax


class UnsafePath(ValueError):
    """A path built from data would leave the folder it belongs in (one-line message)."""


def plain_text(value: Any) -> str:
    """One line of text: control characters dropped, line breaks folded into spaces."""
    return _BREAK.sub(" ", _CONTROL.sub("", str(value))).strip()


def md(value: Any) -> Markup:
    """Text for anywhere in a Markdown page: one line, HTML-escaped, Markdown/Jinja control
    characters and a line-leading list, heading-underline or ordered-list marker as entities.

    Already escaped markup (:class:`markupsafe.Markup`) is returned unchanged.
    """
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    text = html.escape(plain_text(value), quote=False)
    text = text.translate(_MD_TABLE)
    text = re.sub(r"^[-+=]", lambda m: f"&#{ord(m.group())};", text)  # list item, setext underline
    text = re.sub(r"^(\d+)([.)])(?=\s|$)", lambda m: f"{m.group(1)}&#{ord(m.group(2))};", text)
    return Markup(text)


def cell(value: Any) -> Markup:
    """:func:`md` (kept for table cells; every value is one line already)."""
    return md(value)


def front_matter(value: Any) -> Markup:
    """A YAML (JSON-quoted) string for front matter, HTML-escaped: MkDocs themes print page
    titles without escaping, so ``<`` and ``&`` must already be entities."""
    return Markup(json.dumps(html.escape(plain_text(value), quote=False), ensure_ascii=False))


def link_title(value: Any) -> Markup:
    """A Markdown link title, ``"..."``: the :func:`md` escaping plus quotes and parentheses
    as HTML entities (inline patterns such as code spans run before links are parsed, and
    Python-Markdown ends the link at an unbalanced parenthesis)."""
    text = html.escape(plain_text(value), quote=True)
    return Markup('"' + "".join(_TITLE_SPECIAL.get(c, c) for c in text) + '"')


def url(value: Any) -> Markup:
    """A link target safe inside Markdown link parentheses (spaces, parentheses, double quotes
    and angle brackets percent-encoded).

    Raises:
        UnsafePath: for an absolute URL whose scheme is not http(s) (``javascript:`` ...).
    """
    text = str(value)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", text)
    if m and m.group(1).lower() not in ("http", "https"):
        raise UnsafePath(f"link target {text!r}: only http(s) URLs and relative links are written")
    return Markup(quote(text, safe=":/?#[]@!$&'*+,;=%~-._"))


def code(value: Any) -> Markup:
    """``value`` as inline code, one line: a ``<code>`` element around :func:`md` text (a
    backtick code span cannot hold every text: a long backtick fence at the start of a line
    opens a fenced block)."""
    return Markup(f"<code>{md(value)}</code>")


def fenced(value: Any, lang: str = "", linenums: bool = False) -> Markup:
    """A fenced code block showing ``value`` verbatim: the fence is longer than any backtick
    run inside, and snippet-include lines (``--8<--``) are escaped so they stay text.
    ``linenums`` numbers the lines from 1."""
    text = _CONTROL.sub("", str(value)).rstrip("\n")
    text = _SNIPPET_LINE.sub(r"\1;\2", text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    options = ' linenums="1"' if linenums else ""
    return Markup(f"{fence}{lang}{options}\n{text}\n{fence}")


_SNIPPET_PATH = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+/-]*$")


def snippet(path: Any) -> Markup:
    """A pymdownx.snippets include line for a file the build wrote under ``generated/.snippets/``
    (an inline chart): ``--8<-- "charts/x.svg"``.

    Raises:
        UnsafePath: for a path that is not plain (quotes, spaces, ``..``, absolute).
    """
    text = str(path)
    if not _SNIPPET_PATH.match(text) or ".." in text.split("/"):
        raise UnsafePath(f"snippet {text!r} is not a plain relative path")
    return Markup(f'--8<-- "{text}"')


def join(values: Iterable[Any], sep: str = "", attribute: str | None = None) -> Markup:
    """Jinja's ``join`` on the one escaping path: each item through :func:`md`."""
    items = [getattr(v, attribute) if attribute else v for v in values]
    return Markup(sep).join(md(v) for v in items)


def num(value: float | None) -> str:
    """A number without trailing ``.0`` (``24.3``, ``1000``)."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


@dataclass
class Page:
    """One output file: path relative to ``site_src/`` and its content."""

    path: str
    content: str | bytes


@dataclass
class PageSpec:
    """A page before rendering: ``make()`` returns its content.

    ``inputs`` is everything the content depends on besides the code (JSON-able data: a
    template's name and context, the entries a download is made of); ``None`` when not
    known, and the page is then rendered every time. :func:`write_specs` renders a page
    again only when its inputs changed.
    """

    path: str
    make: Callable[[], str | bytes]
    inputs: Any = None

    def page(self) -> Page:
        return Page(self.path, self.make())


@dataclass
class RenderReport:
    """What :func:`write_pages` / :func:`write_specs` did.

    ``written``: files whose content changed; ``unchanged``: pages left as they were (for
    :func:`write_specs`, pages whose inputs had not changed and were not rendered);
    ``rendered``: pages rendered this time; ``removed``: generated files no longer produced;
    ``make_seconds``: time spent making the rendered pages, by file suffix (``.md``, ``.svg`` ...).
    """

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    rendered: list[str] = field(default_factory=list)
    make_seconds: dict[str, float] = field(default_factory=dict)


def environment() -> Environment:
    """The Jinja environment: autoescape on, with :func:`md` as the escaping of every printed
    value (``finalize``); context filters ``url``, ``title``, ``fm``, ``code``, ``fenced``."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # macro and filter results stay Markup; everything else goes through md
        finalize=md,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md=md, cell=cell, url=url, num=num, fm=front_matter, title=link_title, code=code,
                       fenced=fenced, join=join, snippet=snippet)
    return env


# --- view objects -------------------------------------------------------------------------


def authors_short(authors: list[str], n: int = 3) -> str:
    def clean(a: str) -> str:
        if "," in a:
            fam, given = [x.strip() for x in a.split(",", 1)]
            return f"{given} {fam}"
        return a

    names = [clean(a) for a in authors]
    if len(names) > n:
        return ", ".join(names[:n]) + " et al."
    return ", ".join(names)


def paper_links(p: Paper) -> list[dict[str, str]]:
    """The main links of a paper: arXiv abstract and PDF, DOI, landing page, PDF."""
    out = []
    if p.arxiv_id:
        out.append({"label": "arXiv", "url": f"https://arxiv.org/abs/{p.arxiv_id}"})
        out.append({"label": "PDF", "url": f"https://arxiv.org/pdf/{p.arxiv_id}"})
    if p.doi:
        out.append({"label": "DOI", "url": f"https://doi.org/{p.doi}"})
    if p.url:
        out.append({"label": "page", "url": p.url})
    if p.pdf and not p.arxiv_id:
        out.append({"label": "PDF", "url": p.pdf})
    return out


def venue_str(p: Paper) -> str:
    parts = [x for x in (p.venue, str(p.year) if p.year else None) if x]
    if p.venue and p.year and str(p.year) in p.venue:
        parts = [p.venue]
    return " ".join(parts)


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z\u00c0-\uffff]+", " ", text.lower()).strip()


def distinct_aliases(title: str, short_name: str | None, aliases: list[str]) -> list[str]:
    """The aliases worth showing: not the title again (nor the title after its "TSM: " prefix),
    not the short name, each once (compared without case and punctuation)."""
    seen = {_norm(title), _norm(short_name or "")}
    if ":" in title:
        seen.add(_norm(title.split(":", 1)[1]))
    out = []
    for a in aliases:
        n = _norm(a)
        if n and n not in seen:
            seen.add(n)
            out.append(a)
    return out


def doc_short_name(d: SourceDoc) -> str:
    """How tables name a source document: a survey by its authors and year, any other document
    by its title without the parenthesised gloss."""
    if d.kind == "survey" and d.author:
        first = d.author.split(",")[0].strip().split()[-1]
        year = f", {d.date.year}" if d.date else ""
        return f"survey ({first} et al.{year})"
    return re.sub(r"\s*\([^)]*\)\s*$", "", d.title) or d.title


def doc_url(d: SourceDoc) -> str | None:
    """The document's own page: its URL, or its arXiv abstract page."""
    if d.url:
        return d.url
    if d.arxiv_id:
        return f"https://arxiv.org/abs/{d.arxiv_id}"
    return None


def _crumb(name: str, href: str | None = None) -> dict[str, str | None]:
    return {"name": name, "href": href}


class Views:
    """Builds the plain dictionaries the templates render, with relative links.

    Besides the entries' own fields it computes what ties pages together: the learning path's
    order (previous and next reading of every staged paper or dataset), breadcrumbs, source
    documents named by title, and the provenance notes that pages show collapsed.
    """

    def __init__(self, cat: Catalog, abstracts: dict[str, str] | None = None, source_url: str | None = None):
        self.cat = cat
        self.abstracts = abstracts or {}
        self._rows: dict[str, dict[str, Any]] = {}  # paper_row by key: built once, never mutated
        self.source_url = source_url
        # the learning path in reading order: (stage number, position, paper or dataset key)
        self.path = [(n, i, item.paper or item.dataset) for n in sorted(cat.stages)
                     for i, item in enumerate(cat.stages[n].items, 1)]
        self._path_index = {key: j for j, (_, _, key) in enumerate(self.path)}
        # source documents are named by title wherever a note or a check summary cites their key
        keys = sorted(cat.sources, key=len, reverse=True)
        self._doc_re = re.compile(r"(?:\b(?:the\s+)?(?:seed|survey|document)\s+)?(" + "|".join(map(re.escape, keys)) + ")"
                                  ) if keys else None
        self._doc_by_number = {k[:3]: k for k in cat.sources if re.match(r"^\d{3}_", k)}

    def name_sources(self, text: str | None) -> str | None:
        """``text`` with source documents named by title instead of by their file names
        (``survey 003_cde90359197f8a1e.txt`` -> the survey's title, ``seed 004`` -> the list's)."""
        if not text:
            return text
        if self._doc_re is not None:
            text = self._doc_re.sub(lambda m: doc_short_name(self.cat.sources[m.group(1)]), text)

        def by_number(m: re.Match) -> str:
            key = self._doc_by_number.get(m.group(1))
            return doc_short_name(self.cat.sources[key]) if key else m.group(0)

        return re.sub(r"\b[Ss]eed\s*(\d{3})\b", by_number, text)

    def path_ref(self, j: int) -> dict[str, Any]:
        """The reading at index ``j`` of the learning path, with its place on it."""
        n, i, key = self.path[j]
        return {**self.ref(key), "stage": n, "position": i, "stage_title": self.cat.stages[n].title}

    def neighbours(self, key: str) -> dict[str, Any]:
        """Previous and next reading along the learning path (across stages), or ``None``."""
        j = self._path_index.get(key)
        if j is None:
            return {"prev": None, "next": None}
        return {"prev": self.path_ref(j - 1) if j > 0 else None,
                "next": self.path_ref(j + 1) if j + 1 < len(self.path) else None}

    def sources(self, refs: list) -> list[dict[str, Any]]:
        """Source references grouped by document (each document once, its sections in order)."""
        out: dict[str, dict[str, Any]] = {}
        for s in refs:
            row = out.get(s.doc)
            if row is None:
                row = out[s.doc] = {**self.source_label(s.doc, None), "sections": []}
            if s.section and s.section not in row["sections"]:
                row["sections"].append(s.section)
        return list(out.values())

    def provenance(self, entry: Any, extra: list[tuple[str, str | None]] = ()) -> list[dict[str, str]]:
        """Curation notes of an entry, for its collapsed "Provenance" block: how identifiers
        were confirmed, the maintainers' notes, why a field is empty, and the notes on each
        source reference; documents named by title."""
        items: list[tuple[str, str | None]] = [
            ("Identifiers and facts checked", getattr(entry, "confirmed", None)),
            ("Notes", getattr(entry, "notes", None)),
            ("Authors", getattr(entry, "authors_note", None)),
            ("Year", getattr(entry, "year_note", None)),
            *extra,
        ]
        for s in getattr(entry, "sources", []):
            if s.note:
                items.append((f"In {self.source_label(s.doc, None)['short']}", s.note))
        return [{"label": label, "text": self.name_sources(text)} for label, text in items if text]

    # links relative to a page inside generated/<section>/
    @staticmethod
    def paper_href(key: str) -> str:
        return f"../papers/{key}.md"

    @staticmethod
    def dataset_href(key: str) -> str:
        return f"../datasets/{key}.md"

    def ref(self, key: str) -> dict[str, str]:
        """Link target and name of a paper or dataset key."""
        if key in self.cat.papers:
            p = self.cat.papers[key]
            return {"key": key, "href": self.paper_href(key), "name": p.short_name or p.title, "title": p.title}
        d = self.cat.datasets[key]
        return {"key": key, "href": self.dataset_href(key), "name": d.name, "title": d.name}

    @staticmethod
    def code_href(source_file: str) -> str:
        """Page of a model file's code (one per file: a paper's variants share it)."""
        return f"code/{Path(source_file).stem}.md"

    def status(self, key: str) -> dict[str, Any] | None:
        """View of paper ``key``'s reproduction: the paper's status from all of its records, the
        fields of its own model's record at the top level, and every record under ``models``."""
        records = self.cat.reproduction_of(key)
        if not records:
            return None
        paper = derive_paper_status(records)
        models = []
        for rec in records:
            st = paper.models[rec.model]
            checks = []
            for c in rec.checks:
                summary = self.name_sources(c.summary)
                # the reason is printed once: not again when the summary already says it
                reason = None if not c.reason or c.reason in summary else self.name_sources(c.reason)
                checks.append({"name": c.name, "status": c.status, "evidence": evidence_label(c),
                               "label": check_label(c), "summary": summary, "reason": reason, "seconds": c.seconds,
                               "motion": motion_results(c) if c.name == "motion" else []})
            models.append({
                "level": st.level,
                "label": st.label,
                "rungs": [{"name": r, "label": LABELS[r], "state": st.rungs[r]} for r in LADDER],
                "checks": checks,
                "command": rec.command,
                "source_file": rec.source_file,
                "code_href": self.code_href(rec.source_file),
                "source_url": f"{self.source_url.rstrip('/')}/{rec.source_file}" if self.source_url else None,
                "model": plain_key(rec.model, "model"),
                "variant": rec.variant,
                "generated": rec.generated.strftime("%Y-%m-%d"),
                "environment": ", ".join(f"{k} {v}" for k, v in sorted(rec.environment.items())
                                         if k in ("python", "torch", "device", "cpu_model", "torch_threads")),
            })
        return {**models[0], "level": paper.level, "label": paper.label, "models": models}

    def paper_row(self, p: Paper) -> dict[str, Any]:
        """The row of a paper in tables (index, tag and stage pages); shared, copy to change it."""
        row = self._rows.get(p.key)
        if row is None:
            row = self._rows[p.key] = self._paper_row(p)
        return row

    def _paper_row(self, p: Paper) -> dict[str, Any]:
        where = self.cat.stage_item(p.key)
        return {
            "key": p.key,
            "href": self.paper_href(p.key),
            "title": p.title,
            "short_name": p.short_name,
            "authors": authors_short(p.authors),
            "year": p.year,
            "venue": p.venue or "",
            "venue_str": venue_str(p),
            "stage": where[0] if where else None,
            "tags": [{"key": t, "name": self.cat.tags[t].name} for t in p.tags],
            "has_code": bool(self.cat.repos_of(p.key)),
            "arxiv_id": p.arxiv_id,
            "links": paper_links(p),
            "status": self.status(p.key),
        }

    def result_row(self, r: Result) -> dict[str, Any]:
        return {
            "paper": self.ref(r.paper),
            "method": r.method,
            "dataset": self.ref(r.dataset) if r.dataset else None,
            "metric": METRIC_LABELS[r.metric],
            "value": num(r.value),
            "unit": r.unit,
            "kind": KIND_LABELS[r.kind],
            "setting": r.setting,
            "details": ", ".join(
                x for x in (
                    r.modality,
                    f"{r.frames} frames" if r.frames else None,
                    f"{r.clips}x{r.crops} views" if r.clips and r.crops else None,
                    f"{r.resolution}px" if r.resolution else None,
                    f"pre-trained on {r.pretrain}" if r.pretrain else None,
                    r.backbone,
                ) if x
            ),
            "source": self.result_source_label(r),
        }

    def result_source_label(self, r: Result) -> dict[str, str]:
        """Link target and name of where a result was read: seed document, paper or repository file."""
        src = r.source
        if src.doc is not None:
            return self.source_label(src.doc, src.section)
        if src.paper is not None:
            title = self.cat.papers[src.paper].title if src.paper in self.cat.papers else src.paper
            return {"doc": "", "title": title, "short": "the paper", "section": src.section or "",
                    "href": self.paper_href(src.paper)}
        repo = self.cat.repos.get(src.repo) if src.repo else None
        short = (repo.name or repo.key) if repo else "repository file"
        return {"doc": "", "title": src.url or "", "short": short, "section": src.section or "",
                "href": src.url or ""}

    def source_label(self, doc: str, section: str | None) -> dict[str, str]:
        """A source document as pages name it: title, short name, the sources page's entry."""
        d = self.cat.sources.get(doc)
        return {"doc": doc, "title": d.title if d else doc, "short": doc_short_name(d) if d else doc,
                "section": section or "", "href": f"../sources.md#{doc_anchor(doc)}",
                "url": (doc_url(d) or "") if d else ""}

    def bibtex(self, p: Paper) -> str:
        """BibTeX of a paper for its "Cite" block (written once per catalog, see :mod:`papers_kb.bibtex`)."""
        from papers_kb.bibtex import catalog_entry_text  # bibtex imports this module

        return catalog_entry_text(self.cat, p)

    def paper_page(self, p: Paper, bibtex: bool = True) -> dict[str, Any]:
        """The view of a paper's page; ``bibtex=False`` leaves ``bibtex`` to be filled (``None``)."""
        cat = self.cat
        where = cat.stage_item(p.key)
        stage = None
        if where:
            n, i = where
            item = cat.stages[n].items[i - 1]
            stage = {"number": n, "position": i, "title": cat.stages[n].title, "why": item.why,
                     "href": f"../stages/stage-{n}.md"}
        repos = [{"name": r.name or r.key, "url": r.url, "framework": r.framework or "",
                  "official": {True: "official", False: "third-party", None: ""}[r.official]}
                 for r in cat.repos_of(p.key)]
        crumbs = [_crumb("Home", "../../index.md"), _crumb("Papers", "index.md")]
        if stage:
            crumbs.append(_crumb(f"Stage {stage['number']}", stage["href"]))
        crumbs.append(_crumb(p.short_name or p.title))
        arxiv = [f"{k} {', '.join(v) if isinstance(v, list) else v}"
                 for k, v in sorted(p.arxiv.model_dump(mode="json", exclude_none=True).items())] if p.arxiv else []
        return {
            **self.paper_row(p),
            "crumbs": crumbs,
            "neighbours": self.neighbours(p.key),
            "provenance": self.provenance(p, [("arXiv record", "; ".join(arxiv) + "." if arxiv else None)]),
            "authors_all": [authors_short([a], 1) for a in p.authors],
            "aliases": distinct_aliases(p.title, p.short_name, p.aliases),
            "summary": p.summary,
            "doi": p.doi,
            "stage_info": stage,
            "prerequisites": [self.ref(k) for k in cat.prerequisites_of(p.key)],
            "builds_on_it": [self.ref(k) for k in cat.built_on_by(p.key)],
            "results": [self.result_row(r) for r in cat.results_of(p.key)],
            "datasets": [{"name": d.name, "href": self.dataset_href(d.key)} for d in cat.datasets_of(p.key)],
            "repos": repos,
            "related": [{"kind": kind, **self.ref(k)} for kind, k in cat.related_of(p.key)],
            "extra_links": [{"kind": l.kind, "label": l.label or l.kind, "url": l.url, "lang": l.lang}
                            for l in p.links],
            "sources": self.sources(p.sources),
            "bibtex": self.bibtex(p) if bibtex else None,
            "abstract": self.abstracts.get(p.arxiv_id or ""),
        }


def plain_key(value: str, what: str) -> str:
    """``value`` when it is a plain catalog key (usable as a file name); else :class:`UnsafePath`."""
    if not KEY_RE.match(value):
        raise UnsafePath(f"{what} {value!r} is not a plain key: it cannot name a page")
    return value


def code_source(root: Path, source_file: str) -> Path:
    """The file a reproduction record's ``source_file`` names, confined to ``<root>/videozoo/``.

    Raises:
        UnsafePath: an absolute path, a ``..`` part, or a path (after symbolic links) outside
            ``videozoo/``.
    """
    rel = Path(source_file)
    top = (root / CODE_ROOT).resolve()
    target = (root / rel).resolve()
    if rel.is_absolute() or ".." in rel.parts or not target.is_relative_to(top):
        raise UnsafePath(f"source_file {source_file!r} is not a file inside {CODE_ROOT}/")
    return target


def doc_anchor(doc: str) -> str:
    return "src-" + re.sub(r"[^a-z0-9]+", "-", doc.lower()).strip("-")


# --- pages ----------------------------------------------------------------------------------


Producer = Callable[[Catalog], "list[Page] | list[PageSpec]"]


def render_pages(cat: Catalog, extra: dict[str, Producer] | None = None,
                 abstracts: dict[str, str] | None = None, source_url: str | None = None) -> list[Page]:
    """Render every generated page of the site, in a deterministic order (see :func:`page_specs`)."""
    return [spec.page() for spec in page_specs(cat, extra, abstracts, source_url)]


def page_specs(cat: Catalog, extra: dict[str, Producer] | None = None,
               abstracts: dict[str, str] | None = None, source_url: str | None = None) -> list[PageSpec]:
    """Every generated page of the site, not rendered yet, sorted by path.

    Building the specs costs one pass over the catalog (view objects from its indexes);
    rendering is left to :meth:`PageSpec.make`, so that unchanged pages need not be rendered.

    Args:
        cat: the validated catalog.
        extra: additional page producers by name (charts, BibTeX downloads) called with ``cat``,
            returning :class:`Page` or :class:`PageSpec` items.
        abstracts: arXiv abstracts by arXiv id, read from the local arXiv cache (never committed).
        source_url: where the project's files are browsable (``[tool.papers-kb.site] source-url``
            of pyproject.toml, e.g. ``https://github.com/OWNER/REPO/blob/main``): pages that show
            a videozoo file also link it there; ``None``: only the site's own code page.
    """
    env = environment()
    v = Views(cat, abstracts, source_url)
    pages: list[PageSpec] = []
    g = GENERATED
    bib = "bib" in (extra or {})

    @functools.cache
    def compiled(template: str) -> Any:  # compiled when a page needs it, once
        return env.get_template(template)

    def render(template: str, ctx: dict[str, Any], finish: Callable[[], None] | None) -> str:
        if finish is not None:
            finish()
        return compiled(template).render(**ctx)

    def put(path: str, template: str, _finish: Callable[[], None] | None = None, _inputs: Any = None,
            **ctx: Any) -> None:
        # inputs: the template and its context, plus what ``_finish`` adds to the context from
        # ``_inputs`` when the page is rendered (so that costly parts are made only then)
        inputs = [template, ctx] if _finish is None else [template, ctx, _inputs]
        pages.append(PageSpec(f"{g}/{path}", functools.partial(render, template, ctx, _finish), inputs))

    papers = cat.sorted_papers()
    rows = [v.paper_row(p) for p in papers]
    tags_used = sorted({t for p in papers for t in p.tags})

    stages = []
    for n in sorted(cat.stages):
        st = cat.stages[n]
        items = []
        for i, item in enumerate(st.items, 1):
            if item.paper:
                row = dict(v.paper_row(cat.papers[item.paper]))
                row["kind"] = "paper"
                row["repos"] = [{"name": r.name or r.key, "url": r.url, "official": r.official}
                                for r in cat.repos_of(item.paper)]
            else:
                d = cat.datasets[item.dataset]  # type: ignore[index]
                row = {"kind": "dataset", "key": d.key, "href": v.dataset_href(d.key), "title": d.name,
                       "short_name": None, "venue_str": "", "links": [{"label": "site", "url": d.url}] if d.url else [],
                       "status": None, "repos": [], "authors": ""}
                intro = [cat.papers[k] for k in d.papers]
                row["intro"] = [v.ref(k.key) for k in intro]
            row.update(position=i, why=item.why, prerequisites=[v.ref(k) for k in item.prerequisites])
            items.append(row)
        stages.append({"number": n, "title": st.title, "title_zh": st.title_zh, "summary": st.summary,
                       "items": items, "bib": f"../bib/stage-{n}.bib" if bib else None,
                       "href": f"stage-{n}.md"})
    for st in stages:
        check = LESSON_CHECKS.get(st["number"])
        bars = lesson_rows(stage_lesson_models(cat, st["number"]), check) if check else []
        st["lesson"] = {"chart": f"charts/stage-{st['number']}-lesson", "check": check,
                        "controls": [b["label"] for b in bars if b["control"]]} if bars else None
    for j, st in enumerate(stages):
        # previous and next stage (the ends link the learning path's overview)
        st["prev"] = {k: stages[j - 1][k] for k in ("number", "title", "href")} if j > 0 else None
        st["next"] = {k: stages[j + 1][k] for k in ("number", "title", "href")} if j + 1 < len(stages) else None
    for st in stages:
        put(f"stages/stage-{st['number']}.md", "stage.md.j2", stage=st)
    put("stages/index.md", "stages_index.md.j2", stages=stages)

    put("papers/index.md", "papers_index.md.j2", rows=rows, counts=cat.counts(), bib="../bib/all.bib" if bib else None)
    for p in papers:
        view = v.paper_page(p, bibtex=False)

        def cite(view: dict[str, Any] = view, p: Paper = p) -> None:
            view["bibtex"] = v.bibtex(p)

        # the Cite block depends on the paper entry alone: written when the page is rendered
        put(f"papers/{p.key}.md", "paper.md.j2", _finish=cite, _inputs=p, p=view)

    datasets = sorted(cat.datasets.values(), key=lambda d: d.name.lower())
    ds_rows = []
    for d in datasets:
        res = cat.results_on(d.key)
        ds_rows.append({
            "key": d.key, "href": f"{d.key}.md", "name": d.name, "url": d.url,
            "videos": d.videos_note or (f"{d.videos:,}" if d.videos else ""), "classes": d.classes or "",
            "task": d.task or "", "origin": d.origin or "", "summary": d.summary, "notes": d.notes,
            "papers": [v.ref(k) | {"href": f"../papers/{k}.md"} for k in d.papers],
            "links": [{"kind": l.kind, "label": l.label or l.kind, "url": l.url} for l in d.links],
            "results": [v.result_row(r) for r in sorted(res, key=lambda r: (r.metric, -r.value))],
            "leaderboard": f"../leaderboards/{d.key}.md" if any(r.metric == "top1" for r in res) else None,
            "stage": cat.stage_item(d.key),
            "tags": [{"key": t, "name": cat.tags[t].name} for t in d.tags],
            "sources": v.sources(d.sources),
            "aliases": distinct_aliases(d.name, None, d.aliases),
            "license": d.license or "",
            "splits": [{"name": sp.name, "videos": f"{sp.videos:,}" if sp.videos else "", "note": sp.note or ""}
                       for sp in d.splits],
            "crumbs": [_crumb("Home", "../../index.md"), _crumb("Datasets", "index.md"), _crumb(d.name)],
            "neighbours": v.neighbours(d.key),
            "provenance": v.provenance(d),
        })
    put("datasets/index.md", "datasets_index.md.j2", rows=ds_rows)
    for row in ds_rows:
        put(f"datasets/{row['key']}.md", "dataset.md.j2", d=row)

    repo_rows = []
    for r in sorted(cat.repos.values(), key=lambda r: (r.name or r.key).lower()):
        repo_rows.append({"key": r.key, "name": r.name or r.key, "url": r.url, "framework": r.framework or "",
                          "official": {True: "official", False: "third-party", None: ""}[r.official],
                          "role": r.role, "summary": r.summary,
                          "papers": [v.ref(k) | {"href": f"../papers/{k}.md"} for k in r.papers]})
    put("repos/index.md", "repos_index.md.j2", rows=repo_rows)

    tag_rows = []
    for t in sorted(cat.tags.values(), key=lambda t: ((t.group or "~"), t.name.lower())):
        members = [v.paper_row(p) for p in cat.papers_with_tag(t.key)]
        if not members and t.key not in tags_used:
            continue
        tag_rows.append({"key": t.key, "name": t.name, "group": t.group or "other",
                         "description": t.description, "count": len(members), "href": f"{t.key}.md"})
        put(f"tags/{t.key}.md", "tag.md.j2", tag=t, rows=members,
            crumbs=[_crumb("Home", "../../index.md"), _crumb("Tags", "index.md"), _crumb(t.name)])
    put("tags/index.md", "tags_index.md.j2", rows=tag_rows)

    boards = leaderboards(cat, v)
    for b in boards:
        put(f"leaderboards/{b['key']}.md", "leaderboard.md.j2", b=b)
    put("leaderboards/index.md", "leaderboards_index.md.j2", boards=boards)

    res_rows = []
    for r in sorted(cat.resources.values(), key=lambda r: (r.kind, r.title.lower())):
        res_rows.append({"title": r.title, "url": r.url, "kind": r.kind, "lang": r.lang or "",
                         "date": r.date.isoformat() if r.date else "", "summary": r.summary,
                         "papers": [v.ref(k) | {"href": f"papers/{k}.md"} for k in r.papers],
                         "sources": [v.source_label(s.doc, s.section) for s in r.sources]})
    put("resources.md", "resources.md.j2", rows=res_rows)

    src_rows = []
    multi = sum(1 for e in list(cat.papers.values()) + list(cat.datasets.values()) + list(cat.repos.values())
                if len({s.doc for s in e.sources}) > 1)
    for key in sorted(cat.sources):
        s = cat.sources[key]
        link = doc_url(s)
        src_rows.append({"key": key, "anchor": doc_anchor(key), "title": s.title, "kind": s.kind.replace("-", " "),
                         "lang": s.lang, "author": s.author, "date": s.date.isoformat() if s.date else "",
                         "url": link, "link_label": f"arXiv {s.arxiv_id}" if s.arxiv_id and link and "arxiv.org" in link
                         else "the document", "description": s.description, "counts": cat.entries_from(key),
                         "provenance": v.name_sources(s.notes)})
    put("sources.md", "sources.md.j2", rows=src_rows, multi=multi)

    repro_rows = []
    for key in sorted({r.paper for r in cat.reproduction.values()}, key=lambda k: (cat.stage_item(k) or (9, 0), k)):
        st = v.status(key)
        for model in st["models"]:
            repro_rows.append({"paper": v.ref(key) | {"href": f"papers/{key}.md"}, "status": model,
                               "stage": (cat.stage_item(key) or (None,))[0]})
    put("reproduction.md", "reproduction.md.j2", rows=repro_rows, ladder=[LABELS[r] for r in LADDER])

    for source_file in sorted({r.source_file for r in cat.reproduction.values()}):
        rec = min((r for r in cat.reproduction.values() if r.source_file == source_file),
                  key=lambda r: (r.variant is not None, r.model))
        src = code_source(cat.root, source_file)
        if not src.is_file():
            continue
        paper = cat.papers[rec.paper]
        put(v.code_href(source_file), "code.md.j2", model=rec.model, source_file=source_file,
            paper={"key": rec.paper, "title": paper.title, "name": paper.short_name or paper.title},
            code=src.read_text(encoding="utf-8"),
            source_url=f"{v.source_url.rstrip('/')}/{source_file}" if v.source_url else None,
            crumbs=[_crumb("Home", "../../index.md"), _crumb("Reproduction", "../reproduction.md"),
                    _crumb(paper.short_name or paper.title, f"../papers/{rec.paper}.md"), _crumb(Path(source_file).name)])

    home = {"counts": cat.counts(), "stages": stages, "boards": boards}
    put(".snippets/home.md", "home_snippet.md.j2", h=home)

    for producer in (extra or {}).values():
        for item in producer(cat):
            pages.append(item if isinstance(item, PageSpec) else PageSpec(item.path, lambda c=item.content: c))
    pages.sort(key=lambda pg: pg.path)
    return pages


LESSON_AXES = {
    "motion": "held-out top-1 on the frame-order task (%)",
    "zero_shot": "held-out top-1 on unseen captions (%)",
    "video_qa": "held-out answers correct (%)",
}
"""Axis title of each stage's lesson chart, by the check it charts."""


def stage_lesson_models(cat: Catalog, number: int) -> list[tuple[str, list]]:
    """``(short name, records)`` of the papers of stage ``number`` that have reproduction records."""
    out = []
    for item in cat.stages[number].items:
        if item.paper and cat.reproduction_of(item.paper):
            p = cat.papers[item.paper]
            out.append((p.short_name or p.title, cat.reproduction_of(item.paper)))
    return out


def leaderboard_results(cat: Catalog, dataset: str) -> list[Result]:
    """The top-1 results on ``dataset`` in leaderboard order: best first, then older, then by name.
    A result's rank (1-based position here) numbers it in the table and in the charts."""
    return sorted((r for r in cat.results_on(dataset) if r.metric == "top1"),
                  key=lambda r: (-r.value, r.year or 0, r.method))


def _source_key(r: Result) -> tuple:
    s = r.source
    return (s.doc, s.paper, s.url, s.section)


def params_by_result(cat: Catalog, rows: list[Result]) -> dict[int, Result]:
    """The parameter count of each result in ``rows`` (by ``id()``): the ``params`` result of the
    same paper and method read from the same source and table, so a survey's count is not
    attached to another source's row of a different backbone. Where one source gives two
    different counts under the same method name, neither is attached."""
    params: dict[tuple, list[Result]] = {}
    for r in cat.results:
        if r.metric == "params":
            params.setdefault((r.paper, r.method, _source_key(r)), []).append(r)
    out = {}
    for r in rows:
        found = params.get((r.paper, r.method, _source_key(r)), [])
        if len({f.value for f in found}) == 1:
            out[id(r)] = found[0]
    return out


def leaderboards(cat: Catalog, v: Views) -> list[dict[str, Any]]:
    """One leaderboard per dataset with top-1 results: rows sorted by top-1, best first."""
    boards = []
    for dkey in sorted({r.dataset for r in cat.results if r.metric == "top1" and r.dataset}):
        results = leaderboard_results(cat, dkey)
        params = params_by_result(cat, results)
        rows = []
        for r in results:
            p = cat.papers[r.paper]
            size = params.get(id(r))
            rows.append({**v.result_row(r), "family": r.family or "", "year": r.year or p.year or "",
                         "params": num(size.value) if size else "", "value_f": r.value,
                         "trainable_only": bool(size and size.trainable_only)})
        d = cat.datasets[dkey]
        not_plotted = [{"method": row["method"], "params": row["params"], "rank": i}
                       for i, row in enumerate(rows, 1) if row["trainable_only"]]
        boards.append({"key": dkey, "name": d.name, "href": f"{dkey}.md", "rows": rows,
                       "crumbs": [_crumb("Home", "../../index.md"), _crumb("Leaderboards", "index.md"), _crumb(d.name)],
                       "dataset_href": f"../datasets/{dkey}.md", "not_plotted": not_plotted,
                       "chart_year": f"charts/{dkey}-top1-vs-year", "chart_params": f"charts/{dkey}-top1-vs-params"})
    return boards


# --- writing ---------------------------------------------------------------------------------


def check_page_paths(paths: list[str], site_src: Path) -> None:
    """Refuse page paths that would be written outside ``site_src/generated/``.

    A path must be relative, without ``..`` parts, and its folder (after symbolic links) inside
    ``site_src/generated/``; folders are resolved once each, not once per page.

    Raises:
        UnsafePath: naming the first such path.
    """
    gen_dir = (site_src / GENERATED).resolve()
    folders: dict[str, bool] = {}
    for path in paths:
        parts = path.split("/")
        inside = not os.path.isabs(path) and ".." not in parts and parts[0] == GENERATED and len(parts) > 1
        if inside:
            folder = os.path.dirname(path)
            if folder not in folders:
                folders[folder] = (site_src / folder).resolve().is_relative_to(gen_dir)
            inside = folders[folder]
        if not inside:
            raise UnsafePath(f"page {path!r} would be written outside {site_src / GENERATED}")


def write_pages(pages: list[Page], site_src: Path) -> RenderReport:
    """Write pages under ``site_src`` if changed; remove generated files no longer produced.

    Raises:
        UnsafePath: a page path that would land outside ``site_src/generated/`` (nothing is
            written then).
    """
    report = RenderReport()
    wanted = set()
    check_page_paths([pg.path for pg in pages], site_src)
    for pg in pages:
        target = site_src / pg.path
        wanted.add(target.resolve())
        raw = pg.content.encode("utf-8") if isinstance(pg.content, str) else pg.content
        if target.exists() and target.read_bytes() == raw:
            report.unchanged += 1
            continue
        atomic_write(target, raw)
        report.written.append(pg.path)
    gen = site_src / GENERATED
    if gen.exists():
        for f in sorted(gen.rglob("*")):
            if f.is_file() and f.resolve() not in wanted:
                f.unlink()
                report.removed.append(str(f.relative_to(site_src)))
        for d in sorted((d for d in gen.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            if not any(d.iterdir()):
                d.rmdir()
    return report


# --- incremental writing ----------------------------------------------------------------------

CACHE_FILE = ".cache/render/pages.json"  # under the project root; .cache/ is not committed


def code_version() -> str:
    """Digest of what turns inputs into pages besides the inputs: this package's source and
    templates, and the versions of the libraries that write page content."""
    from importlib import metadata

    h = hashlib.blake2b(digest_size=16)
    pkg = Path(__file__).parent
    for f in sorted([*pkg.glob("*.py"), *TEMPLATES.rglob("*.j2")]):
        h.update(str(f.relative_to(pkg)).encode() + b"\0" + f.read_bytes() + b"\0")
    for dist in ("jinja2", "bibtexparser", "pylatexenc", "matplotlib", "pydantic"):
        try:
            h.update(f"{dist} {metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} -\0".encode())
    return h.hexdigest()


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # pydantic models (a Tag handed to a template)
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # chart points and bars
        return dataclasses.asdict(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def inputs_digest(inputs: Any) -> str | None:
    """Digest of a page's inputs (canonical JSON), or ``None`` when they are unknown or not JSON-able."""
    if inputs is None:
        return None
    try:
        text = json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=_json_default, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def write_specs(specs: list[PageSpec], site_src: Path, cache_file: Path | None) -> RenderReport:
    """Write the pages under ``site_src``, rendering only those whose inputs changed.

    ``cache_file`` (JSON) records, for each page, the digest of its inputs and the size and
    modification time of the file written; a page whose digest and file are as recorded
    (and the code unchanged, see :func:`code_version`) is neither rendered nor written.
    Without a cache file every page is rendered and written when its content changed.
    Generated files no longer produced are removed, as in :func:`write_pages`.

    Raises:
        UnsafePath: a page path that would land outside ``site_src/generated/`` (nothing is
            written then).
    """
    check_page_paths([spec.path for spec in specs], site_src)
    report = RenderReport()
    version = code_version()
    old: dict[str, list] = {}
    if cache_file is not None and cache_file.is_file():
        try:
            saved = json.loads(cache_file.read_text(encoding="utf-8"))
            if saved.get("code") == version and isinstance(saved.get("pages"), dict):
                old = saved["pages"]
        except (OSError, ValueError, AttributeError):
            old = {}  # a damaged cache only costs a full render
    new: dict[str, list] = {}
    wanted: set[str] = set()
    for spec in specs:
        target = os.path.join(site_src, spec.path)
        wanted.add(spec.path)
        digest = inputs_digest(spec.inputs)
        try:
            st: os.stat_result | None = os.stat(target)
        except OSError:
            st = None
        rec = old.get(spec.path)
        if (digest is not None and rec is not None and rec[0] == digest and st is not None
                and [st.st_size, st.st_mtime_ns] == rec[1:]):
            report.unchanged += 1
            new[spec.path] = rec
            continue
        t0 = time.perf_counter()
        content = spec.make()
        suffix = os.path.splitext(spec.path)[1]
        report.make_seconds[suffix] = report.make_seconds.get(suffix, 0.0) + time.perf_counter() - t0
        report.rendered.append(spec.path)
        raw = content.encode("utf-8") if isinstance(content, str) else content
        if st is None or st.st_size != len(raw) or Path(target).read_bytes() != raw:
            atomic_write(Path(target), raw)
            st = os.stat(target)
            report.written.append(spec.path)
        if digest is not None:
            new[spec.path] = [digest, st.st_size, st.st_mtime_ns]
    gen = site_src / GENERATED
    # files no longer produced, then folders left empty (deepest first); listed as strings
    for dirpath, dirnames, names in sorted(os.walk(gen), key=lambda w: w[0].count(os.sep), reverse=True):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(dirpath, name), site_src)
            if rel not in wanted:
                os.unlink(os.path.join(dirpath, name))
                report.removed.append(rel)
        if dirpath != str(gen) and not os.listdir(dirpath):
            os.rmdir(dirpath)
    report.removed.sort()
    if cache_file is not None and new != old:
        atomic_write(cache_file, json.dumps({"code": version, "pages": new}, separators=(",", ":")))
    return report
