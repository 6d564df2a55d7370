"""Verify registered videozoo models and write ``data/reproduction/<alias>.json``.

Usage::

    python -m videozoo.verify [MODEL ...] [--out data/reproduction] [--checks builds,runs,...] [--fast]
    python -m videozoo.verify --compare data/reproduction --fast      # CI consistency mode

``MODEL`` is a paper key (``lin2019tsm``) or an alias (``tsm``); without one every registered
model is verified. Each model gets these checks (``--checks`` selects some, ``--fast``
drops ``motion``); every check records what it measured, and its status follows from the
measurement, never from a hand-written value:

``builds``
    The paper config is built (on the meta device when the model allows, else on the CPU);
    parameters are counted and FLOPs measured with ``torch.utils.flop_counter.FlopCounterMode``
    for one sample at the paper input. That counter counts 2 FLOPs per multiply-add
    (FLOPs = 2 x MACs); GMACs are recorded as well because many papers report MACs as
    "FLOPs". Passes when the paper config builds and runs a forward pass at the paper input
    (the issue's criterion); the gap to every reported figure is recorded next to it, and
    ``measured["params_match_reported"]`` says whether the count is within 10 % of one of them
    (a large gap is shown on the site, e.g. when a survey counts a different variant).
``runs``
    The tiny config, batch 2, forward and backward on the CPU: output ``(2, num_classes)``,
    finite loss and gradients, and bit-identical outputs when built and run twice with the
    same seed.
``reference``, ``inflation``
    Extra checks registered by the model file (:func:`videozoo.registry.register_check`);
    the status is the dict's ``passed``.
``motion``
    The tiny config with 8 classes is trained with AdamW on the synthetic motion dataset
    (:mod:`videozoo.data.synthetic`, opposite classes hold the same frames in reverse order)
    and evaluated on held-out clips. Expected: >= 90 % top-1 when the model is registered as
    ``temporal``, <= 30 % (chance 12.5 %) when it is not.  Models and variants may declare
    their own schedule; with ``image_pretrain_steps`` the model starts, as its paper does, from
    an image model, here trained on single synthetic frames (:func:`pretrain_image`).
``gpu``
    Only with CUDA: bf16 autocast forward + backward of the paper config at the paper input,
    clips/s and peak memory (``torch.cuda.max_memory_allocated``).

Input shapes: a model without ``clip_to_input`` takes ``config.input_shape()`` as it is. A
model with ``clip_to_input`` gets a standard clip ``(3, T, H, W)``: ``config.clip_shape()``
when the config defines it, else ``config.input_shape()`` when that is a clip, else a clip
derived from the input shape (see :func:`clip_shape`).

JSON is written atomically with sorted keys; re-running unchanged code changes only timing
fields, ``generated`` and ``environment``. Checks not selected in a run keep their previous
result from an existing file.

Layout: one module per kind of check (:mod:`.builds`, :mod:`.runs`, :mod:`.extra` for the
checks a model file registers, :mod:`.motion`, :mod:`.gpu`), helpers in :mod:`.common`, and
:mod:`.record` for running checks, writing records and comparing them with the code, and
:mod:`.cli` for the command line. A new
kind of check is one module plus one :class:`CheckKind` line in :data:`KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from videozoo.registry import ModelSpec
from videozoo.verify.builds import PARAM_TOLERANCE, check_builds
from videozoo.verify.common import clip_shape, environment, model_input
from videozoo.verify.extra import check_extra
from videozoo.verify.gpu import check_gpu
from videozoo.verify.motion import (
    MOTION_STATIC_MAX,
    MOTION_TEMPORAL_MIN,
    check_motion,
    precise_bn,
    pretrain_image,
    train_motion,
)
from videozoo.verify.runs import check_runs

__all__ = [
    "ALL_CHECKS", "FAST_CHECKS", "KINDS", "CheckKind", "clip_shape", "model_input", "environment",
    "check_builds", "check_runs", "check_extra", "check_motion", "pretrain_image", "train_motion",
    "precise_bn", "check_gpu", "run_check", "verify_model", "write_record", "compare", "main",
    "PARAM_TOLERANCE", "MOTION_TEMPORAL_MIN", "MOTION_STATIC_MAX",
]


@dataclass(frozen=True)
class CheckKind:
    """One kind of check: how to run it, and whether ``--fast`` (CI) skips it.

    Attributes:
        name: The check's name in records (``papers_kb.schema.CHECK_NAMES``).
        run: ``run(spec, name, options) -> check dict``; ``options`` holds the command line's
            settings (e.g. ``motion_steps``, ``log``).
        slow: Training checks (minutes to hours on a CPU), left out by ``--fast``.
    """

    name: str
    run: Callable[[ModelSpec, str, dict[str, Any]], dict]
    slow: bool = False


KINDS: dict[str, CheckKind] = {k.name: k for k in (
    CheckKind("builds", lambda spec, name, o: check_builds(spec)),
    CheckKind("runs", lambda spec, name, o: check_runs(spec)),
    CheckKind("reference", lambda spec, name, o: check_extra(spec, name)),
    CheckKind("inflation", lambda spec, name, o: check_extra(spec, name)),
    CheckKind("motion", lambda spec, name, o: check_motion(spec, max_steps=o.get("motion_steps"), log=o.get("log")),
              slow=True),
    CheckKind("gpu", lambda spec, name, o: check_gpu(spec)),
)}
"""Every kind of check, in record order."""

ALL_CHECKS = tuple(KINDS)
FAST_CHECKS = tuple(k for k, kind in KINDS.items() if not kind.slow)

from videozoo.verify.record import compare, run_check, verify_model, write_record  # noqa: E402
from videozoo.verify.cli import main  # noqa: E402
