"""TDN: Temporal Difference Networks for Efficient Action Recognition.

Limin Wang, Zhan Tong, Bin Ji, Gangshan Wu. CVPR 2021. arXiv 2012.10071.

TDN adds two temporal difference modules (TDMs) to a TSN-style ResNet-50 over N segments
(Sec. 3, Fig. 2):

* Short-term TDM, S-TDM (Sec. 3.2): each segment contributes a key frame and its 4
  neighbours (5 consecutive frames). The 4 RGB differences between consecutive frames are
  stacked on the channel axis (12 channels), downsampled by 2 (average pooling), encoded by a
  light conv stem, upsampled back and *added* to the key frame's stem features:
  ``F(I) = H(I) + Up(CNN(Down(D(I))))``. It gives the 2D network local motion at the cost of
  one small extra convolution, instead of optical flow.
* Long-term TDM, L-TDM (Sec. 3.3): inside residual blocks, the features of adjacent segments
  are compared. After a 1x1 squeeze (ratio r=16) the difference between a channel-wise 3x3
  conv of the neighbouring segment and the current segment is computed in both directions
  (next - current and previous - current, zero at the ends), refined at several spatial
  scales (full, 1/2, 1/4 resolution), expanded back to C channels and turned into an
  attention ``A``; the features are excited on the residual: ``F + F * A``.

Choices and simplifications (documented because the paper leaves them open or we simplify):

* Input ``(B, N, 5, 3, H, W)``. :func:`clip_to_tdn_input` derives it from a standard clip:
  segment k's key frame is the TSN centre frame ``floor((k + 0.5) T / N)`` and its window the
  frames key-2 .. key+2, clamped at the clip ends. With the paper config (T = 5N = 40) the
  windows tile the clip exactly.
* The RGB path sees the key frame only; S-TDM is fused once, after the stem (the paper also
  fuses a second S-TDM at res2).
* L-TDM sits on the residual branch before ``conv1`` of every block of ``ltdm_stages``
  (default res3-res5), the same place TSM puts its shift, and
  ``A = (sigmoid(g(D_fwd)) + sigmoid(g(D_bwd))) / 2 - 1/2``, centred so that zero differences
  give no excitation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from videozoo.layers.temporal_resnet import TemporalResNet, segment_center_indices
from videozoo.registry import register_check, register_model

__all__ = ["TDNConfig", "ShortTermTDM", "LongTermTDM", "TDN", "tdn", "clip_to_tdn_input", "load_state_dict_from"]


@dataclass
class TDNConfig:
    """Hyper-parameters of TDN (paper values in :meth:`paper`).

    Attributes:
        num_classes: K (Kinetics-400: 400).
        n_segment: N (8).
        frames_per_segment: Consecutive frames around each key frame for S-TDM (5).
        image_size: Crop side (224).
        clip_frames: T of the standard clip the input is cut from (paper: 5N = 40, so that
            the 5-frame windows tile the clip; tiny: 8, overlapping windows).
        stdm: Use the short-term TDM. ltdm: Use the long-term TDMs.
        ltdm_stages: Stages (0 = res2 ... 3 = res5) whose blocks get an L-TDM.
        ltdm_reduction: Squeeze ratio r of L-TDM (16).
        ltdm_scales: Downsampling factors of the extra L-TDM branches ((2, 4)).
        layers, widths, bottleneck, stem_*: the ResNet (ResNet-50 in the paper).
        dropout: Before the classifier (0.5).
    """

    num_classes: int = 400
    n_segment: int = 8
    frames_per_segment: int = 5
    image_size: int = 224
    clip_frames: int = 40
    stdm: bool = True
    ltdm: bool = True
    ltdm_stages: tuple[int, ...] = (1, 2, 3)
    ltdm_reduction: int = 16
    ltdm_scales: tuple[int, ...] = (2, 4)
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    bottleneck: bool = True
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "TDNConfig":
        """TDN ResNet-50, 8 segments x 5 frames, 224x224, Kinetics-400 (Sec. 4.1)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TDNConfig":
        """BasicBlock ResNet, one block per stage, widths 16-128, 8 segments from an 8-frame
        32x32 clip (overlapping 5-frame windows), L-TDM in every stage (~0.3 M params)."""
        return cls(
            num_classes=8, n_segment=8, image_size=32, clip_frames=8, ltdm_stages=(0, 1, 2, 3), ltdm_reduction=4,
            ltdm_scales=(2,), layers=(1, 1, 1, 1), widths=(16, 32, 64, 128), bottleneck=False,
            stem_width=16, stem_kernel=3, stem_stride=1, stem_pool=False, dropout=0.0,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Standard clip shape ``(3, clip_frames, H, W)``; :func:`clip_to_tdn_input` turns it
        into the model input ``(N, 5, 3, H, W)``."""
        return (3, self.clip_frames, self.image_size, self.image_size)


class ShortTermTDM(nn.Module):
    """S-TDM (TDN Sec. 3.2): stacked RGB differences -> light conv stem -> upsampled residual.

    Args:
        frames: L, frames per segment (5 -> 4 differences, 12 input channels).
        out_channels, kernel, stride, pool: like the RGB stem it is added to.

    Shapes:
        forward: ``x: (B*N, L, 3, H, W)``, ``size`` the RGB stem output ``(h, w)`` ->
        ``(B*N, out_channels, h, w)``.
    """

    def __init__(self, frames: int, out_channels: int, kernel: int = 7, stride: int = 2, pool: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3 * (frames - 1), out_channels, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # x: (B*N, L, 3, H, W)
        diff = (x[:, 1:] - x[:, :-1]).flatten(1, 2)  # (B*N, 3(L-1), H, W)
        diff = F.avg_pool2d(diff, 2)  # Down
        y = self.pool(F.relu(self.bn(self.conv(diff))))  # CNN
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)  # Up


class LongTermTDM(nn.Module):
    """L-TDM (TDN Sec. 3.3): bidirectional cross-segment differences, multi-scale, excitation.

    Args:
        channels: C. n_segment: N. reduction: r. scales: extra branch downsampling factors.

    Shapes:
        forward: ``x: (B*N, C, H, W)`` -> ``(B*N, C, H, W)``.
    """

    def __init__(self, channels: int, n_segment: int, reduction: int = 16, scales: tuple[int, ...] = (2, 4)) -> None:
        super().__init__()
        self.n_segment, self.scales = n_segment, tuple(scales)
        red = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, red, 1, bias=False)
        self.bn = nn.BatchNorm2d(red)
        self.transform = nn.Conv2d(red, red, 3, padding=1, groups=red, bias=False)  # channel-wise
        self.scale_convs = nn.ModuleList([nn.Conv2d(red, red, 3, padding=1, bias=False) for _ in self.scales])
        self.expand = nn.Conv2d(red, channels, 1, bias=False)

    def differences(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B*N, C, H, W)`` -> forward and backward differences, each ``(B*N, C/r, H, W)``:
        ``fwd[t] = K*Xr[t+1] - Xr[t]`` (0 at t=N-1), ``bwd[t] = K*Xr[t-1] - Xr[t]`` (0 at t=0)."""
        xr = self.bn(self.squeeze(x))
        nt, c, h, w = xr.shape
        cur = xr.view(nt // self.n_segment, self.n_segment, c, h, w)
        conv = self.transform(xr).view_as(cur)
        zero = torch.zeros_like(cur[:, :1])
        fwd = torch.cat([conv[:, 1:] - cur[:, :-1], zero], dim=1)
        bwd = torch.cat([zero, conv[:, :-1] - cur[:, 1:]], dim=1)
        return fwd.view(nt, c, h, w), bwd.view(nt, c, h, w)

    def multiscale(self, d: torch.Tensor) -> torch.Tensor:
        """Average of the difference itself and conv-refined versions at lower resolutions."""
        h, w = d.shape[-2:]
        out = d
        for s, conv in zip(self.scales, self.scale_convs):
            y = F.adaptive_avg_pool2d(d, (max(1, h // s), max(1, w // s)))
            out = out + F.interpolate(conv(y), size=(h, w), mode="bilinear", align_corners=False)
        return out / (1 + len(self.scales))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        fwd, bwd = self.differences(x)
        a = 0.5 * (torch.sigmoid(self.expand(self.multiscale(fwd))) + torch.sigmoid(self.expand(self.multiscale(bwd))))
        return x + x * (a - 0.5)


class TDN(TemporalResNet):
    """TDN: ResNet over segments with S-TDM at the stem and L-TDMs in residual blocks.

    Shapes:
        forward: ``x: (B, N, L, 3, H, W)`` (L = frames_per_segment) -> ``(B, num_classes)``.

    Raises:
        ValueError: on an input of the wrong rank, N or L.
    """

    def __init__(self, config: TDNConfig) -> None:
        factory = None
        if config.ltdm:
            def factory(channels: int, stage: int, index: int) -> nn.Module | None:
                if stage not in config.ltdm_stages:
                    return None
                return LongTermTDM(channels, config.n_segment, config.ltdm_reduction, config.ltdm_scales)
        super().__init__(
            Bottleneck if config.bottleneck else BasicBlock, config.layers, n_segment=config.n_segment,
            num_classes=config.num_classes, widths=config.widths, stem_width=config.stem_width,
            stem_kernel=config.stem_kernel, stem_stride=config.stem_stride, stem_pool=config.stem_pool,
            temporal=factory, dropout=config.dropout,
        )
        self.config = config
        self.stdm = (
            ShortTermTDM(config.frames_per_segment, config.stem_width, config.stem_kernel, config.stem_stride, config.stem_pool)
            if config.stdm else None
        )
        if self.stdm is not None:
            nn.init.kaiming_normal_(self.stdm.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, L, 3, H, W)
        cfg = self.config
        if x.dim() != 6 or x.shape[1] != cfg.n_segment or x.shape[2] != cfg.frames_per_segment:
            raise ValueError(
                f"expected (B, {cfg.n_segment}, {cfg.frames_per_segment}, 3, H, W), got {tuple(x.shape)}"
            )
        frames = x.flatten(0, 1)  # (B*N, L, 3, H, W)
        feat = self.stem(frames[:, cfg.frames_per_segment // 2])  # key frames, (B*N, C, h, w)
        if self.stdm is not None:
            feat = feat + self.stdm(frames, feat.shape[-2:])
        scores = self.fc(self.dropout(self.forward_stages(feat)))  # (B*N, K)
        return self.consensus_avg(scores)


def clip_to_tdn_input(config: TDNConfig, clip: torch.Tensor) -> torch.Tensor:
    """Cut a standard clip into N segments of L consecutive frames around TSN centre frames.

    Args:
        config: A :class:`TDNConfig` (uses ``n_segment`` and ``frames_per_segment``).
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        ``(B, N, L, 3, H, W)``; frame indices ``key_k + j - L//2`` clamped to ``[0, T-1]``.
    """
    t = clip.shape[2]
    keys = segment_center_indices(t, config.n_segment)
    offsets = torch.arange(config.frames_per_segment) - config.frames_per_segment // 2
    idx = (keys[:, None] + offsets[None, :]).clamp(0, t - 1).to(clip.device)  # (N, L)
    out = clip.index_select(2, idx.flatten())  # (B, 3, N*L, H, W)
    b, c, _, h, w = out.shape
    return out.view(b, c, config.n_segment, config.frames_per_segment, h, w).permute(0, 2, 3, 1, 4, 5).contiguous()


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference library's state dict into TDN's keys.

    Args:
        library: ``"torchvision"``: ``torchvision.models.resnet50`` weights (same keys; the
            TDMs keep their values, load with ``strict=False``).
        state_dict: The state dict.

    Returns:
        The converted dict.

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "torchvision":
        return dict(state_dict)
    raise ValueError(f"unknown library {library!r}; expected 'torchvision'")


@register_model("wang2021tdn", alias="tdn", stage=1, config=TDNConfig, temporal=True, clip_to_input=clip_to_tdn_input)
def tdn(config: TDNConfig) -> TDN:
    """Build :class:`TDN` (random weights)."""
    return TDN(config)


@register_check("wang2021tdn", "reference", evidence="self-consistency")
def _tdn_reference_check() -> dict:
    """TDN-R50 with both TDMs disabled vs ``torchvision.models.resnet50`` (same weights) on
    the key frames (picked independently by slicing frames 2, 7, ..., 37), averaged over segments."""
    from torchvision.models import resnet50

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    tv = resnet50(num_classes=400).eval()
    cfg = TDNConfig(stdm=False, ltdm=False)
    model = TDN(cfg).eval()
    model.load_state_dict(load_state_dict_from("torchvision", tv.state_dict()))
    clip = torch.rand(1, 3, 40, 112, 112, generator=gen)
    inp = clip_to_tdn_input(cfg, clip)
    with torch.no_grad():
        ours = model(inp)
        keys = clip[:, :, 2::5].transpose(1, 2).flatten(0, 1)  # key frames 2, 7, ..., 37
        ref = tv(keys).view(1, cfg.n_segment, -1).mean(1)
    diff = (ours - ref).abs().max().item()
    tol = 1e-5
    return {
        "passed": diff <= tol,
        "summary": f"TDN-R50 with S-TDM and L-TDM disabled vs torchvision resnet50 on key frames + mean over "
        f"8 segments at 112x112: max abs diff {diff:.2e} (tol {tol:g})",
        "max_abs_diff": diff,
        "tolerance": tol,
        "reference": "torchvision.models.resnet50",
    }
