"""Two-stream ConvNet: a spatial stream on one RGB frame and a temporal stream on stacked flow.

Paper: Karen Simonyan, Andrew Zisserman, "Two-Stream Convolutional Networks for Action
Recognition in Videos", NeurIPS 2014, arXiv 1406.2199.

What this file follows:

* Sec. 2 and Fig. 1: two ConvNets of the same shape. The spatial stream classifies a
  single still frame ``(B, 3, 224, 224)``; the temporal stream classifies a stack of
  ``L = 10`` optical-flow fields, ``2L = 20`` input channels ``(B, 20, 224, 224)``.
  Their class scores (softmax outputs) are fused late.
* Sec. 3.1 "optical flow stacking": channel ``2k`` is the horizontal and ``2k + 1`` the
  vertical displacement of flow field ``k`` (x then y per flow frame), with mean flow
  subtraction; the stack is built by :func:`videozoo.data.flow.clip_to_flow_stack`
  (OpenCV Farneback flow instead of the paper's Brox et al. flow).
* Sec. 4 / Fig. 1 layer table (the CNN-M-2048 network of Chatfield et al.): conv1
  ``96 7x7`` stride 2, LRN, pool; conv2 ``256 5x5`` stride 2, LRN (omitted in the temporal
  stream, as the paper does to save memory), pool; conv3, conv4, conv5 ``512 3x3`` stride
  1; pool; full6 4096 + dropout; full7 2048 + dropout; softmax.
* Sec. 6 "fusion by averaging": the two streams' softmax scores are averaged.

Choices and simplifications:

* Pools are ``3x3`` with stride 2 and Caffe's rounding (``ceil_mode=True``), the CNN-M
  pooling; with a 224 input ``full6`` sees ``512 x 6 x 6`` features.
* :class:`TwoStream.forward` returns the *logarithm* of the averaged softmax scores.
  Its arg-max is the paper's prediction, ``exp`` of it is the averaged score, and
  ``F.cross_entropy`` on it is the negative log-likelihood of the fused scores, so the
  whole model can be trained end to end (the paper trains each stream separately with
  its own softmax loss, and its best fusion is a linear SVM on the stacked L2-normalised
  softmax scores, which is not reproduced here).
* ``batch_norm`` (off in the paper config) adds BatchNorm after each convolution and
  ``lrn`` turns LRN off; the tiny config uses BN so that it trains from scratch quickly.
  The paper's multi-task training over UCF-101 and HMDB-51 is not reproduced.

The survey "A Survey on Backbones for Deep Video Action Recognition" (Table 1) lists "TN [2]
2014" with 36.6 M parameters. The network of Fig. 1 is much larger (``full6`` alone has
75.5 M weights per stream; about 181 M for both streams at 101 classes), so that figure is
shown but not checked, and the paper configuration has no figure to be checked against.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.registry import Reported, register_check, register_model

__all__ = ["TwoStreamConfig", "StreamConvNet", "TwoStream", "flow_stack", "clip_to_input", "two_stream"]


@dataclass
class TwoStreamConfig:
    """Configuration of :class:`TwoStream`.

    Attributes:
        num_classes: Output classes (101 for UCF-101).
        flow_frames: ``L``, stacked flow fields of the temporal stream (10); the clip
            has ``T = L + 1`` frames.
        size: Input height = width (224).
        widths: Filters of conv1..conv5 (96, 256, 512, 512, 512).
        fc_dims: Units of full6 and full7 (4096, 2048).
        conv1: ``(kernel, stride, padding)`` of conv1 (7, 2, 0).
        conv2: ``(kernel, stride, padding)`` of conv2 (5, 2, 1).
        lrn: Local response normalisation after conv1 (both streams) and conv2 (spatial).
        batch_norm: BatchNorm2d after every convolution (not in the paper).
        dropout: Dropout after full6 and full7 (the paper compares 0.5 and 0.9, Table 1).
    """

    num_classes: int = 101
    flow_frames: int = 10
    size: int = 224
    widths: tuple[int, ...] = (96, 256, 512, 512, 512)
    fc_dims: tuple[int, int] = (4096, 2048)
    conv1: tuple[int, int, int] = (7, 2, 0)
    conv2: tuple[int, int, int] = (5, 2, 1)
    lrn: bool = True
    batch_norm: bool = False
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "TwoStreamConfig":
        """CNN-M-2048 streams on 224x224 inputs, L = 10, 101 classes (Fig. 1)."""
        return cls()

    @classmethod
    def tiny(cls) -> "TwoStreamConfig":
        """Narrow streams (~0.15 M params in all) on 32x32 inputs, T = 8 (L = 7), with BN."""
        return cls(
            num_classes=8,
            flow_frames=7,
            size=32,
            widths=(16, 32, 32, 32, 32),
            fc_dims=(64, 64),
            conv1=(5, 1, 2),
            conv2=(3, 1, 1),
            lrn=False,
            batch_norm=True,
            dropout=0.1,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of the standard clip the model is fed from: ``(3, L + 1, size, size)``.

        :func:`clip_to_input` turns it into ``(rgb (3, H, W), flow (2L, H, W))``.
        """
        return (3, self.flow_frames + 1, self.size, self.size)


def _pool_out(n: int) -> int:
    """Length after a 3x3/2 max pool with ``ceil_mode=True`` and no padding."""
    out = math.ceil((n - 3) / 2) + 1
    return out - 1 if (out - 1) * 2 >= n else out


class StreamConvNet(nn.Module):
    """One stream: the CNN-M-2048-style ConvNet of Fig. 1.

    Args:
        config: A :class:`TwoStreamConfig`.
        in_channels: 3 (spatial stream) or ``2L`` (temporal stream).
        lrn2: Whether conv2 is followed by LRN (spatial stream only, per the paper).
    """

    def __init__(self, config: TwoStreamConfig, in_channels: int, lrn2: bool) -> None:
        super().__init__()
        w = config.widths
        if len(w) != 5:
            raise ValueError("widths must hold 5 numbers (conv1..conv5)")
        k1, s1, p1 = config.conv1
        k2, s2, p2 = config.conv2
        specs = [(in_channels, w[0], k1, s1, p1), (w[0], w[1], k2, s2, p2),
                 (w[1], w[2], 3, 1, 1), (w[2], w[3], 3, 1, 1), (w[3], w[4], 3, 1, 1)]
        layers: list[nn.Module] = []
        hw = config.size
        for i, (cin, cout, k, s, p) in enumerate(specs):
            layers.append(nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            hw = (hw + 2 * p - k) // s + 1
            if config.lrn and (i == 0 or (i == 1 and lrn2)):
                layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            if i in (0, 1, 4):
                layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
                hw = _pool_out(hw)
        if hw < 1:
            raise ValueError(f"input size {config.size} is too small for this stream")
        self.features = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.flat_dim = w[4] * hw * hw
        self.fc6 = nn.Linear(self.flat_dim, config.fc_dims[0])
        self.fc7 = nn.Linear(config.fc_dims[0], config.fc_dims[1])
        self.fc8 = nn.Linear(config.fc_dims[1], config.num_classes)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of one stream.

        Args:
            x: ``(B, C_in, H, W)``: an RGB frame (``C_in = 3``) or a flow stack (``C_in = 2L``).

        Returns:
            ``(B, num_classes)`` logits (softmax not applied).
        """
        # x: (B, C_in, H, W)
        x = self.features(x).flatten(1)
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


class TwoStream(nn.Module):
    """Spatial + temporal stream with late fusion by averaging softmax scores (Sec. 2, 6).

    Args:
        config: A :class:`TwoStreamConfig`.
    """

    def __init__(self, config: TwoStreamConfig) -> None:
        super().__init__()
        self.config = config
        self.spatial = StreamConvNet(config, in_channels=3, lrn2=True)
        self.temporal = StreamConvNet(config, in_channels=2 * config.flow_frames, lrn2=False)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Log of the averaged class scores of the two streams.

        Args:
            rgb: ``(B, 3, H, W)`` one frame of the clip.
            flow: ``(B, 2L, H, W)`` stacked flow, x then y displacement per flow field.

        Returns:
            ``(B, num_classes)``: ``log((softmax(spatial) + softmax(temporal)) / 2)``.
        """
        # rgb: (B, 3, H, W), flow: (B, 2L, H, W)
        log_p = torch.stack([F.log_softmax(self.spatial(rgb), dim=-1),
                             F.log_softmax(self.temporal(flow), dim=-1)])  # (2, B, K)
        return torch.logsumexp(log_p, dim=0) - math.log(2.0)


def flow_stack(clip: torch.Tensor) -> torch.Tensor:
    """Stacked optical flow of a clip (Sec. 3.1), via :func:`videozoo.data.flow.clip_to_flow_stack`.

    Args:
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        ``(B, 2 (T - 1), H, W)`` float32 on the clip's device: channel ``2k`` is the x and
        ``2k + 1`` the y displacement from frame ``k`` to ``k + 1`` (mean-subtracted, scaled
        to ``[-1, 1]``). A clip on the ``meta`` device (shape-only runs, e.g. FLOP counting)
        gives an empty ``meta`` tensor of that shape.
    """
    b, _, t, h, w = clip.shape
    if clip.device.type == "meta":
        return torch.empty(b, 2 * (t - 1), h, w, device="meta", dtype=clip.dtype)
    from videozoo.data.flow import clip_to_flow_stack

    return clip_to_flow_stack(clip).to(clip.dtype)


def clip_to_input(config: TwoStreamConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard clip -> ``(centre RGB frame (B, 3, H, W), flow stack (B, 2(T-1), H, W))``.

    Args:
        config: A :class:`TwoStreamConfig`; the clip must have ``T = flow_frames + 1``.
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Raises:
        ValueError: if ``T - 1 != config.flow_frames``.
    """
    t = clip.shape[2]
    if t - 1 != config.flow_frames:
        raise ValueError(f"clip has {t} frames; the temporal stream needs L + 1 = {config.flow_frames + 1}")
    return clip[:, :, t // 2], flow_stack(clip)


@register_model(
    "simonyan2014twostream",
    alias="two_stream",
    stage=1,
    config=TwoStreamConfig,
    reported=(Reported("params_m", 36.6, "A Survey on Backbones for Deep Video Action Recognition, Table 1",
                       note="listed as 'TN [2] 2014'; the two CNN-M-2048 streams of Fig. 1 have about 181 M, so "
                            "this figure counts some other network",
                       kind="survey", tolerance_pct=None),),
    temporal=True,
    clip_to_input=clip_to_input,
)
def two_stream(config: TwoStreamConfig) -> TwoStream:
    """Build :class:`TwoStream` from a :class:`TwoStreamConfig`."""
    return TwoStream(config)


@register_check("simonyan2014twostream", "reference", evidence="independent-reference")
def _two_stream_reference() -> dict:
    """Layer table and fusion against :mod:`videozoo.references.two_stream`, and flow channel order.

    1. The paper config with narrow widths (the paper's kernels, strides, padding, LRN and
       pooling, 224x224 inputs, L = 10): the model output equals the reference's
       ``log(mean(softmax(s), softmax(t)))``, whose streams are the CNN-M-2048 table restated
       with ``torch.nn.functional`` and given the module's weights in order.
    2. The temporal stream's conv1 receives exactly ``2L`` channels, and on a clip that
       moves only horizontally the even (x) channels carry the motion while the odd (y)
       channels stay near zero: the paper's x-then-y order per flow field.
    """
    from videozoo.references import two_stream as ref

    torch.manual_seed(0)
    cfg = dataclasses.replace(TwoStreamConfig.paper(), num_classes=5, widths=(8, 16, 16, 16, 16), fc_dims=(32, 16))
    model = TwoStream(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    rgb, flow = torch.rand(2, 3, cfg.size, cfg.size, generator=gen), torch.randn(2, 20, cfg.size, cfg.size, generator=gen)
    with torch.no_grad():
        out = model(rgb, flow)
        expected = ref.fused_log_scores([p.detach() for p in model.spatial.parameters()],
                                        [p.detach() for p in model.temporal.parameters()], rgb, flow)
    diff = (out - expected).abs().max().item()
    tol = 1e-5

    # Channel order: a bright square moving 2 px right per frame on a dark background.
    tcfg = TwoStreamConfig.tiny()
    T, H = tcfg.flow_frames + 1, tcfg.size
    clip = torch.zeros(1, 3, T, H, H)
    for i in range(T):
        clip[:, :, i, 12:20, 4 + 2 * i:12 + 2 * i] = 1.0
    tmodel = TwoStream(tcfg).eval()
    seen: dict = {}

    def _grab(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        seen["x"] = inp[0]

    hook = tmodel.temporal.features[0].register_forward_hook(_grab)
    with torch.no_grad():
        tmodel(*clip_to_input(tcfg, clip))
    hook.remove()
    x_in = seen["x"]
    x_energy = x_in[0, 0::2].abs().mean().item()
    y_energy = x_in[0, 1::2].abs().mean().item()
    order_ok = x_in.shape[1] == 2 * tcfg.flow_frames and x_energy > 5 * y_energy
    passed = diff <= tol and order_ok
    return {
        "passed": bool(passed),
        "summary": (
            f"narrow paper-config streams at 224x224 vs the CNN-M-2048 table restated with torch.nn.functional "
            f"and softmax averaging: max abs diff {diff:.2e} (tol {tol}); "
            f"temporal conv1 sees {x_in.shape[1]} = 2L channels, horizontal motion in even (x) channels "
            f"{x_energy:.3f} vs odd (y) {y_energy:.3f}"
        ),
        "max_abs_diff": diff,
        "tolerance": tol,
        "flow_channels": int(x_in.shape[1]),
        "x_channel_mean_abs": x_energy,
        "y_channel_mean_abs": y_energy,
        "reference": "videozoo.references.two_stream (CNN-M-2048 layer table, fusion by averaging)",
    }
