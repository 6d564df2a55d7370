"""Load ``data/`` with line numbers, validate every entry, cross-check the whole.

This is the one read path of the project: everything downstream (render, export,
link checking, BibTeX) takes a :class:`Catalog`.

Errors are collected, never raised one at a time: :func:`load_catalog` raises a single
:class:`CatalogError` holding every :class:`Problem` (``path:line: field.path: message``).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from papers_kb.schema import (
    Dataset,
    Paper,
    Repo,
    ReproductionRecord,
    Resource,
    Result,
    SourceDoc,
    Stage,
    Tag,
)

# Entry folders under data/ and the model of their entries.
FOLDERS: dict[str, type[BaseModel]] = {
    "papers": Paper,
    "datasets": Dataset,
    "repos": Repo,
    "results": Result,
    "resources": Resource,
}
# Single files under data/ holding lists.
FILES: dict[str, type[BaseModel]] = {
    "sources.yaml": SourceDoc,
    "tags.yaml": Tag,
    "stages.yaml": Stage,
}


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, located in a file (1-based line; 0 when unknown)."""

    path: str
    line: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        fld = f" {self.field}:" if self.field else ""
        sev = "" if self.severity == "error" else f" {self.severity}:"
        return f"{where}:{sev}{fld} {self.message}"


class CatalogError(Exception):
    """Raised by :func:`load_catalog` with every problem found (``.problems``)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s) in data/")

    def report(self) -> str:
        """All problems, one per line, followed by a count line."""
        lines = [str(p) for p in self.problems]
        lines.append(f"{len(self.problems)} problem(s) found")
        return "\n".join(lines)


@dataclass
class Located:
    """Where an entry lives: file (relative to the repo) and 1-based line."""

    path: str
    line: int


@dataclass
class Catalog:
    """The validated knowledge base, plus the indexes pages need.

    Attributes hold entries by key (results as a list). ``where`` maps
    ``(kind, key)`` to the file and line of the entry.
    """

    root: Path
    papers: dict[str, Paper] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    stages: dict[int, Stage] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    sources: dict[str, SourceDoc] = field(default_factory=dict)
    reproduction: dict[str, ReproductionRecord] = field(default_factory=dict)  # by registered model name
    where: dict[tuple[str, str], Located] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    # --- derived indexes ---------------------------------------------------------------
    def repos_of(self, paper: str) -> list[Repo]:
        """Repositories that implement ``paper``, official first, then by key."""
        return sorted((r for r in self.repos.values() if paper in r.papers), key=lambda r: (r.official is not True, r.key))

    def results_of(self, paper: str) -> list[Result]:
        return [r for r in self.results if r.paper == paper]

    def results_on(self, dataset: str) -> list[Result]:
        return [r for r in self.results if r.dataset == dataset]

    def datasets_of(self, paper: str) -> list[Dataset]:
        """Datasets the paper introduces or reports results on."""
        keys = {d.key for d in self.datasets.values() if paper in d.papers}
        keys |= {r.dataset for r in self.results_of(paper) if r.dataset}
        return [self.datasets[k] for k in sorted(keys)]

    def stage_item(self, key: str) -> tuple[int, int] | None:
        """``(stage number, 1-based position)`` of a paper/dataset on the learning path."""
        for n, stage in sorted(self.stages.items()):
            for i, item in enumerate(stage.items, 1):
                if item.ref == key:
                    return n, i
        return None

    def prerequisites_of(self, key: str) -> list[str]:
        for stage in self.stages.values():
            for item in stage.items:
                if item.ref == key:
                    return list(item.prerequisites)
        return []

    def built_on_by(self, key: str) -> list[str]:
        """Stage items that list ``key`` as a prerequisite (what builds on it)."""
        return [item.ref for n in sorted(self.stages) for item in self.stages[n].items if key in item.prerequisites]

    def papers_with_tag(self, tag: str) -> list[Paper]:
        return [p for p in self.sorted_papers() if tag in p.tags]

    def sorted_papers(self) -> list[Paper]:
        """Papers by year (newest first), then key."""
        return sorted(self.papers.values(), key=lambda p: (-(p.year or 0), p.key))

    def related_of(self, key: str) -> list[tuple[str, str]]:
        """``(kind, other key)`` relations of a paper, both directions."""
        out = [(r.kind, r.paper) for r in self.papers[key].related]
        for p in self.papers.values():
            for r in p.related:
                if r.paper == key and not any(o == p.key for _, o in out):
                    out.append((f"{r.kind} (of)", p.key))
        return out

    def reproduction_of(self, paper: str) -> list[ReproductionRecord]:
        """Every reproduction record of paper ``paper`` (one per registered name): the paper's own
        model first (the record that is not a variant), then its variants by name."""
        return sorted((r for r in self.reproduction.values() if r.paper == paper),
                      key=lambda r: (r.variant is not None, r.model))

    def entries_from(self, doc: str) -> dict[str, int]:
        """How many entries of each kind cite seed document ``doc``."""
        counts: dict[str, int] = defaultdict(int)
        for kind, entries in (("papers", self.papers.values()), ("datasets", self.datasets.values()),
                              ("repos", self.repos.values()), ("resources", self.resources.values())):
            counts[kind] = sum(1 for e in entries if any(s.doc == doc for s in e.sources))
        counts["results"] = sum(1 for r in self.results if r.source.doc == doc)
        return dict(counts)

    def counts(self) -> dict[str, int]:
        return {
            "papers": len(self.papers),
            "datasets": len(self.datasets),
            "repos": len(self.repos),
            "results": len(self.results),
            "resources": len(self.resources),
            "stages": len(self.stages),
            "tags": len(self.tags),
            "reproduction": len(self.reproduction),
        }

    def as_json(self) -> dict[str, Any]:
        """The catalog as plain JSON-ready data, entries as the schemas define them."""

        def dump(items: Iterable[BaseModel]) -> list[dict]:
            return [m.model_dump(mode="json", exclude_none=True) for m in items]

        return {
            "papers": dump(self.papers[k] for k in sorted(self.papers)),
            "datasets": dump(self.datasets[k] for k in sorted(self.datasets)),
            "repos": dump(self.repos[k] for k in sorted(self.repos)),
            "results": dump(self.results),
            "stages": dump(self.stages[n] for n in sorted(self.stages)),
            "resources": dump(self.resources[k] for k in sorted(self.resources)),
            "tags": dump(self.tags[k] for k in sorted(self.tags)),
            "sources": dump(self.sources[k] for k in sorted(self.sources)),
        }


# --- YAML with line numbers --------------------------------------------------------------


def yaml_loader() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def _plain(node: Any) -> Any:
    """ruamel round-trip nodes -> plain Python (dict/list/str/int/float/bool/date)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node
    return node


def line_of(node: Any, loc: tuple) -> int:
    """1-based line of the deepest node on pydantic's error ``loc`` path."""
    line = node.lc.line + 1 if hasattr(node, "lc") else 0
    cur = node
    for part in loc:
        if isinstance(cur, CommentedMap) and part in cur:
            try:
                line = cur.lc.value(part)[0] + 1
            except (KeyError, TypeError):
                line = cur.lc.key(part)[0] + 1
            cur = cur[part]
        elif isinstance(cur, CommentedSeq) and isinstance(part, int) and 0 <= part < len(cur):
            line = cur.lc.item(part)[0] + 1
            cur = cur[part]
        else:
            break
    return line


def _key_line(node: Any, key: str) -> int:
    if isinstance(node, CommentedMap) and key in node:
        return node.lc.key(key)[0] + 1
    return node.lc.line + 1 if hasattr(node, "lc") else 0


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _error_message(err: dict) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (not in the schema)"
    return msg


class _Loader:
    """Accumulates problems while loading; see :func:`load_catalog`."""

    def __init__(self, root: Path, data_dir: Path):
        self.root = root
        self.data_dir = data_dir
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        # keys of entries that failed validation: references to them are not reported again
        self.invalid_keys: set[str] = set()

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def problem(self, path: Path, line: int, fld: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), line, fld, message))

    def read_yaml(self, path: Path) -> Any:
        try:
            return yaml_loader().load(path.read_text(encoding="utf-8"))
        except MarkedYAMLError as exc:
            # Report where the broken construct started (an unclosed bracket's line) when known.
            mark = exc.context_mark or exc.problem_mark
            line = mark.line + 1 if mark else 0
            what = exc.problem or str(exc).splitlines()[0]
            if exc.context and exc.problem_mark and exc.context_mark:
                what += f" ({exc.context} at line {exc.context_mark.line + 1}, detected at line {exc.problem_mark.line + 1})"
            self.problem(path, line, "", f"YAML syntax error: {what}")
        except UnicodeDecodeError as exc:
            self.problem(path, 0, "", f"not UTF-8 text: {exc}")
        except Exception as exc:  # ruamel raises a few non-marked errors (duplicate keys ...)
            self.problem(path, 0, "", f"YAML error: {exc}")
        return None

    def entries(self, path: Path, doc: Any) -> list[Any]:
        if doc is None:
            self.problem(path, 0, "", "file is empty")
            return []
        if isinstance(doc, CommentedMap):
            return [doc]
        if isinstance(doc, CommentedSeq):
            out = []
            for i, item in enumerate(doc):
                if isinstance(item, CommentedMap):
                    out.append(item)
                else:
                    self.problem(path, doc.lc.item(i)[0] + 1, f"[{i}]", "each entry must be a mapping")
            return out
        self.problem(path, 0, "", "expected a mapping or a list of mappings")
        return []

    def validate(self, model: type[BaseModel], path: Path, node: Any) -> BaseModel | None:
        try:
            return model.model_validate(_plain(node))
        except ValidationError as exc:
            if isinstance(node, CommentedMap) and isinstance(node.get("key"), str):
                self.invalid_keys.add(str(node["key"]))
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
                self.problem(path, line_of(node, loc), _field_path(loc), _error_message(err))
        return None


def load_catalog(data_dir: str | Path = "data", root: str | Path | None = None) -> Catalog:
    """Load, validate and cross-check every file under ``data_dir``.

    Args:
        data_dir: the ``data/`` folder.
        root: paths in messages are relative to this folder (default: parent of data_dir).

    Returns:
        The :class:`Catalog`; non-fatal findings are in ``catalog.warnings``.

    Raises:
        CatalogError: with every problem found, when there is at least one.
    """
    data_dir = Path(data_dir).resolve()
    root = Path(root).resolve() if root else data_dir.parent
    ld = _Loader(root, data_dir)
    cat = Catalog(root=root)
    nodes: dict[tuple[str, str], tuple[Path, Any]] = {}
    result_nodes: list[tuple[Path, Any, Result]] = []

    if not data_dir.is_dir():
        raise CatalogError([Problem(str(data_dir), 0, "", "data folder not found")])

    def add(kind: str, key: str, entry: Any, path: Path, node: Any, store: dict) -> None:
        line = _key_line(node, "key") if kind != "stages" else _key_line(node, "number")
        if key in store:
            first = cat.where[(kind, str(key))]
            ld.problem(path, line, "key" if kind != "stages" else "number",
                       f"duplicate {kind[:-1]} key {key!r} (first defined at {first.path}:{first.line})")
            return
        store[key] = entry
        cat.where[(kind, str(key))] = Located(ld.rel(path), line)
        nodes[(kind, str(key))] = (path, node)

    # Single list files.
    for fname, model in FILES.items():
        path = data_dir / fname
        if not path.exists():
            ld.problem(path, 0, "", "required file is missing")
            continue
        doc = ld.read_yaml(path)
        if doc is None:
            continue
        for node in ld.entries(path, doc):
            entry = ld.validate(model, path, node)
            if entry is None:
                continue
            if isinstance(entry, Stage):
                add("stages", entry.number, entry, path, node, cat.stages)  # type: ignore[arg-type]
            elif isinstance(entry, Tag):
                add("tags", entry.key, entry, path, node, cat.tags)
            elif isinstance(entry, SourceDoc):
                add("sources", entry.key, entry, path, node, cat.sources)

    # Entry folders.
    for folder, model in FOLDERS.items():
        base = data_dir / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_dir():
                continue
            if path.suffix not in (".yaml", ".yml"):
                ld.problem(path, 0, "", "unexpected file (entry files end in .yaml)")
                continue
            doc = ld.read_yaml(path)
            if doc is None:
                continue
            items = ld.entries(path, doc)
            if folder == "papers" and len(items) > 1:
                ld.problem(path, 0, "", "a paper file holds exactly one paper (data/papers/<key>.yaml)")
            for node in items:
                entry = ld.validate(model, path, node)
                if entry is None:
                    continue
                if isinstance(entry, Result):
                    cat.results.append(entry)
                    result_nodes.append((path, node, entry))
                    continue
                store = getattr(cat, folder)
                add(folder, entry.key, entry, path, node, store)  # type: ignore[attr-defined]
                if folder == "papers" and path.stem != entry.key:
                    ld.problem(path, _key_line(node, "key"), "key",
                               f"paper key {entry.key!r} does not match the file name ({path.name})")

    # Reproduction records (JSON written by videozoo.verify).
    repro_dir = data_dir / "reproduction"
    if repro_dir.is_dir():
        for path in sorted(repro_dir.glob("*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                ld.problem(path, exc.lineno, "", f"JSON syntax error: {exc.msg}")
                continue
            try:
                rec = ReproductionRecord.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    ld.problem(path, 0, _field_path(err["loc"]), _error_message(err))
                continue
            if path.stem != rec.model:
                ld.problem(path, 0, "model", f"record of model {rec.model!r} must be named {rec.model}.json")
                continue
            if rec.model in cat.reproduction:
                ld.problem(path, 0, "model", f"second reproduction record for model {rec.model!r}")
                continue
            cat.reproduction[rec.model] = rec
            cat.where[("reproduction", rec.model)] = Located(ld.rel(path), 1)

    _cross_check(cat, ld, nodes, result_nodes)
    cat.warnings = sorted(ld.warnings)
    if ld.problems:
        raise CatalogError(ld.problems)
    return cat


def normalise_repo_url(url: str) -> str:
    """Lower-cased URL without scheme, ``www.``, query, fragment, ``.git`` or trailing slash."""
    u = re.sub(r"^https?://(www\.)?", "", url.strip(), flags=re.I)
    u = re.split(r"[?#]", u)[0].rstrip("/")
    if u.endswith(".git"):
        u = u[:-4]
    return u.lower()


def normalise_title(title: str) -> str:
    """Title reduced to lower-case letters and digits (for duplicate detection)."""
    return re.sub(r"[^a-z0-9]+", "", title.lower())


class _Known(dict):
    """A key->entry mapping whose ``in`` also accepts keys of entries that failed validation."""

    def __init__(self, entries: dict, invalid: set[str]):
        super().__init__(entries)
        self.invalid = invalid

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.invalid


def _cross_check(cat: Catalog, ld: _Loader, nodes: dict, result_nodes: list) -> None:
    papers = _Known(cat.papers, ld.invalid_keys)
    datasets = _Known(cat.datasets, ld.invalid_keys)
    def at(kind: str, key: str, fld: str, message: str, loc: tuple = ()) -> None:
        path, node = nodes[(kind, key)]
        line = line_of(node, loc) if loc else _key_line(node, fld.split(".")[0].split("[")[0])
        ld.problem(path, line, fld, message)

    def warn(kind: str, key: str, fld: str, message: str) -> None:
        path, node = nodes[(kind, key)]
        ld.warnings.append(Problem(ld.rel(path), _key_line(node, "key"), fld, message, "warning"))

    def refs(kind: str, key: str, fld: str, values: list[str], targets: dict, what: str) -> None:
        for i, v in enumerate(values):
            if v not in targets:
                at(kind, key, f"{fld}[{i}]", f"unknown {what} {v!r}", (fld, i))

    def check_sources(kind: str, key: str, sources: list) -> None:
        for i, s in enumerate(sources):
            if s.doc not in cat.sources:
                at(kind, key, f"sources[{i}].doc", f"unknown source document {s.doc!r} (see data/sources.yaml)",
                   ("sources", i, "doc"))

    # Papers.
    seen_arxiv: dict[str, str] = {}
    seen_title: dict[str, str] = {}
    for key, p in cat.papers.items():
        refs("papers", key, "tags", p.tags, cat.tags, "tag")
        check_sources("papers", key, p.sources)
        for i, rel in enumerate(p.related):
            if rel.paper not in papers:
                at("papers", key, f"related[{i}].paper", f"unknown paper {rel.paper!r}", ("related", i, "paper"))
            elif rel.paper == key:
                at("papers", key, f"related[{i}].paper", "a paper cannot be related to itself", ("related", i, "paper"))
        if p.arxiv_id:
            if p.arxiv_id in seen_arxiv:
                other = cat.where[("papers", seen_arxiv[p.arxiv_id])]
                at("papers", key, "arxiv_id", f"duplicate arXiv id {p.arxiv_id} (also {other.path}:{other.line})")
            else:
                seen_arxiv[p.arxiv_id] = key
        t = normalise_title(p.title)
        if t in seen_title:
            other = cat.where[("papers", seen_title[t])]
            at("papers", key, "title", f"same title as {seen_title[t]!r} ({other.path}:{other.line}); "
               "link versions with `related` and give them distinct titles, or merge the entries")
        else:
            seen_title[t] = key
        if not p.sources:
            warn("papers", key, "sources", "no source document recorded")

    # Datasets, repos, resources.
    for key, d in cat.datasets.items():
        refs("datasets", key, "papers", d.papers, papers, "paper")
        refs("datasets", key, "tags", d.tags, cat.tags, "tag")
        check_sources("datasets", key, d.sources)
    seen_url: dict[str, str] = {}
    for key, r in cat.repos.items():
        refs("repos", key, "papers", r.papers, papers, "paper")
        refs("repos", key, "tags", r.tags, cat.tags, "tag")
        check_sources("repos", key, r.sources)
        u = normalise_repo_url(r.url)
        if u in seen_url:
            other = cat.where[("repos", seen_url[u])]
            at("repos", key, "url", f"duplicate repository URL {r.url} (also {other.path}:{other.line})")
        else:
            seen_url[u] = key
    for key, res in cat.resources.items():
        refs("resources", key, "papers", res.papers, papers, "paper")
        refs("resources", key, "tags", res.tags, cat.tags, "tag")
        check_sources("resources", key, res.sources)

    # Results.
    seen_results: dict[tuple, tuple[Path, int]] = {}
    for path, node, r in result_nodes:
        if r.paper not in papers:
            ld.problem(path, line_of(node, ("paper",)), "paper", f"unknown paper {r.paper!r}")
        if r.dataset is not None and r.dataset not in datasets:
            ld.problem(path, line_of(node, ("dataset",)), "dataset", f"unknown dataset {r.dataset!r}")
        if r.source.doc is not None and r.source.doc not in cat.sources:
            ld.problem(path, line_of(node, ("source", "doc")), "source.doc", f"unknown source document {r.source.doc!r}")
        ident = (r.paper, r.method, r.dataset, r.metric, r.setting, r.frames, r.clips, r.crops, r.resolution,
                 r.pretrain, r.backbone, r.modality, r.source.doc, r.source.paper, r.source.url, r.source.section)
        if ident in seen_results:
            p0, l0 = seen_results[ident]
            ld.problem(path, node.lc.line + 1, "", f"duplicate result (same paper, method, dataset, metric, setting "
                       f"and source as {ld.rel(p0)}:{l0})")
        else:
            seen_results[ident] = (path, node.lc.line + 1)

    # Stages: items and prerequisites exist; each paper on the path declares the same stage.
    if "stages.yaml" not in {p.path.split("/")[-1] for p in ld.problems}:
        missing = [n for n in (1, 2, 3, 4) if n not in cat.stages]
        if missing:
            ld.problem(ld.data_dir / "stages.yaml", 0, "", f"the learning path needs stages 1-4; missing {missing}")
    on_path: dict[str, int] = {}
    for n, stage in cat.stages.items():
        path, node = nodes[("stages", str(n))]
        check_sources("stages", str(n), stage.sources)
        for i, item in enumerate(stage.items):
            if item.paper is not None and item.paper not in papers:
                ld.problem(path, line_of(node, ("items", i, "paper")), f"items[{i}].paper", f"unknown paper {item.paper!r}")
            if item.dataset is not None and item.dataset not in datasets:
                ld.problem(path, line_of(node, ("items", i, "dataset")), f"items[{i}].dataset",
                           f"unknown dataset {item.dataset!r}")
            for j, pre in enumerate(item.prerequisites):
                if pre not in papers and pre not in datasets:
                    ld.problem(path, line_of(node, ("items", i, "prerequisites", j)), f"items[{i}].prerequisites[{j}]",
                               f"unknown prerequisite {pre!r}")
            if item.ref in on_path:
                ld.problem(path, line_of(node, ("items", i)), f"items[{i}]",
                           f"{item.ref!r} is already on the path in stage {on_path[item.ref]}")
            on_path[item.ref] = n
    for key, p in cat.papers.items():
        if key in on_path and p.stage != on_path[key]:
            at("papers", key, "stage", f"paper is listed in stage {on_path[key]} of data/stages.yaml but has "
               f"stage: {p.stage}")
        elif key not in on_path and p.stage is not None:
            at("papers", key, "stage", f"stage: {p.stage} but the paper is not an item of that stage in data/stages.yaml")

    # Reproduction records point at papers.
    for model, rec in cat.reproduction.items():
        if rec.paper not in papers:
            loc = cat.where[("reproduction", model)]
            ld.problems.append(Problem(loc.path, 0, "paper", f"unknown paper {rec.paper!r}"))

    _check_curation(cat, ld, result_nodes, papers, at, warn)


# Author entries that stand for a truncated list ("et al.", "and others").
_TRUNCATED_AUTHOR = re.compile(r"(^|\s)(et\.?\s+al\.?|and\s+others|others)$", re.I)


def arxiv_year(arxiv_id: str) -> int:
    """Year of an arXiv id's first version: ``2602.03589`` -> 2026, ``hep-th/9901001`` -> 1999."""
    yy = int(arxiv_id.split("/")[-1][:2])
    return (1900 if yy >= 91 else 2000) + yy


def _check_curation(cat: Catalog, ld: _Loader, result_nodes: list, papers: dict, at: Callable, warn: Callable) -> None:
    """Curation checks (issue 25): author lists, the year rule, one kind per key, result sources.

    * an author entry "et al." / "others" (a truncated list) -> error; a name in the
      "Last, First" form, or an empty author list without ``authors_note`` -> warning;
    * a published paper whose ``year`` precedes its arXiv id's year, or a preprint whose
      ``year`` is not its arXiv id's year, without ``year_note`` -> error;
    * a key used by entries of two kinds (paper, dataset, repo, resource) -> error;
    * a result whose ``source.paper`` or ``source.repo`` is unknown, or whose ``source.url``
      is not inside its ``source.repo`` -> error.
    """
    for key, p in cat.papers.items():
        for i, name in enumerate(p.authors):
            if _TRUNCATED_AUTHOR.search(name):
                at("papers", key, f"authors[{i}]", f"{name!r} stands for a truncated author list; "
                   "list every author, or leave authors empty and explain in authors_note", ("authors", i))
            elif "," in name:
                warn("papers", key, f"authors[{i}]", f"{name!r}: write names as 'First Last' (with family_names "
                     "for a family name of several words), not 'Last, First'")
        if not p.authors and not p.authors_note:
            warn("papers", key, "authors", "no authors; add them, or say in authors_note why they are unknown")
        if p.arxiv_id and p.year and not p.year_note:
            first = arxiv_year(p.arxiv_id)
            if p.venue_type == "preprint" and p.year != first:
                at("papers", key, "year", f"a preprint's year is its arXiv v1 year ({first} for {p.arxiv_id}), "
                   f"not {p.year}; or explain in year_note")
            elif p.venue_type != "preprint" and p.year < first:
                at("papers", key, "year", f"year {p.year} precedes the year of arXiv id {p.arxiv_id} ({first}); "
                   "say why in year_note (e.g. the arXiv version was posted after publication)")

    owners: dict[str, str] = {}
    for kind in ("papers", "datasets", "repos", "resources"):
        for key in getattr(cat, kind):
            if key in owners:
                first = cat.where[(owners[key], key)]
                at(kind, key, "key", f"key {key!r} is also a {owners[key][:-1]} key ({first.path}:{first.line}); "
                   "a key names entries of one kind only")
            else:
                owners[key] = kind

    for path, node, r in result_nodes:
        src = r.source
        if src.paper is not None and src.paper not in papers:
            ld.problem(path, line_of(node, ("source", "paper")), "source.paper", f"unknown paper {src.paper!r}")
        if src.repo is not None:
            repo = cat.repos.get(src.repo)
            if repo is None:
                if src.repo not in ld.invalid_keys:
                    ld.problem(path, line_of(node, ("source", "repo")), "source.repo", f"unknown repo {src.repo!r}")
            elif src.url and not normalise_repo_url(src.url).startswith(normalise_repo_url(repo.url)):
                ld.problem(path, line_of(node, ("source", "url")), "source.url",
                           f"{src.url} is not a file of repo {src.repo!r} ({repo.url})")
