"""Verify registered videozoo models and write ``data/reproduction/<alias>.json``.

Usage::

    python -m videozoo.verify [MODEL ...] [--out data/reproduction] [--checks builds,runs,...] [--fast]
    python -m videozoo.verify --compare data/reproduction --fast      # CI consistency mode

``MODEL`` is a registered name: a paper key (``lin2019tsm``), its alias (``tsm``) or a
registered variant (``tsn_r50``); without one every registered name
(:func:`videozoo.registry.list_names`) is verified, each into its own record
``<name>.json`` whose ``paper`` is the paper key.  Each name gets these checks (``--checks``
selects some, ``--fast`` drops the training checks); every check records what it measured and
what kind of evidence it is (``papers_kb.schema.EVIDENCE_KINDS``), and its status follows from
the measurement, never from a hand-written value:

``builds`` (evidence ``reported-figure``)
    The paper config is built (on the meta device when the model allows, else on the CPU);
    parameters are counted and FLOPs measured with ``torch.utils.flop_counter.FlopCounterMode``
    for one sample at the paper input. That counter counts 2 FLOPs per multiply-add
    (FLOPs = 2 x MACs); GMACs are recorded as well because many papers report MACs as
    "FLOPs". Each reported figure declares its kind (paper, survey, authors' release) and a
    tolerance in %: ``failed`` when a checked figure is outside its tolerance, ``unverified``
    when there is no figure of this configuration to compare, ``passed`` only when at least
    one figure is checked and all checked figures are within tolerance.
``runs`` (``smoke-test``)
    The tiny config, batch 2, forward and backward on the CPU: output ``(2, num_classes)``
    (or the config's ``output_shape(2)``, e.g. a video LLM's logits ``(2, L, V)``),
    finite loss and gradients, and bit-identical outputs when built and run twice with the
    same seed.
``reference``, ``inflation``
    Extra checks registered by the model file (:func:`videozoo.registry.register_check`),
    each with its declared evidence (``independent-reference`` or ``self-consistency``);
    the status is the dict's ``passed``.
``motion`` (``training``, or ``control`` for an order-agnostic model)
    The tiny config with 8 classes is trained with AdamW on the synthetic motion dataset
    (:mod:`videozoo.data.synthetic`, opposite classes hold the same frames in reverse order)
    once per seed (0, 1, 2 unless ``--seeds`` or the model says otherwise) and evaluated on
    held-out clips; every seed's top-1 and per-class top-1 is recorded with the mean and the
    minimum. Expected: minimum >= 90 % top-1 when the model is registered as ``temporal``;
    maximum <= 30 % (chance 12.5 %) for a control that cannot use frame order.  Models and
    variants may declare their own schedule; with ``image_pretrain_steps`` the model starts, as
    its paper does, from an image model, here trained on single synthetic frames
    (:func:`pretrain_image`).  ``not-run`` for models with a ``zero_shot`` setting.
``zero_shot`` (``training``, or ``control`` for the frame-averaging CLIP)
    Stage 3 (vision-language) models: the tiny config, started from a tiny CLIP pre-trained on
    captioned single frames, is trained contrastively on captioned synthetic clips of seen
    (object, direction) pairs and classifies clips of held-out pairs by their captions, 3 seeds,
    against the rules its registration declares (:mod:`.zero_shot`); ``not-run`` for other
    models, whose ``motion`` check is the training check.
``video_qa`` (``training``)
    Stage 4 video LLMs (:mod:`.video_qa`): the tiny config trained end to end to answer questions
    about synthetic clips in words, 3 seeds, with a one-random-frame control; other models: not run.
``memory`` (``training``)
    Stage 4 models with a memory (:mod:`.memory`): MovieChat answers about the first 5 % of
    1,000- and 10,000-frame videos streamed frame by frame, with the resident memory measured in
    a subprocess at both lengths; VideoAgent counts objects exactly from its SQLite object memory,
    and again after a restart; other models: not run.
``gpu`` (``smoke-test``)
    Only with CUDA: bf16 autocast forward + backward of the paper config at the paper input,
    clips/s and peak memory (``torch.cuda.max_memory_allocated``).

``--compare DIR`` (CI) re-runs the fast checks and reports every difference from the committed
records: statuses, deterministic measurements (parameter counts, FLOPs, shapes), and for
reference and inflation checks that the measured difference still stays under the check's
own tolerance (float results differ in the last bits between machines, so the difference
itself is not required to be equal).  A registered name without a record, or a record of a
name that is not registered, is a difference.

Input shapes: a model without ``clip_to_input`` takes ``config.input_shape()`` as it is. A
model with ``clip_to_input`` gets a standard clip ``(3, T, H, W)``: ``config.clip_shape()``
when the config defines it, else ``config.input_shape()`` when that is a clip, else a clip
derived from the input shape (see :func:`clip_shape`).

JSON is written atomically with sorted keys; re-running unchanged code changes only timing
fields, ``generated`` and ``environment`` (which records the CPU model and torch's thread
count). Checks not selected in a run keep their previous result from an existing file.

Layout: one module per kind of check (:mod:`.builds`, :mod:`.runs`, :mod:`.extra` for the
checks a model file registers, :mod:`.motion`, :mod:`.zero_shot`, :mod:`.video_qa`, :mod:`.memory`, :mod:`.gpu`), helpers in
:mod:`.common`, and :mod:`.record` for running checks, writing records and comparing them with the code, and
:mod:`.cli` for the command line. A new
kind of check is one module plus one :class:`CheckKind` line in :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from videozoo.registry import ModelSpec
from videozoo.verify.builds import check_builds
from videozoo.verify.common import clip_shape, environment, model_input
from videozoo.verify.extra import check_extra
from videozoo.verify.gpu import check_gpu
from videozoo.verify.memory import check_memory
from videozoo.verify.motion import (
    CONTROL_LABEL,
    DEFAULT_SEEDS,
    MOTION_STATIC_MAX,
    MOTION_TEMPORAL_MIN,
    check_motion,
    precise_bn,
    pretrain_image,
    train_motion,
)
from videozoo.verify.runs import check_runs
from videozoo.verify.video_qa import check_video_qa
from videozoo.verify.zero_shot import check_zero_shot, train_zero_shot

__all__ = [
    "ALL_CHECKS", "FAST_CHECKS", "KINDS", "CheckKind", "clip_shape", "model_input", "environment",
    "check_builds", "check_runs", "check_extra", "check_motion", "pretrain_image", "train_motion", "check_video_qa",
    "check_memory",
    "precise_bn", "check_gpu", "check_zero_shot", "train_zero_shot", "run_check", "verify_model", "write_record", "compare", "main",
    "MOTION_TEMPORAL_MIN", "MOTION_STATIC_MAX", "DEFAULT_SEEDS", "CONTROL_LABEL",
]


@dataclass(frozen=True)
class CheckKind:
    """One kind of check: how to run it, and whether ``--fast`` (CI) skips it.

    Attributes:
        name: The check's name in records (``papers_kb.schema.CHECK_NAMES``).
        run: ``run(spec, name, options) -> check dict``; ``options`` holds the command line's
            settings (e.g. ``motion_steps``, ``motion_seeds``, ``log``).
        evidence: The kind of evidence the check is (``papers_kb.schema.EVIDENCE_KINDS``),
            or ``evidence(spec, name)`` when it depends on the model; recorded with a check
            that fails with an error before it could say.
        slow: Training checks (minutes to hours on a CPU), left out by ``--fast``.
    """

    name: str
    run: Callable[[ModelSpec, str, dict[str, Any]], dict]
    evidence: str | Callable[[ModelSpec, str], str | None] | None = None
    slow: bool = False


def _registered_evidence(spec: ModelSpec, name: str) -> str | None:
    return spec.checks[name].evidence if name in spec.checks else None


KINDS: dict[str, CheckKind] = {k.name: k for k in (
    CheckKind("builds", lambda spec, name, o: check_builds(spec), "reported-figure"),
    CheckKind("runs", lambda spec, name, o: check_runs(spec), "smoke-test"),
    CheckKind("reference", lambda spec, name, o: check_extra(spec, name), _registered_evidence),
    CheckKind("inflation", lambda spec, name, o: check_extra(spec, name), _registered_evidence),
    CheckKind("motion", lambda spec, name, o: check_motion(spec, max_steps=o.get("motion_steps"), log=o.get("log"),
                                                           seeds=o.get("motion_seeds")),
              lambda spec, name: "training" if spec.temporal else "control", slow=True),
    CheckKind("zero_shot", lambda spec, name, o: check_zero_shot(spec, log=o.get("log")),
              lambda spec, name: "control" if (spec.zero_shot or {}).get("role") == "control" else "training",
              slow=True),
    CheckKind("video_qa", lambda spec, name, o: check_video_qa(spec, log=o.get("log")), "training", slow=True),
    CheckKind("memory", lambda spec, name, o: check_memory(spec, log=o.get("log")), "training", slow=True),
    CheckKind("gpu", lambda spec, name, o: check_gpu(spec), "smoke-test"),
)}
"""Every kind of check, in record order."""

ALL_CHECKS = tuple(KINDS)
FAST_CHECKS = tuple(k for k, kind in KINDS.items() if not kind.slow)

from videozoo.verify.record import compare, run_check, verify_model, write_record  # noqa: E402
from videozoo.verify.cli import main  # noqa: E402
