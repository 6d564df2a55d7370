"""TSM: Temporal Shift Module for Efficient Video Understanding.

Ji Lin, Chuang Gan, Song Han. ICCV 2019. arXiv 1811.08383.

What this file follows:

* Sec. 3.1-3.2, Fig. 1: the temporal shift. Features of the N segments of a video,
  ``(B, N, C, H, W)``, are moved along the segment axis for a part of the channels: 1/8 of
  the channels take the value of the *next* segment (shifted back in time), 1/8 take the
  value of the *previous* segment (shifted forward in time), the other 3/4 stay; the
  segments at both ends receive zeros (bi-directional, offline TSM). The operation has no
  parameters and no multiply-adds.
* Sec. 3.3, Fig. 3b: "residual shift": the shift is applied on the residual branch of every
  ResNet-50 bottleneck, before its first 1x1 convolution, so that the shortcut keeps the
  current segment's spatial features.
* Sec. 4 / Fig. 4 (online TSM): uni-directional shift, where 1/8 of the channels only come
  from the past segment (config ``online=True``). The paper's streaming inference caches the
  shifted-out features of the previous frame; here the whole clip is given at once and the
  shift is computed with zeros for the first segment, which gives the same numbers.
* Training/inference recipe: TSN-style sparse sampling of N=8 segments, 224x224 crops, a
  ResNet-50 initialised from ImageNet, dropout 0.5 before the classifier, average consensus
  of the per-segment scores (Sec. 5.1).

Simplified: no non-local blocks, no multi-clip/multi-crop testing; weights are random
(load ImageNet ResNet-50 weights with :func:`load_state_dict_from`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from videozoo.layers.temporal_resnet import TemporalResNet, clip_to_segments
from videozoo.registry import Reported, register_check, register_model

__all__ = ["TSMConfig", "TemporalShift", "temporal_shift", "TSM", "tsm", "load_state_dict_from", "clip_to_segments"]


@dataclass
class TSMConfig:
    """Hyper-parameters of TSM (paper values in :meth:`paper`).

    Attributes:
        num_classes: K (Kinetics-400: 400).
        n_segment: N, segments per video (paper: 8).
        image_size: Square crop side in pixels (paper: 224).
        fold_div: 1/fold_div of the channels is shifted in each direction (paper: 8).
        online: Uni-directional shift (past -> future only) for online recognition.
        shift: ``False`` disables the shift (the backbone becomes a per-frame ResNet = TSN).
        layers: Blocks per stage (ResNet-50: 3, 4, 6, 3).
        widths: ``planes`` per stage.
        stem_width, stem_kernel, stem_stride, stem_pool: stem of the ResNet.
        bottleneck: Bottleneck blocks (ResNet-50) vs BasicBlock (ResNet-18/tiny).
        dropout: Dropout before the classifier (paper: 0.5).
    """

    num_classes: int = 400
    n_segment: int = 8
    image_size: int = 224
    fold_div: int = 8
    online: bool = False
    shift: bool = True
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    bottleneck: bool = True
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "TSMConfig":
        """TSM ResNet-50, 8 segments of 224x224, Kinetics-400 (paper Sec. 5.1, Table 2)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TSMConfig":
        """ResNet with one BasicBlock per stage, widths 16-128, 8 segments of 32x32 (~0.3 M params).

        The stem keeps 32x32 (stride 1, no max-pool) so that layer4 still sees 4x4; with
        fold_div 4 a quarter of the channels in each direction carry time.
        """
        return cls(
            num_classes=8, n_segment=8, image_size=32, fold_div=4, layers=(1, 1, 1, 1),
            widths=(16, 32, 64, 128), stem_width=16, stem_kernel=3, stem_stride=1, stem_pool=False,
            bottleneck=False, dropout=0.0,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Standard clip shape ``(3, T, H, W)`` with ``T = n_segment`` (one frame per segment);
        :func:`clip_to_segments` turns it into the model input ``(N, 3, H, W)``."""
        return (3, self.n_segment, self.image_size, self.image_size)


def temporal_shift(x: torch.Tensor, n_segment: int, fold_div: int = 8, online: bool = False) -> torch.Tensor:
    """Shift part of the channels along the segment axis (TSM Sec. 3.1-3.2, Fig. 1).

    With ``fold = C // fold_div`` and ``t`` the segment index:

    * offline (bi-directional): ``out[t, :fold] = x[t+1, :fold]`` (shift back in time),
      ``out[t, fold:2fold] = x[t-1, fold:2fold]`` (shift forward in time), the rest is copied;
      out-of-range segments give zeros.
    * online (uni-directional): ``out[t, :fold] = x[t-1, :fold]`` (from the past only),
      ``out[0, :fold] = 0``, the rest copied.

    Args:
        x: ``(B*N, C, H, W)`` features of N segments per video folded into the batch.
        n_segment: N.
        fold_div: The fraction 1/fold_div of channels moved per direction.
        online: Uni-directional shift.

    Returns:
        Tensor of the same shape, dtype and device as ``x``.

    Raises:
        ValueError: if the batch is not a multiple of ``n_segment``.
    """
    nt, c, h, w = x.shape
    if nt % n_segment:
        raise ValueError(f"batch {nt} is not a multiple of n_segment={n_segment}")
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    if online:
        out[:, 1:, :fold] = x[:, :-1, :fold]
        out[:, :, fold:] = x[:, :, fold:]
    else:
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
        out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, c, h, w)


class TemporalShift(nn.Module):
    """:func:`temporal_shift` as a module (no parameters). ``(B*N, C, H, W) -> (B*N, C, H, W)``."""

    def __init__(self, n_segment: int, fold_div: int = 8, online: bool = False) -> None:
        super().__init__()
        self.n_segment, self.fold_div, self.online = n_segment, fold_div, online

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        return temporal_shift(x, self.n_segment, self.fold_div, self.online)

    def extra_repr(self) -> str:
        return f"n_segment={self.n_segment}, fold_div={self.fold_div}, online={self.online}"


class TSM(TemporalResNet):
    """TSM: a ResNet with a residual temporal shift in every block and average consensus.

    Shapes:
        forward: ``x: (B, N, 3, H, W)`` -> ``(B, num_classes)``.
    """

    def __init__(self, config: TSMConfig) -> None:
        factory = None
        if config.shift:
            def factory(channels: int, stage: int, index: int) -> nn.Module:
                return TemporalShift(config.n_segment, config.fold_div, config.online)
        super().__init__(
            Bottleneck if config.bottleneck else BasicBlock, config.layers,
            n_segment=config.n_segment, num_classes=config.num_classes, widths=config.widths,
            stem_width=config.stem_width, stem_kernel=config.stem_kernel, stem_stride=config.stem_stride,
            stem_pool=config.stem_pool, temporal=factory, dropout=config.dropout,
        )
        self.config = config


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a reference library's state dict into TSM's keys.

    Args:
        library: ``"torchvision"``: a ``torchvision.models.resnet50`` state dict (identical
            keys; the shift has no parameters). ``"tsm"``: the official TSM checkpoints, whose
            keys look like ``module.base_model.layer1.0.conv1.net.weight`` and
            ``module.new_fc.weight``.
        state_dict: The state dict to convert.

    Returns:
        A dict for ``TSM.load_state_dict``.

    Raises:
        ValueError: unknown ``library``.
    """
    if library == "torchvision":
        return dict(state_dict)
    if library == "tsm":
        out = {}
        for k, v in state_dict.items():
            k = k.removeprefix("module.")
            if k.startswith("new_fc."):
                out["fc." + k.removeprefix("new_fc.")] = v
                continue
            k = k.removeprefix("base_model.").replace(".conv1.net.", ".conv1.")
            out[k] = v
        return out
    raise ValueError(f"unknown library {library!r}; expected 'torchvision' or 'tsm'")


@register_model(
    "lin2019tsm", alias="tsm", stage=1, config=TSMConfig,
    reported=(Reported("params_m", 24.3, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       "TSM ResNet-50; the 400-class Kinetics head gives 24.33 M",
                       kind="survey", tolerance_pct=0.5),),
    temporal=True, clip_to_input=clip_to_segments,
)
def tsm(config: TSMConfig) -> TSM:
    """Build :class:`TSM` from a :class:`TSMConfig` (random weights)."""
    return TSM(config)


@register_check("lin2019tsm", "reference", evidence="independent-reference")
def _tsm_reference_check() -> dict:
    """(a) the shift vs :func:`videozoo.references.tsm.shift_loop`, the paper's Fig. 1 definition
    written as loops; (b) TSM-R50 with the shift disabled vs ``torchvision.models.resnet50``
    with the same weights on every frame."""
    from torchvision.models import resnet50

    from videozoo.references.tsm import shift_loop

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * 8, 64, 7, 7, generator=gen)
    shift_diff = 0.0
    for online in (False, True):
        ours = temporal_shift(x, 8, 8, online)
        ref = shift_loop(x, 8, 8, online)
        shift_diff = max(shift_diff, (ours - ref).abs().max().item())

    torch.manual_seed(0)
    tv = resnet50(num_classes=400).eval()
    cfg = TSMConfig.paper()
    cfg.shift = False
    model = TSM(cfg).eval()
    model.load_state_dict(load_state_dict_from("torchvision", tv.state_dict()))
    clip = torch.rand(1, 3, cfg.n_segment, 112, 112, generator=gen)
    seg = clip_to_segments(cfg, clip)
    with torch.no_grad():
        ours = model(seg)
        ref = tv(seg.flatten(0, 1)).view(1, cfg.n_segment, -1).mean(1)
    backbone_diff = (ours - ref).abs().max().item()
    tol = 1e-5
    passed = shift_diff == 0.0 and backbone_diff <= tol
    return {
        "passed": passed,
        "summary": (f"shift == the paper's Fig. 1 definition written as loops (max abs diff {shift_diff:.1e}, "
                    f"offline and online); "
                    f"shift-disabled TSM-R50 vs torchvision resnet50 + mean over 8 segments at 112x112: "
                    f"max abs diff {backbone_diff:.2e} (tol {tol:g})"),
        "max_abs_diff": backbone_diff,
        "shift_max_abs_diff": shift_diff,
        "tolerance": tol,
        "reference": "videozoo.references.tsm.shift_loop; torchvision.models.resnet50",
    }
