"""Catalog -> Markdown pages under ``site_src/generated/`` via Jinja templates.

Templates receive plain view objects (dicts, lists, strings) built here, never the loader.
Rendering is deterministic (same catalog -> byte-identical files) and writes a file only
when its content changed; files that are no longer produced are removed.

Every text value from ``data/`` goes through the ``md`` filter, which escapes HTML and the
Markdown/Jinja control characters, so a title containing ``<script>`` or ``{{ x }}`` is
shown as text.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from papers_kb.catalog import Catalog
from papers_kb.reproduction import LABELS, LADDER, derive_paper_status, evidence_label
from papers_kb.schema import Paper, Result

TEMPLATES = Path(__file__).parent / "templates"
GENERATED = "generated"  # folder inside site_src/

METRIC_LABELS = {
    "top1": "top-1 (%)", "top5": "top-5 (%)", "params": "params (M)", "gflops": "GFLOPs",
    "fps": "frames/s", "latency": "latency (ms)", "gpus": "GPUs", "speedup": "speed-up (x)", "other": "value",
}
KIND_LABELS = {"paper-reported": "reported by the paper", "author-reported": "released by the authors",
               "library-measured": "measured by a library", "survey-reported": "reported by a survey",
               "measured": "measured here"}

_MD_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_[]{}|~$#!"}


def md(value: Any) -> str:
    """Escape text for Markdown: HTML-escaped, Markdown/Jinja control characters as entities."""
    if value is None:
        return ""
    text = html.escape(str(value), quote=False)
    return "".join(_MD_SPECIAL.get(c, c) for c in text)


def cell(value: Any) -> str:
    """:func:`md` for a table cell: newlines folded into spaces."""
    return re.sub(r"\s*\n\s*", " ", md(value)).strip()


def front_matter(value: Any) -> str:
    """A YAML (JSON-quoted) string for front matter, HTML-escaped: MkDocs themes print page
    titles without escaping, so ``<`` and ``&`` must already be entities."""
    return json.dumps(html.escape(str(value), quote=False), ensure_ascii=False)


def url(value: str) -> str:
    """A URL safe inside Markdown link parentheses (spaces, parentheses, angle brackets encoded)."""
    return quote(str(value), safe=":/?#[]@!$&'*+,;=%~-._")


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
class RenderReport:
    """What :func:`write_pages` did."""

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # output is Markdown; values are escaped with the md filter
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(md=md, cell=cell, url=url, num=num, fm=front_matter)
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


class Views:
    """Builds the plain dictionaries the templates render, with relative links."""

    def __init__(self, cat: Catalog, abstracts: dict[str, str] | None = None):
        self.cat = cat
        self.abstracts = abstracts or {}

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
            models.append({
                "level": st.level,
                "label": st.label,
                "rungs": [{"name": r, "label": LABELS[r], "state": st.rungs[r]} for r in LADDER],
                "checks": [{"name": c.name, "status": c.status, "evidence": evidence_label(c), "summary": c.summary,
                            "reason": c.reason, "seconds": c.seconds} for c in rec.checks],
                "command": rec.command,
                "source_file": rec.source_file,
                "code_href": self.code_href(rec.source_file),
                "model": rec.model,
                "variant": rec.variant,
                "generated": rec.generated.strftime("%Y-%m-%d"),
                "environment": ", ".join(f"{k} {v}" for k, v in sorted(rec.environment.items())
                                         if k in ("python", "torch", "device", "cpu_model", "torch_threads")),
            })
        return {**models[0], "level": paper.level, "label": paper.label, "models": models}

    def paper_row(self, p: Paper) -> dict[str, Any]:
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
        d = self.cat.sources.get(doc)
        short = f"{d.kind.replace('-', ' ')} {doc[:3]}" if d else doc
        return {"doc": doc, "title": d.title if d else doc, "short": short, "section": section or "",
                "href": f"../sources.md#{doc_anchor(doc)}"}

    def paper_page(self, p: Paper) -> dict[str, Any]:
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
        return {
            **self.paper_row(p),
            "authors_all": [authors_short([a], 1) for a in p.authors],
            "aliases": p.aliases,
            "summary": p.summary,
            "notes": p.notes,
            "doi": p.doi,
            "arxiv": p.arxiv.model_dump(mode="json", exclude_none=True) if p.arxiv else None,
            "stage_info": stage,
            "prerequisites": [self.ref(k) for k in cat.prerequisites_of(p.key)],
            "builds_on_it": [self.ref(k) for k in cat.built_on_by(p.key)],
            "results": [self.result_row(r) for r in cat.results_of(p.key)],
            "datasets": [{"name": d.name, "href": self.dataset_href(d.key)} for d in cat.datasets_of(p.key)],
            "repos": repos,
            "related": [{"kind": kind, **self.ref(k)} for kind, k in cat.related_of(p.key)],
            "extra_links": [{"kind": l.kind, "label": l.label or l.kind, "url": l.url, "lang": l.lang}
                            for l in p.links],
            "sources": [self.source_label(s.doc, s.section) for s in p.sources],
            "confirmed": p.confirmed,
            "bibtex": entry_text(p),
            "abstract": self.abstracts.get(p.arxiv_id or ""),
        }


def entry_text(p: Paper) -> str:
    """BibTeX of one paper for its "Cite" block (see :mod:`papers_kb.bibtex`)."""
    from papers_kb.bibtex import entry_text as _entry_text  # bibtex imports this module

    return _entry_text(p)


def doc_anchor(doc: str) -> str:
    return "src-" + re.sub(r"[^a-z0-9]+", "-", doc.lower()).strip("-")


# --- pages ----------------------------------------------------------------------------------


def render_pages(cat: Catalog, extra: dict[str, Callable[[Catalog], list[Page]]] | None = None,
                 abstracts: dict[str, str] | None = None) -> list[Page]:
    """Render every generated page of the site, in a deterministic order.

    Args:
        cat: the validated catalog.
        extra: additional page producers by name (charts, BibTeX downloads) called with ``cat``.
        abstracts: arXiv abstracts by arXiv id, read from the local arXiv cache (never committed).
    """
    env = environment()
    v = Views(cat, abstracts)
    pages: list[Page] = []
    g = GENERATED
    bib = "bib" in (extra or {})

    def put(path: str, template: str, **ctx: Any) -> None:
        pages.append(Page(f"{g}/{path}", env.get_template(template).render(**ctx)))

    papers = cat.sorted_papers()
    rows = [v.paper_row(p) for p in papers]
    tags_used = sorted({t for p in papers for t in p.tags})

    stages = []
    for n in sorted(cat.stages):
        st = cat.stages[n]
        items = []
        for i, item in enumerate(st.items, 1):
            if item.paper:
                row = v.paper_row(cat.papers[item.paper])
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
                       "items": items, "bib": f"../bib/stage-{n}.bib" if bib else None})
    for st in stages:
        put(f"stages/stage-{st['number']}.md", "stage.md.j2", stage=st)
    put("stages/index.md", "stages_index.md.j2", stages=stages)

    put("papers/index.md", "papers_index.md.j2", rows=rows, counts=cat.counts(), bib="../bib/all.bib" if bib else None)
    for p in papers:
        put(f"papers/{p.key}.md", "paper.md.j2", p=v.paper_page(p))

    datasets = sorted(cat.datasets.values(), key=lambda d: d.name.lower())
    ds_rows = []
    for d in datasets:
        res = cat.results_on(d.key)
        ds_rows.append({
            "key": d.key, "href": f"{d.key}.md", "name": d.name, "aliases": d.aliases, "url": d.url,
            "videos": d.videos_note or (f"{d.videos:,}" if d.videos else ""), "classes": d.classes or "",
            "task": d.task or "", "origin": d.origin or "", "summary": d.summary, "notes": d.notes,
            "papers": [v.ref(k) | {"href": f"../papers/{k}.md"} for k in d.papers],
            "links": [{"kind": l.kind, "label": l.label or l.kind, "url": l.url} for l in d.links],
            "results": [v.result_row(r) for r in sorted(res, key=lambda r: (r.metric, -r.value))],
            "leaderboard": f"../leaderboards/{d.key}.md" if any(r.metric == "top1" for r in res) else None,
            "stage": cat.stage_item(d.key),
            "tags": [{"key": t, "name": cat.tags[t].name} for t in d.tags],
            "sources": [v.source_label(s.doc, s.section) for s in d.sources],
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
        put(f"tags/{t.key}.md", "tag.md.j2", tag=t, rows=members)
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
        src_rows.append({"key": key, "anchor": doc_anchor(key), "title": s.title, "kind": s.kind, "lang": s.lang,
                         "description": s.description, "counts": cat.entries_from(key)})
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
        src = cat.root / source_file
        if not src.is_file():
            continue
        code = src.read_text(encoding="utf-8").rstrip("\n")
        longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
        put(v.code_href(source_file), "code.md.j2", model=rec.model, source_file=source_file,
            paper={"key": rec.paper, "title": cat.papers[rec.paper].title}, code=code,
            fence="`" * max(3, longest + 1))

    home = {"counts": cat.counts(), "stages": stages, "boards": boards}
    pages.append(Page(f"{g}/.snippets/home.md", env.get_template("home_snippet.md.j2").render(h=home)))

    for producer in (extra or {}).values():
        pages.extend(producer(cat))
    pages.sort(key=lambda pg: pg.path)
    return pages


def leaderboards(cat: Catalog, v: Views) -> list[dict[str, Any]]:
    """One leaderboard per dataset with top-1 results: rows sorted by top-1, best first."""
    boards = []
    params: dict[tuple[str, str], float] = {(r.paper, r.method): r.value for r in cat.results if r.metric == "params"}
    for dkey in sorted({r.dataset for r in cat.results if r.metric == "top1" and r.dataset}):
        rows = []
        for r in sorted((r for r in cat.results_on(dkey) if r.metric == "top1"),
                        key=lambda r: (-r.value, r.year or 0, r.method)):
            p = cat.papers[r.paper]
            rows.append({**v.result_row(r), "family": r.family or "", "year": r.year or p.year or "",
                         "params": num(params.get((r.paper, r.method))), "value_f": r.value})
        d = cat.datasets[dkey]
        boards.append({"key": dkey, "name": d.name, "href": f"{dkey}.md", "rows": rows,
                       "dataset_href": f"../datasets/{dkey}.md",
                       "chart_year": f"{dkey}-top1-vs-year.svg", "chart_params": f"{dkey}-top1-vs-params.svg"})
    return boards


# --- writing ---------------------------------------------------------------------------------


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_pages(pages: list[Page], site_src: Path) -> RenderReport:
    """Write pages under ``site_src`` if changed; remove generated files no longer produced."""
    report = RenderReport()
    wanted = set()
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
