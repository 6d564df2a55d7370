"""TEA: Temporal Excitation and Aggregation for Action Recognition.

Yan Li, Bin Ji, Xintian Shi, Jianguo Zhang, Bin Kang, Limin Wang. CVPR 2020. arXiv 2004.01398.

:meth:`TEAConfig.paper` builds the model of the authors' released code,
Phoenix1327/tea-action-recognition at commit f59e2f8166dfe78ca06d4ebc7d456665a3c100d9
(``ops/tea50_8f.py``, ``ops/models.py``): TEA-Res2Net50 (26w x 4s), 8 segments,
Kinetics-400 head, as ``TSN(400, 8, 'RGB', base_model='tea50', dropout=0.5)`` builds it.
Its layer table is ``videozoo/reference_tables/tea_r2n50_k400.json``;
:func:`load_state_dict_from` loads the authors' checkpoints.

TEA replaces every bottleneck of a Res2Net-50 by a TEA block,
``1x1 conv -> ME -> MTA -> 1x1 conv`` plus the shortcut, over N segments folded into the batch
``(B*N, C, H, W)`` (Sec. 3, Fig. 2):

* Motion excitation, ME (Sec. 3.1, eqs. 1-4): squeeze the channels by r = 16 (1x1 conv + BN);
  the feature-level difference ``M(t) = K * Xr(t+1) - Xr(t)`` with ``K`` a channel-wise 3x3
  conv (``M(N-1) = 0``); global average pooling; expansion back to C channels by a 1x1 conv;
  the output ``X + X * A``. The release computes ``A = sigmoid(BN(conv(M))) - 1/2``
  (``me_formula="released"``, the default); the paper writes ``A = 2 sigmoid(conv(M)) - 1``
  without BN (eq. 4, ``me_formula="paper"``, registered as ``tea_r2n50_paper_me``).
* Multiple temporal aggregation, MTA (Sec. 3.2): the Res2Net split into 4 fragments; each of
  the first three goes through a channel-wise temporal conv (kernel 3 over segments) and the
  3x3 spatial conv + BN + ReLU, adding the previous fragment's output first (hierarchical
  residual), so the temporal receptive field grows within the block. In the release the
  temporal convs of these three fragments start as identity, and the fourth, passed-on
  fragment gets a learnable temporal conv too, initialised as a shift of half its channels
  to the next and half to the previous segment
  (:class:`videozoo.layers.temporal_conv.TemporalShiftConv`).

Fragment order and the first block of each stage follow Res2Net (the convolved fragments
first; in a stage's first block the fragments are not added hierarchically and the passed-on
fragment is average-pooled), as the release does. Segment consensus averages the per-segment
scores after dropout 0.5 and the classifier.

Simplified: frames in [0, 1] without ImageNet normalisation (a data transform); random weights
(``timm``'s ``res2net50_26w_4s`` ImageNet weights load with :func:`load_state_dict_from`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from videozoo.layers.temporal_conv import TemporalShiftConv
from videozoo.layers.temporal_resnet import TemporalResNet, clip_to_segments
from videozoo.registry import Reported, register_check, register_model, register_variant

__all__ = ["TEAConfig", "MotionExcitation", "TEABlock", "TEA", "tea", "load_state_dict_from"]


@dataclass
class TEAConfig:
    """Hyper-parameters of TEA (the authors' release in :meth:`paper`).

    Attributes:
        num_classes: K (Kinetics-400: 400).
        n_segment: N (8 or 16).
        image_size: Crop side (224).
        layers, widths: Res2Net-50 stages (3, 4, 6, 3) x planes (64, 128, 256, 512).
        base_width: Res2Net width per fragment for planes = 64 (26 in "26w x 4s").
        scale: Number of fragments (4).
        me_reduction: r of ME's channel squeeze (16).
        me: Use motion excitation. mta: Use MTA's temporal convs (else a plain Res2Net block).
        me_formula: ``"released"``: ``A = sigmoid(BN(conv(M))) - 1/2`` (the authors' code);
            ``"paper"``: ``A = 2 sigmoid(conv(M)) - 1`` (eq. 4, no BN).
        tconv_init: ``"released"``: the convolved fragments' temporal convs start as identity,
            the passed-on fragment's as a half/half shift; ``"identity"``: all start as
            identity (an untrained TEA with ME off is then Res2Net-50 on every frame).
        stem_width, stem_kernel, stem_stride, stem_pool: ResNet stem.
        dropout: Before the classifier (0.5).
    """

    num_classes: int = 400
    n_segment: int = 8
    image_size: int = 224
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    base_width: int = 26
    scale: int = 4
    me_reduction: int = 16
    me: bool = True
    mta: bool = True
    me_formula: str = "released"
    tconv_init: str = "released"
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "TEAConfig":
        """TEA-Res2Net50, 8 segments of 224x224, Kinetics-400: the released code's
        ``TSN(400, 8, 'RGB', base_model='tea50')`` (Phoenix1327/tea-action-recognition@f59e2f8)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TEAConfig":
        """One TEA block per stage, planes 8-64 (fragments of 8-64 channels), r = 4, 8 x 32x32.

        The stem has stride 2 but no max-pool (16x16 in res2, 2x2 in res5): Res2Net runs the
        1x1 convs and ME of a stage at the previous stage's resolution.
        """
        return cls(
            num_classes=8, n_segment=8, image_size=32, layers=(1, 1, 1, 1), widths=(8, 16, 32, 64),
            base_width=64, scale=4, me_reduction=4, stem_width=16, stem_kernel=3, stem_stride=2,
            stem_pool=False, dropout=0.0,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Standard clip shape ``(3, T, H, W)`` with ``T = n_segment``; the model input is
        ``(N, 3, H, W)`` (see ``clip_to_input``)."""
        return (3, self.n_segment, self.image_size, self.image_size)


class MotionExcitation(nn.Module):
    """ME module (Sec. 3.1, eqs. 1-4), in the release's or the paper's form.

    Args:
        channels: C. n_segment: N. reduction: r (squeezed channels ``max(1, C // r)``).
        formula: ``"released"`` (``sigmoid(BN(.)) - 1/2``, has ``expand_bn``) or ``"paper"``
            (``2 sigmoid(.) - 1``).

    Shapes:
        x: ``(B*N, C, H, W)`` -> ``(B*N, C, H, W)``.

    Raises:
        ValueError: unknown ``formula``.
    """

    def __init__(self, channels: int, n_segment: int, reduction: int = 16, formula: str = "released") -> None:
        super().__init__()
        if formula not in ("released", "paper"):
            raise ValueError(f"me_formula must be 'released' or 'paper', got {formula!r}")
        self.n_segment, self.formula = n_segment, formula
        red = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, red, 1, bias=False)
        self.bn = nn.BatchNorm2d(red)
        self.transform = nn.Conv2d(red, red, 3, padding=1, groups=red, bias=False)  # channel-wise
        self.expand = nn.Conv2d(red, channels, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(channels) if formula == "released" else None

    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """Feature-level temporal differences ``M``: ``(B*N, C, H, W) -> (B*N, C/r, H, W)``,
        ``M(t) = transform(Xr(t+1)) - Xr(t)`` and ``M(N-1) = 0`` (eq. 2)."""
        xr = self.bn(self.squeeze(x))  # (B*N, C/r, H, W)
        nt, c, h, w = xr.shape
        cur = xr.view(nt // self.n_segment, self.n_segment, c, h, w)
        nxt = self.transform(xr).view_as(cur)
        diff = nxt[:, 1:] - cur[:, :-1]  # (B, N-1, C/r, H, W)
        return torch.cat([diff, torch.zeros_like(cur[:, :1])], dim=1).view(nt, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        a = self.expand(self.motion(x).mean(dim=(2, 3), keepdim=True))  # (B*N, C, 1, 1), eq. 3
        if self.expand_bn is not None:
            a = torch.sigmoid(self.expand_bn(a)) - 0.5
        else:
            a = 2 * torch.sigmoid(a) - 1  # eq. 4
        return x + x * a


class TEABlock(nn.Module):
    """TEA block: Res2Net bottleneck with ME after conv1 and MTA's temporal convs (Fig. 2).

    Same constructor signature as torchvision's ``Bottleneck`` (``inplanes, planes, stride,
    downsample``); layer names follow timm's ``Bottle2neck`` (``conv1, bn1, convs, bns, pool,
    conv3, bn3, downsample``) plus ``me`` and ``tconvs`` (one per fragment, the last for the
    passed-on fragment).

    Shapes:
        x: ``(B*N, inplanes, H, W)`` -> ``(B*N, 4*planes, H/stride, W/stride)``.

    Raises:
        ValueError: a ``temporal`` module is passed (the block builds its own), or an unknown
            ``tconv_init``.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        n_segment: int = 8,
        base_width: int = 26,
        scale: int = 4,
        me: bool = True,
        mta: bool = True,
        me_reduction: int = 16,
        me_formula: str = "released",
        tconv_init: str = "released",
        temporal: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if temporal is not None:
            raise ValueError("TEABlock builds its own temporal modules (ME, MTA)")
        if tconv_init not in ("released", "identity"):
            raise ValueError(f"tconv_init must be 'released' or 'identity', got {tconv_init!r}")
        width = int(math.floor(planes * base_width / 64.0))
        self.width, self.scale = width, scale
        self.is_first = stride > 1 or downsample is not None
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.me = MotionExcitation(width * scale, n_segment, me_reduction, me_formula) if me else nn.Identity()
        n_conv = max(1, scale - 1)
        half = width // 2 if tconv_init == "released" else 0
        tconvs: list[nn.Module] = [TemporalShiftConv(width, n_segment) if mta else nn.Identity() for _ in range(n_conv)]
        if scale > 1:
            tconvs.append(TemporalShiftConv(width, n_segment, fold_next=half, fold_prev=half) if mta else nn.Identity())
        self.tconvs = nn.ModuleList(tconvs)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(n_conv)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(n_conv)])
        self.pool = nn.AvgPool2d(3, stride, 1) if self.is_first else None
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.me(self.relu(self.bn1(self.conv1(x))))
        fragments = torch.split(out, self.width, dim=1)
        outs = []
        sp = fragments[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = fragments[i] if (i == 0 or self.is_first) else sp + fragments[i]
            sp = self.relu(bn(conv(self.tconvs[i](sp))))
            outs.append(sp)
        if self.scale > 1:
            last = self.tconvs[-1](fragments[-1])
            outs.append(self.pool(last) if self.pool is not None else last)
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return self.relu(out + shortcut)


class TEA(TemporalResNet):
    """TEA network: Res2Net-50 of TEA blocks over N segments, average consensus.

    Shapes:
        forward: ``x: (B, N, 3, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(self, config: TEAConfig) -> None:
        super().__init__(
            TEABlock, config.layers, n_segment=config.n_segment, num_classes=config.num_classes,
            widths=config.widths, stem_width=config.stem_width, stem_kernel=config.stem_kernel,
            stem_stride=config.stem_stride, stem_pool=config.stem_pool, dropout=config.dropout,
            block_kwargs=dict(n_segment=config.n_segment, base_width=config.base_width, scale=config.scale,
                              me=config.me, mta=config.mta, me_reduction=config.me_reduction,
                              me_formula=config.me_formula, tconv_init=config.tconv_init),
        )
        self.config = config
        # TSN's classifier initialisation, as the release: N(0, 0.001), bias 0.
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference state dict into TEA's keys (as timm's ``checkpoint_filter_fn``).

    Args:
        library: ``"tea"``: a checkpoint of the authors' release
            (Phoenix1327/tea-action-recognition), the state dict of ``ops.models.TSN`` with or
            without DDP's ``module.`` prefix: ``base_model.`` is removed, ``new_fc`` becomes
            ``fc``, ``me.conv1/bn1/conv2/conv3/bn3`` become ``me.squeeze/bn/transform/expand/
            expand_bn`` and ``shifts.i.conv.weight`` becomes ``tconvs.i.weight``.
            ``"timm"``: a ``timm`` Res2Net (``res2net50_26w_4s``) state dict; the keys are
            already ours, ME and the temporal convs are absent and keep their values (load with
            ``strict=False``).
        state_dict: The state dict to convert.

    Returns:
        The converted dict (the same tensors, renamed).

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "timm":
        return dict(state_dict)
    if library != "tea":
        raise ValueError(f"unknown library {library!r}; expected 'tea' or 'timm'")
    names = {".me.conv1.": ".me.squeeze.", ".me.bn1.": ".me.bn.", ".me.conv2.": ".me.transform.",
             ".me.conv3.": ".me.expand.", ".me.bn3.": ".me.expand_bn."}
    out = {}
    for key, value in state_dict.items():
        k = key.removeprefix("module.")
        k = "fc." + k.removeprefix("new_fc.") if k.startswith("new_fc.") else k.removeprefix("base_model.")
        for old, new in names.items():
            k = k.replace(old, new)
        if ".shifts." in k:
            k = k.replace(".shifts.", ".tconvs.").replace(".conv.weight", ".weight")
        out[k] = value
    return out


_AUTHORS = "Phoenix1327/tea-action-recognition@f59e2f8, ops/models.py TSN(400, 8, 'RGB', base_model='tea50')"


@register_model("li2020tea", alias="tea", stage=1, config=TEAConfig, temporal=True, clip_to_input=clip_to_segments,
                reported=(Reported("params_m", 24.9194, f"{_AUTHORS}, parameters counted on a CPU build",
                                   "authors' released code", kind="release", tolerance_pct=0.5),))
def tea(config: TEAConfig) -> TEA:
    """Build :class:`TEA` (random weights)."""
    return TEA(config)


register_variant(
    "tea_r2n50_paper_me", of="li2020tea", overrides={"me_formula": "paper"},
    reported=(Reported("params_m", 24.9071, f"{_AUTHORS} less ME's bn3 (16 blocks, 12,272 params), "
                       "counted on a CPU build", "authors' released code less the BN the paper's eq. 4 has not",
                       kind="release", tolerance_pct=0.5),),
    description="TEA-Res2Net50 with the paper's motion excitation, A = 2 sigmoid(conv(M)) - 1 without BN "
                "(arXiv 2004.01398, Sec. 3.1, eq. 4), instead of the release's sigmoid(BN(conv(M))) - 1/2",
)


@register_check("tea_r2n50_paper_me", "reference", evidence="independent-reference")
def _tea_paper_me_reference_check() -> dict:
    """The paper-formula variant: every ME of the tiny model (random weights and BN statistics)
    against eqs. 1-4 restated segment by segment in :mod:`videozoo.references.tea`."""
    from videozoo.references.tea import motion_excitation

    gen = torch.Generator().manual_seed(0)
    cfg = dataclasses.replace(TEAConfig.tiny(), me_formula="paper")
    model = TEA(cfg).eval()
    worst, compared = 0.0, 0
    with torch.no_grad():
        for mod in model.modules():
            if not isinstance(mod, MotionExcitation):
                continue
            for t in (mod.bn.running_mean, mod.bn.running_var, mod.bn.weight, mod.bn.bias):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            x = torch.randn(2 * mod.n_segment, mod.squeeze.in_channels, 6, 6, generator=gen)
            bn = (mod.bn.running_mean, mod.bn.running_var, mod.bn.weight, mod.bn.bias)
            ref = motion_excitation(x, mod.n_segment, mod.squeeze.weight, bn, mod.transform.weight,
                                    mod.expand.weight, formula="paper")
            worst = max(worst, (mod(x) - ref).abs().max().item())
            compared += 1
    tol = 1e-5
    return {"passed": compared > 0 and worst <= tol, "max_abs_diff": worst, "tolerance": tol,
            "modules_compared": compared,
            "reference": "arXiv 2004.01398 eqs. 1-4 restated in videozoo.references.tea",
            "summary": f"{compared} motion excitations (paper formula, eq. 4) equal the restated equations to "
                       f"{worst:.1e} (tolerance {tol:g})", "expected": {"max_abs_diff": f"<= {tol:g}"}}


@register_check("li2020tea", "reference", evidence="independent-reference")
def _tea_reference_check() -> dict:
    """(1) The layer table of the authors' release (``reference_tables/tea_r2n50_k400.json``)
    mapped by :func:`load_state_dict_from` equals our paper config's state dict, name by name and
    shape by shape. (2) With ME off and identity temporal convs, the network equals ``timm``'s
    ``res2net50_26w_4s`` on every segment, averaged (when ``timm`` is installed)."""
    from videozoo.reference_tables import compare_with_table, load_table

    table = load_table("tea_r2n50_k400")
    with torch.device("meta"):
        paper = TEA(TEAConfig.paper())
    layers = compare_with_table(table, lambda sd: load_state_dict_from("tea", sd), paper.state_dict(),
                                sum(p.numel() for p in paper.parameters()))
    result = {"layer_table": {k: v for k, v in layers.items() if k != "passed"},
              "reference": "authors' layer table (Phoenix1327/tea-action-recognition@f59e2f8)"}
    summary = (f"layer table of Phoenix1327/tea-action-recognition@f59e2f8: {layers['matched']}/{layers['entries']} "
               f"entries map to ours with equal shapes ({len(layers['missing'])} missing, {len(layers['unexpected'])} "
               f"unexpected, {len(layers['shape_mismatches'])} shape mismatches); params "
               f"{layers['own_params'] / 1e6:.4f} M vs authors' {layers['authors_params'] / 1e6:.4f} M "
               f"({layers['params_gap_pct']:+.3f} %)")
    passed = layers["passed"]
    try:
        import timm
    except ImportError:  # pragma: no cover - optional dependency
        timm = None
    if timm is not None:
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        ref = timm.create_model("res2net50_26w_4s", pretrained=False, num_classes=400).eval()
        cfg = TEAConfig(me=False, tconv_init="identity")
        model = tea(cfg).eval()
        missing, unexpected = model.load_state_dict(load_state_dict_from("timm", ref.state_dict()), strict=False)
        seg = clip_to_segments(cfg, torch.rand(1, 3, cfg.n_segment, 64, 64, generator=gen))
        with torch.no_grad():
            diff = (model(seg) - ref(seg.flatten(0, 1)).view(1, cfg.n_segment, -1).mean(1)).abs().max().item()
        tol = 1e-5
        passed = passed and diff <= tol and not unexpected and all(".tconvs." in k for k in missing)
        result.update(max_abs_diff=diff, timm_max_abs_diff=diff, tolerance=tol)
        result["reference"] += "; timm res2net50_26w_4s"
        summary += f". ME off, identity temporal convs vs timm res2net50_26w_4s at 64x64: max abs diff {diff:.2e} (tol {tol:g})"
    return {"passed": passed, "summary": summary, **result}
