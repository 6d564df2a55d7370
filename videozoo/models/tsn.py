"""TSN: Temporal Segment Networks, sparse snippets and a segmental consensus.

Paper: Limin Wang, Yuanjun Xiong, Zhe Wang, Yu Qiao, Dahua Lin, Xiaoou Tang, Luc Van Gool,
"Temporal Segment Networks: Towards Good Practices for Deep Action Recognition",
ECCV 2016, arXiv 1608.00859.

What this file follows:

* Sec. 3.1, eq. (1): a video is split into ``N`` segments of equal duration, one short
  snippet is taken from each, one shared 2D ConvNet ``F(T_k; W)`` scores every snippet, a
  segmental consensus ``G`` (evenly weighted average) combines the ``N`` scores, and the
  softmax ``H`` is left to the loss. The input is ``(B, N, C, H, W)``.
* Sec. 3.2 "good practices": cross-modality pre-training (:func:`cross_modality_init`:
  average the RGB ``conv1`` filters over the 3 colour channels and replicate the average
  over the ``2 x 5 = 10`` channels of a stacked-flow snippet); partial BN (the mean and
  variance of every BatchNorm layer except the first are frozen during training,
  ``partial_bn``); a high dropout ratio after global pooling (0.8 for the spatial stream,
  the paper uses 0.7 for the temporal one).
* Inputs: RGB snippets of one frame (``C = 3``) or optical-flow snippets of 5 stacked
  fields (``C = 10``, x then y per field); ``N = 3`` segments during training.

Choices and simplifications:

* The backbone is torchvision's ``resnet50`` architecture (built without weights); the
  paper uses BN-Inception (Inception with Batch Normalization), which torchvision does
  not ship. A small BatchNorm ConvNet (``backbone="small"``) serves the tiny config.
* RGB-difference and warped-flow modalities and the weighted fusion of streams are not
  built; a two-stream TSN is two models whose scores are averaged.
* The consensus is :class:`videozoo.layers.consensus.SegmentConsensus` (``"avg"``, also
  ``"max"``). With average consensus the model is invariant to the order of its segments,
  so it cannot tell a clip from its time reversal; the registry marks it
  ``temporal=False`` and the tiny config uses one snippet per frame of the clip (``N = T``)
  so that a clip and its reversal give exactly the same set of snippets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from videozoo.layers.consensus import SegmentConsensus
from videozoo.registry import register_check, register_model
from videozoo.testing import randomise_batchnorm

__all__ = ["TSNConfig", "SmallConvNet", "TSN", "tsn", "clip_to_input", "cross_modality_init", "load_state_dict_from"]


@dataclass
class TSNConfig:
    """Configuration of :class:`TSN`.

    Attributes:
        num_classes: Output classes (101 for UCF-101).
        num_segments: ``N`` snippets per video (3 in training in the paper).
        modality: ``"rgb"`` (one frame per snippet) or ``"flow"`` (``new_length`` flow fields).
        new_length: Flow fields per flow snippet (5 in the paper); unused for RGB.
        backbone: ``"resnet50"`` (torchvision architecture) or ``"small"``.
        small_widths: Channels of the three convolutions of the ``"small"`` backbone.
        consensus: ``"avg"`` (paper) or ``"max"``.
        dropout: Dropout before the classifier (0.8 for RGB in the paper).
        partial_bn: Freeze the statistics of all BatchNorm layers but the first in training.
        frames: Length ``T`` of the standard clip :func:`clip_to_input` samples from.
        size: Input height = width (224).
    """

    num_classes: int = 101
    num_segments: int = 3
    modality: str = "rgb"
    new_length: int = 5
    backbone: str = "resnet50"
    small_widths: tuple[int, int, int] = (16, 32, 64)
    consensus: str = "avg"
    dropout: float = 0.8
    partial_bn: bool = True
    frames: int = 18
    size: int = 224

    @classmethod
    def paper(cls) -> "TSNConfig":
        """RGB TSN, N = 3, on 224x224 snippets (ResNet-50 in place of BN-Inception).

        The standard clip has 18 frames: 3 segments of 6, enough for a 5-field flow snippet.
        """
        return cls()

    @classmethod
    def tiny(cls) -> "TSNConfig":
        """Small BN ConvNet (~25 k params), N = T = 8 RGB snippets of 32x32."""
        return cls(num_classes=8, num_segments=8, backbone="small", dropout=0.0, partial_bn=False, frames=8, size=32)

    @property
    def in_channels(self) -> int:
        """Channels of one snippet: 3 (RGB) or ``2 * new_length`` (flow)."""
        return 3 if self.modality == "rgb" else 2 * self.new_length

    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of the standard clip ``(3, T, H, W)`` that :func:`clip_to_input` samples from.

        The model itself takes ``(N, C, H, W)`` per sample.
        """
        return (3, self.frames, self.size, self.size)


class SmallConvNet(nn.Module):
    """A three-layer BatchNorm ConvNet with global average pooling (tiny TSN backbone).

    Args:
        in_channels: Snippet channels.
        widths: Output channels of the three ``3x3`` convolutions (strides 1, 2, 2).

    Shapes:
        ``(B, in_channels, H, W) -> (B, widths[-1])``.
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.conv2 = nn.Conv2d(widths[0], widths[1], 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(widths[1])
        self.conv3 = nn.Conv2d(widths[1], widths[2], 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(widths[2])
        self.num_features = widths[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, H, W) -> (B, num_features)``."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean(dim=(2, 3))


def _build_backbone(config: TSNConfig) -> tuple[nn.Module, int]:
    """Backbone without classifier and its feature width."""
    if config.backbone == "resnet50":
        net = torchvision.models.resnet50(weights=None)
        if config.in_channels != 3:
            net.conv1 = nn.Conv2d(config.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        width = net.fc.in_features
        net.fc = nn.Identity()
        return net, width
    if config.backbone == "small":
        net = SmallConvNet(config.in_channels, config.small_widths)
        return net, net.num_features
    raise ValueError(f"backbone must be 'resnet50' or 'small', got {config.backbone!r}")


class TSN(nn.Module):
    """Temporal Segment Network (Wang et al. 2016, arXiv 1608.00859, Sec. 3.1 eq. 1).

    Args:
        config: A :class:`TSNConfig`.

    Raises:
        ValueError: unknown ``modality``, ``backbone`` or ``consensus``.
    """

    def __init__(self, config: TSNConfig) -> None:
        super().__init__()
        if config.modality not in ("rgb", "flow"):
            raise ValueError(f"modality must be 'rgb' or 'flow', got {config.modality!r}")
        if config.consensus not in ("avg", "max"):
            raise ValueError(f"consensus must be 'avg' or 'max', got {config.consensus!r}")
        self.config = config
        self.backbone, width = _build_backbone(config)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(width, config.num_classes)
        self.consensus = SegmentConsensus(config.consensus)

    def train(self, mode: bool = True) -> "TSN":
        """Switch train/eval mode; with ``partial_bn`` keep all BN layers but the first in eval.

        Partial BN (Sec. 3.2): after pre-training, only the first BatchNorm layer keeps
        re-estimating its mean and variance; the others use their stored statistics.
        """
        super().train(mode)
        if mode and self.config.partial_bn:
            bns = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for bn in bns[1:]:
                bn.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Video-level class scores (logits) from ``N`` snippets.

        Args:
            x: ``(B, N, C, H, W)`` snippets, ``C`` = 3 (RGB) or ``2 * new_length`` (flow).

        Returns:
            ``(B, num_classes)``: the consensus of the ``N`` snippet logits.
        """
        # x: (B, N, C, H, W)
        b, n = x.shape[:2]
        feats = self.backbone(x.flatten(0, 1))           # (B*N, D)
        logits = self.fc(self.dropout(feats))             # (B*N, K)
        return self.consensus(logits.view(b, n, -1))      # (B, K)


def clip_to_input(config: TSNConfig, clip: torch.Tensor) -> torch.Tensor:
    """Sample the ``N`` snippets of a standard clip with TSN's test-time (centre) sampling.

    Args:
        config: A :class:`TSNConfig`.
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        RGB: ``(B, N, 3, H, W)``, the frame at the centre of each of the ``N`` equal segments.
        Flow: ``(B, N, 2 * new_length, H, W)``, the ``new_length`` flow fields starting as
        close as possible to ``new_length // 2`` fields before each segment centre.

    Raises:
        ValueError: for a flow config when ``T < new_length + 1``.
    """
    from videozoo.data.sampling import segment_indices

    t = clip.shape[2]
    idx = segment_indices(t, config.num_segments, train=False).to(clip.device)
    if config.modality == "rgb":
        return clip.index_select(2, idx).transpose(1, 2).contiguous()  # (B, N, 3, H, W)
    L = config.new_length
    if t < L + 1:
        raise ValueError(f"a flow snippet needs {L + 1} frames, the clip has {t}")
    from videozoo.models.two_stream import flow_stack

    stack = flow_stack(clip)  # (B, 2(T-1), H, W)
    starts = (idx - L // 2).clamp(0, t - 1 - L).tolist()
    return torch.stack([stack[:, 2 * s: 2 * (s + L)] for s in starts], dim=1)


@register_model("wang2016temporal", alias="tsn", stage=1, config=TSNConfig, reported=(), temporal=False,
                clip_to_input=clip_to_input)
def tsn(config: TSNConfig) -> TSN:
    """Build :class:`TSN` from a :class:`TSNConfig`."""
    return TSN(config)


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Map a reference library's single-image classifier state dict onto :class:`TSN` keys.

    Args:
        library: ``"torchvision"`` (a ``torchvision.models.resnet50`` state dict, whose
            ``fc`` becomes TSN's snippet classifier and every other tensor goes to the backbone).
        state_dict: The reference state dict.

    Returns:
        A state dict for ``TSN`` with ``backbone="resnet50"``.

    Raises:
        ValueError: for an unsupported library.
    """
    if library != "torchvision":
        raise ValueError(f"only 'torchvision' state dicts are supported, got {library!r}")
    return {(k if k.startswith("fc.") else f"backbone.{k}"): v for k, v in state_dict.items()}


def cross_modality_init(rgb_state_dict: dict, in_channels: int = 10, key: str | None = None) -> dict:
    """Cross-modality pre-training (Sec. 3.2): turn an RGB state dict into a flow one.

    The first convolution's weights ``(O, 3, k, k)`` are averaged over the 3 colour
    channels and the average is replicated over ``in_channels`` flow channels, giving
    ``(O, in_channels, k, k)``; every other tensor is copied.

    Args:
        rgb_state_dict: State dict of an RGB model (TSN or a torchvision ResNet).
        in_channels: Channels of a flow snippet (``2 * new_length``, 10 in the paper).
        key: Name of the first convolution's weight; default ``"backbone.conv1.weight"``
            or ``"conv1.weight"``, whichever is present.

    Returns:
        A new state dict (tensors cloned).

    Raises:
        KeyError: if the first convolution is not found. ValueError: if it does not have 3 input channels.
    """
    if key is None:
        key = next((k for k in ("backbone.conv1.weight", "conv1.weight") if k in rgb_state_dict), None)
        if key is None:
            raise KeyError("first convolution not found; pass key=")
    w = rgb_state_dict[key]
    if w.dim() != 4 or w.shape[1] != 3:
        raise ValueError(f"{key} has shape {tuple(w.shape)}, expected (O, 3, k, k)")
    out = {k: v.clone() for k, v in rgb_state_dict.items()}
    out[key] = w.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
    return out


def reference_diff(num_segments: int = 3, size: int = 112, num_classes: int = 10, seed: int = 0) -> dict:
    """TSN forward vs torchvision ``resnet50`` on each snippet, then the mean over segments.

    Both models hold the same random weights (mapped with :func:`load_state_dict_from`),
    in eval mode. Returns ``{"max_abs_diff", "max_abs_reference"}``.
    """
    torch.manual_seed(seed)
    ref = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    randomise_batchnorm(ref)
    ref.eval()
    cfg = TSNConfig(num_classes=num_classes, num_segments=num_segments, size=size)
    model = TSN(cfg)
    model.load_state_dict(load_state_dict_from("torchvision", ref.state_dict()), strict=True)
    model.eval()
    x = torch.rand(2, num_segments, 3, size, size)
    with torch.no_grad():
        out = model(x)
        manual = torch.stack([ref(x[:, k]) for k in range(num_segments)], dim=1).mean(dim=1)
    return {"max_abs_diff": (out - manual).abs().max().item(), "max_abs_reference": manual.abs().max().item()}


@register_check("wang2016temporal", "reference", evidence="self-consistency")
def _tsn_matches_resnet50() -> dict:
    """TSN (ResNet-50, avg consensus) equals torchvision resnet50 per snippet + segment mean."""
    tol = 1e-5
    r = reference_diff()
    return {
        "passed": bool(r["max_abs_diff"] <= tol),
        "summary": (
            f"TSN with N=3 112x112 snippets equals torchvision resnet50 (same random weights, eval) applied to "
            f"each snippet and averaged over segments: max abs diff {r['max_abs_diff']:.2e} (tol {tol})"
        ),
        "max_abs_diff": r["max_abs_diff"],
        "max_abs_reference": r["max_abs_reference"],
        "tolerance": tol,
        "reference": "torchvision.models.resnet50",
    }
