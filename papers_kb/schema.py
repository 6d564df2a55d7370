"""Pydantic models of every entry kind in ``data/``: the single source of field names.

Layout of ``data/`` (each YAML file holds one mapping or a list of mappings):

==========================  =============================================
``data/sources.yaml``       the five seed documents (:class:`SourceDoc`)
``data/tags.yaml``          the tag taxonomy (:class:`Tag`)
``data/stages.yaml``        the Stage 1-4 learning path (:class:`Stage`)
``data/papers/*.yaml``      one :class:`Paper` per file (``<key>.yaml``)
``data/datasets/*.yaml``    :class:`Dataset` entries
``data/repos/*.yaml``       :class:`Repo` entries
``data/results/*.yaml``     :class:`Result` entries (benchmark numbers)
``data/resources/*.yaml``   :class:`Resource` entries (courses, blogs, videos ...)
``data/reproduction/*.json`` :class:`ReproductionRecord`, written by ``videozoo.verify``
==========================  =============================================

Every model forbids unknown fields, so a typo in a YAML key is an error, not a silent drop.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")

# New-style arXiv ids (0704.0001 ... 2412.12345) and old-style (hep-th/9901001, cs.CV/0101001).
ARXIV_NEW_RE = re.compile(r"^\d{4}\.\d{4,5}$")
ARXIV_OLD_RE = re.compile(r"^[a-z][a-z.-]*(\.[A-Z]{2})?/\d{7}$")

MIN_YEAR, MAX_YEAR = 1950, 2030


def _check_key(value: str) -> str:
    if not KEY_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid key (lower-case letters, digits, '_', '-', '.', '+'; "
            "starting with a letter or digit)"
        )
    return value


def is_arxiv_id(value: str) -> bool:
    """True for a versionless arXiv id: ``YYMM.NNNN`` (2007-2014), ``YYMM.NNNNN`` (from 2015),
    or old style ``archive/YYMMNNN``."""
    if ARXIV_OLD_RE.match(value):
        return True
    if not ARXIV_NEW_RE.match(value):
        return False
    yymm, number = value.split(".")
    month = int(yymm[2:])
    digits = 5 if int(yymm) >= 1501 else 4
    return 1 <= month <= 12 and len(number) == digits and int(yymm) >= 704


def _check_arxiv_id(value: str) -> str:
    """Validate an arXiv identifier as stored: no ``arXiv:`` prefix, no version suffix."""
    if is_arxiv_id(value):
        return value
    if re.match(r"^(\d{4}\.\d{4,5}|[a-z][a-z.-]*(\.[A-Z]{2})?/\d{7})v\d+$", value):
        raise ValueError(f"{value!r}: store the arXiv id without its version suffix")
    raise ValueError(f"{value!r} is not an arXiv id (new style 2101.01234 or old style hep-th/9901001)")


def _check_url(value: str) -> str:
    """Only absolute http(s) URLs with a host are accepted (no ``javascript:``, ``file:``...)."""
    m = re.match(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):", value)
    if not m or m.group("scheme").lower() not in ("http", "https"):
        raise ValueError(f"{value!r}: only http:// and https:// URLs are allowed")
    if not re.match(r"^https?://[^/\s?#]+", value, re.I) or re.search(r"\s", value):
        raise ValueError(f"{value!r} is not a valid absolute URL")
    return value


def _check_doi(value: str) -> str:
    if not re.match(r"^10\.\d{4,9}/\S+$", value):
        raise ValueError(f"{value!r} is not a DOI (10.xxxx/...)")
    return value


Key = Annotated[str, AfterValidator(_check_key)]
ArxivId = Annotated[str, AfterValidator(_check_arxiv_id)]
Url = Annotated[str, AfterValidator(_check_url)]
Doi = Annotated[str, AfterValidator(_check_doi)]
Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR)]
StageNumber = Annotated[int, Field(ge=1, le=4)]
NonEmpty = Annotated[str, Field(min_length=1)]


class Strict(BaseModel):
    """Base class: unknown fields are errors; strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceRef(Strict):
    """Where in a seed document an entry (or number) was found.

    ``doc`` is the key of a :class:`SourceDoc` (the seed file name, e.g.
    ``"002_46aeb5040564a7cd.txt"``); ``section`` is the heading or table as the document
    writes it (e.g. ``"5.4 双流法"``, ``"Table 1"``, ``"Stage1"``).
    """

    doc: NonEmpty
    section: str | None = None
    note: str | None = None


class Link(Strict):
    """An extra link of an entry (PDF mirror, project page, blog post about it ...)."""

    kind: Literal["pdf", "abs", "project", "blog", "openreview", "proceedings", "video", "slides", "data", "other"]
    url: Url
    label: str | None = None
    lang: str | None = Field(default=None, description="ISO 639-1 code of the linked page, e.g. 'zh'")


class Relation(Strict):
    """A link between two papers, e.g. the journal version of a conference paper."""

    paper: Key
    kind: Literal["journal-version", "conference-version", "extends", "extended-by", "same-work", "see-also"]


class ArxivMeta(Strict):
    """Facts taken from arXiv's own record (written by ``papers-kb enrich``/``add``)."""

    published: _dt.date | None = Field(default=None, description="date of the first version")
    updated: _dt.date | None = None
    version: int | None = Field(default=None, ge=1, description="latest version number seen")
    primary_category: str | None = None
    categories: list[str] = Field(default_factory=list)
    journal_ref: str | None = None
    comment: str | None = None


class Paper(Strict):
    """A research paper.

    ``authors`` are written as the paper writes them ("Ji Lin"); where the family name is
    ambiguous use BibTeX's comma form ("Van Gool, Luc"). ``venue`` is the short name of
    where it was published ("CVPR", "NeurIPS", "TPAMI", "arXiv" for preprints) and
    ``venue_type`` says whether that is a conference, journal, workshop ...
    """

    kind: Literal["paper"] = "paper"
    key: Key
    title: NonEmpty
    short_name: str | None = Field(default=None, description="the method's usual name: TSM, I3D, ViViT")
    aliases: list[str] = Field(default_factory=list, description="other names the documents use")
    authors: list[NonEmpty] = Field(default_factory=list)
    year: Year | None = None
    venue: str | None = None
    venue_type: Literal["conference", "journal", "workshop", "preprint", "book", "techreport", "thesis", "other"] | None = None
    volume: str | None = None
    number: str | None = None
    pages: str | None = None
    month: int | None = Field(default=None, ge=1, le=12)
    arxiv_id: ArxivId | None = None
    arxiv: ArxivMeta | None = None
    doi: Doi | None = None
    url: Url | None = Field(default=None, description="landing page when the paper is not on arXiv")
    pdf: Url | None = None
    links: list[Link] = Field(default_factory=list)
    stage: StageNumber | None = None
    tags: list[Key] = Field(default_factory=list)
    summary: str | None = Field(default=None, description="what the paper does, in this project's own words")
    notes: str | None = None
    related: list[Relation] = Field(default_factory=list)
    citation_key: str | None = Field(default=None, description="pins the BibTeX citation key")
    confirmed: str | None = Field(
        default=None,
        description="how the identifier/title/authors/venue were confirmed against a primary source "
        "when the seeds do not state them, e.g. 'arXiv abs page 1811.08383 (search, 2026-11-22)'",
    )
    sources: list[SourceRef] = Field(default_factory=list)

    @field_validator("citation_key")
    @classmethod
    def _citation_key(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z][A-Za-z0-9_:.-]*$", v):
            raise ValueError(f"{v!r} is not a usable BibTeX citation key")
        return v


class Dataset(Strict):
    """A video dataset or benchmark.

    ``videos`` and ``classes`` are counts as the source documents give them;
    ``videos_note`` keeps a figure that is not one integer (e.g. "10024+4926+5044").
    """

    kind: Literal["dataset"] = "dataset"
    key: Key
    name: NonEmpty
    aliases: list[str] = Field(default_factory=list)
    url: Url | None = None
    links: list[Link] = Field(default_factory=list)
    videos: int | None = Field(default=None, gt=0)
    videos_note: str | None = None
    classes: int | None = Field(default=None, gt=0)
    task: str | None = None
    origin: str | None = Field(default=None, description="where the videos come from, e.g. YouTube")
    papers: list[Key] = Field(default_factory=list, description="papers that introduce the dataset")
    tags: list[Key] = Field(default_factory=list)
    summary: str | None = None
    notes: str | None = None
    sources: list[SourceRef] = Field(default_factory=list)


Framework = Literal[
    "PyTorch", "TensorFlow", "Caffe", "Caffe2", "Paddle", "MXNet", "Theano", "Torch (Lua)", "Keras",
    "MATLAB", "JAX", "Core ML", "other",
]


class Repo(Strict):
    """A code repository (GitHub or other).

    ``official`` is ``True`` when the documents mark it as the authors' code, ``False``
    when they mark it as third-party, ``None`` when they do not say.
    """

    kind: Literal["repo"] = "repo"
    key: Key
    url: Url
    name: str | None = Field(default=None, description="owner/name")
    framework: Framework | None = None
    official: bool | None = None
    role: Literal["implementation", "library", "tool", "list", "data", "weights", "other"] = "implementation"
    papers: list[Key] = Field(default_factory=list, description="papers it implements")
    summary: str | None = None
    notes: str | None = None
    tags: list[Key] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)


class Result(Strict):
    """One benchmark number or other numeric claim about a method.

    ``metric`` is one of a fixed vocabulary so that leaderboards compare like with like:
    ``top1`` (top-1 accuracy, %), ``top5`` (%), ``params`` (millions of parameters, M),
    ``gflops`` (GFLOPs), ``fps`` (frames per second), ``latency`` (ms), ``gpus`` (count),
    ``speedup`` (x), ``other``.
    """

    paper: Key
    method: NonEmpty = Field(description="the method's name as the source writes it")
    dataset: Key | None = None
    metric: Literal["top1", "top5", "params", "gflops", "fps", "latency", "gpus", "speedup", "other"]
    value: float
    unit: Literal["%", "M", "GFLOPs", "fps", "ms", "GPUs", "x", ""]
    kind: Literal["paper-reported", "survey-reported", "measured"]
    year: Year | None = None
    family: str | None = Field(default=None, description="method family as the source groups it")
    setting: str | None = None
    frames: int | None = Field(default=None, gt=0)
    clips: int | None = Field(default=None, gt=0)
    crops: int | None = Field(default=None, gt=0)
    resolution: int | None = Field(default=None, gt=0)
    pretrain: str | None = None
    modality: Literal["RGB", "Flow", "RGB+Flow", "RGB+Audio", "Pose", "Compressed", "other"] | None = None
    source: SourceRef
    notes: str | None = None

    @model_validator(mode="after")
    def _units(self) -> "Result":
        expected = {"top1": "%", "top5": "%", "params": "M", "gflops": "GFLOPs", "fps": "fps",
                    "latency": "ms", "gpus": "GPUs", "speedup": "x"}
        if self.metric in expected and self.unit != expected[self.metric]:
            raise ValueError(f"metric {self.metric!r} must have unit {expected[self.metric]!r}, not {self.unit!r}")
        if self.metric in ("top1", "top5") and not 0 <= self.value <= 100:
            raise ValueError(f"accuracy must be between 0 and 100 %, got {self.value}")
        if self.metric in ("params", "gflops", "fps", "latency", "gpus", "speedup") and self.value <= 0:
            raise ValueError(f"{self.metric} must be > 0, got {self.value}")
        return self


class Resource(Strict):
    """An online resource that is not a paper: course, blog survey, video, slides, platform."""

    kind: Literal["course", "blog", "video", "slides", "homepage", "platform", "list", "tool", "docs", "other"]
    key: Key
    title: NonEmpty
    url: Url
    lang: str | None = None
    date: _dt.date | None = None
    author: str | None = None
    papers: list[Key] = Field(default_factory=list)
    tags: list[Key] = Field(default_factory=list)
    summary: str | None = None
    sources: list[SourceRef] = Field(default_factory=list)


class StageItem(Strict):
    """One reading of a stage: a paper or a dataset, why to read it, what to read first."""

    paper: Key | None = None
    dataset: Key | None = None
    why: NonEmpty = Field(description="why read it at this point of the path, in our own words")
    prerequisites: list[Key] = Field(default_factory=list, description="paper keys to read first")

    @model_validator(mode="after")
    def _one_target(self) -> "StageItem":
        if (self.paper is None) == (self.dataset is None):
            raise ValueError("a stage item names exactly one of 'paper' or 'dataset'")
        return self

    @property
    def ref(self) -> str:
        return self.paper or self.dataset  # type: ignore[return-value]


class Stage(Strict):
    """A stage of the learning path (1 CNNs, 2 transformers, 3 vision-language, 4 video LLMs)."""

    number: StageNumber
    title: NonEmpty
    title_zh: str | None = None
    summary: str | None = None
    items: list[StageItem] = Field(min_length=1)
    sources: list[SourceRef] = Field(default_factory=list)


class Tag(Strict):
    """A tag of the taxonomy; ``group`` clusters tags on the tags page."""

    key: Key
    name: NonEmpty
    group: str | None = None
    description: str | None = None


class SourceDoc(Strict):
    """One of the seed documents everything in ``data/`` comes from."""

    key: NonEmpty = Field(description="the seed's file name, e.g. 002_46aeb5040564a7cd.txt")
    title: NonEmpty
    kind: Literal["reading-list", "survey", "awesome-list", "resource-list", "other"]
    lang: str
    description: str | None = None
    url: Url | None = None


# --- reproduction records written by videozoo.verify ------------------------------------

CHECK_NAMES = ("builds", "runs", "reference", "inflation", "motion", "zero_shot", "video_qa", "memory", "gpu")


class Check(Strict):
    """The outcome of one verification check, as measured by ``videozoo.verify``.

    ``status`` is ``passed``/``failed`` for a check that ran, ``not-run`` with ``reason``
    otherwise (e.g. "no GPU on this machine").
    """

    name: Literal["builds", "runs", "reference", "inflation", "motion", "zero_shot", "video_qa", "memory", "gpu"]
    status: Literal["passed", "failed", "not-run"]
    summary: str
    reason: str | None = None
    measured: dict = Field(default_factory=dict)
    expected: dict = Field(default_factory=dict)
    seconds: float | None = Field(default=None, ge=0)


class ReproductionRecord(Strict):
    """What ``python -m videozoo.verify`` measured for one model (``data/reproduction/<alias>.json``)."""

    schema_version: Literal[1] = 1
    paper: Key
    model: NonEmpty = Field(description="videozoo alias, e.g. 'tsm'")
    source_file: NonEmpty
    command: NonEmpty
    environment: dict = Field(default_factory=dict)
    generated: _dt.datetime
    checks: list[Check]


ENTRY_MODELS: dict[str, type[Strict]] = {
    "papers": Paper,
    "datasets": Dataset,
    "repos": Repo,
    "results": Result,
    "resources": Resource,
}
