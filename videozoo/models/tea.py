"""TEA: Temporal Excitation and Aggregation for Action Recognition.

Yan Li, Bin Ji, Xintian Shi, Jianguo Zhang, Bin Kang, Limin Wang. CVPR 2020. arXiv 2004.01398.

TEA replaces each bottleneck of a Res2Net-50 (26w x 4s) by a *TEA block*:
``1x1 conv -> ME -> MTA -> 1x1 conv`` plus the shortcut, applied to N segments folded into
the batch ``(B*N, C, H, W)`` (Sec. 3, Fig. 2).

* Motion excitation, ME (Sec. 3.1, Fig. 2 left): squeeze the channels by r=16 with a 1x1
  conv + BN; for each segment t take the *feature-level temporal difference*
  ``M(t) = K * X(t+1) - X(t)``, where ``K`` is a channel-wise (depthwise) 3x3 conv applied to
  the next segment (``M(N-1) = 0``); pool it spatially; expand back to C channels with a 1x1
  conv; ``A = 2 sigmoid(.) - 1``; output ``X + X * A`` (the residual keeps static appearance).
* Multiple temporal aggregation, MTA (Sec. 3.2, Fig. 2 right): the Res2Net split of the
  channels into 4 fragments; one fragment is passed on unchanged, each of the others goes
  through a channel-wise temporal 1D conv (kernel 3 over segments) then the 3x3 spatial conv
  (+ BN + ReLU), and each fragment first adds the output of the previous one (hierarchical
  residual), so the temporal receptive field grows inside one block.

Choices and simplifications:

* Fragment order follows Res2Net / timm (the fragments that are convolved come first, the
  untouched one last) instead of the paper's figure (untouched first); this is a fixed
  channel permutation and lets Res2Net weights (``timm`` ``res2net50_26w_4s``) load with
  unchanged keys (:func:`load_state_dict_from`).
* In the first block of every stage (stride or width change) Res2Net does not add the
  fragments hierarchically and average-pools the passed-on fragment; we keep that.
* Initialisation of MTA's channel-wise temporal convs is not given in the paper. By default
  (``tconv_init="shift"``) they start as a temporal shift, as TSM's fixed kernels: 1/8 of the
  channels take the next segment, 1/8 the previous one, the rest stay (centre tap). Started
  as identity instead, the tiny config memorised the synthetic motion set (98.6 % train,
  21.5 % held-out top-1) while the shift start reaches 97 % held-out. ``tconv_init="identity"``
  makes an untrained TEA with ME switched off compute exactly Res2Net-50 on every frame; the
  reference check uses that.
* No BN after the ME expansion conv; the paper's formula has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.temporal_resnet import TemporalResNet, clip_to_segments
from videozoo.registry import register_check, register_model
from videozoo.testing import randomise_batchnorm

__all__ = ["TEAConfig", "MotionExcitation", "TemporalConv1d", "TEABlock", "TEA", "tea", "load_state_dict_from"]


@dataclass
class TEAConfig:
    """Hyper-parameters of TEA (paper values in :meth:`paper`).

    Attributes:
        num_classes: K (Kinetics-400: 400).
        n_segment: N (paper: 8 or 16).
        image_size: Crop side (224).
        layers, widths: Res2Net-50 stages (3, 4, 6, 3) x planes (64, 128, 256, 512).
        base_width: Res2Net width per fragment for planes=64 (26 in "26w x 4s").
        scale: Number of fragments (4).
        me_reduction: r of ME's channel squeeze (16).
        me: Use motion excitation. mta: Use the temporal convs of MTA (else plain Res2Net).
        stem_width, stem_kernel, stem_stride, stem_pool: ResNet stem.
        dropout: Before the classifier (0.5).
        tconv_init: ``"shift"`` (default) or ``"identity"`` start of MTA's temporal convs.
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
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    dropout: float = 0.5
    tconv_init: str = "shift"

    @classmethod
    def paper(cls) -> "TEAConfig":
        """TEA Res2Net-50, 8 segments of 224x224, Kinetics-400 (Sec. 4.1)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TEAConfig":
        """One TEA block per stage, planes 8-64 (fragments of 8-64 channels), 8 x 32x32 (~0.4 M).

        The stem has stride 2 but no max-pool (16x16 in res2, 2x2 in res5): Res2Net runs the
        1x1 convs and ME of a stage at the previous stage's resolution, which made a
        stride-1 stem four times slower than the other tiny models on CPU.
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
    """ME module (TEA Sec. 3.1, eqs. 1-4).

    Args:
        channels: C. n_segment: N. reduction: r (squeezed channels ``max(1, C // r)``).

    Shapes:
        x: ``(B*N, C, H, W)`` -> ``(B*N, C, H, W)``.
    """

    def __init__(self, channels: int, n_segment: int, reduction: int = 16) -> None:
        super().__init__()
        self.n_segment = n_segment
        red = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, red, 1, bias=False)
        self.bn = nn.BatchNorm2d(red)
        self.transform = nn.Conv2d(red, red, 3, padding=1, groups=red, bias=False)  # channel-wise
        self.expand = nn.Conv2d(red, channels, 1, bias=False)

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
        m = self.motion(x).mean(dim=(2, 3), keepdim=True)  # (B*N, C/r, 1, 1), eq. 3
        attention = 2 * torch.sigmoid(self.expand(m)) - 1  # (B*N, C, 1, 1), eq. 4
        return x + x * attention


class TemporalConv1d(nn.Module):
    """Channel-wise 1D convolution over segments, zero padded (MTA's conv_temp).

    ``y[t, c] = sum_k weight[c, 0, k] * x[t + k - K//2, c]``: the same as a depthwise
    ``nn.Conv1d(C, C, K, padding=K//2, groups=C, bias=False)`` run along N for every pixel
    (``weight`` has that layer's shape ``(C, 1, K)``), computed as a sum of K shifted copies,
    which is much faster on CPU than a grouped Conv1d over ``B*H*W`` short sequences.
    Initialised as identity (centre tap 1, side taps 0).

    Shapes:
        x: ``(B*N, C, H, W)`` -> ``(B*N, C, H, W)``.
    """

    def __init__(self, channels: int, n_segment: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd")
        self.n_segment = n_segment
        self.weight = nn.Parameter(torch.zeros(channels, 1, kernel_size))
        with torch.no_grad():
            self.weight[:, 0, kernel_size // 2] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        nt, c, h, w = x.shape
        n, k = self.n_segment, self.weight.shape[-1]
        v = x.view(nt // n, n, c, h, w)
        padded = F.pad(v, (0, 0, 0, 0, 0, 0, k // 2, k // 2))  # zero segments at both ends
        y = sum(self.weight[:, 0, i].view(1, 1, c, 1, 1) * padded[:, i : i + n] for i in range(k))
        return y.reshape(nt, c, h, w)


class TEABlock(nn.Module):
    """TEA block: Res2Net bottleneck with ME after conv1 and temporal convs in MTA (Fig. 2).

    Same constructor signature as torchvision's ``Bottleneck`` (``inplanes, planes, stride,
    downsample``); layer names follow timm's ``Bottle2neck`` (``conv1, bn1, convs, bns, pool,
    conv3, bn3, downsample``) plus ``me`` and ``tconvs``.

    Shapes:
        x: ``(B*N, inplanes, H, W)`` -> ``(B*N, 4*planes, H/stride, W/stride)``.
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
        temporal: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if temporal is not None:
            raise ValueError("TEABlock builds its own temporal modules (ME, MTA)")
        width = int(math.floor(planes * base_width / 64.0))
        self.width, self.scale = width, scale
        self.is_first = stride > 1 or downsample is not None
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.me = MotionExcitation(width * scale, n_segment, me_reduction) if me else nn.Identity()
        n_conv = max(1, scale - 1)
        self.tconvs = nn.ModuleList(
            [TemporalConv1d(width, n_segment) if mta else nn.Identity() for _ in range(n_conv)]
        )
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
        for i, (tconv, conv, bn) in enumerate(zip(self.tconvs, self.convs, self.bns)):
            sp = fragments[i] if (i == 0 or self.is_first) else sp + fragments[i]
            sp = self.relu(bn(conv(tconv(sp))))
            outs.append(sp)
        if self.scale > 1:
            outs.append(self.pool(fragments[-1]) if self.pool is not None else fragments[-1])
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
                              me=config.me, mta=config.mta, me_reduction=config.me_reduction),
        )
        self.config = config


def init_temporal_convs(model: nn.Module, mode: str = "shift", fold_div: int = 8) -> None:
    """Set every :class:`TemporalConv1d` of ``model`` to ``"identity"`` (centre tap 1) or to a
    ``"shift"``: channels ``[0, C/8)`` read the next segment, ``[C/8, 2C/8)`` the previous one,
    the rest the current one (TSM's shift as a 3-tap kernel, arXiv 1811.08383 Sec. 3).

    Raises:
        ValueError: unknown ``mode``.
    """
    if mode not in ("shift", "identity"):
        raise ValueError(f"tconv_init must be 'shift' or 'identity', got {mode!r}")
    for m in model.modules():
        if isinstance(m, TemporalConv1d):
            c, k = m.weight.shape[0], m.weight.shape[-1]
            fold = max(1, c // fold_div) if mode == "shift" else 0
            with torch.no_grad():
                m.weight.zero_()
                m.weight[:fold, 0, k // 2 + 1] = 1.0  # y[t] = x[t + 1]
                m.weight[fold:2 * fold, 0, k // 2 - 1] = 1.0  # y[t] = x[t - 1]
                m.weight[2 * fold:, 0, k // 2] = 1.0


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference library's state dict into TEA's keys.

    Args:
        library: ``"timm"``: a ``timm`` Res2Net (``res2net50_26w_4s``) state dict. The keys
            are already ours; ME and the temporal convs are absent and keep their values
            (load with ``strict=False``).
        state_dict: The state dict to convert.

    Returns:
        The converted dict.

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "timm":
        return dict(state_dict)
    raise ValueError(f"unknown library {library!r}; expected 'timm'")


@register_model("li2020tea", alias="tea", stage=1, config=TEAConfig, temporal=True, clip_to_input=clip_to_segments)
def tea(config: TEAConfig) -> TEA:
    """Build :class:`TEA` (random weights; temporal convs start as ``config.tconv_init``)."""
    model = TEA(config)
    init_temporal_convs(model, config.tconv_init)
    return model


# --- independent computations used by the reference check and the tests -------------------

def me_loop_reference(me: MotionExcitation, x: torch.Tensor) -> torch.Tensor:
    """ME computed segment by segment with explicit loops (no reshapes of the whole batch).

    ``x: (B*N, C, H, W)`` -> ``(B*N, C, H, W)``; uses ``me``'s weights, BN as in ``me.training``.
    """
    n = me.n_segment
    xr = me.bn(me.squeeze(x))
    out = torch.empty_like(x)
    for b in range(x.shape[0] // n):
        for t in range(n):
            i = b * n + t
            if t < n - 1:
                m = F.conv2d(xr[i + 1 : i + 2], me.transform.weight, padding=1, groups=xr.shape[1]) - xr[i : i + 1]
            else:
                m = torch.zeros_like(xr[i : i + 1])
            s = m.mean(dim=(2, 3), keepdim=True)
            a = 2 * torch.sigmoid(F.conv2d(s, me.expand.weight)) - 1
            out[i] = x[i] * (1 + a[0])
    return out


def temporal_conv_loop_reference(tc: TemporalConv1d, x: torch.Tensor) -> torch.Tensor:
    """Channel-wise temporal conv as a sum over taps: ``y[t] = sum_k w[:, k] * x[t + k - 1]``."""
    n = tc.n_segment
    nt, c, h, w = x.shape
    v = x.view(nt // n, n, c, h, w)
    wt = tc.weight[:, 0, :]  # (C, 3)
    y = torch.zeros_like(v)
    for t in range(n):
        for k in range(wt.shape[1]):
            s = t + k - wt.shape[1] // 2
            if 0 <= s < n:
                y[:, t] += wt[:, k].view(1, c, 1, 1) * v[:, s]
    return y.view(nt, c, h, w)


def res2net_block_reference(block: TEABlock, x: torch.Tensor) -> torch.Tensor:
    """A Res2Net bottleneck written out with functional ops (eval-mode BN), using the
    weights of ``block`` and ignoring ME and the temporal convs."""

    def bn(mod: nn.BatchNorm2d, y: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(y, mod.running_mean, mod.running_var, mod.weight, mod.bias, False, 0.0, mod.eps)

    stride = block.convs[0].stride[0]
    y = F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight)))
    w = block.width
    parts = [y[:, i * w : (i + 1) * w] for i in range(block.scale)]
    outs, prev = [], None
    for i in range(block.scale - 1):
        inp = parts[i] if (prev is None or block.is_first) else parts[i] + prev
        prev = F.relu(bn(block.bns[i], F.conv2d(inp, block.convs[i].weight, stride=stride, padding=1)))
        outs.append(prev)
    last = parts[-1]
    if block.is_first:
        last = F.avg_pool2d(last, 3, stride, 1)
    outs.append(last)
    y = bn(block.bn3, F.conv2d(torch.cat(outs, 1), block.conv3.weight))
    sc = x
    if block.downsample is not None:
        sc = bn(block.downsample[1], F.conv2d(x, block.downsample[0].weight, stride=stride))
    return F.relu(y + sc)


@register_check("li2020tea", "reference", evidence="self-consistency")
def _tea_reference_check() -> dict:
    """ME vs an explicit per-segment loop; the temporal conv vs a sum over taps; TEA blocks
    with ME off and identity temporal convs vs a hand-written Res2Net block; and, when
    ``timm`` is installed, the whole network vs ``timm`` ``res2net50_26w_4s``."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n = 8
    diffs = {}
    me = MotionExcitation(64, n, 16).eval()
    randomise_batchnorm(me, gen)
    x = torch.randn(2 * n, 64, 6, 6, generator=gen)
    with torch.no_grad():
        diffs["me"] = (me(x) - me_loop_reference(me, x)).abs().max().item()
        tc = TemporalConv1d(16, n)
        tc.weight.copy_(torch.randn(tc.weight.shape, generator=gen))
        xt = torch.randn(2 * n, 16, 5, 5, generator=gen)
        diffs["temporal_conv"] = (tc(xt) - temporal_conv_loop_reference(tc, xt)).abs().max().item()
        for name, (inp, planes, stride, ds) in {"res2net_block_stage": (64, 32, 2, True),
                                                 "res2net_block_normal": (128, 32, 1, False)}.items():
            downsample = nn.Sequential(nn.Conv2d(inp, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)) if ds else None
            blk = TEABlock(inp, planes, stride, downsample, n_segment=n, me=False, mta=True).eval()
            randomise_batchnorm(blk, gen)
            xb = torch.randn(n, inp, 8, 8, generator=gen)
            diffs[name] = (blk(xb) - res2net_block_reference(blk, xb)).abs().max().item()
    reference = "explicit loops; functional Res2Net block"
    try:
        import timm
    except ImportError:  # pragma: no cover - optional dependency
        timm = None
    if timm is not None:
        ref = timm.create_model("res2net50_26w_4s", pretrained=False, num_classes=400).eval()
        cfg = TEAConfig(me=False, tconv_init="identity")
        model = tea(cfg).eval()
        model.load_state_dict(load_state_dict_from("timm", ref.state_dict()), strict=False)
        clip = torch.rand(1, 3, n, 64, 64, generator=gen)
        seg = clip_to_segments(cfg, clip)
        with torch.no_grad():
            diffs["network_vs_timm"] = (model(seg) - ref(seg.flatten(0, 1)).view(1, n, -1).mean(1)).abs().max().item()
        reference += "; timm res2net50_26w_4s"
    tol = 1e-5
    worst = max(diffs.values())
    return {
        "passed": worst <= tol,
        "summary": "TEA pieces vs independent computations, max abs diff: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + f" (tol {tol:g})",
        "max_abs_diff": worst,
        "diffs": diffs,
        "tolerance": tol,
        "reference": reference,
    }
