"""I3D: Inception-V1 inflated to 3D, and its two-stream (RGB + flow) version.

Paper: Joao Carreira, Andrew Zisserman, "Quo Vadis, Action Recognition? A New Model and
the Kinetics Dataset", CVPR 2017, arXiv 1705.07750.

What this file follows:

* Sec. 2.4 and Fig. 3 (left): the Inception-V1 (GoogLeNet) network with every 2D
  filter and pooling kernel given a temporal extent. Stem: ``7x7x7`` convolution with
  stride 2 in space and time, ``1x3x3`` max pool (stride 1,2,2), ``1x1x1`` and ``3x3x3``
  convolutions, ``1x3x3`` max pool; Inception blocks 3b-3c, a ``3x3x3`` max pool with
  stride 2, blocks 4b-4f, a ``2x2x2`` max pool with stride 2, blocks 5b-5c, a ``2x7x7``
  average pool, a ``1x1x1`` convolution giving the class scores, averaged over time.
  BatchNorm and ReLU follow every convolution but the last.
* Sec. 2.4 "Inflating 2D ConvNets into 3D" / "Bootstrapping 3D filters from 2D filters":
  :func:`inflate_from_2d` repeats each ``k x k`` kernel ``t`` times along time and divides
  it by ``t``, so that on a "boring" video (one frame repeated) the 3D network computes
  what the 2D network computes on the frame. The registered ``reference`` check measures
  exactly that against ``torchvision.models.googlenet``.
* Sec. 2.5 / Fig. 2(e): Two-Stream I3D, one I3D on RGB clips and one on optical flow
  (2 channels, x and y displacement), trained separately and averaged at test time
  (``two_stream=True``; we average the two streams' logits, the released evaluation code
  sums them, which has the same arg-max).
* Input: ``(B, 3, 64, 224, 224)`` clips (the paper trains on 64-frame snippets).

Choices and simplifications:

* Module and parameter names follow ``torchvision.models.googlenet`` (``conv1``,
  ``inception3a`` ... ``inception5b``, ``branch1``..``branch4``), so that
  :func:`inflate_from_2d` is a one-to-one key mapping. The paper's (TF-Slim) names map as
  ``Mixed_3b -> inception3a``, ``Mixed_3c -> inception3b``, ``Mixed_4b..4f ->
  inception4a..4e``, ``Mixed_5b/5c -> inception5a/5b``. Like both Inception-V1 code bases,
  the "5x5" branch uses a ``3x3(x3)`` kernel.
* Pooling uses ``ceil_mode=True`` without padding (torchvision's GoogLeNet) instead of
  TF's "SAME" padding; the output sizes are the same for the paper input.
* ``temporal_padding``: ``"zeros"`` (the released model's zero padding, used by
  :meth:`I3DConfig.paper`) or ``"replicate"`` (repeat the first/last frame). Only the
  latter keeps the boring-video equality exact at the clip's first and last frames,
  because a zero-padded temporal window sees fewer real frames there.
* ``width_mult`` and ``conv1_stride_t`` exist for the tiny config (narrow, and keeping
  the 8 frames of the tiny clip at the stem).

The survey "A Survey on Backbones for Deep Video Action Recognition" (Table 1) lists "Two-Stream I3D" with 25.0 M
parameters; :meth:`I3DConfig.paper` is that two-stream model (about 12.3 M per stream
with 400 Kinetics classes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.registry import Reported, register_check, register_model

__all__ = ["I3DConfig", "BasicConv3d", "Inception3d", "I3D", "TwoStreamI3D", "inflate_from_2d", "i3d"]

# (in is computed) ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5 (a 3x3 kernel), pool_proj
# -- the Inception-V1 table of torchvision.models.googlenet / Szegedy et al. Table 1.
_INCEPTION_CFG = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}


@dataclass
class I3DConfig:
    """Configuration of :class:`I3D` / :class:`TwoStreamI3D`.

    Attributes:
        num_classes: Output classes (400 for Kinetics-400).
        frames: Clip length ``T`` of :meth:`input_shape` (64 in the paper).
        size: Crop size (224).
        width_mult: Multiplier of every channel count of Inception-V1 (1.0 in the paper).
        conv1_kernel_t: Temporal extent of the first convolution (7).
        conv1_stride_t: Temporal stride of the first convolution (2).
        temporal_padding: ``"zeros"`` or ``"replicate"`` padding of convolutions in time.
        dropout: Dropout before the ``1x1x1`` logits convolution.
        two_stream: Build :class:`TwoStreamI3D` (RGB + flow) instead of one RGB I3D.
        flow_channels: Input channels of the flow stream (x and y displacement: 2).
    """

    num_classes: int = 400
    frames: int = 64
    size: int = 224
    width_mult: float = 1.0
    conv1_kernel_t: int = 7
    conv1_stride_t: int = 2
    temporal_padding: str = "zeros"
    dropout: float = 0.5
    two_stream: bool = True
    flow_channels: int = 2

    @classmethod
    def paper(cls) -> "I3DConfig":
        """Two-Stream I3D on ``3x64x224x224`` clips, 400 classes (Table 1 of the survey)."""
        return cls()

    @classmethod
    def tiny(cls) -> "I3DConfig":
        """RGB-only I3D at 1/8 width (~0.2 M params) on ``3x8x32x32`` clips for CPU tests."""
        return cls(num_classes=8, frames=8, size=32, width_mult=0.125, conv1_stride_t=1, dropout=0.0, two_stream=False)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample clip shape ``(3, T, H, W)``; the flow stream input is derived from it."""
        return (3, self.frames, self.size, self.size)


class BasicConv3d(nn.Module):
    """Convolution (no bias) + BatchNorm3d (eps 1e-3) + ReLU, the 3D twin of GoogLeNet's unit.

    Args:
        in_ch, out_ch: Channels.
        kernel: ``(kt, kh, kw)``; stride: ``(st, sh, sw)``; padding: spatial ``(ph, pw)``.
        temporal_padding: ``"zeros"`` or ``"replicate"``; the temporal pad is ``(kt - 1) // 2``.

    Raises:
        ValueError: unknown ``temporal_padding``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1),
                 padding: tuple[int, int] = (0, 0), temporal_padding: str = "zeros") -> None:
        super().__init__()
        if temporal_padding not in ("zeros", "replicate"):
            raise ValueError(f"temporal_padding must be 'zeros' or 'replicate', got {temporal_padding!r}")
        self.pad_t = (kernel[0] - 1) // 2
        self.replicate = temporal_padding == "replicate" and self.pad_t > 0
        pt = 0 if self.replicate else self.pad_t
        self.conv = nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=(pt, *padding), bias=False)
        self.bn = nn.BatchNorm3d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C_in, T, H, W) -> (B, C_out, T', H', W')``."""
        if self.replicate:
            # Repeat the first and last frame in time only; space is zero-padded by the conv.
            x = F.pad(x, (0, 0, 0, 0, self.pad_t, self.pad_t), mode="replicate")
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception3d(nn.Module):
    """Inflated Inception module (Fig. 3 right of the paper): four branches concatenated.

    Branches: ``1x1x1``; ``1x1x1 -> 3x3x3``; ``1x1x1 -> 3x3x3``; ``3x3x3`` max pool
    (stride 1) ``-> 1x1x1``. Output channels ``ch1 + ch3 + ch5 + pool_proj``.
    """

    def __init__(self, in_ch: int, ch1: int, ch3red: int, ch3: int, ch5red: int, ch5: int, pool_proj: int,
                 temporal_padding: str = "zeros") -> None:
        super().__init__()
        tp = temporal_padding
        self.branch1 = BasicConv3d(in_ch, ch1, (1, 1, 1), temporal_padding=tp)
        self.branch2 = nn.Sequential(
            BasicConv3d(in_ch, ch3red, (1, 1, 1), temporal_padding=tp),
            BasicConv3d(ch3red, ch3, (3, 3, 3), padding=(1, 1), temporal_padding=tp),
        )
        self.branch3 = nn.Sequential(
            BasicConv3d(in_ch, ch5red, (1, 1, 1), temporal_padding=tp),
            BasicConv3d(ch5red, ch5, (3, 3, 3), padding=(1, 1), temporal_padding=tp),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool3d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv3d(in_ch, pool_proj, (1, 1, 1), temporal_padding=tp),
        )
        self.out_channels = ch1 + ch3 + ch5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C_in, T, H, W) -> (B, out_channels, T, H, W)``."""
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def _scaled(c: int, mult: float) -> int:
    return max(1, int(round(c * mult)))


class I3D(nn.Module):
    """One I3D stream (Carreira & Zisserman 2017, arXiv 1705.07750, Fig. 3).

    Args:
        config: An :class:`I3DConfig` (``two_stream`` is ignored here).
        in_channels: 3 for RGB, 2 for optical flow.
    """

    def __init__(self, config: I3DConfig, in_channels: int = 3) -> None:
        super().__init__()
        self.config = config
        tp, w = config.temporal_padding, config.width_mult
        c64, c192 = _scaled(64, w), _scaled(192, w)
        kt = config.conv1_kernel_t
        self.conv1 = BasicConv3d(in_channels, c64, (kt, 7, 7), stride=(config.conv1_stride_t, 2, 2), padding=(3, 3),
                                 temporal_padding=tp)
        self.maxpool1 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)
        self.conv2 = BasicConv3d(c64, c64, (1, 1, 1), temporal_padding=tp)
        self.conv3 = BasicConv3d(c64, c192, (3, 3, 3), padding=(1, 1), temporal_padding=tp)
        self.maxpool2 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), ceil_mode=True)
        in_ch = c192
        for name, chans in _INCEPTION_CFG.items():
            block = Inception3d(in_ch, *[_scaled(c, w) for c in chans], temporal_padding=tp)
            setattr(self, name, block)
            in_ch = block.out_channels
            if name == "inception3b":
                self.maxpool3 = nn.MaxPool3d(3, stride=2, ceil_mode=True)
            elif name == "inception4e":
                self.maxpool4 = nn.MaxPool3d(2, stride=2, ceil_mode=True)
        self.num_features = in_ch
        self.dropout = nn.Dropout(config.dropout)
        self.logits = nn.Conv3d(in_ch, config.num_classes, kernel_size=1, bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk up to ``inception5b``.

        Args:
            x: ``(B, C_in, T, H, W)``.

        Returns:
            ``(B, 1024 * width_mult, T', H', W')``; for the paper input ``T'=8, H'=W'=7``.
        """
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.inception3b(self.inception3a(x))
        x = self.maxpool3(x)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            x = getattr(self, name)(x)
        x = self.maxpool4(x)
        return self.inception5b(self.inception5a(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits averaged over the remaining time (and space) positions.

        Args:
            x: ``(B, C_in, T, H, W)``.

        Returns:
            ``(B, num_classes)``.
        """
        # x: (B, C, T, H, W)
        f = self.forward_features(x)
        _, _, t, h, w = f.shape
        f = F.avg_pool3d(f, kernel_size=(min(2, t), min(7, h), min(7, w)), stride=1)  # paper: 2x7x7, stride 1
        return self.logits(self.dropout(f)).mean(dim=(2, 3, 4))


class TwoStreamI3D(nn.Module):
    """RGB I3D and flow I3D with averaged logits (paper Sec. 2.5, Fig. 2e).

    Args:
        config: An :class:`I3DConfig`.
    """

    def __init__(self, config: I3DConfig) -> None:
        super().__init__()
        self.config = config
        self.rgb = I3D(config, in_channels=3)
        self.flow = I3D(config, in_channels=config.flow_channels)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Average of the two streams' logits.

        Args:
            rgb: ``(B, 3, T, H, W)``.
            flow: ``(B, 2, T_f, H, W)`` (x, y displacement; ``T_f = T - 1`` from :func:`clip_to_input`).

        Returns:
            ``(B, num_classes)``.
        """
        return 0.5 * (self.rgb(rgb) + self.flow(flow))


def clip_to_input(config: I3DConfig, clip: torch.Tensor):
    """Turn a standard clip into the model input.

    Args:
        config: An :class:`I3DConfig`.
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        The clip itself for a single RGB stream; for ``two_stream`` the pair
        ``(clip, flow)`` with ``flow: (B, 2, T - 1, H, W)`` (Farneback flow between
        consecutive frames, channel 0 = x, 1 = y displacement).
    """
    if not config.two_stream:
        return clip
    from videozoo.models.two_stream import flow_stack

    b, _, t, h, w = clip.shape
    stack = flow_stack(clip)  # (B, 2(T-1), H, W), x then y per flow frame
    flow = stack.reshape(b, t - 1, 2, h, w).permute(0, 2, 1, 3, 4).contiguous()
    return clip, flow


@register_model(
    "carreira2017quo",
    alias="i3d",
    stage=1,
    config=I3DConfig,
    reported=(Reported("params_m", 25.0, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       note="Two-Stream I3D; the survey prints every figure with one decimal (Swin-L as 200.0), "
                            "so 25.0 is read as a whole-million figure: tolerance one million",
                       kind="survey", tolerance_pct=4.0),),
    temporal=True,
    clip_to_input=clip_to_input,
)
def i3d(config: I3DConfig) -> nn.Module:
    """Build :class:`TwoStreamI3D` when ``config.two_stream`` else an RGB :class:`I3D`."""
    return TwoStreamI3D(config) if config.two_stream else I3D(config)


def _inflate_tensor(src: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    """Repeat a 2D kernel ``(O, I, kh, kw)`` ``kt`` times in time and divide by ``kt``."""
    kt = target_shape[2]
    return src.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt


def inflate_from_2d(googlenet_state_dict: dict, config: I3DConfig | None = None) -> dict:
    """Inflate a torchvision GoogLeNet state dict into an I3D state dict (paper Sec. 2.4).

    Every 2D kernel ``(O, I, k, k)`` becomes ``(O, I, t, k, k)`` with ``t`` copies divided
    by ``t`` (the "boring video" bootstrapping); BatchNorm tensors are copied; ``fc`` becomes
    the ``1x1x1`` ``logits`` convolution when the class counts match (else it is left
    out). For a two-stream config both streams are inflated from the same weights and the
    flow stream's ``conv1`` gets the RGB kernel averaged over the 3 colour channels and
    repeated over the flow channels (as TSN's cross-modality initialisation does; the paper
    does not detail this step).

    Args:
        googlenet_state_dict: ``torchvision.models.googlenet(aux_logits=False)`` state dict
            (``transform_input`` is not part of the state dict; build the 2D model without it).
        config: Target :class:`I3DConfig` (default :meth:`I3DConfig.paper`); its
            ``width_mult`` must be 1.

    Returns:
        A state dict for :func:`i3d` ``(config)``; load it with ``strict=True`` unless
        the classifier was left out.

    Raises:
        KeyError: if a tensor of the target network has no counterpart in the 2D dict.
        ValueError: if shapes cannot be matched (e.g. ``width_mult != 1``).
    """
    config = config or I3DConfig.paper()
    with torch.device("meta"):
        target = I3D(replace(config, two_stream=False)).state_dict()
    single: dict[str, torch.Tensor] = {}
    for key, t in target.items():
        src_key = key.replace("logits.", "fc.")
        if src_key not in googlenet_state_dict:
            raise KeyError(f"no 2D tensor for {key!r} (looked for {src_key!r})")
        src = googlenet_state_dict[src_key]
        if key.startswith("logits."):
            if src.shape[0] != t.shape[0]:
                continue  # different number of classes: keep the fresh classifier
            single[key] = src.reshape(t.shape).clone()
            continue
        if src.dim() == 4 and t.dim() == 5:
            new = _inflate_tensor(src, t.shape)
        else:
            new = src.clone()
        if new.shape != t.shape:
            raise ValueError(f"{key}: 2D tensor {tuple(src.shape)} does not inflate to {tuple(t.shape)}")
        single[key] = new
    if not config.two_stream:
        return single
    out = {f"rgb.{k}": v for k, v in single.items()}
    for k, v in single.items():
        if k == "conv1.conv.weight":
            v = v.mean(dim=1, keepdim=True).repeat(1, config.flow_channels, 1, 1, 1)
        out[f"flow.{k}"] = v.clone()
    return out


def _randomised_googlenet() -> nn.Module:
    """A torchvision GoogLeNet with random weights of unit-scale activations and random BN statistics."""
    import torchvision

    # init_weights=False skips torchvision's truncated-normal init: every conv is re-drawn below.
    g = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
    for m in g.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return g.eval()


def boring_video_diff(temporal_padding: str = "replicate", frames: int = 8, size: int = 112, seed: int = 0,
                      googlenet: nn.Module | None = None) -> dict:
    """Pooled I3D features of a repeated-frame clip vs GoogLeNet features of the frame.

    Args:
        temporal_padding: Padding mode of the I3D under test.
        frames, size: Clip ``T`` and ``H = W``.
        seed: Seed of the random weights (when ``googlenet`` is not given) and of the frame.
        googlenet: Optional torchvision GoogLeNet (eval mode, ``fc`` kept) to inflate;
            default: one with random weights and BN statistics.

    Returns:
        ``{"max_abs_diff", "max_abs_ref", "feature_shape"}``.
    """
    torch.manual_seed(seed)
    g = copy.deepcopy(googlenet) if googlenet is not None else _randomised_googlenet()
    cfg = replace(I3DConfig.paper(), two_stream=False, temporal_padding=temporal_padding, num_classes=1000,
                  frames=frames, size=size)
    with torch.device("meta"):  # no random init: every tensor comes from the inflated dict
        model = I3D(cfg)
    model.load_state_dict(inflate_from_2d(g.state_dict(), cfg), strict=True, assign=True)
    model.eval()
    g.fc = nn.Identity()
    frame = torch.rand(2, 3, size, size)
    clip = frame.unsqueeze(2).expand(-1, -1, frames, -1, -1)
    with torch.no_grad():
        ref = g(frame)  # (2, 1024): GoogLeNet's globally pooled features
        ours = model.forward_features(clip).mean(dim=(2, 3, 4))  # (2, 1024)
    return {
        "max_abs_diff": (ours - ref).abs().max().item(),
        "max_abs_ref": ref.abs().max().item(),
        "feature_shape": list(ref.shape),
    }


@register_check("carreira2017quo", "reference", evidence="independent-reference")
def _i3d_boring_video() -> dict:
    """Boring-video equality against ``torchvision.models.googlenet`` (paper Sec. 2.4)."""
    tol = 1e-4
    torch.manual_seed(0)
    g = _randomised_googlenet()
    rep = boring_video_diff("replicate", googlenet=g)
    zeros = boring_video_diff("zeros", googlenet=g)
    passed = rep["max_abs_diff"] <= tol
    return {
        "passed": bool(passed),
        "summary": (
            f"inflated random GoogLeNet: I3D pooled features on a repeated frame (3x8x112x112) equal "
            f"torchvision GoogLeNet's on the frame, max abs diff {rep['max_abs_diff']:.2e} (tol {tol}, "
            f"feature scale {rep['max_abs_ref']:.2f}) with replicate temporal padding; "
            f"{zeros['max_abs_diff']:.2e} with zero padding (border frames differ)"
        ),
        "max_abs_diff": rep["max_abs_diff"],
        "max_abs_diff_zero_padding": zeros["max_abs_diff"],
        "max_abs_reference": rep["max_abs_ref"],
        "tolerance": tol,
        "reference": "torchvision.models.googlenet",
    }


@register_check("carreira2017quo", "inflation", evidence="independent-reference")
def _i3d_inflation_covers_all() -> dict:
    """The paper config loads an inflated GoogLeNet strictly and each kernel sums back to 2D."""
    import torchvision

    torch.manual_seed(0)
    g = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, num_classes=400)
    cfg = I3DConfig.paper()
    model = i3d(cfg)
    sd = inflate_from_2d(g.state_dict(), cfg)
    result = model.load_state_dict(sd, strict=True)
    g_sd = g.state_dict()
    worst, n_inflated = 0.0, 0
    for key, v in sd.items():
        if v.dim() == 5 and key.startswith("rgb.") and not key.startswith("rgb.logits"):
            src = g_sd[key[len("rgb."):]]
            worst = max(worst, (v.sum(dim=2) - src).abs().max().item())
            n_inflated += 1
    tol = 1e-6
    passed = not result.missing_keys and not result.unexpected_keys and worst <= tol
    return {
        "passed": bool(passed),
        "summary": f"{n_inflated} kernels inflated per stream, strict load of both streams ok; "
                   f"kernels summed over time equal the 2D ones (max abs diff {worst:.1e})",
        "kernels_inflated": n_inflated,
        "max_abs_diff": worst,
        "tolerance": tol,
        "reference": "torchvision.models.googlenet",
    }
