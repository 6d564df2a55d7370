"""Model registry of videozoo.

Every model is registered under the key of its paper in the papers-kb catalog
(``data/papers/<key>.yaml``), e.g. ``"lin2019tsm"``, and also under a short alias
(``"tsm"``), so that the site and the code can link both ways.

A model file registers one builder per paper::

    @register_model("lin2019tsm", alias="tsm", stage=1, config=TSMConfig,
                    reported=(Reported("params_m", 24.3, "paper, Table 1", kind="paper", tolerance_pct=1.0),))
    def tsm(config: TSMConfig) -> TSM:
        return TSM(config)

Further configurations of the same paper (model sizes, the paper's ablated designs, the
authors' other recipes) are registered variants, as timm registers ``vit_base_patch16_224``::

    register_variant("tsn_r50", of="wang2016tsn", overrides={"backbone": "resnet50"},
                     reported=(Reported("params_m", 24.3, "...", kind="release", tolerance_pct=0.5),))

``create("tsn_r50")`` builds it; its checks are recorded under its own name.

Each reported figure declares its kind (paper, survey, authors' release) and the tolerance
(in %) within which the measured figure must lie, or ``tolerance_pct=None`` for a figure of
another configuration that is shown but not checked.

And optionally extra checks that ``videozoo.verify`` runs, each declaring the kind of
evidence it is (see :func:`register_check`)::

    @register_check("lin2019tsm", "reference", evidence="independent-reference")
    def _tsm_shift_vs_loop() -> dict: ...

Config classes are dataclasses with a ``num_classes`` field, the classmethods
``paper()`` and ``tiny()``, and ``input_shape() -> tuple[int, ...]`` giving the
per-sample input shape (no batch dimension), e.g. ``(3, 8, 224, 224)`` for
``(C, T, H, W)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = [
    "Reported",
    "RegisteredCheck",
    "FIGURE_KINDS",
    "EVIDENCE_KINDS",
    "ModelSpec",
    "Variant",
    "register_model",
    "register_variant",
    "register_check",
    "create",
    "get_spec",
    "list_models",
    "list_names",
]


FIGURE_KINDS = ("paper", "survey", "release")
"""Where a reported figure comes from: the paper itself, a survey that quotes it, or the
authors' released code (measured on their model definition)."""

EVIDENCE_KINDS = ("independent-reference", "self-consistency", "control", "training")
"""What a registered check compares the model with (see :func:`register_check`)."""


@dataclass(frozen=True)
class Reported:
    """A figure reported for the paper configuration, with the tolerance it is checked within.

    Attributes:
        metric: ``"params_m"`` (millions of parameters) or ``"gflops"`` (GFLOPs per
            clip at the paper's input size; 1 multiply-add = 2 FLOPs unless ``note`` says).
        value: The reported number.
        source: Where it comes from, by the document's own title and section, e.g.
            ``"paper, Table 2"`` or ``"A Survey on Backbones for Deep Video Action Recognition,
            Table 1"``.
        note: Free text, e.g. which variant or input size the figure refers to.
        kind: ``"paper"`` (paper-reported), ``"survey"`` (survey-reported) or ``"release"``
            (counted on the authors' released code), see :data:`FIGURE_KINDS`.
        tolerance_pct: Largest gap (in %, of ``value``) at which the measured figure still
            matches; ``None`` declares that the figure describes another configuration and is
            shown for information only (``note`` must then say which), so it is not checked.
            Convention: one unit of the figure's last digit (``24.3`` M: 0.1 M; ``86`` M, which
            may be rounded or truncated: 1 M), at least 0.5 %; the issue's 0.5 % for counts of the
            authors' released code.

    Raises:
        ValueError: unknown ``kind``, negative tolerance, or ``tolerance_pct=None`` without a note.
    """

    metric: str
    value: float
    source: str
    note: str = ""
    kind: str = field(kw_only=True)
    tolerance_pct: float | None = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.kind not in FIGURE_KINDS:
            raise ValueError(f"Reported({self.metric!r}, {self.value}): kind must be one of {FIGURE_KINDS}, "
                             f"got {self.kind!r}")
        if self.tolerance_pct is not None and not self.tolerance_pct >= 0:
            raise ValueError(f"Reported({self.metric!r}, {self.value}): tolerance_pct must be >= 0 or None, "
                             f"got {self.tolerance_pct!r}")
        if self.tolerance_pct is None and not self.note:
            raise ValueError(f"Reported({self.metric!r}, {self.value}): a figure that is not checked "
                             "(tolerance_pct=None) needs a note saying which configuration it describes")


@dataclass(frozen=True)
class RegisteredCheck:
    """An extra check registered by a model file: the function and the kind of evidence it is.

    Calling it runs the check: ``check() -> dict`` with at least ``passed`` and ``summary``.

    Attributes:
        fn: Zero-argument callable returning the check's dict.
        evidence: One of :data:`EVIDENCE_KINDS`.
    """

    fn: Callable[[], dict]
    evidence: str

    def __call__(self) -> dict:
        return self.fn()


@dataclass
class ModelSpec:
    """Everything the registry knows about one model.

    Attributes:
        key: Paper key in the knowledge base (``"lin2019tsm"``).
        alias: Short lower-case name (``"tsm"``).
        stage: Learning-path stage (1-4).
        config_cls: Config dataclass with ``paper()``, ``tiny()``, ``input_shape()``.
        builder: ``builder(config) -> nn.Module``.
        module: Dotted module path of the model file.
        reported: Figures reported by the paper or survey (see :class:`Reported`).
        temporal: ``True`` when the model is expected to separate motion-defined
            classes (check "motion"); ``False`` for models the paper itself
            describes as order-agnostic (TSN with average consensus).
        clip_to_input: Turns an RGB clip ``(B, 3, T, H, W)`` in ``[0, 1]`` into the
            model's own input (e.g. ``(B, N, C, H, W)`` segments, or stacked flow).
            ``None`` means the model takes the clip as it is.
        checks: Extra checks by name (``"reference"``, ``"inflation"``), each a
            :class:`RegisteredCheck`: called with no argument it returns a JSON-serialisable
            dict with at least ``passed`` (bool) and ``summary`` (str); its ``evidence`` says
            what kind of evidence it is.  A variant's spec holds the paper model's checks
            updated by the checks registered for the variant itself.
        motion: Training settings of the motion check that differ from the defaults of
            :func:`videozoo.verify.train_motion` (e.g. ``{"lr": 1e-3, "max_steps": 3000}``
            for a transformer trained from scratch); recorded with the result.
        motion_variants: Extra tiny configs trained by the motion check, by name:
            ``{"space-only": ({"attention": "space-only"}, False)}`` gives the config
            fields to replace and whether that variant is expected to learn motion
            (``True``: >= 90 %) or to stay near chance (``False``: <= 30 %).  An optional
            third element updates ``motion`` for that variant only, e.g.
            ``({"attention": "joint"}, True, {"max_steps": 8000})`` for a variant that
            needs a longer schedule.  Stored as 3-tuples (an empty dict when not given).
        video_qa: For a Stage 4 video LLM: the video QA check's expectations, declared before
            it runs, and training settings that differ from the defaults of
            :func:`videozoo.verify.video_qa.train_video_qa`, e.g.
            ``{"expected_min_pct": {"direction": 90.0}, "control_max_pct": {"direction": 40.0},
            "max_steps": 2000}``.  Empty for models that do not answer questions.
        memory: For a Stage 4 model with a memory (MovieChat, VideoAgent): the ``memory``
            check's kind and expectations, declared before it runs (see
            :mod:`videozoo.verify.memory`), e.g. ``{"kind": "long_video",
            "expected_min_pct": {"colour": 90.0}}``.  Empty for other models.
        zero_shot: Settings of the Stage 3 zero-shot check (:mod:`videozoo.verify.zero_shot`),
            ``None`` for models without one: ``expect`` maps a measured figure to the rule it
            must meet on every seed (``{"heldout_top1_pct": ">= 60"}``), declared before the
            runs; ``role`` is ``"model"`` or ``"control"``; ``control`` names the registered
            model trained beside it as its control (e.g. ``"clip"``); other keys replace
            :func:`videozoo.verify.zero_shot.train_zero_shot`'s defaults.
        variant: The :class:`Variant` this spec was derived from (``None`` for the paper's
            default model, registered by :func:`register_model`).
        image_init: For a video model that the paper initialises from an image model:
            ``(image_config, init)``, where ``image_config(config)`` gives the config of the
            registered image model (e.g. a ``ViTConfig``) and ``init(model, image_state_dict)``
            loads its weights into the video model.  Used by the motion check's
            ``image_pretrain_steps`` setting (:func:`videozoo.verify.pretrain_image`).
    """

    key: str
    alias: str
    stage: int
    config_cls: type
    builder: Callable[[Any], nn.Module]
    module: str
    reported: tuple[Reported, ...] = ()
    temporal: bool = True
    clip_to_input: Callable[[Any, torch.Tensor], Any] | None = None
    checks: dict[str, RegisteredCheck] = field(default_factory=dict)
    motion: dict[str, Any] = field(default_factory=dict)
    motion_variants: dict[str, tuple[dict[str, Any], bool, dict[str, Any]]] = field(default_factory=dict)
    image_init: tuple[Callable[[Any], Any], Callable[[nn.Module, dict], nn.Module]] | None = None
    zero_shot: dict[str, Any] | None = None
    variant: "Variant | None" = None
    video_qa: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def check_evidence(self) -> dict[str, str]:
        """Evidence kind of each extra check, by check name (see :data:`EVIDENCE_KINDS`)."""
        return {name: c.evidence for name, c in self.checks.items()}

    @property
    def source_file(self) -> str:
        """Path of the model file relative to the repository root."""
        return self.module.replace(".", "/") + ".py"


@dataclass(frozen=True)
class Variant:
    """A named configuration of a registered paper's model (see :func:`register_variant`).

    Attributes:
        name: Registered name, e.g. ``"vivit_fe"`` or ``"uniformerv2_b16_k400"``.
        key: Paper key of the model it configures.
        overrides: Config fields replaced in both ``paper()`` and ``tiny()`` (what makes the
            variant a different design, e.g. ``{"model": "factorised_encoder"}``).
        paper_overrides: Config fields replaced in ``paper()`` only (sizes: depth, width).
        reported: Figures reported for this variant (replace the paper model's).
        temporal: Motion expectation when it differs from the paper model's.
        motion: Motion-check settings updating the paper model's.
        description: One line saying what the variant is and where it comes from (paper
            table, recipe file of the authors' release).
    """

    name: str
    key: str
    overrides: dict[str, Any] = field(default_factory=dict)
    paper_overrides: dict[str, Any] = field(default_factory=dict)
    reported: tuple[Reported, ...] = ()
    temporal: bool | None = None
    motion: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}
_VARIANTS: dict[str, Variant] = {}
_VARIANT_CHECKS: dict[str, dict[str, RegisteredCheck]] = {}


def register_model(
    key: str,
    *,
    alias: str,
    stage: int,
    config: type,
    reported: tuple[Reported, ...] = (),
    temporal: bool = True,
    clip_to_input: Callable[[Any, torch.Tensor], Any] | None = None,
    motion: dict[str, Any] | None = None,
    motion_variants: dict[str, tuple] | None = None,
    image_init: tuple[Callable[[Any], Any], Callable[[nn.Module, dict], nn.Module]] | None = None,
    video_qa: dict[str, Any] | None = None,
    memory: dict[str, Any] | None = None,
    zero_shot: dict[str, Any] | None = None,
) -> Callable[[Callable[[Any], nn.Module]], Callable[[Any], nn.Module]]:
    """Decorator registering a model builder under its paper key and alias.

    Raises:
        ValueError: if the key or alias is already registered, or a motion variant is not
            ``(overrides, temporal)`` or ``(overrides, temporal, motion_settings)``.
    """
    variants: dict[str, tuple[dict[str, Any], bool, dict[str, Any]]] = {}
    for name, v in (motion_variants or {}).items():
        if not isinstance(v, tuple) or len(v) not in (2, 3):
            raise ValueError(f"model {key!r}: motion variant {name!r} must be (overrides, temporal[, settings]), got {v!r}")
        variants[name] = (dict(v[0]), bool(v[1]), dict(v[2]) if len(v) == 3 else {})

    def decorator(builder: Callable[[Any], nn.Module]) -> Callable[[Any], nn.Module]:
        if key in _REGISTRY or alias in _ALIASES or alias in _VARIANTS:
            raise ValueError(f"model {key!r} / alias {alias!r} registered twice")
        _REGISTRY[key] = ModelSpec(
            key=key,
            alias=alias,
            stage=stage,
            config_cls=config,
            builder=builder,
            module=builder.__module__,
            reported=tuple(reported),
            temporal=temporal,
            clip_to_input=clip_to_input,
            motion=dict(motion or {}),
            motion_variants=variants,
            image_init=image_init,
            video_qa=dict(video_qa or {}),
            memory=dict(memory or {}),
            zero_shot=None if zero_shot is None else dict(zero_shot),
        )
        _ALIASES[alias] = key
        return builder

    return decorator


def register_variant(
    name: str,
    *,
    of: str,
    overrides: dict[str, Any] | None = None,
    paper_overrides: dict[str, Any] | None = None,
    reported: tuple[Reported, ...] = (),
    temporal: bool | None = None,
    motion: dict[str, Any] | None = None,
    description: str = "",
) -> Variant:
    """Register ``name`` as a variant of the model registered under paper key ``of``.

    Raises:
        KeyError: if ``of`` is not registered (register the variant below the builder).
        ValueError: if ``name`` is already a registered name, or an override names a field the
            config does not have.
    """
    if of not in _REGISTRY:
        raise KeyError(f"variant {name!r}: model {of!r} is not registered")
    if name in _VARIANTS or name in _ALIASES or name in _REGISTRY:
        raise ValueError(f"variant {name!r} registered twice (or clashes with a model name)")
    names = {f.name for f in dataclasses.fields(_REGISTRY[of].config_cls)}
    unknown = (set(overrides or {}) | set(paper_overrides or {})) - names
    if unknown:
        raise ValueError(f"variant {name!r}: {_REGISTRY[of].config_cls.__name__} has no field(s) {sorted(unknown)}")
    v = Variant(name, of, dict(overrides or {}), dict(paper_overrides or {}), tuple(reported), temporal,
                dict(motion or {}), description)
    _VARIANTS[name] = v
    return v


def register_check(name: str, check: str, *, evidence: str) -> Callable[[Callable[[], dict]], Callable[[], dict]]:
    """Decorator adding an extra verification check (e.g. ``"reference"``) to a model or variant.

    ``evidence`` (required) says what the check compares the model with:

    ``"independent-reference"``
        Code that shares no module with the model: a library (torchvision, timm, Hugging Face,
        pytorchvideo, open_clip, POT), an executable restatement of the paper's equations in
        :mod:`videozoo.references` (which imports nothing from videozoo), or the layer table
        (state-dict names and shapes) of the authors' release.
    ``"self-consistency"``
        The model against code it imports or re-types from itself (e.g. a video model
        initialised from videozoo's own image model).  Such a check finds bugs but never makes
        a paper "reproduced".
    ``"control"``
        A model or variant that by design cannot solve the task.
    ``"training"``
        A trained result over seeds.

    Args:
        name: Paper key, alias or registered variant name (a variant's check replaces the
            paper model's check of the same name for that variant only).
        check: Check name, e.g. ``"reference"`` or ``"inflation"``.
        evidence: One of :data:`EVIDENCE_KINDS`.

    The model must be registered first (put the check below the builder in the file).

    Raises:
        KeyError: if ``name`` is not registered. ValueError: unknown ``evidence``.
    """
    if evidence not in EVIDENCE_KINDS:
        raise ValueError(f"check {check!r} of {name!r}: evidence must be one of {EVIDENCE_KINDS}, got {evidence!r}")
    if name in _VARIANTS:
        store = _VARIANT_CHECKS.setdefault(name, {})
    else:
        key = _ALIASES.get(name, name)
        if key not in _REGISTRY:
            raise KeyError(f"check {check!r}: model {name!r} is not registered (register the check below the builder)")
        store = _REGISTRY[key].checks

    def decorator(fn: Callable[[], dict]) -> Callable[[], dict]:
        store[check] = RegisteredCheck(fn, evidence)
        return fn

    return decorator


def _load_all() -> None:
    # Importing the package registers every model file.
    import videozoo.models  # noqa: F401


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` for a paper key or alias.

    Raises:
        KeyError: naming the known models, if ``name`` is unknown.
    """
    _load_all()
    if name in _VARIANTS:
        v = _VARIANTS[name]
        base = _REGISTRY[v.key]
        return dataclasses.replace(
            base, alias=v.name, reported=v.reported, variant=v,
            temporal=base.temporal if v.temporal is None else v.temporal, motion={**base.motion, **v.motion},
            checks={**base.checks, **_VARIANT_CHECKS.get(name, {})})
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_names())}")
    return _REGISTRY[key]


def list_models(stage: int | None = None) -> list[str]:
    """Paper keys of all registered models (optionally of one stage), sorted."""
    _load_all()
    return sorted(k for k, s in _REGISTRY.items() if stage is None or s.stage == stage)


def list_names(stage: int | None = None) -> list[str]:
    """Every registered name: each paper's alias and its variants (optionally of one stage), sorted.

    These are the names :func:`create` accepts and ``videozoo.verify`` writes records for.
    """
    _load_all()
    out = [s.alias for s in _REGISTRY.values() if stage is None or s.stage == stage]
    out += [v.name for v in _VARIANTS.values() if stage is None or _REGISTRY[v.key].stage == stage]
    return sorted(out)


def create(name: str, config: str | Any = "paper", num_classes: int | None = None, **overrides: Any) -> nn.Module:
    """Build a model by paper key or alias.

    Args:
        name: Paper key (``"lin2019tsm"``), alias (``"tsm"``) or variant (``"tsn_r50"``).
        config: ``"paper"``, ``"tiny"`` or a config instance.
        num_classes: Overrides the config's number of classes.
        **overrides: Other config fields to replace.

    Returns:
        The model in training mode, randomly initialised (no weights are downloaded).

    Raises:
        KeyError: unknown model. ValueError: unknown config name or field.
    """
    spec = get_spec(name)
    cfg = make_config(name, config, num_classes=num_classes, **overrides)
    return spec.builder(cfg)


def make_config(name: str, config: str | Any = "paper", num_classes: int | None = None, **overrides: Any) -> Any:
    """Return the config instance :func:`create` would use (same arguments)."""
    spec = get_spec(name)
    if isinstance(config, str):
        if config not in ("paper", "tiny"):
            raise ValueError(f"config must be 'paper', 'tiny' or a {spec.config_cls.__name__}, got {config!r}")
        cfg = getattr(spec.config_cls, config)()
        if spec.variant is not None:
            cfg = dataclasses.replace(cfg, **{**spec.variant.overrides,
                                               **(spec.variant.paper_overrides if config == "paper" else {})})
    else:
        cfg = config
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if overrides:
        names = {f.name for f in dataclasses.fields(cfg)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"{spec.config_cls.__name__} has no field(s) {sorted(unknown)}")
        cfg = dataclasses.replace(cfg, **overrides)
    return cfg
