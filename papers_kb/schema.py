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


# Crossref's recommended DOI pattern, plus the <>[] that old Wiley DOIs hold: no spaces,
# quotes, braces, backslashes, % or # (they would break BibTeX and links).
DOI_RE = re.compile(r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9<>\[\]+]+$")
# An IETF language tag as pages use them: "en", "zh", "zh-Hans", "pt-BR".
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# A seed document's key is its file name: letters, digits, "_", "-", "." (no path parts).
SOURCE_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Reproduction source files: a relative path to a .py file inside the project, no ".." part
# (videozoo's files are "videozoo/models/tsm.py"; a model registered from a test module gets
# "test_verify.py"). Pages show only files inside videozoo/ (render checks that too).
SOURCE_FILE_RE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.py$")


def _check_doi(value: str) -> str:
    if not DOI_RE.match(value):
        raise ValueError(f"{value!r} is not a DOI (10.<registrant>/<suffix> with letters, digits and -._;()/:<>[]+)")
    return value


def _check_lang(value: str) -> str:
    if not LANG_RE.match(value):
        raise ValueError(f"{value!r} is not a language code (ISO 639-1 such as 'en', 'zh', or a tag such as 'zh-Hans')")
    return value


def _check_source_key(value: str) -> str:
    if not SOURCE_KEY_RE.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a source document key (a file name: letters, digits, '_', '-', '.')")
    return value


def _check_source_file(value: str) -> str:
    if not SOURCE_FILE_RE.match(value) or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not a Python file inside the project (a relative path such as "
                         "'videozoo/models/tsm.py', without '..')")
    return value


Key = Annotated[str, AfterValidator(_check_key)]
ArxivId = Annotated[str, AfterValidator(_check_arxiv_id)]
Url = Annotated[str, AfterValidator(_check_url)]
Doi = Annotated[str, AfterValidator(_check_doi)]
Lang = Annotated[str, AfterValidator(_check_lang)]
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


class ResultSource(Strict):
    """Where a :class:`Result` number was read: exactly one of ``doc``, ``paper`` or ``url``.

    * ``doc`` -- a seed document (a :class:`SourceDoc` key), e.g. the survey's Table 1;
    * ``paper`` -- the paper itself (a :class:`Paper` key; usually the result's own paper),
      with ``section`` naming its table or section as the paper numbers it ("Table 3");
    * ``url`` -- a file of a code repository, pinned to a commit where possible, e.g. the
      authors' README model-zoo table or an MMAction2 ``metafile.yml``; ``repo`` optionally
      names the :class:`Repo` entry the file belongs to (its URL must then start with the
      repository's URL), and ``section`` the heading or table inside the file.

    Raises:
        ValueError: when none or more than one of ``doc``, ``paper``, ``url`` is given.
    """

    doc: NonEmpty | None = Field(default=None, description="key of a seed document (data/sources.yaml)")
    paper: Key | None = Field(default=None, description="key of the paper whose table states the number")
    url: Url | None = Field(default=None, description="a repository file (README, metafile, config)")
    repo: Key | None = Field(default=None, description="the Repo entry that url belongs to")
    section: str | None = Field(default=None, description="table or section as the source numbers it")
    note: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> "ResultSource":
        given = [name for name in ("doc", "paper", "url") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a result source names exactly one of 'doc' (seed document), 'paper' (the paper's "
                             f"own table) or 'url' (a repository file); got {given or 'none'}")
        if self.repo is not None and self.url is None:
            raise ValueError("'repo' is only meaningful together with 'url'")
        return self


class Link(Strict):
    """An extra link of an entry (PDF mirror, project page, blog post about it ...)."""

    kind: Literal["pdf", "abs", "project", "blog", "openreview", "proceedings", "video", "slides", "data", "other"]
    url: Url
    label: str | None = None
    lang: Lang | None = Field(default=None, description="ISO 639-1 code of the linked page, e.g. 'zh'")


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

    ``authors`` is the complete author list in the order of the version cited, each name
    written "First Last" as the paper prints it ("Ji Lin", "Luc Van Gool") -- never
    "Last, First" and never ending in "et al.". When the authors cannot be confirmed the
    list stays empty and ``authors_note`` says why (``papers-kb validate`` warns otherwise).
    Where the family name is more than the last word ("Luc Van Gool"), ``family_names`` records it
    ({"Luc Van Gool": "Van Gool"}) for citation formats that write "Last, First".

    ``venue`` is the short name of where the cited version appeared ("CVPR", "NeurIPS",
    "TCSVT", "arXiv" for preprints), ``venue_type`` says whether that is a conference,
    journal, workshop ... (a workshop paper is ``venue: ICCV Workshops``,
    ``venue_type: workshop``).

    ``year`` is the year of the version cited: the venue's publication year for a published
    paper (the proceedings or journal issue year, even when the arXiv preprint is older), the
    arXiv v1 year (the ``YYMM`` of the id) for a preprint. A paper whose venue year precedes
    its arXiv id's year (the preprint was posted after publication) says so in
    ``year_note``; ``papers-kb validate`` rejects such a paper without one.
    """

    kind: Literal["paper"] = "paper"
    key: Key
    title: NonEmpty
    short_name: str | None = Field(default=None, description="the method's usual name: TSM, I3D, ViViT")
    aliases: list[str] = Field(default_factory=list, description="other names the documents use")
    authors: list[NonEmpty] = Field(default_factory=list)
    authors_note: str | None = Field(
        default=None, description="why the author list is empty (required when it is; provenance, not shown as text)")
    family_names: dict[NonEmpty, NonEmpty] = Field(
        default_factory=dict,
        description="family name of an author whose 'First Last' form does not show it, e.g. "
        "{'Luc Van Gool': 'Van Gool'}, for citation formats that write 'Last, First'")
    year: Year | None = None
    year_note: str | None = Field(
        default=None, description="why year differs from the arXiv id's year, e.g. the venue published before "
        "the arXiv version was posted")
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

    @model_validator(mode="after")
    def _family_names(self) -> "Paper":
        for name, family in self.family_names.items():
            if name not in self.authors:
                raise ValueError(f"family_names: {name!r} is not one of the authors")
            if not (name.endswith(" " + family) and len(family) < len(name)):
                raise ValueError(f"family_names: {family!r} is not the last words of {name!r}")
        return self

    @field_validator("citation_key")
    @classmethod
    def _citation_key(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z][A-Za-z0-9_:.-]*$", v):
            raise ValueError(f"{v!r} is not a usable BibTeX citation key")
        return v


class DatasetSplit(Strict):
    """One partition or evaluation protocol of a dataset, e.g. ``train`` with 26320 instances.

    ``videos`` counts the clips (or annotated instances) in it as the dataset's release
    states them; ``note`` says what the split is when the name alone does not.
    """

    name: NonEmpty
    videos: int | None = Field(default=None, gt=0)
    note: str | None = None


class Dataset(Strict):
    """A video dataset or benchmark.

    ``videos`` and ``classes`` are counts as the dataset's own release (or, failing that, the
    source documents) give them; ``videos_note`` keeps a figure that is not one integer
    (e.g. "10024+4926+5044"). ``splits`` lists the partitions or evaluation protocols and
    ``license`` the licence as the dataset's site states it ("CC BY 4.0"); ``confirmed``
    records where those facts were checked (provenance).
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
    splits: list[DatasetSplit] = Field(default_factory=list)
    license: str | None = Field(default=None, description="licence as the dataset's site states it, e.g. 'CC BY 4.0'")
    task: str | None = None
    origin: str | None = Field(default=None, description="where the videos come from, e.g. YouTube")
    papers: list[Key] = Field(default_factory=list, description="papers that introduce the dataset")
    tags: list[Key] = Field(default_factory=list)
    summary: str | None = None
    notes: str | None = None
    confirmed: str | None = Field(default=None, description="where size, classes, splits and licence were checked")
    sources: list[SourceRef] = Field(default_factory=list)


Framework = Literal[
    "PyTorch", "TensorFlow", "Caffe", "Caffe2", "Paddle", "MXNet", "Theano", "Torch (Lua)", "Keras",
    "MATLAB", "JAX", "Core ML", "other",
]


class Repo(Strict):
    """A code repository (GitHub or other).

    ``official`` is ``True`` when it is the authors' own code (the paper, its venue page or
    the repository itself says so, or the owner is an author), ``False`` for a third-party
    implementation (e.g. a library's config folder such as MMAction2's), ``None`` when
    neither could be confirmed. ``confirmed`` records how (provenance).
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
    confirmed: str | None = Field(default=None, description="how the URL and the official flag were checked")
    tags: list[Key] = Field(default_factory=list)
    sources: list[SourceRef] = Field(default_factory=list)


RESULT_KINDS = ("paper-reported", "author-reported", "library-measured", "survey-reported", "measured")


class Result(Strict):
    """One benchmark number or other numeric claim about a method.

    ``metric`` is one of a fixed vocabulary so that leaderboards compare like with like:
    ``top1`` (top-1 accuracy, %), ``top5`` (%), ``params`` (millions of parameters, M),
    ``gflops`` (GFLOPs), ``fps`` (frames per second), ``latency`` (ms), ``gpus`` (count),
    ``speedup`` (x), ``other``.

    ``kind`` says who produced the number, and ``source`` (a :class:`ResultSource`) where it
    was read:

    * ``paper-reported`` -- the paper's own table (``source.paper`` + ``section``), or a seed
      document restating the paper's claim (``source.doc``);
    * ``author-reported`` -- the authors' code release, e.g. the model-zoo table of their
      README (``source.url``); such numbers may differ from the paper's (re-trained models);
    * ``library-measured`` -- a third-party library's own training and testing, e.g. an
      MMAction2 ``metafile.yml`` (``source.url``);
    * ``survey-reported`` -- a survey's table (``source.doc``);
    * ``measured`` -- measured by this project (``videozoo.verify``).

    The evaluation setting is given by fields, so that only rows of the same setting are
    compared: ``frames`` (frames in one clip fed to the model), ``clips`` (temporal views
    averaged at test time), ``crops`` (spatial views per clip), ``resolution`` (side of the
    square crop in pixels), ``pretrain`` (data the weights were pre-trained on before the
    benchmark, e.g. "ImageNet-21K"), ``backbone`` (e.g. "ResNet-50", "Swin-B"), ``modality``.
    ``setting`` keeps what the source says in words when the fields cannot hold it. A field
    the source does not state stays empty.

    ``trainable_only`` (``params`` results only): the count covers only the parameters trained
    for the task, e.g. a side network or adapters on a frozen backbone whose own parameters are
    not counted; such a count is shown as such and never plotted as model size.

    Raises:
        ValueError: unit or range not matching the metric; kind not matching the source.
    """

    paper: Key
    method: NonEmpty = Field(description="the method's name as the source writes it")
    dataset: Key | None = None
    metric: Literal["top1", "top5", "params", "gflops", "fps", "latency", "gpus", "speedup", "other"]
    value: float
    unit: Literal["%", "M", "GFLOPs", "fps", "ms", "GPUs", "x", ""]
    kind: Literal["paper-reported", "author-reported", "library-measured", "survey-reported", "measured"]
    year: Year | None = None
    family: str | None = Field(default=None, description="method family as the source groups it")
    setting: str | None = None
    frames: int | None = Field(default=None, gt=0, description="frames per clip fed to the model")
    clips: int | None = Field(default=None, gt=0, description="temporal views (clips) per video at test time")
    crops: int | None = Field(default=None, gt=0, description="spatial views (crops) per clip at test time")
    resolution: int | None = Field(default=None, gt=0, description="test crop side in pixels")
    pretrain: str | None = Field(default=None, description="pre-training data, e.g. ImageNet-21K, Kinetics-400")
    backbone: str | None = Field(default=None, description="backbone or model size, e.g. ResNet-50, Swin-B")
    modality: Literal["RGB", "Flow", "RGB+Flow", "RGB+Audio", "Pose", "Compressed", "other"] | None = None
    trainable_only: bool = Field(default=False, description="params: counts only the trained parameters "
                                 "(a frozen backbone is not counted)")
    source: ResultSource
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
        if self.trainable_only and self.metric != "params":
            raise ValueError(f"trainable_only applies to a params result, not to {self.metric!r}")
        return self

    @model_validator(mode="after")
    def _kind_matches_source(self) -> "Result":
        src = self.source
        allowed = {
            "paper-reported": ("paper", "doc"),
            "author-reported": ("url",),
            "library-measured": ("url",),
            "survey-reported": ("doc",),
        }.get(self.kind)
        if allowed and not any(getattr(src, name) is not None for name in allowed):
            names = " or ".join(f"source.{name}" for name in allowed)
            raise ValueError(f"a {self.kind} result needs {names}")
        return self


class Resource(Strict):
    """An online resource that is not a paper: course, blog survey, video, slides, platform."""

    kind: Literal["course", "blog", "video", "slides", "homepage", "platform", "list", "tool", "docs", "other"]
    key: Key
    title: NonEmpty
    url: Url
    lang: Lang | None = None
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
    """One of the seed documents everything in ``data/`` comes from.

    ``key`` is an internal provenance id (the seed's file name); pages name the document by
    ``title``, ``author``, ``date`` and its ``url`` or ``arxiv_id``. A field that could not be
    established stays empty and ``notes`` says what is known (provenance, not page text).
    """

    key: Annotated[str, AfterValidator(_check_source_key)] = Field(
        description="the seed's file name, e.g. 002_46aeb5040564a7cd.txt")
    title: NonEmpty
    kind: Literal["reading-list", "survey", "awesome-list", "resource-list", "other"]
    lang: Lang
    author: str | None = Field(default=None, description="author(s) as the document names them")
    date: _dt.date | None = Field(default=None, description="publication date (arXiv v1 date for a preprint)")
    arxiv_id: ArxivId | None = None
    description: str | None = None
    url: Url | None = None
    notes: str | None = Field(default=None, description="how the document was identified (provenance)")


# --- reproduction records written by videozoo.verify ------------------------------------

CHECK_NAMES = ("builds", "runs", "reference", "inflation", "motion", "zero_shot", "video_qa", "memory", "gpu")

CHECK_STATUSES = ("passed", "failed", "unverified", "not-run")
"""``unverified``: the check ran but had nothing to compare with (a model with no reported or
released figure); never counted as passed."""

EVIDENCE_KINDS = ("independent-reference", "self-consistency", "control", "training", "reported-figure",
                  "smoke-test")
"""What a check's verdict rests on:

``independent-reference``  code that shares no module with the model: a library (torchvision,
                           timm, Hugging Face, pytorchvideo, open_clip, POT), an executable
                           restatement of the paper's equations, or the layer table of the
                           authors' release
``self-consistency``       the model against code it imports or re-types from itself
``control``                a model that by design cannot solve the task (e.g. cannot use frame order)
``training``               a trained result over seeds
``reported-figure``        a measured size compared with a figure of the paper, a survey or the
                           authors' release (the ``builds`` check)
``smoke-test``             the model runs: shapes, finite gradients, determinism (``runs``, ``gpu``)
"""


class Check(Strict):
    """The outcome of one verification check, as measured by ``videozoo.verify``.

    ``status`` is ``passed``/``failed`` for a check that ran and compared, ``unverified`` for
    one that ran with nothing to compare against, ``not-run`` with ``reason`` otherwise (e.g.
    "no GPU on this machine").  ``evidence`` (one of :data:`EVIDENCE_KINDS`) is required for
    every check that ran.
    """

    name: Literal["builds", "runs", "reference", "inflation", "motion", "zero_shot", "video_qa", "memory", "gpu"]
    status: Literal["passed", "failed", "unverified", "not-run"]
    evidence: Literal["independent-reference", "self-consistency", "control", "training", "reported-figure",
                      "smoke-test"] | None = None
    summary: str
    reason: str | None = None
    measured: dict = Field(default_factory=dict)
    expected: dict = Field(default_factory=dict)
    seconds: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _evidence_when_run(self) -> "Check":
        if self.status != "not-run" and self.evidence is None:
            raise ValueError(f"check {self.name!r} has status {self.status!r} but no evidence kind "
                             f"(one of {', '.join(EVIDENCE_KINDS)})")
        return self


class ReproductionRecord(Strict):
    """What ``python -m videozoo.verify`` measured for one registered model name
    (``data/reproduction/<name>.json``): a paper's model (its alias, ``tsm``) or a registered
    variant of it (``tsn_r50``); a paper may have several records, one per name."""

    schema_version: Literal[1] = 1
    paper: Key
    model: Key = Field(description="videozoo registered name: the paper's alias ('tsm') or a variant ('tsn_r50'); "
                       "a plain key: it names the record's file")
    variant: NonEmpty | None = Field(default=None, description="for a registered variant: what it is "
                                     "(one line, e.g. the paper table or the recipe it follows)")
    source_file: Annotated[str, AfterValidator(_check_source_file)] = Field(
        description="the model file, relative to the project: 'videozoo/models/tsm.py' (pages show files of videozoo/ only)")
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
