"""Load ``data/`` with line numbers, validate every entry, cross-check the whole.

This is the one read path of the project: everything downstream (render, export,
link checking, BibTeX) takes a :class:`Catalog`.

YAML is read with PyYAML's C loader (libyaml) into node trees, which keep line numbers for
messages, and turned into plain values here (YAML 1.2 scalars, see :class:`YamlLoader`).
Entry files are untrusted input: aliases are refused (a few hundred bytes of nested
aliases would expand to gigabytes), files above :data:`MAX_FILE_BYTES` are not parsed,
duplicate keys and empty files are errors. Only :mod:`papers_kb.arxiv_client`, which
rewrites files, uses a round-trip parser (to keep comments and key order).

Errors are collected, never raised one at a time: :func:`load_catalog` raises a single
:class:`CatalogError` holding every :class:`Problem` (``path:line: field.path: message``).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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

    _index: "_Index | None" = field(default=None, init=False, repr=False, compare=False)
    # derived values computed once per catalog by other modules (BibTeX texts by paper key ...)
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # --- derived indexes ---------------------------------------------------------------
    # Every look-up below reads indexes built once, on first use, in one pass over the
    # entries (see :class:`_Index`): rendering a page per entry stays linear. A catalog is
    # not meant to change after loading; call :meth:`reindex` if it does.

    @property
    def index(self) -> "_Index":
        """The look-up indexes (built on first use)."""
        if self._index is None:
            self._index = _Index(self)
        return self._index

    def reindex(self) -> None:
        """Drop the indexes (and :attr:`memo`) after entries were added or changed; they are
        rebuilt on next use."""
        self._index = None
        self.memo.clear()

    def repos_of(self, paper: str) -> list[Repo]:
        """Repositories that implement ``paper``, official first, then by key."""
        return list(self.index.repos_of.get(paper, ()))

    def results_of(self, paper: str) -> list[Result]:
        """Results of ``paper``, in file order."""
        return list(self.index.results_of.get(paper, ()))

    def results_on(self, dataset: str) -> list[Result]:
        """Results on ``dataset``, in file order."""
        return list(self.index.results_on.get(dataset, ()))

    def datasets_of(self, paper: str) -> list[Dataset]:
        """Datasets the paper introduces or reports results on, by key."""
        return [self.datasets[k] for k in sorted(self.index.datasets_of.get(paper, ()))]

    def stage_item(self, key: str) -> tuple[int, int] | None:
        """``(stage number, 1-based position)`` of a paper/dataset on the learning path."""
        return self.index.stage_item.get(key)

    def prerequisites_of(self, key: str) -> list[str]:
        """Keys a stage item lists as read-first (empty when ``key`` is not on the path)."""
        return list(self.index.prerequisites_of.get(key, ()))

    def built_on_by(self, key: str) -> list[str]:
        """Stage items that list ``key`` as a prerequisite (what builds on it)."""
        return list(self.index.built_on_by.get(key, ()))

    def papers_with_tag(self, tag: str) -> list[Paper]:
        """Papers carrying ``tag``, in :meth:`sorted_papers` order."""
        return list(self.index.papers_with_tag.get(tag, ()))

    def sorted_papers(self) -> list[Paper]:
        """Papers by year (newest first), then key."""
        return list(self.index.sorted_papers)

    def related_of(self, key: str) -> list[tuple[str, str]]:
        """``(kind, other key)`` relations of a paper, both directions: its own ``related``
        entries, then ``"<kind> (of)"`` for each other paper relating to it (once per paper)."""
        out = [(r.kind, r.paper) for r in self.papers[key].related]
        seen = {o for _, o in out}
        for kind, other in self.index.related_to.get(key, ()):
            if other not in seen:
                seen.add(other)
                out.append((f"{kind} (of)", other))
        return out

    def reproduction_of(self, paper: str) -> list[ReproductionRecord]:
        """Every reproduction record of paper ``paper`` (one per registered name): the paper's own
        model first (the record that is not a variant), then its variants by name."""
        return list(self.index.reproduction_of.get(paper, ()))

    def entries_from(self, doc: str) -> dict[str, int]:
        """How many entries of each kind cite seed document ``doc``."""
        return dict(self.index.entries_from.get(doc) or dict.fromkeys(_SOURCE_KINDS, 0))

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


_SOURCE_KINDS = ("papers", "datasets", "repos", "resources", "results")


class _Index:
    """Reverse look-ups of a :class:`Catalog`, built in one pass over its entries."""

    def __init__(self, cat: Catalog):
        self.sorted_papers: list[Paper] = sorted(cat.papers.values(), key=lambda p: (-(p.year or 0), p.key))
        self.papers_with_tag: dict[str, list[Paper]] = defaultdict(list)
        for p in self.sorted_papers:
            for t in dict.fromkeys(p.tags):
                self.papers_with_tag[t].append(p)

        self.repos_of: dict[str, list[Repo]] = defaultdict(list)
        for r in sorted(cat.repos.values(), key=lambda r: (r.official is not True, r.key)):
            for paper in dict.fromkeys(r.papers):
                self.repos_of[paper].append(r)

        self.results_of: dict[str, list[Result]] = defaultdict(list)
        self.results_on: dict[str, list[Result]] = defaultdict(list)
        self.datasets_of: dict[str, set[str]] = defaultdict(set)
        for d in cat.datasets.values():
            for paper in d.papers:
                self.datasets_of[paper].add(d.key)
        for r in cat.results:
            self.results_of[r.paper].append(r)
            if r.dataset is not None:
                self.results_on[r.dataset].append(r)
                self.datasets_of[r.paper].add(r.dataset)

        # Learning path: the first occurrence of a key wins, as stages are read in order.
        self.stage_item: dict[str, tuple[int, int]] = {}
        self.built_on_by: dict[str, list[str]] = defaultdict(list)
        for n in sorted(cat.stages):
            for i, item in enumerate(cat.stages[n].items, 1):
                self.stage_item.setdefault(item.ref, (n, i))
                for pre in dict.fromkeys(item.prerequisites):
                    self.built_on_by[pre].append(item.ref)
        self.prerequisites_of: dict[str, list[str]] = {}
        for stage in cat.stages.values():
            for item in stage.items:
                self.prerequisites_of.setdefault(item.ref, list(item.prerequisites))

        self.related_to: dict[str, list[tuple[str, str]]] = defaultdict(list)  # target -> (kind, source)
        for p in cat.papers.values():
            for r in p.related:
                self.related_to[r.paper].append((r.kind, p.key))

        self.reproduction_of: dict[str, list[ReproductionRecord]] = defaultdict(list)
        for rec in sorted(cat.reproduction.values(), key=lambda r: (r.variant is not None, r.model)):
            self.reproduction_of[rec.paper].append(rec)

        self.entries_from: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_SOURCE_KINDS, 0))
        for kind, entries in (("papers", cat.papers.values()), ("datasets", cat.datasets.values()),
                              ("repos", cat.repos.values()), ("resources", cat.resources.values())):
            for e in entries:
                for doc in {s.doc for s in e.sources}:
                    self.entries_from[doc][kind] += 1
        for r in cat.results:
            if r.source.doc is not None:
                self.entries_from[r.source.doc]["results"] += 1


# --- YAML with line numbers --------------------------------------------------------------

# Largest YAML file read (bytes): a bigger file is reported, not parsed.
MAX_FILE_BYTES = 1 << 20

_CLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it


class YamlLoader(_CLoader):  # type: ignore[misc, valid-type]
    """PyYAML's C safe loader resolving plain scalars by the YAML 1.2 core schema.

    YAML 1.2 (what editors and most tools assume) differs from PyYAML's default YAML 1.1
    where it matters for bibliographic data: ``no``/``yes``/``on``/``off`` stay text
    (a Norwegian ``lang: no``), ``010`` is ten and ``1:20`` is text. Dates
    (``2021-03-01``) are still read as dates.
    """

    yaml_implicit_resolvers: dict = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        """Tag of a node: implicit resolvers by first character for plain scalars (no path resolvers)."""
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        return self.DEFAULT_SEQUENCE_TAG if kind is SequenceNode else self.DEFAULT_MAPPING_TAG

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:  # no path resolvers
        return None

    def ascend_resolver(self) -> None:
        return None


for _tag, _regexp, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("float", r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                 |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                 |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
                 |[-+]?\.(?:inf|Inf|INF)
                 |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    ("int", r"^(?:[-+]?0b[0-1_]+|[-+]?0o[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$", "-+0123456789"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("timestamp", r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
                     |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
                      (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
                      (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
):
    YamlLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_regexp, re.X), list(_first))

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # for timestamps


class YamlProblem(Exception):
    """A file that parses as YAML but cannot be an entry file (alias, duplicate key, tag ...).

    ``line`` is 1-based (0 when unknown), ``field`` the key path (``sources[0].doc``).
    """

    def __init__(self, line: int, field: str, message: str):
        super().__init__(message)
        self.line, self.field, self.message = line, field, message


def compose_yaml(text: str) -> Node | None:
    """Parse one YAML document into PyYAML's node tree (``None`` for an empty document).

    Nodes keep their position (``node.start_mark.line``, 0-based), which error messages
    need and plain values lose.

    Raises:
        yaml.YAMLError: on a syntax error (``MarkedYAMLError`` with marks) or a
            character YAML does not allow (``ReaderError``).
    """
    loader = YamlLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _alias_line(text: str) -> tuple[int, str]:
    """Line (1-based) and name of the first alias (``*name``) of a document."""
    for event in yaml.parse(text, Loader=YamlLoader):
        if isinstance(event, yaml.AliasEvent):
            return event.start_mark.line + 1, event.anchor
    return 0, ""


def _scalar(node: ScalarNode) -> Any:
    """Python value of a scalar node from its resolved tag (raises :class:`_Bad`)."""
    tag, value = node.tag, node.value
    if tag == _TAG + "str":
        return value
    try:
        if tag == _TAG + "null":
            if value not in ("", "~", "null", "Null", "NULL"):
                raise ValueError
            return None
        if tag == _TAG + "bool":
            return {"true": True, "false": False}[value.lower()]
        if tag == _TAG + "int":
            v = value.replace("_", "")
            sign, digits = (-1, v[1:]) if v[:1] == "-" else (1, v.lstrip("+"))
            base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2].lower(), 10)
            return sign * int(digits[2:] if base != 10 else digits, base)
        if tag == _TAG + "float":
            v = value.replace("_", "").lower()
            return float(v.replace(".inf", "inf").replace(".nan", "nan"))
        if tag == _TAG + "timestamp":
            return _CONSTRUCTOR.construct_yaml_timestamp(node)
    except (ValueError, KeyError, AttributeError, TypeError):
        raise _Bad(node, f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}") from None
    raise _Bad(node, f"unsupported YAML tag {tag} (entry files hold plain text, numbers, dates, lists and mappings)")


class _Bad(Exception):
    """Raised inside :func:`yaml_to_python` with the offending node; the path is found after."""

    def __init__(self, node: Node, message: str, nth: int = 1):
        self.node, self.message, self.nth = node, message, nth


def _path_to(root: Node, target: Node, nth: int = 1) -> str:
    """Field path (``sources[0].doc``) of the ``nth`` visit of ``target`` in a depth-first walk."""
    seen = 0

    def find(n: Node, where: str) -> str | None:
        nonlocal seen
        if n is target:
            seen += 1
            if seen == nth:
                return where
            return None  # do not descend into an aliased node twice
        if isinstance(n, SequenceNode):
            for i, item in enumerate(n.value):
                if (hit := find(item, f"{where}[{i}]")) is not None:
                    return hit
        elif isinstance(n, MappingNode):
            for k, v in n.value:
                name = k.value if isinstance(k, ScalarNode) else "?"
                sub = f"{where}.{name}" if where else name
                if (hit := find(k, sub)) is not None or (hit := find(v, sub)) is not None:
                    return hit
        return None

    return find(root, "") or ""


def yaml_to_python(node: Node | None, aliases_possible: bool = True) -> Any:
    """Plain Python values (dict, list, str, int, float, bool, None, date) of a node tree.

    Args:
        node: from :func:`compose_yaml`.
        aliases_possible: ``False`` skips the alias check when the text holds no ``*``.

    Raises:
        YamlProblem: on an alias (``*name``: refused, so that a few hundred bytes cannot
            expand into gigabytes; the message is ``"alias"``), a duplicate mapping key, a
            key that is not a scalar, an explicit tag other than the standard scalar tags,
            or nesting deeper than Python's recursion limit.
    """
    seen: set[int] = set()
    str_tag, seq_tag, map_tag = _TAG + "str", _TAG + "seq", _TAG + "map"

    def walk(n: Node) -> Any:
        if aliases_possible:
            if id(n) in seen:  # the composer hands out the anchored node again for an alias
                raise _Bad(n, "alias", nth=2)
            seen.add(id(n))
        if isinstance(n, ScalarNode):
            return n.value if n.tag == str_tag else _scalar(n)
        if isinstance(n, SequenceNode):
            if n.tag != seq_tag:
                raise _Bad(n, f"unsupported YAML tag {n.tag}")
            return [walk(item) for item in n.value]
        if n.tag != map_tag:
            raise _Bad(n, f"unsupported YAML tag {n.tag}")
        out: dict[str, Any] = {}
        for key_node, value_node in n.value:
            if not isinstance(key_node, ScalarNode):
                raise _Bad(key_node, "a mapping key must be plain text")
            key = str(walk(key_node))
            if key in out:
                first = next(k for k, _ in n.value if isinstance(k, ScalarNode) and str(_scalar(k)) == key)
                raise _Bad(key_node, f"duplicate key (first at line {first.start_mark.line + 1})")
            out[key] = walk(value_node)
        return out

    if node is None:
        return None
    try:
        return walk(node)
    except RecursionError:
        raise YamlProblem(node.start_mark.line + 1, "", "nesting too deep") from None
    except _Bad as bad:
        line = 0 if bad.message == "alias" else bad.node.start_mark.line + 1
        raise YamlProblem(line, _path_to(node, bad.node, bad.nth), bad.message) from None


def _child(node: Node, part: Any) -> tuple[Node | None, Node | None]:
    """(key node, value node) of mapping key ``part`` / item ``part`` of a sequence."""
    if isinstance(node, MappingNode) and isinstance(part, str):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == part:
                return k, v
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item, item
    return None, None


def line_of(node: Node | None, loc: tuple) -> int:
    """1-based line of the deepest node on pydantic's error ``loc`` path (0 without a node)."""
    if node is None:
        return 0
    line = node.start_mark.line + 1
    for part in loc:
        _, child = _child(node, part)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _key_line(node: Node, key: str) -> int:
    """1-based line of mapping key ``key`` (the node's own line when it has no such key)."""
    key_node, _ = _child(node, key)
    return (key_node or node).start_mark.line + 1


class EntryLocator:
    """Lines of fields of entries already loaded, for messages about a loaded catalog.

    ``line(file, key, loc, fallback)`` reads ``file`` (relative to ``root``) again and
    returns the line of field ``loc`` of the entry whose key is ``key``, or ``fallback``
    when the file cannot be read or holds no such entry. The last files read are kept.
    """

    def __init__(self, root: Path, keep: int = 64):
        self.root = Path(root)
        self.keep = keep
        self._docs: dict[str, Node | None] = {}

    def _doc(self, file: str) -> Node | None:
        if file not in self._docs:
            if len(self._docs) >= self.keep:
                self._docs.pop(next(iter(self._docs)))
            try:
                self._docs[file] = compose_yaml((self.root / file).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                self._docs[file] = None
        return self._docs[file]

    def line(self, file: str, key: str, loc: tuple, fallback: int = 0) -> int:
        doc = self._doc(file)
        items = doc.value if isinstance(doc, SequenceNode) else [doc] if doc is not None else []
        for node in items:
            _, k = _child(node, "key")
            if isinstance(k, ScalarNode) and k.value == key:
                return line_of(node, loc) or fallback
        return fallback


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
        self.locator = EntryLocator(root)  # node trees are not kept; messages compose files again

    def rel(self, path: Path) -> str:
        """``path`` relative to the root when inside it (string operations: called per entry)."""
        text, prefix = str(path), str(self.root).rstrip("/") + "/"
        return text[len(prefix):] if text.startswith(prefix) else text

    def problem(self, path: Path, line: int, fld: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), line, fld, message))

    def read_yaml(self, path: Path) -> tuple[Node, Any] | None:
        """The node tree and plain values of one YAML file, or ``None`` after reporting why not."""
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                self.problem(path, 0, "", f"file is {size:,} bytes; a YAML file under data/ may hold at most "
                             f"{MAX_FILE_BYTES:,} bytes (split it into several files)")
                return None
            text = path.read_text(encoding="utf-8")
            node = compose_yaml(text)
            data = yaml_to_python(node, aliases_possible="*" in text)
        except yaml.MarkedYAMLError as exc:
            # Report where the broken construct started (an unclosed bracket's line) when known.
            mark = exc.context_mark or exc.problem_mark
            line = mark.line + 1 if mark else 0
            what = exc.problem or str(exc).splitlines()[0]
            if exc.context and exc.problem_mark and exc.context_mark:
                what += f" ({exc.context} at line {exc.context_mark.line + 1}, detected at line {exc.problem_mark.line + 1})"
            self.problem(path, line, "", f"YAML syntax error: {what}")
            return None
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else 0
            self.problem(path, line, "", f"YAML syntax error: character {exc.character!r} is not allowed ({exc.reason})")
            return None
        except YamlProblem as exc:
            if exc.message == "alias":
                line, name = _alias_line(text)
                self.problem(path, line, exc.field, f"YAML alias *{name} is not allowed: entry files do not use "
                             "anchors and aliases (write the value out)")
            else:
                self.problem(path, exc.line, exc.field, exc.message)
            return None
        except UnicodeDecodeError as exc:
            self.problem(path, 0, "", f"not UTF-8 text: {exc}")
            return None
        except OSError as exc:
            self.problem(path, 0, "", f"cannot read the file: {exc.strerror or exc}")
            return None
        except yaml.YAMLError as exc:
            self.problem(path, 0, "", f"YAML error: {exc}")
            return None
        return node, data

    def entries(self, path: Path, doc: tuple[Node, Any] | None) -> list[tuple[int, Node, Any]]:
        """``(index in the file, node, plain mapping)`` of each entry of a file read by :meth:`read_yaml`."""
        if doc is None:
            return []
        node, data = doc
        if data is None or (isinstance(node, (MappingNode, SequenceNode)) and not node.value):  # null, {} or []
            self.problem(path, 0, "", "file is empty: an entry file holds one mapping (or a list of mappings)")
            return []
        if isinstance(node, MappingNode):
            return [(0, node, data)]
        if isinstance(node, SequenceNode):
            out = []
            for i, (item, value) in enumerate(zip(node.value, data)):
                if isinstance(item, MappingNode):
                    out.append((i, item, value))
                else:
                    self.problem(path, item.start_mark.line + 1, f"[{i}]", "each entry must be a mapping")
            return out
        self.problem(path, node.start_mark.line + 1, "", "expected a mapping or a list of mappings")
        return []

    def validate(self, model: type[BaseModel], path: Path, node: Node, data: dict) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            if isinstance(data.get("key"), str):
                self.invalid_keys.add(data["key"])
            for err in exc.errors():
                loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
                self.problem(path, line_of(node, loc), _field_path(loc), _error_message(err))
        return None

    def node_at(self, path: Path, index: int) -> Node | None:
        """Entry ``index`` of a file read before, composed again (only messages need it)."""
        doc = self.locator._doc(str(path))
        if isinstance(doc, SequenceNode):
            return doc.value[index] if index < len(doc.value) else None
        return doc


def _files_under(base: Path) -> list[Path]:
    """Files under ``base`` (any depth), in path order (a listing of strings: one call per folder)."""
    found = [(*Path(dirpath).relative_to(base).parts, name) for dirpath, _, names in os.walk(base, followlinks=True)
             for name in names]
    return [base.joinpath(*parts) for parts in sorted(found)]


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
    # (kind, key) -> (file, index of the entry in the file): nodes are composed again for messages
    nodes: dict[tuple[str, str], tuple[Path, int]] = {}
    result_nodes: list[tuple[Path, int, int, Result]] = []  # file, index, line, result

    if not data_dir.is_dir():
        raise CatalogError([Problem(str(data_dir), 0, "", "data folder not found")])

    def add(kind: str, key: str, entry: Any, path: Path, index: int, node: Node, store: dict) -> None:
        line = _key_line(node, "key") if kind != "stages" else _key_line(node, "number")
        if key in store:
            first = cat.where[(kind, str(key))]
            ld.problem(path, line, "key" if kind != "stages" else "number",
                       f"duplicate {kind[:-1]} key {key!r} (first defined at {first.path}:{first.line})")
            return
        store[key] = entry
        cat.where[(kind, str(key))] = Located(ld.rel(path), line)
        nodes[(kind, str(key))] = (path, index)

    # Single list files.
    for fname, model in FILES.items():
        path = data_dir / fname
        if not path.exists():
            ld.problem(path, 0, "", "required file is missing")
            continue
        for index, node, data in ld.entries(path, ld.read_yaml(path)):
            entry = ld.validate(model, path, node, data)
            if entry is None:
                continue
            if isinstance(entry, Stage):
                add("stages", entry.number, entry, path, index, node, cat.stages)  # type: ignore[arg-type]
            elif isinstance(entry, Tag):
                add("tags", entry.key, entry, path, index, node, cat.tags)
            elif isinstance(entry, SourceDoc):
                add("sources", entry.key, entry, path, index, node, cat.sources)

    # Entry folders.
    for folder, model in FOLDERS.items():
        base = data_dir / folder
        if not base.is_dir():
            continue
        for path in _files_under(base):
            if path.suffix not in (".yaml", ".yml"):
                ld.problem(path, 0, "", "unexpected file (entry files end in .yaml)")
                continue
            items = ld.entries(path, ld.read_yaml(path))
            if folder == "papers" and len(items) > 1:
                ld.problem(path, 0, "", "a paper file holds exactly one paper (data/papers/<key>.yaml)")
            for index, node, data in items:
                entry = ld.validate(model, path, node, data)
                if entry is None:
                    continue
                if isinstance(entry, Result):
                    cat.results.append(entry)
                    result_nodes.append((path, index, node.start_mark.line + 1, entry))
                    continue
                store = getattr(cat, folder)
                add(folder, entry.key, entry, path, index, node, store)  # type: ignore[attr-defined]
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
        path, index = nodes[(kind, key)]
        node = ld.node_at(path, index)
        if node is None:
            line = cat.where[(kind, key)].line
        else:
            line = line_of(node, loc) if loc else _key_line(node, fld.split(".")[0].split("[")[0])
        ld.problem(path, line, fld, message)

    def warn(kind: str, key: str, fld: str, message: str) -> None:
        loc = cat.where[(kind, key)]  # the line of the entry's key
        ld.warnings.append(Problem(loc.path, loc.line, fld, message, "warning"))

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
    for path, index, line, r in result_nodes:
        if r.paper not in papers:
            ld.problem(path, line_of(ld.node_at(path, index), ("paper",)) or line, "paper", f"unknown paper {r.paper!r}")
        if r.dataset is not None and r.dataset not in datasets:
            ld.problem(path, line_of(ld.node_at(path, index), ("dataset",)) or line, "dataset",
                       f"unknown dataset {r.dataset!r}")
        if r.source.doc is not None and r.source.doc not in cat.sources:
            ld.problem(path, line_of(ld.node_at(path, index), ("source", "doc")) or line, "source.doc",
                       f"unknown source document {r.source.doc!r}")
        ident = (r.paper, r.method, r.dataset, r.metric, r.setting, r.frames, r.clips, r.crops, r.resolution,
                 r.pretrain, r.backbone, r.modality, r.source.doc, r.source.paper, r.source.url, r.source.section)
        if ident in seen_results:
            p0, l0 = seen_results[ident]
            ld.problem(path, line, "", f"duplicate result (same paper, method, dataset, metric, setting "
                       f"and source as {ld.rel(p0)}:{l0})")
        else:
            seen_results[ident] = (path, line)

    # Stages: items and prerequisites exist; each paper on the path declares the same stage.
    if "stages.yaml" not in {p.path.split("/")[-1] for p in ld.problems}:
        missing = [n for n in (1, 2, 3, 4) if n not in cat.stages]
        if missing:
            ld.problem(ld.data_dir / "stages.yaml", 0, "", f"the learning path needs stages 1-4; missing {missing}")
    on_path: dict[str, int] = {}
    for n, stage in cat.stages.items():
        path, index = nodes[("stages", str(n))]

        def sline(loc: tuple, path: Path = path, index: int = index) -> int:
            return line_of(ld.node_at(path, index), loc)

        check_sources("stages", str(n), stage.sources)
        for i, item in enumerate(stage.items):
            if item.paper is not None and item.paper not in papers:
                ld.problem(path, sline(("items", i, "paper")), f"items[{i}].paper", f"unknown paper {item.paper!r}")
            if item.dataset is not None and item.dataset not in datasets:
                ld.problem(path, sline(("items", i, "dataset")), f"items[{i}].dataset",
                           f"unknown dataset {item.dataset!r}")
            for j, pre in enumerate(item.prerequisites):
                if pre not in papers and pre not in datasets:
                    ld.problem(path, sline(("items", i, "prerequisites", j)), f"items[{i}].prerequisites[{j}]",
                               f"unknown prerequisite {pre!r}")
            if item.ref in on_path:
                ld.problem(path, sline(("items", i)), f"items[{i}]",
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

    for path, index, line, r in result_nodes:
        src = r.source

        def rline(loc: tuple, path: Path = path, index: int = index, line: int = line) -> int:
            return line_of(ld.node_at(path, index), loc) or line

        if src.paper is not None and src.paper not in papers:
            ld.problem(path, rline(("source", "paper")), "source.paper", f"unknown paper {src.paper!r}")
        if src.repo is not None:
            repo = cat.repos.get(src.repo)
            if repo is None:
                if src.repo not in ld.invalid_keys:
                    ld.problem(path, rline(("source", "repo")), "source.repo", f"unknown repo {src.repo!r}")
            elif src.url and not normalise_repo_url(src.url).startswith(normalise_repo_url(repo.url)):
                ld.problem(path, rline(("source", "url")), "source.url",
                           f"{src.url} is not a file of repo {src.repo!r} ({repo.url})")
