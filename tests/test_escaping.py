"""Every template, every field, hostile strings: nothing live reaches the HTML MkDocs builds.

The mini catalog is rendered twice through the real producers (pages, charts, BibTeX) and built
with MkDocs: once with every free-text field (and the source key and language fields, past
their validators) holding a hostile string, once with a plain word in the same fields. With
one escaping path, the two sites have the same elements and attributes on every page (code
blocks aside: their syntax colouring depends on the text), no script, event handler or
``javascript:`` link comes from the data, and every hostile field is shown as text.
"""

from __future__ import annotations

import datetime as _dt
import html.parser
import json
import re
import typing
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from pydantic import BaseModel

from conftest import make_project
from papers_kb.build import mkdocs_build, page_producers
from papers_kb.catalog import load_catalog
from papers_kb.render import UnsafePath, code, fenced, link_title, md, render_pages, url, write_pages
from papers_kb.schema import Check, ReproductionRecord

# Fields that build paths, links or lookups: they keep their valid values (the schema checks
# them; a separate test shows render refuses unsafe ones).
STRUCTURAL = {"key", "url", "pdf", "arxiv_id", "doi", "paper", "dataset", "papers", "tags", "prerequisites",
              "model", "source_file", "citation_key", "kind", "related"}

PAYLOAD = (
    '<script>alert("x")</script> "onmouseover="alert(1)" x=\'y\' `tick` ``two`` line1\nline2\r\n\n'
    "# h2 {{ 7*7 }} {% if 1 %}if{% endif %} ]]> <![CDATA[x]]> a|b|c [md link](javascript:alert(1)) "
    "[ref][1] ![img](https://example.org/x.png) <img src=x onerror=alert(1)> javascript:alert(1) "
    "*em* **strong** _u_ ~~del~~ $x^2$ \\ \\` &amp; &#60;b&#62; {: onclick=\"alert(1)\" } <!-- c --> "
    '--8<-- "/etc/passwd" \x00\x02wzxhzdk:0\x03 <a href="javascript:alert(1)">a</a> % 中文'
)
PREFIXES = ["", "- ", "1. ", "# ", "    ", "> ", "=== ", '--8<-- "x" ', "!!! note ", "| ", "```", "<div>"]
# Fields that no page shows (kept in data for curators).
NOT_SHOWN = {
    "repos[].notes", "repos[].confirmed", "repos[].sources[].note", "repos[].sources[].section", "resources[].author",
    "resources[].sources[].note", "resources[].sources[].section", "results[].notes", "results[].source.note",
    "sources[].key",  # a source document's file name: pages name the document by its title
}
CODE_FILE = ('"""A model file shown on a code page: PWNCODE ``` ```` <script>alert(1)</script>."""\n'
             "x = 1  # ~~~ `tick` {{ 7*7 }}\n")


def _free_text(model: type[BaseModel], name: str) -> bool:
    if name in STRUCTURAL:
        return False
    ann = model.model_fields[name].annotation
    args = set(typing.get_args(ann)) | {ann}
    return any(a is str for a in args) or typing.get_origin(ann) is list and typing.get_args(ann) == (str,)


class Texts:
    """Hands out one string per field: hostile (``PWN<i>`` + payload) or a plain word."""

    def __init__(self, hostile: bool):
        self.hostile = hostile
        self.fields: dict[int, str] = {}

    def __call__(self, where: str) -> str:
        i = len(self.fields)
        self.fields[i] = where
        if not self.hostile:
            return f"plain{i} 文"  # non-ASCII like the payload: a Chinese title is shown
        return f"{PREFIXES[i % len(PREFIXES)]}PWN{i}Z {PAYLOAD}"


def _copy(obj: BaseModel, text: Texts, where: str, doc_keys: dict[str, str]) -> BaseModel:
    """A copy of ``obj`` (not validated again) with every free-text field from ``text``."""
    update = {}
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        here = f"{where}.{name}"
        if name == "doc" and value in doc_keys:  # a source reference follows the source's new key
            update[name] = doc_keys[value]
        elif isinstance(value, BaseModel):
            update[name] = _copy(value, text, here, doc_keys)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            update[name] = [_copy(v, text, f"{here}[{i}]", doc_keys) for i, v in enumerate(value)]
        elif isinstance(value, dict) and name == "environment":
            update[name] = {k: text(f"{here}.{k}") for k in value}
        elif _free_text(type(obj), name):  # set even when empty: every template branch shows
            if isinstance(value, list):
                update[name] = [text(f"{here}[{i}]") for i in range(max(1, len(value)))]
            else:
                update[name] = text(here)
    return obj.model_copy(update=update)


def build(tmp: Path, hostile: bool) -> tuple[Path, Texts]:
    """Render the mini catalog with hostile (or plain) text and build it with MkDocs."""
    proj = make_project(tmp / ("hostile" if hostile else "plain"))
    (proj / "videozoo/models").mkdir(parents=True)
    (proj / "videozoo/models/tsm.py").write_text(CODE_FILE)
    cat = load_catalog(proj / "data", root=proj)
    # a journal paper: its Cite block has volume, number and pages
    cat.papers["lin2019tsm"] = cat.papers["lin2019tsm"].model_copy(update={"venue_type": "journal"})
    cat.reproduction["tsm"] = ReproductionRecord(
        paper="lin2019tsm", model="tsm", source_file="videozoo/models/tsm.py", command="python -m videozoo.verify tsm",
        environment={"python": "3.11", "torch": "2.4", "device": "cpu"}, generated=_dt.datetime(2026, 1, 1),
        checks=[Check(name="builds", status="passed", evidence="reported-figure", summary="ok", reason="why")])
    text = Texts(hostile)
    # the source documents first: their new keys are followed by every source reference
    doc_keys = {}
    sources = {}
    for k, s in cat.sources.items():
        new = _copy(s, text, f"sources[{k}]", {})
        new = new.model_copy(update={"key": text(f"sources[{k}].key")})
        doc_keys[k] = new.key
        sources[new.key] = new
    cat.sources = sources
    for attr in ("papers", "datasets", "repos", "resources", "stages", "tags", "reproduction"):
        setattr(cat, attr, {k: _copy(v, text, f"{attr}[{k}]", doc_keys) for k, v in getattr(cat, attr).items()})
    cat.results = [_copy(r, text, f"results[{i}]", doc_keys) for i, r in enumerate(cat.results)]
    abstracts = {p.arxiv_id: text(f"abstract[{p.key}]") for p in cat.papers.values() if p.arxiv_id}
    pages = render_pages(cat, extra=page_producers(), abstracts=abstracts)
    write_pages(pages, proj / "site_src")
    return mkdocs_build(proj), text


class Skeleton(html.parser.HTMLParser):
    """Elements and attribute names of a page in order (inside ``<pre>`` only the ``<pre>``, inside
    an inline chart ``<svg>`` only the ``<svg>``: a chart's drawing depends on the data, e.g. on
    which results share a method name), plus every attribute value and the text, for the checks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self.pre = 0
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if not self.pre:
            self.tags.append(f"<{tag} {' '.join(sorted(k for k, _ in attrs))}>")
        if tag in ("pre", "svg"):
            self.pre += 1
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("pre", "svg") and self.pre:
            self.pre -= 1
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack and self.stack[-1] == "script":
            self.script_text.append(data)


def parse(path: Path) -> Skeleton:
    p = Skeleton()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("escaping")
    return build(tmp, hostile=True), build(tmp, hostile=False)


def test_hostile_strings_in_every_field_build_nothing_live(sites) -> None:
    (hsite, htext), (psite, ptext) = sites
    assert list(htext.fields.values()) == list(ptext.fields.values())  # the same fields, in order
    pages = sorted(p.relative_to(hsite) for p in hsite.rglob("*.html"))
    assert pages == sorted(p.relative_to(psite) for p in psite.rglob("*.html"))
    shown: set[int] = set()
    for rel in pages:
        h, p = parse(hsite / rel), parse(psite / rel)
        assert h.tags == p.tags, f"{rel}: the hostile text changed the page's elements or attributes"
        for tag, name, value in h.attrs:
            assert not name.startswith("on"), f"{rel}: <{tag} {name}=...>"
            assert not re.match(r"\s*(javascript|data|vbscript):", value, re.I) or (tag, name) == ("meta", "content"), \
                f"{rel}: <{tag} {name}={value!r}>"
            assert "PWN" not in value or (tag, name) in {("a", "title")}, f"{rel}: data in <{tag} {name}={value!r}>"
        assert not any("PWN" in t or "alert(" in t for t in h.script_text), f"{rel}: data inside a <script>"
        text = "".join(h.text)
        shown |= {int(n) for n in re.findall(r"PWN(\d+)Z", text, re.I)}  # the tag group is capitalised
        if "PWN" in text:
            # shown as text: the markup of the payload is visible, not interpreted
            assert '<script>alert("x")</script>' in text and "[md link](javascript:alert(1))" in text, rel
    # every kind of hostile field is on some page, except the ones no template shows
    def kind(i: int) -> str:
        return re.sub(r"\[[^\]]*\]", "[]", htext.fields[i])

    never = {kind(i) for i in htext.fields} - {kind(i) for i in shown}
    assert never == NOT_SHOWN, "|".join(sorted(never))
    assert len(shown) > 100  # the test is not vacuous


def test_charts_and_search_index_carry_no_markup(sites) -> None:
    (hsite, _), _ = sites
    for svg in hsite.rglob("*.svg"):
        root = ET.parse(svg).getroot()
        for el in root.iter():
            assert not el.tag.endswith("script") and not el.tag.endswith("foreignObject"), svg
            assert not any(k.lower().startswith("on") for k in el.attrib), svg
    index = json.loads((hsite / "search/search_index.json").read_text(encoding="utf-8"))
    for doc in index["docs"]:
        assert "<script" not in doc["title"] and "<img" not in doc["title"], doc["location"]
        assert "<script" not in doc["text"] and "<img" not in doc["text"], doc["location"]


def test_context_filters() -> None:
    assert md("1. first") == "1&#46; first" and md("- item") == "&#45; item" and md("a\n\n# b") == "a &#35; b"
    assert md("<b>") == "&lt;b&gt;" and md(md("*x*")) == md("*x*")  # escaped once only
    assert code("a ` b <i>") == "<code>a &#96; b &lt;i&gt;</code>"
    assert link_title('a (b) "c" \\') == '"a &#40;b&#41; &quot;c&quot; &#92;"'
    assert fenced("x\n```\n--8<-- \"f\"", "python") == '````python\nx\n```\n;--8<-- "f"\n````'
    assert url("https://example.org/a b(c)\"<d>") == "https://example.org/a%20b%28c%29%22%3Cd%3E"
    with pytest.raises(UnsafePath, match="only http"):
        url("javascript:alert(1)")


# --- paths from data stay inside the project ----------------------------------------------------


def _record(project: Path, name: str, **fields) -> Path:
    rec = {"paper": "lin2019tsm", "model": "tsm", "source_file": "videozoo/models/tsm.py",
           "command": "python -m videozoo.verify tsm", "generated": "2026-01-01T00:00:00",
           "checks": [{"name": "builds", "status": "passed", "summary": "ok"}], **fields}
    path = project / "data/reproduction" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


@pytest.mark.parametrize("fields, field", [
    ({"model": "../../../README"}, "model"),
    ({"model": "../../site_src/index"}, "model"),
    ({"source_file": "/etc/passwd"}, "source_file"),
    ({"source_file": "videozoo/../../../etc/passwd"}, "source_file"),
    ({"source_file": "data/papers/lin2019tsm.yaml"}, "source_file"),
    ({"source_file": "videozoo/models/../../setup.py"}, "source_file"),
])
def test_reproduction_paths_are_confined(project: Path, capsys, fields: dict, field: str) -> None:
    """``model: ../../../README`` must not overwrite README.md, ``source_file: /etc/passwd``
    must not publish that file: the record is refused with its file and field."""
    from papers_kb.cli import main

    (project / "README.md").write_text("the project's readme\n")
    (project / "videozoo/models").mkdir(parents=True)
    (project / "videozoo/models/tsm.py").write_text("x = 1\n")
    _record(project, "evil", **fields)
    assert main(["--root", str(project), "build"]) == 1
    err = capsys.readouterr().err
    assert f"data/reproduction/evil.json: {field}:" in err and "Traceback" not in err
    assert (project / "README.md").read_text() == "the project's readme\n"
    assert not (project / "site").exists()
    for f in project.rglob("*"):
        if f.is_file():
            assert "root:x:0:0" not in f.read_text(errors="replace"), f


def test_render_refuses_paths_that_get_past_the_schema(project: Path) -> None:
    """Defence in depth: records built without validation still cannot leave the folders."""
    cat = load_catalog(project / "data", root=project)
    good = dict(paper="lin2019tsm", model="tsm", source_file="videozoo/models/tsm.py", command="c",
                generated=_dt.datetime(2026, 1, 1), checks=[])
    for bad in ({"model": "../../../README"}, {"source_file": "/etc/passwd"}, {"source_file": "videozoo/../README.md"},
                {"source_file": "scripts/bench_zoo.py"}):
        cat.reproduction = {"lin2019tsm": ReproductionRecord.model_construct(**{**good, **bad})}
        with pytest.raises(UnsafePath):
            render_pages(cat)
    from papers_kb.render import Page

    with pytest.raises(UnsafePath, match="outside"):
        write_pages([Page("generated/../../README.md", "x")], project / "site_src")
    assert not (project / "README.md").exists()


@pytest.mark.parametrize("model, field, value", [
    ("Link", "lang", "en<script>"), ("Resource", "lang", "zh` <b>"), ("SourceDoc", "lang", "english language"),
    ("SourceDoc", "key", "seed`<img src=x>.txt"), ("SourceDoc", "key", "../seed.txt"),
    ("Paper", "doi", "10.1234/abc def"), ("Paper", "doi", "10.1234/a{b"), ("Paper", "doi", "10.1234/x\\y"),
])
def test_schema_refuses_markup_in_codes_and_keys(model: str, field: str, value: str) -> None:
    from pydantic import ValidationError

    from papers_kb import schema

    base = {"Link": {"kind": "pdf", "url": "https://example.org/"},
            "Resource": {"kind": "blog", "key": "r", "title": "T", "url": "https://example.org/"},
            "SourceDoc": {"key": "seed.txt", "title": "T", "kind": "other", "lang": "en"},
            "Paper": {"key": "p", "title": "T"}}[model]
    cls = getattr(schema, model)
    cls.model_validate(base)  # the base is valid
    with pytest.raises(ValidationError, match=field):
        cls.model_validate({**base, field: value})
    for ok in {"lang": ["en", "zh", "zh-Hans", "pt-BR"], "key": ["002_46aeb5040564a7cd.txt"],
               "doi": ["10.1007/978-3-030-01216-8_43", "10.1002/(SICI)1097-4636(199812)43:4<454::AID-JBM13>3.0.CO;2-W"]}[field]:
        cls.model_validate({**base, field: ok})
