"""OST: optimal spatio-temporal descriptors matched to frames by optimal transport.

Paper: Tongjia Chen, Hongshan Yu, Zhengeng Yang, Zechuan Li, Wei Sun, Chen Chen, "OST: Refining
Text Knowledge with Optimal Spatio-Temporal Descriptor for General Video Recognition", CVPR 2024,
arXiv 2312.00096.  Authors' code: github.com/tomchen-ctj/OST (commit 1810ae6,
``trainers/OST.py``), whose module maths this file follows and is checked against.

OST changes the text side of a fine-tuned CLIP (ViFi-CLIP: CLIP's frame embeddings, no temporal
module) and adds no parameters:

* **Spatio-temporal descriptors**: an LLM rewrites each class name into ``N``
  *spatio* descriptors (what a single frame shows: objects, scene) and ``N`` *temporal*
  descriptors (the steps of the action, in order).  Each descriptor is encoded by CLIP's text
  tower.
* **Optimal Descriptor Solver**: the ``T`` frame embeddings of a clip and the ``N``
  descriptor embeddings of a class are two discrete distributions (uniform weights
  ``1/T``, ``1/N``); the cost is ``C = 1 - cos``; the entropy-regularised transport plan
  ``P = diag(r) exp(-C / eps) diag(c)`` (``eps = 0.1``) is found by Sinkhorn's iterations
  (:func:`sinkhorn`, no gradient, as in the release), and the class score is the Frobenius
  product ``<P, 1 - C>`` scaled by CLIP's temperature.  The release adds the pooled score
  (mean frame embedding against the mean descriptor embedding) to each kind of descriptor
  and averages the spatio and temporal logits (``get_logit``): :func:`optimal_descriptor_logits`.
* **Loss**: the release's soft-target NCE (:func:`videozoo.layers.nce.soft_target_nce`) in
  the video -> class and class -> video directions, summed.

The transport uses uniform marginals and a cost that does not depend on the frame index, so
OST's scores are invariant to the order of the frames: a clip and its time reversal get the
same scores.  On the zero-shot task it is, by construction, an order-agnostic model like the
frame-averaging control.

What is simplified: the descriptors come from :func:`template_descriptors`, a fixed template
that stands in for the LLM (for captions ``"a {colour} {shape} moving {direction}"`` it writes
object descriptors and the ordered steps of the motion; other captions are used as their own
descriptors), or are given as token ids ``(A, 2N, L)`` (e.g. the release's JSON files,
tokenised).  The video side is CLIP's image tower per frame without ViFi-CLIP's prompts.

Paper configuration: ViT-B/16 CLIP, 32 frames at 224 px, ``N = 4`` descriptors of each kind
(the release's ``configs/zero_shot/train/k400/16_32_ost.yaml``).  Parameter names are CLIP's;
:func:`load_state_dict_from` converts the release's checkpoints (``image_encoder.*``,
``text_encoder.*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import lru_cache

import torch
import torch.nn.functional as F

from videozoo.layers.nce import soft_target_nce
from videozoo.models.clip import CLIP, CLIPConfig, normalize_pixels
from videozoo.registry import Reported, register_check, register_model

__all__ = ["OSTConfig", "OST", "sinkhorn", "optimal_descriptor_logits", "template_descriptors", "descriptor_ids",
           "load_state_dict_from", "ost"]


@dataclass
class OSTConfig(CLIPConfig):
    """Hyper-parameters of OST: CLIP's (:class:`videozoo.models.clip.CLIPConfig`) and OST's own.

    Attributes:
        descriptors: ``N``, descriptors of each kind (spatio, temporal) per class (release: 4).
        sinkhorn_eps: Entropic regularisation ``eps`` of the transport (release: 0.1).
        sinkhorn_iters: Most Sinkhorn iterations (release: 100).
        sinkhorn_tol: Stop when the mean absolute change of the row scaling ``r`` falls below
            this (release: 1e-2; 0 runs every iteration).
        nce_target_scale: Scale of the same-class indicator in the loss (release: 10).
    """

    num_frames: int = 32
    patch_size: int = 16
    descriptors: int = 4
    sinkhorn_eps: float = 0.1
    sinkhorn_iters: int = 100
    sinkhorn_tol: float = 1e-2
    nce_target_scale: float = 10.0

    @classmethod
    def paper(cls) -> "OSTConfig":
        """ViT-B/16 CLIP, 32 frames at 224 px, 4 + 4 descriptors (release ``16_32_ost.yaml``)."""
        return cls()

    @classmethod
    def tiny(cls) -> "OSTConfig":
        """CLIP's tiny towers (8 frames of 32x32, 8x8 patches, 16-token context), 2 + 2 descriptors (a
        released setting: the release ships 2-, 4- and 8-descriptor files)."""
        base = {f.name: getattr(CLIPConfig.tiny(), f.name) for f in fields(CLIPConfig)}
        return cls(**{**base, "descriptors": 2})

    def clip_config(self) -> CLIPConfig:
        """The CLIP part of this config: the towers that pre-trained CLIP weights load into."""
        return CLIPConfig(**{f.name: getattr(self, f.name) for f in fields(CLIPConfig)})


# --------------------------------------------------------------------------- transport


def sinkhorn(cost: torch.Tensor, eps: float, a: torch.Tensor | None = None, b: torch.Tensor | None = None,
             max_iter: int = 100, tol: float = 1e-2) -> torch.Tensor:
    """Entropy-regularised optimal transport plans by Sinkhorn's matrix scaling (Cuturi, NeurIPS 2013).

    Solves ``min_P <P, C> - eps H(P)`` subject to ``P 1 = a``, ``P^T 1 = b`` for each of ``P``
    problems: with ``K = exp(-C / eps)`` and ``r = c = 1``, repeat ``r = a / (K c)``,
    ``c = b / (K^T r)`` (the release's ``OST.Sinkhorn``), and return ``diag(r) K diag(c)``.
    Iterations stop early once the mean absolute change of ``r`` (over every problem at once,
    as in the release) is below ``tol``.

    Args:
        cost: ``(P, m, n)`` cost matrices ``C``.
        eps: Regularisation ``eps > 0``.
        a: ``(P, m)`` row marginals (default uniform ``1/m``).
        b: ``(P, n)`` column marginals (default uniform ``1/n``).
        max_iter: Most iterations.
        tol: Early-stopping threshold (``0``: always ``max_iter`` iterations).

    Returns:
        ``(P, m, n)`` transport plans.

    Raises:
        ValueError: ``cost`` is not 3-D, ``eps <= 0`` or marginals of the wrong shape.
    """
    if cost.dim() != 3:
        raise ValueError(f"cost must be (P, m, n), got shape {tuple(cost.shape)}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    P, m, n = cost.shape
    a = torch.full((P, m), 1.0 / m, dtype=cost.dtype, device=cost.device) if a is None else a
    b = torch.full((P, n), 1.0 / n, dtype=cost.dtype, device=cost.device) if b is None else b
    if a.shape != (P, m) or b.shape != (P, n):
        raise ValueError(f"marginals must be ({P}, {m}) and ({P}, {n}), got {tuple(a.shape)} and {tuple(b.shape)}")
    K = torch.exp(-cost / eps)
    r, c = torch.ones_like(a), torch.ones_like(b)
    for _ in range(max_iter):
        r_prev = r
        r = a / (K @ c.unsqueeze(-1)).squeeze(-1)
        c = b / (K.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1)
        if tol > 0 and cost.device.type != "meta" and (r - r_prev).abs().mean().item() < tol:
            break
    return r.unsqueeze(-1) * K * c.unsqueeze(-2)


def _od_solver(frames: torch.Tensor, desc: torch.Tensor, eps: float, max_iter: int, tol: float) -> torch.Tensor:
    """``(B, A)`` transport scores ``<P, S>`` of normalised frames ``(B, T, D)`` and descriptors ``(A, N, D)``."""
    B, T, _ = frames.shape
    A, N, _ = desc.shape
    sim = torch.einsum("btd,and->batn", frames, desc).reshape(B * A, T, N)
    with torch.no_grad():
        plan = sinkhorn(1 - sim, eps, max_iter=max_iter, tol=tol)
    return (plan * sim).sum(dim=(1, 2)).view(B, A)


def optimal_descriptor_logits(frames: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor, scale: torch.Tensor,
                              eps: float = 0.1, max_iter: int = 100, tol: float = 1e-2) -> torch.Tensor:
    """OST's logits (the Optimal Descriptor Solver; the release's ``get_logit``).

    ``0.5 (OT(f, s) + pool(f, s)) + 0.5 (OT(f, t) + pool(f, t))``, where ``OT`` is the scaled
    transport score of the Optimal Descriptor Solver and ``pool`` the scaled product of the
    mean frame embedding and the mean descriptor embedding.

    Args:
        frames: ``(B, T, D)`` L2-normalised frame embeddings.
        spatial: ``(A, N, D)`` L2-normalised spatio descriptor embeddings of ``A`` classes.
        temporal: ``(A, N, D)`` L2-normalised temporal descriptor embeddings.
        scale: CLIP's temperature scale (scalar tensor).
        eps, max_iter, tol: Sinkhorn settings (:func:`sinkhorn`).

    Returns:
        ``(B, A)`` logits.
    """
    mean_f = frames.mean(dim=1)
    out = 0
    for desc in (spatial, temporal):
        ot_score = _od_solver(frames, desc, eps, max_iter, tol)
        out = out + 0.5 * scale * (ot_score + mean_f @ desc.mean(dim=1).t())
    return out


# --------------------------------------------------------------------------- descriptors

_CAPTION = re.compile(r"a (\w+) (\w+) moving (right|left|down|up)")
_STEPS = {
    "right": ("on the left", "moves to the right", "keeps moving right", "on the right"),
    "left": ("on the right", "moves to the left", "keeps moving left", "on the left"),
    "down": ("at the top", "moves down", "keeps moving down", "at the bottom"),
    "up": ("at the bottom", "moves up", "keeps moving up", "at the top"),
}


@lru_cache(maxsize=4096)
def template_descriptors(caption: str, n: int = 4) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``n`` spatio and ``n`` temporal descriptors of a class caption (the stand-in for the LLM).

    For ``"a {colour} {shape} moving {direction}"``: spatio descriptors name the object
    (``"a red square"``, ``"a square"``, ``"a red shape"``, ``"a red square on a dark
    background"``) and temporal descriptors the steps of the motion in order (``"a red square on
    the left"``, ``"the square moves to the right"``, ``"the square keeps moving right"``, ``"a
    red square on the right"``); for ``n < 4`` evenly spaced ones of these four (``n = 2``: the
    first and the last), for ``n > 4`` they repeat cyclically.  Any other caption is its own
    descriptor, ``n`` times.

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"need at least one descriptor, got n={n}")
    m = _CAPTION.fullmatch(caption.strip().lower())
    if m is None:
        return (caption,) * n, (caption,) * n
    colour, shape, direction = m.groups()
    spatial = (f"a {colour} {shape}", f"a {shape}", f"a {colour} shape", f"a {colour} {shape} on a dark background")
    first, move, keep, last = _STEPS[direction]
    temporal = (f"a {colour} {shape} {first}", f"the {shape} {move}", f"the {shape} {keep}", f"a {colour} {shape} {last}")
    pick = [round(i * 3 / (n - 1)) for i in range(n)] if 1 < n < 4 else [i % 4 for i in range(n)]
    return tuple(spatial[i] for i in pick), tuple(temporal[i] for i in pick)


def descriptor_ids(captions: list[str], n: int, context_length: int) -> torch.Tensor:
    """Token ids ``(A, 2n, L)`` of the spatio (first ``n``) and temporal descriptors of captions.

    Raises:
        ValueError: an empty caption list, or a descriptor longer than the context (named).
    """
    from videozoo.data.tokenizer import tokenize

    if not captions:
        raise ValueError("captions is empty: need at least one class")
    texts = [d for c in captions for kind in template_descriptors(c, n) for d in kind]
    return tokenize(texts, context_length=context_length).view(len(captions), 2 * n, context_length)


# --------------------------------------------------------------------------- model


class OST(CLIP):
    """OST (arXiv 2312.00096) on a :class:`videozoo.models.clip.CLIP`; adds no parameters.

    Called as ``model(video, text)``: ``(B, 3, T, H, W)`` normalised clips and either ``(A, L)``
    class caption ids (descriptors written by :func:`template_descriptors`) or ``(A, 2N, L)``
    descriptor ids (spatio first) -> ``(B, A)`` logits.
    """

    def __init__(self, config: OSTConfig):
        super().__init__(config)
        if config.descriptors < 1 or config.sinkhorn_eps <= 0 or config.sinkhorn_iters < 1:
            raise ValueError(f"OSTConfig: need descriptors >= 1, sinkhorn_eps > 0, sinkhorn_iters >= 1; got "
                             f"{config.descriptors}, {config.sinkhorn_eps}, {config.sinkhorn_iters}")

    def descriptor_embeddings(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised spatio and temporal descriptor embeddings, each ``(A, N, D)``.

        Args:
            text: ``(A, L)`` caption ids or ``(A, 2N, L)`` descriptor ids.

        Raises:
            ValueError: ``text`` of another shape, or an empty class list.
        """
        from videozoo.data.tokenizer import get_tokenizer

        N = self.config.descriptors
        if text.dim() == 2:
            if text.shape[0] == 0:
                raise ValueError("text holds no captions (an empty class list); need at least one")
            tok = get_tokenizer()
            captions = [tok.decode(row) for row in text.cpu()]
            text = descriptor_ids(captions, N, text.shape[1]).to(text.device)
        if text.dim() != 3 or text.shape[1] != 2 * N:
            raise ValueError(f"text must be (A, L) caption ids or (A, {2 * N}, L) descriptor ids, got {tuple(text.shape)}")
        A, _, L = text.shape
        emb = F.normalize(self.encode_text(text.reshape(A * 2 * N, L)), dim=-1).view(A, 2 * N, -1)
        return emb[:, :N], emb[:, N:]

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``(B, A)`` logits of clips ``(B, 3, T, H, W)`` against ``A`` classes (see the class docstring).

        Raises:
            ValueError: bad shapes, frame count, image size, an empty class list or a caption or
                descriptor longer than the context.
        """
        if video.dim() != 5:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        frames = F.normalize(self.encode_video(video), dim=-1)
        spatial, temporal = self.descriptor_embeddings(text)
        c = self.config
        return optimal_descriptor_logits(frames, spatial, temporal, self.temperature_scale(), c.sinkhorn_eps,
                                         c.sinkhorn_iters, c.sinkhorn_tol)

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The release's loss on ``B`` matched (clip, class) pairs: soft-target NCE of the logits and
        of their transpose, summed.  ``labels`` (``(B,)``, optional) marks pairs of the same class."""
        if video.shape[0] != text.shape[0]:
            raise ValueError(f"need one class per clip: {video.shape[0]} clips, {text.shape[0]} classes")
        logits = self(video, text)
        s = self.config.nce_target_scale
        return soft_target_nce(logits, labels, s) + soft_target_nce(logits.t(), labels, s)


def _clip_input(config: OSTConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard input: CLIP-normalised clips and the descriptor ids ``(num_classes, 2N, L)`` of
    ``num_classes`` generic class captions."""
    captions = [f"a video of class {i}" for i in range(config.num_classes)]
    return normalize_pixels(clip), descriptor_ids(captions, config.descriptors, config.context_length)


_RELEASE = "authors' code tomchen-ctj/OST 1810ae6, built by scripts/reference_tables/ost.py"


@register_model(
    "chen2024ost",
    alias="ost",
    stage=3,
    config=OSTConfig,
    reported=(Reported("params_m", 149.620737, _RELEASE, note="OST on CLIP ViT-B/16 (no parameters of its own)",
                       kind="release", tolerance_pct=0.5),),
    temporal=False,
    clip_to_input=_clip_input,
    zero_shot={
        "role": "model",
        "control": "clip",
        "expect": {"direction_top1_pct": "<= 55", "heldout_top1_pct": "<= 55", "object_top1_pct": ">= 80"},
        "rationale": "the transport has uniform marginals and a cost that does not depend on the frame index, "
                     "so a clip and its time reversal get the same scores: like the frame-averaging control, "
                     "at most one clip of each held-out opposite pair can be right (direction at chance, "
                     "held-out top-1 at most 50 %), while the object, visible in every frame and named by the "
                     "spatio descriptors, should be recognised",
    },
)
def ost(config: OSTConfig) -> OST:
    """Build an :class:`OST` from ``config``."""
    return OST(config)


# --------------------------------------------------------------------------- key mapping


def load_state_dict_from(state_dict: dict) -> dict:
    """Convert the release's OST state dict (or a CLIP's) into this file's keys.

    Args:
        state_dict: The release's ``OST`` module state dict (``image_encoder.*``,
            ``text_encoder.*``, ``logit_scale``; a checkpoint's ``checkpoint["model"]``, with or
            without DDP's ``module.``), or a plain CLIP state dict (OpenAI / open_clip or Hugging
            Face names, :func:`videozoo.models.clip.load_state_dict_from`).

    Returns:
        A dict for ``OST.load_state_dict`` (OST adds no parameters to CLIP).

    Raises:
        ValueError: a key the mapping does not know (e.g. ViFi-CLIP prompt vectors, which OST's
            configurations leave out).
    """
    from videozoo.models.clip import load_state_dict_from as clip_state_dict_from

    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if any(k.startswith(("image_encoder.", "text_encoder.")) for k in sd):
        renamed = {}
        for k, v in sd.items():
            if k.startswith("image_encoder."):
                renamed["visual." + k[len("image_encoder."):]] = v
            elif k == "text_encoder.text_projection":
                renamed["text_projection"] = v
            elif k.startswith("text_encoder."):
                renamed[k[len("text_encoder."):]] = v
            elif k == "logit_scale":
                renamed[k] = v
            else:
                raise ValueError(f"OST state dict: unexpected key {k!r}")
        return clip_state_dict_from(renamed, library="open_clip")
    return clip_state_dict_from(sd)


# --------------------------------------------------------------------------- reference check

POT_TOLERANCE = 1e-6


def _pot_comparison() -> dict:
    """Our :func:`sinkhorn` against POT's ``ot.sinkhorn`` (same cost, regularisation, marginals).

    Costs are OST's ``1 - cos`` between frame and descriptor embeddings of a tiny random OST
    (8 frames, 2 + 2 descriptors, 3 clips x 5 classes), in float64; uniform marginals (OST's) and
    random ones; both solvers run to convergence (stop threshold 1e-12).
    """
    import ot

    from videozoo.registry import make_config

    torch.manual_seed(0)
    cfg = make_config("ost", "tiny")
    model = OST(cfg).eval()
    video = normalize_pixels(torch.rand(3, 3, cfg.num_frames, cfg.image_size, cfg.image_size))
    captions = ["a red square moving left", "a blue circle moving up", "a green cross moving right",
                "a yellow triangle moving down", "a red circle moving right"]
    n = cfg.descriptors
    with torch.no_grad():
        frames = F.normalize(model.encode_video(video), dim=-1).double()
        spatial, temporal = (d.double() for d in model.descriptor_embeddings(descriptor_ids(captions, n, cfg.context_length)))
    cost = 1 - torch.einsum("btd,and->batn", frames, torch.cat([spatial, temporal])).reshape(-1, cfg.num_frames, n)
    gen = torch.Generator().manual_seed(1)
    a_rand = torch.rand(cost.shape[0], cost.shape[1], generator=gen, dtype=torch.float64) + 0.1
    b_rand = torch.rand(cost.shape[0], cost.shape[2], generator=gen, dtype=torch.float64) + 0.1
    a_rand, b_rand = a_rand / a_rand.sum(1, keepdim=True), b_rand / b_rand.sum(1, keepdim=True)
    diffs = {}
    for name, (a, b) in {"uniform": (None, None), "random": (a_rand, b_rand)}.items():
        ours = sinkhorn(cost, cfg.sinkhorn_eps, a, b, max_iter=20000, tol=1e-12)
        worst = 0.0
        for i in range(cost.shape[0]):
            ai = (a[i] if a is not None else torch.full((cost.shape[1],), 1 / cost.shape[1], dtype=torch.float64)).numpy()
            bi = (b[i] if b is not None else torch.full((cost.shape[2],), 1 / cost.shape[2], dtype=torch.float64)).numpy()
            theirs = ot.sinkhorn(ai, bi, cost[i].numpy(), cfg.sinkhorn_eps, numItermax=20000, stopThr=1e-12)
            worst = max(worst, float(abs(ours[i].numpy() - theirs).max()))
        diffs[name] = worst
    return {"max_abs_diff_by_marginals": diffs, "problems": int(cost.shape[0]), "pot": ot.__version__}


def _reference_check() -> dict:
    """OST against POT and the authors' code.

    1. The transport plan of :func:`sinkhorn` against ``ot.sinkhorn`` (POT) on OST's costs.
    2. :func:`optimal_descriptor_logits` with the release's solver settings against the outputs
       of the release's ``OptimalDescriptorSolver`` and ``get_logit`` recorded in the table
       ``ost_vitb16_k400`` (:mod:`videozoo.reference_tables`).
    3. That table's state dict of the release's OST, mapped through :func:`load_state_dict_from`,
       against our paper configuration, name by name and shape by shape, and the parameter count.
    """
    from videozoo.reference_tables import compare_with_table, load_table
    from videozoo.registry import make_config

    pot = _pot_comparison()
    table = load_table("ost_vitb16_k400")
    tiny = table["od_solver"]
    B, T, A, N, D = (tiny[k] for k in ("batch", "frames", "classes", "descriptors", "dim"))

    def normalised(shape, seed):
        from videozoo.models.bike import seeded_input

        return F.normalize(seeded_input(shape, seed) - 0.5, dim=-1)

    s = tiny["seeds"]
    frames, spatial, temporal = normalised([B, T, D], s["frames"]), normalised([A, N, D], s["spatial"]), \
        normalised([A, N, D], s["temporal"])
    scale = torch.tensor(tiny["logit_scale"])
    cfg = OSTConfig.paper()
    args = (cfg.sinkhorn_eps, cfg.sinkhorn_iters, cfg.sinkhorn_tol)
    release = {
        "od_spatial_logits": scale * _od_solver(frames, spatial, *args),
        "od_temporal_logits": scale * _od_solver(frames, temporal, *args),
        "logits": optimal_descriptor_logits(frames, spatial, temporal, scale, *args),
    }
    release_diffs = {k: (v - torch.tensor(tiny[k])).abs().max().item() for k, v in release.items()}
    with torch.device("meta"):
        ours = OST(make_config("ost", "paper"))
    layers = compare_with_table(table, load_state_dict_from, ours.state_dict(), sum(p.numel() for p in ours.parameters()))
    worst_pot = max(pot["max_abs_diff_by_marginals"].values())
    worst_release = max(release_diffs.values())
    passed = (worst_pot <= POT_TOLERANCE and worst_release <= table["tolerance"] and layers["passed"]
              and layers["own_params"] == layers["authors_params"])
    return {
        "passed": bool(passed),
        "summary": (f"Sinkhorn plans vs POT ot.sinkhorn {pot['pot']} (same cost 1 - cos, eps "
                    f"{OSTConfig.sinkhorn_eps}, uniform and random marginals, {pot['problems']} problems each): "
                    f"max abs diff {worst_pot:.1e} (tolerance {POT_TOLERANCE:g}); Optimal Descriptor Solver and "
                    f"logits vs the authors' code ({table['repository']} {table['commit'][:7]}, its stopping rule): "
                    f"max abs diff {worst_release:.1e} (tolerance {table['tolerance']:g}); layer table "
                    f"{layers['matched']}/{layers['entries']} entries map to ours with equal shapes, "
                    f"{layers['own_params'] / 1e6:.6f} M params (release {layers['authors_params'] / 1e6:.6f} M)"),
        "reference": f"POT {pot['pot']} ot.sinkhorn; {table['repository']} at {table['commit']} (trainers/OST.py): "
                     f"table ost_vitb16_k400 in videozoo/reference_tables, made by scripts/reference_tables/ost.py",
        "max_abs_diff": max(worst_pot, worst_release),
        "tolerance": min(POT_TOLERANCE, table["tolerance"]),
        "pot": pot,
        "max_abs_diff_by_output": release_diffs,
        "layer_table": {k: v for k, v in layers.items() if k != "passed"},
        "expected": {"pot_max_abs_diff": f"<= {POT_TOLERANCE:g}", "release_max_abs_diff": f"<= {table['tolerance']:g}",
                     "layer_table": "every entry maps, equal shapes", "params": "equal to the release's"},
    }


register_check("chen2024ost", "reference", evidence="independent-reference")(_reference_check)
