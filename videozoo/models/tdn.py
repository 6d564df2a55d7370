"""TDN: Temporal Difference Networks for Efficient Action Recognition.

Limin Wang, Zhan Tong, Bin Ji, Gangshan Wu. CVPR 2021. arXiv 2012.10071.

:meth:`TDNConfig.paper` builds the model of the authors' released code, MCG-NJU/TDN at commit
a7c7e9bcd109d8256cd27a11505bd6e00de39ce0 (``ops/tdn_net.py``, ``ops/base_module.py``,
``ops/models.py``): TDN-ResNet50, 8 segments, Kinetics-400 head, as built by
``TSN(400, 8, 'RGB', base_model='resnet50', dropout=0.5)``. Its layer table is
``videozoo/reference_tables/tdn_r50_k400.json``; :func:`load_state_dict_from` loads the
authors' checkpoints.

A TSN-style ResNet-50 over N segments gets two temporal difference modules (Sec. 3, Fig. 2-3):

* Short-term TDM, S-TDM (Sec. 3.2, eq. 2): every segment brings 5 consecutive frames; the 4
  RGB differences between neighbours (12 channels) are average-pooled by 2, encoded by their
  own stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and fused with the key frame's stem
  features, ``x = a * x + b * Up(diff)``; the encoded differences then go through a layer1 of
  their own and are fused again after the RGB layer1. The release uses ``a = b = 0.5`` with 8
  segments and ``a, b = 0.75, 0.25`` otherwise (``TDNConfig.fusion``); ``Up`` is nearest
  upsampling.
* Long-term TDM, L-TDM (Sec. 3.3, eq. 3): in every bottleneck of res3-res5, after
  conv1-bn1-relu (at the bottleneck's ``planes`` width), the features are squeezed by r = 16
  (1x1 conv + BN); the differences between a channel-wise 3x3 conv of the neighbouring
  segment and the current segment are taken in both directions (zero at the ends); each
  difference is averaged with two refinements of itself (a 3x3 conv + BN at full resolution,
  and one on its 2x2 average-pooled version, upsampled back), expanded back (1x1 conv + BN)
  and turned into ``sigmoid(.) - 1/2``; the two directions are averaged and excite the
  features, ``x + x * A``. A learnable temporal shift follows
  (:class:`videozoo.layers.temporal_conv.TemporalShiftConv`, 1/8 + 1/8 of the channels).

The backbone is the release's ``FBResNet`` (every convolution has a bias, ``layer1`` has no
L-TDM). Segment consensus is the average of the per-segment scores (TSN), after dropout 0.5
and the classifier.

Simplified: the model takes frames in [0, 1] without ImageNet normalisation (a data
transform); weights are random. The release builds the RGB stem a second time (``conv1_temp``)
only to initialise the S-TDM stem from it; that unused layer (9,472 parameters) is not built
here, and :func:`load_state_dict_from` drops it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.consensus import SegmentConsensus
from videozoo.layers.temporal_conv import TemporalShiftConv
from videozoo.layers.temporal_resnet import segment_center_indices
from videozoo.registry import Reported, register_check, register_model

__all__ = ["TDNConfig", "LongTermTDM", "TDNBottleneck", "ShortTermTDM", "TDN", "tdn", "clip_to_tdn_input",
           "load_state_dict_from"]


@dataclass
class TDNConfig:
    """Hyper-parameters of TDN (the authors' release in :meth:`paper`).

    Attributes:
        num_classes: K (Kinetics-400: 400).
        n_segment: N (8).
        frames_per_segment: L, consecutive frames per segment for S-TDM (5); the middle one is
            the key frame the RGB path sees.
        image_size: Crop side (224).
        clip_frames: T of the standard clip the input is cut from (paper config: 5N = 40, so
            that the 5-frame windows tile the clip; tiny: 8, overlapping windows).
        stdm: Build the short-term TDM (both fusions).
        ltdm: Build the long-term TDMs and their temporal shifts (res3-res5).
        ltdm_reduction: Squeeze ratio r of L-TDM (16).
        shift_div: 1/shift_div of the channels start shifted each way (8).
        fusion: ``(a, b)`` of ``a * rgb + b * difference`` at both S-TDM fusions
            (release: (0.5, 0.5) for 8 segments, (0.75, 0.25) otherwise).
        layers, widths: Bottleneck blocks and ``planes`` per stage (ResNet-50).
        stem_width, stem_kernel, stem_stride, stem_pool: the RGB stem, copied by the S-TDM stem.
        dropout: Before the classifier (0.5).
    """

    num_classes: int = 400
    n_segment: int = 8
    frames_per_segment: int = 5
    image_size: int = 224
    clip_frames: int = 40
    stdm: bool = True
    ltdm: bool = True
    ltdm_reduction: int = 16
    shift_div: int = 8
    fusion: tuple[float, float] = (0.5, 0.5)
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "TDNConfig":
        """TDN-ResNet50, 8 segments x 5 frames of 224x224, Kinetics-400: the released code's
        ``TSN(400, 8, 'RGB', base_model='resnet50')`` (MCG-NJU/TDN@a7c7e9b)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TDNConfig":
        """One bottleneck per stage, planes 16-128, r = 4, stride-1 3x3 stem without max-pool,
        8 segments from an 8-frame 32x32 clip (overlapping 5-frame windows)."""
        return cls(
            num_classes=8, n_segment=8, image_size=32, clip_frames=8, ltdm_reduction=4, layers=(1, 1, 1, 1),
            widths=(16, 32, 64, 128), stem_width=16, stem_kernel=3, stem_stride=1, stem_pool=False, dropout=0.0,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Standard clip shape ``(3, clip_frames, H, W)``; :func:`clip_to_tdn_input` turns it
        into the model input ``(N, L, 3, H, W)``."""
        return (3, self.clip_frames, self.image_size, self.image_size)


class LongTermTDM(nn.Module):
    """L-TDM (Sec. 3.3, eq. 3), as the release's ``mSEModule``.

    Args:
        channels: C (the bottleneck's ``planes``). n_segment: N. reduction: r.

    Shapes:
        x: ``(B*N, C, H, W)`` -> ``(B*N, C, H, W)``.
    """

    def __init__(self, channels: int, n_segment: int, reduction: int = 16) -> None:
        super().__init__()
        self.n_segment = n_segment
        red = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, red, 1, bias=False)
        self.squeeze_bn = nn.BatchNorm2d(red)
        self.transform = nn.Conv2d(red, red, 3, padding=1, groups=red, bias=False)  # channel-wise
        self.scale1_conv = nn.Conv2d(red, red, 3, padding=1, bias=False)  # full resolution
        self.scale1_bn = nn.BatchNorm2d(red)
        self.scale2_conv = nn.Conv2d(red, red, 3, padding=1, bias=False)  # on 2x2-pooled differences
        self.scale2_bn = nn.BatchNorm2d(red)
        self.expand = nn.Conv2d(red, channels, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(channels)

    def differences(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squeezed features -> ``(fwd, bwd)``, each ``(B*N, C/r, H, W)``:
        ``fwd[t] = K * Xr[t+1] - Xr[t]`` (0 at t = N-1), ``bwd[t] = K * Xr[t-1] - Xr[t]`` (0 at t = 0),
        ``K`` the channel-wise 3x3 conv."""
        xr = self.squeeze_bn(self.squeeze(x))
        nt, c, h, w = xr.shape
        cur = xr.view(nt // self.n_segment, self.n_segment, c, h, w)
        conv = self.transform(xr).view_as(cur)
        zero = torch.zeros_like(cur[:, :1])
        fwd = torch.cat([conv[:, 1:] - cur[:, :-1], zero], dim=1)
        bwd = torch.cat([zero, conv[:, :-1] - cur[:, 1:]], dim=1)
        return fwd.view(nt, c, h, w), bwd.view(nt, c, h, w)

    def attention(self, d: torch.Tensor) -> torch.Tensor:
        """Multi-scale refinement and expansion of one direction: ``(B*N, C/r, H, W) -> (B*N, C, H, W)``,
        ``sigmoid(bn(conv1x1((d + s1(d) + Up(s2(Pool2(d)))) / 3))) - 1/2``."""
        s1 = self.scale1_bn(self.scale1_conv(d))
        s2 = self.scale2_bn(self.scale2_conv(F.avg_pool2d(d, 2)))
        s2 = F.interpolate(s2, size=d.shape[-2:], mode="nearest")
        return torch.sigmoid(self.expand_bn(self.expand(d / 3 + s2 / 3 + s1 / 3))) - 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        fwd, bwd = self.differences(x)
        a = 0.5 * self.attention(fwd) + 0.5 * self.attention(bwd)
        return x + x * a


class TDNBottleneck(nn.Module):
    """The release's ResNet bottleneck (biased convs), with L-TDM and a learnable temporal
    shift after conv1-bn1-relu when ``ltdm`` is set (``BottleneckShift``).

    Args:
        inplanes, planes, stride, downsample: as torchvision's ``Bottleneck``.
        n_segment: N. ltdm: Build L-TDM + shift. reduction: r. shift_div: shifted fraction 1/d.

    Shapes:
        x: ``(B*N, inplanes, H, W)`` -> ``(B*N, 4*planes, H/stride, W/stride)``.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, *,
                 n_segment: int = 8, ltdm: bool = False, reduction: int = 16, shift_div: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=True)
        self.bn1 = nn.BatchNorm2d(planes)
        if ltdm:
            fold = planes // shift_div
            self.ltdm = LongTermTDM(planes, n_segment, reduction)
            self.shift = TemporalShiftConv(planes, n_segment, fold_next=fold, fold_prev=fold)
        else:
            self.ltdm = self.shift = None
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        if self.ltdm is not None:
            out = self.shift(self.ltdm(out))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _make_stage(inplanes: int, planes: int, blocks: int, stride: int, **block_kwargs) -> nn.Sequential:
    """``blocks`` bottlenecks; the first one strides and projects the shortcut (biased 1x1 conv + BN)."""
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=True), nn.BatchNorm2d(planes * 4))
    layers = [TDNBottleneck(inplanes, planes, stride, downsample, **block_kwargs)]
    layers += [TDNBottleneck(planes * 4, planes, **block_kwargs) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ShortTermTDM(nn.Module):
    """S-TDM (Sec. 3.2): RGB differences -> average-pool 2 -> stem -> (fusion 1) -> layer1 -> (fusion 2).

    Args:
        frames: L (5 -> 4 differences, 12 channels). out_channels, kernel, stride, pool: the RGB stem's.
        planes, blocks: of ``layer1`` (its own copy, without L-TDM).

    Shapes:
        stem: ``(B*N, L, 3, H, W)`` -> ``(B*N, out_channels, h, w)``; ``layer1``: as ResNet's layer1.
    """

    def __init__(self, frames: int, out_channels: int, kernel: int, stride: int, pool: bool,
                 planes: int, blocks: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 * (frames - 1), out_channels, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()
        self.layer1 = _make_stage(out_channels, planes, blocks, 1)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``(B*N, L, 3, H, W)`` -> encoded differences ``(B*N, C, h, w)``."""
        diff = (x[:, 1:] - x[:, :-1]).flatten(1, 2)  # (B*N, 3(L-1), H, W)
        return self.pool(F.relu(self.bn(self.conv(F.avg_pool2d(diff, 2)))))


class TDN(nn.Module):
    """TDN: ResNet over N segments with S-TDM fused after the stem and layer1, L-TDMs in res3-res5.

    Attribute names: ``conv1, bn1, layer1..layer4, fc`` as ResNet, ``stdm`` (S-TDM stem and
    its layer1); see :func:`load_state_dict_from` for the release's names.

    Shapes:
        forward: ``x: (B, N, L, 3, H, W)`` (L = frames_per_segment) -> ``(B, num_classes)``.

    Raises:
        ValueError: on an input of the wrong rank, N or L.
    """

    def __init__(self, config: TDNConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.conv1 = nn.Conv2d(3, c.stem_width, c.stem_kernel, c.stem_stride, c.stem_kernel // 2, bias=True)
        self.bn1 = nn.BatchNorm2d(c.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if c.stem_pool else nn.Identity()
        self.stdm = (ShortTermTDM(c.frames_per_segment, c.stem_width, c.stem_kernel, c.stem_stride, c.stem_pool,
                                  c.widths[0], c.layers[0]) if c.stdm else None)
        inplanes = c.stem_width
        for stage, (planes, blocks) in enumerate(zip(c.widths, c.layers)):
            kw = dict(n_segment=c.n_segment, ltdm=c.ltdm and stage > 0, reduction=c.ltdm_reduction,
                      shift_div=c.shift_div)
            setattr(self, f"layer{stage + 1}", _make_stage(inplanes, planes, blocks, 1 if stage == 0 else 2, **kw))
            inplanes = planes * 4
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(c.dropout)
        self.fc = nn.Linear(inplanes, c.num_classes)
        self.consensus = SegmentConsensus("avg")
        self._init_weights()

    def _init_weights(self) -> None:
        # The release: He normal (fan_out) for every 2D conv, BN 1/0, conv biases at PyTorch's
        # default; the S-TDM stem starts as the RGB stem averaged over colours and repeated over
        # the 12 difference channels; the classifier N(0, 0.001), bias 0 (TSN).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.stdm is not None:
            with torch.no_grad():
                self.stdm.conv.weight.copy_(self.conv1.weight.mean(1, keepdim=True).expand_as(self.stdm.conv.weight))
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, L, 3, H, W)
        cfg = self.config
        if x.dim() != 6 or x.shape[1] != cfg.n_segment or x.shape[2] != cfg.frames_per_segment:
            raise ValueError(f"expected (B, {cfg.n_segment}, {cfg.frames_per_segment}, 3, H, W), got {tuple(x.shape)}")
        a, b = cfg.fusion
        frames = x.flatten(0, 1)  # (B*N, L, 3, H, W)
        feat = self.maxpool(self.relu(self.bn1(self.conv1(frames[:, cfg.frames_per_segment // 2]))))
        if self.stdm is not None:
            diff = self.stdm.stem(frames)
            feat = a * feat + b * F.interpolate(diff, size=feat.shape[-2:], mode="nearest")
            feat = self.layer1(feat)
            diff = self.stdm.layer1(diff)
            feat = a * feat + b * F.interpolate(diff, size=feat.shape[-2:], mode="nearest")
        else:
            feat = self.layer1(feat)
        feat = self.layer4(self.layer3(self.layer2(feat)))
        scores = self.fc(self.dropout(torch.flatten(self.avgpool(feat), 1)))  # (B*N, K)
        return self.consensus(scores.view(-1, cfg.n_segment, scores.shape[-1]))


def clip_to_tdn_input(config: TDNConfig, clip: torch.Tensor) -> torch.Tensor:
    """Cut a standard clip into N segments of L consecutive frames around TSN centre frames.

    Args:
        config: A :class:`TDNConfig` (uses ``n_segment`` and ``frames_per_segment``).
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        ``(B, N, L, 3, H, W)``; frame indices ``key_k + j - L//2`` clamped to ``[0, T-1]``,
        ``key_k = floor((k + 0.5) T / N)``.
    """
    t = clip.shape[2]
    keys = segment_center_indices(t, config.n_segment)
    offsets = torch.arange(config.frames_per_segment) - config.frames_per_segment // 2
    idx = (keys[:, None] + offsets[None, :]).clamp(0, t - 1).to(clip.device)  # (N, L)
    out = clip.index_select(2, idx.flatten())  # (B, 3, N*L, H, W)
    b, c, _, h, w = out.shape
    return out.view(b, c, config.n_segment, config.frames_per_segment, h, w).permute(0, 2, 3, 1, 4, 5).contiguous()


_LTDM_NAMES = {  # release (mSEModule) -> ours (LongTermTDM)
    "mse.conv1.": "ltdm.squeeze.", "mse.bn1.": "ltdm.squeeze_bn.", "mse.conv2.": "ltdm.transform.",
    "mse.conv3_smallscale4.": "ltdm.scale1_conv.", "mse.bn3_smallscale4.": "ltdm.scale1_bn.",
    "mse.conv3_smallscale2.": "ltdm.scale2_conv.", "mse.bn3_smallscale2.": "ltdm.scale2_bn.",
    "mse.conv3.": "ltdm.expand.", "mse.bn3.": "ltdm.expand_bn.", "shift.conv.": "shift.",
}
_TOP_NAMES = {  # release (TDN_Net inside TSN) -> ours (TDN)
    "conv1_5.0.": "stdm.conv.", "conv1_5.1.": "stdm.bn.", "resnext_layer1.": "stdm.layer1.",
    "layer1_bak.": "layer1.", "layer2_bak.": "layer2.", "layer3_bak.": "layer3.", "layer4_bak.": "layer4.",
}


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference state dict into TDN's keys (as timm's ``checkpoint_filter_fn``).

    Args:
        library: ``"tdn"``: a checkpoint of the authors' release (MCG-NJU/TDN), the state dict
            of ``ops.models.TSN`` with or without DDP's ``module.`` prefix (a checkpoint file's
            ``"state_dict"`` entry). ``base_model.`` is removed, ``new_fc`` becomes ``fc``,
            ``resnext_layer1`` / ``conv1_5`` go to ``stdm``, ``layerK_bak`` to ``layerK``, the
            L-TDM's ``mse.*`` and ``shift.conv`` to ``ltdm.*`` and ``shift``; the unused
            ``conv1_temp`` is dropped.
            ``"torchvision"``: ``torchvision.models.resnet50`` weights, keys unchanged (the RGB
            path; the release's convolutions have biases that torchvision's lack, the TDMs and
            S-TDM keep their values: load with ``strict=False``).
        state_dict: The state dict.

    Returns:
        The converted dict (the same tensors, renamed).

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "torchvision":
        return dict(state_dict)
    if library != "tdn":
        raise ValueError(f"unknown library {library!r}; expected 'tdn' or 'torchvision'")
    out = {}
    for key, value in state_dict.items():
        k = key.removeprefix("module.")
        if k.startswith("new_fc."):
            out["fc." + k.removeprefix("new_fc.")] = value
            continue
        k = k.removeprefix("base_model.")
        if k.startswith("conv1_temp."):
            continue
        for old, new in _TOP_NAMES.items():
            if k.startswith(old):
                k = new + k.removeprefix(old)
                break
        for old, new in _LTDM_NAMES.items():
            if f".{old}" in k:
                k = k.replace(f".{old}", f".{new}")
                break
        out[k] = value
    return out


@register_model("wang2021tdn", alias="tdn", stage=1, config=TDNConfig, temporal=True, clip_to_input=clip_to_tdn_input,
                reported=(Reported("params_m", 24.8831, "MCG-NJU/TDN@a7c7e9b, ops/models.py "
                                   "TSN(400, 8, 'RGB', base_model='resnet50'), parameters counted on a CPU build",
                                   "authors' released code; includes the unused conv1_temp (0.0095 M)",
                                   kind="release", tolerance_pct=0.5),))
def tdn(config: TDNConfig) -> TDN:
    """Build :class:`TDN` (random weights)."""
    return TDN(config)


@register_check("wang2021tdn", "reference", evidence="independent-reference")
def _tdn_reference_check() -> dict:
    """(1) The layer table of the authors' release (``reference_tables/tdn_r50_k400.json``)
    mapped by :func:`load_state_dict_from` equals our paper config's state dict, name by name
    and shape by shape. (2) With both TDMs off and zero conv biases, the RGB path equals
    ``torchvision.models.resnet50`` on the key frames (picked by slicing frames 2, 7, ..., 37)
    averaged over segments."""
    from torchvision.models import resnet50

    from videozoo.reference_tables import compare_with_table, load_table

    table = load_table("tdn_r50_k400")
    with torch.device("meta"):
        paper = TDN(TDNConfig.paper())
    layers = compare_with_table(table, lambda sd: load_state_dict_from("tdn", sd), paper.state_dict(),
                                sum(p.numel() for p in paper.parameters()))

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    tv = resnet50(num_classes=400).eval()
    cfg = TDNConfig(stdm=False, ltdm=False)
    model = TDN(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.zero_()
    missing, unexpected = model.load_state_dict(load_state_dict_from("torchvision", tv.state_dict()), strict=False)
    clip = torch.rand(1, 3, 40, 112, 112, generator=gen)
    with torch.no_grad():
        ours = model(clip_to_tdn_input(cfg, clip))
        keys = clip[:, :, 2::5].transpose(1, 2).flatten(0, 1)  # key frames 2, 7, ..., 37
        ref = tv(keys).view(1, cfg.n_segment, -1).mean(1)
    diff = (ours - ref).abs().max().item()
    tol = 1e-5
    only_biases = all(k.endswith(".bias") for k in missing) and not unexpected
    passed = layers["passed"] and diff <= tol and only_biases
    return {
        "passed": passed,
        "summary": (
            f"layer table of MCG-NJU/TDN@a7c7e9b: {layers['matched']}/{layers['entries']} entries map to ours with "
            f"equal shapes ({len(layers['missing'])} missing, {len(layers['unexpected'])} unexpected, "
            f"{len(layers['shape_mismatches'])} shape mismatches; dropped: unused conv1_temp, "
            f"{layers['dropped_params']} params); params {layers['own_params'] / 1e6:.4f} M vs authors' "
            f"{layers['authors_params'] / 1e6:.4f} M ({layers['params_gap_pct']:+.3f} %). RGB path without TDMs "
            f"vs torchvision resnet50 on key frames at 112x112: max abs diff {diff:.2e} (tol {tol:g})"
        ),
        "layer_table": {k: v for k, v in layers.items() if k != "passed"},
        "max_abs_diff": diff,
        "torchvision_max_abs_diff": diff,
        "tolerance": tol,
        "reference": "authors' layer table (MCG-NJU/TDN@a7c7e9b); torchvision.models.resnet50",
    }
