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
* Sec. 4.1 / 3.2: the backbone is Inception with Batch Normalization (BN-Inception, Ioffe &
  Szegedy, arXiv 1502.03167, Fig. 5 of its appendix): :class:`BNInception`, built as the
  authors' PyTorch release builds it (yjxiong/tsn-pytorch@2f0468e with its model zoo
  yjxiong/tensorflow-model-zoo.torch, branch tsn-pytorch @9788c67, ``bninception/
  bn_inception.yaml``): every convolution has a bias and is followed by BN and ReLU, and
  pooling rounds its output size up (Caffe's convention). Its layer table is
  ``videozoo/reference_tables/tsn_bninception_ucf101.json``; :func:`load_state_dict_from`
  loads the release's checkpoints. :meth:`TSNConfig.paper` is the RGB network on UCF-101
  (``TSN(101, 3, 'RGB', base_model='BNInception', dropout=0.8)``).
* ``backbone="resnet50"`` (registered as ``tsn_r50``): torchvision's ResNet-50, which the
  same release also accepts as ``base_model='resnet50'``.

Choices and simplifications:

* Frames are in [0, 1] RGB; the release feeds BN-Inception BGR frames in 0-255 minus the mean
  (104, 117, 128), a data transform left to the caller.
* RGB-difference and warped-flow modalities and the weighted fusion of streams are not
  built; a two-stream TSN is two models whose scores are averaged. A small BatchNorm ConvNet
  (``backbone="small"``) serves the tiny config.
* The consensus is :class:`videozoo.layers.consensus.SegmentConsensus` (``"avg"``, also
  ``"max"``). With average consensus the model is invariant to the order of its segments,
  so it cannot tell a clip from its time reversal; the registry marks it
  ``temporal=False`` and the tiny config uses one snippet per frame of the clip (``N = T``)
  so that a clip and its reversal give exactly the same set of snippets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from videozoo.layers.consensus import SegmentConsensus
from videozoo.registry import Reported, register_check, register_model, register_variant
from videozoo.testing import randomise_batchnorm

__all__ = ["TSNConfig", "BNInception", "SmallConvNet", "TSN", "tsn", "clip_to_input", "cross_modality_init",
           "load_state_dict_from"]


@dataclass
class TSNConfig:
    """Configuration of :class:`TSN`.

    Attributes:
        num_classes: Output classes (101 for UCF-101).
        num_segments: ``N`` snippets per video (3 in training in the paper).
        modality: ``"rgb"`` (one frame per snippet) or ``"flow"`` (``new_length`` flow fields).
        new_length: Flow fields per flow snippet (5 in the paper); unused for RGB.
        backbone: ``"bninception"`` (the paper's), ``"resnet50"`` (torchvision) or ``"small"``.
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
    backbone: str = "bninception"
    small_widths: tuple[int, int, int] = (16, 32, 64)
    consensus: str = "avg"
    dropout: float = 0.8
    partial_bn: bool = True
    frames: int = 18
    size: int = 224

    @classmethod
    def paper(cls) -> "TSNConfig":
        """RGB TSN with BN-Inception, N = 3 segments of 224x224, UCF-101 (Sec. 4.1): the authors'
        ``TSN(101, 3, 'RGB', base_model='BNInception', dropout=0.8)`` (yjxiong/tsn-pytorch@2f0468e).

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


# BN-Inception (arXiv 1502.03167, appendix Fig. 5): per Inception module the widths of the 1x1
# branch, the 3x3 branch (reduce, 3x3), the double-3x3 branch (reduce, 3x3, 3x3), the pooling
# ("avg" or "max") and its 1x1 projection (0: the pooled input passes through), and the stride.
# The two stride-2 modules (3c, 4e) have no 1x1 branch.
_BN_INCEPTION_MODULES = (
    # name  1x1  3x3r  3x3  d3x3r  d3x3  pool   proj  stride
    ("3a",  64,  64,   64,  64,    96,   "avg", 32,   1),
    ("3b",  64,  64,   96,  64,    96,   "avg", 64,   1),
    ("3c",  0,   128,  160, 64,    96,   "max", 0,    2),
    ("4a",  224, 64,   96,  96,    128,  "avg", 128,  1),
    ("4b",  192, 96,   128, 96,    128,  "avg", 128,  1),
    ("4c",  160, 128,  160, 128,   160,  "avg", 128,  1),
    ("4d",  96,  128,  192, 160,   192,  "avg", 128,  1),
    ("4e",  0,   128,  192, 192,   256,  "max", 0,    2),
    ("5a",  352, 192,  320, 160,   224,  "avg", 128,  1),
    ("5b",  352, 192,  320, 192,   224,  "max", 128,  1),
)


class ConvBNReLU(nn.Sequential):
    """``conv (with bias) -> BN -> ReLU``, BN-Inception's unit; children ``conv``, ``bn``, ``relu``.

    Shapes:
        ``(B, in_ch, H, W) -> (B, out_ch, H', W')``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=True)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)


class InceptionBN(nn.Module):
    """One BN-Inception module: 1x1, 3x3 and double-3x3 branches and a pooled branch, concatenated.

    Args:
        in_ch: Input channels. c1, c3r, c3, d3r, d3, pool, proj, stride: one row of the layer
            table (``c1 = 0``: no 1x1 branch; ``proj = 0``: the pooled input passes through).

    Shapes:
        ``(B, in_ch, H, W) -> (B, out_channels, H/stride, W/stride)`` (rounded up).
    """

    def __init__(self, in_ch: int, c1: int, c3r: int, c3: int, d3r: int, d3: int, pool: str, proj: int,
                 stride: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(in_ch, c1, 1) if c1 else None
        self.branch3x3_reduce = ConvBNReLU(in_ch, c3r, 1)
        self.branch3x3 = ConvBNReLU(c3r, c3, 3, stride, 1)
        self.branch3x3dbl_reduce = ConvBNReLU(in_ch, d3r, 1)
        self.branch3x3dbl_1 = ConvBNReLU(d3r, d3, 3, 1, 1)
        self.branch3x3dbl_2 = ConvBNReLU(d3, d3, 3, stride, 1)
        if stride == 1:
            pool_layer = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
            self.pool = pool_layer(3, 1, 1, ceil_mode=True)
        else:
            self.pool = nn.MaxPool2d(3, stride, ceil_mode=True)
        self.branch_pool_proj = ConvBNReLU(in_ch, proj, 1) if proj else None
        self.out_channels = c1 + c3 + d3 + (proj or in_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W)
        outs = [] if self.branch1x1 is None else [self.branch1x1(x)]
        outs.append(self.branch3x3(self.branch3x3_reduce(x)))
        outs.append(self.branch3x3dbl_2(self.branch3x3dbl_1(self.branch3x3dbl_reduce(x))))
        pooled = self.pool(x)
        outs.append(pooled if self.branch_pool_proj is None else self.branch_pool_proj(pooled))
        return torch.cat(outs, dim=1)


class BNInception(nn.Module):
    """Inception with Batch Normalization (arXiv 1502.03167, Fig. 5), TSN's backbone.

    Stem ``7x7/2 conv (64) -> 3x3/2 max-pool -> 1x1 conv (64) -> 3x3 conv (192) -> 3x3/2 max-pool``,
    ten Inception modules (:data:`_BN_INCEPTION_MODULES`) and global average pooling: 1024
    features. Max- and average-pooling round their output size up, as in the authors' model.

    Args:
        in_channels: 3 (RGB) or ``2 * new_length`` (stacked flow).

    Shapes:
        ``(B, in_channels, H, W) -> (B, 1024)``; 224x224 gives 7x7 maps before pooling.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, 64, 7, 2, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2_reduce = ConvBNReLU(64, 64, 1)
        self.conv2 = ConvBNReLU(64, 192, 3, 1, 1)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        ch = 192
        for name, *widths in _BN_INCEPTION_MODULES:
            block = InceptionBN(ch, *widths)
            setattr(self, f"inception{name}", block)
            ch = block.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, H, W) -> (B, 1024)``."""
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(self.conv2_reduce(x)))
        for name, *_ in _BN_INCEPTION_MODULES:
            x = getattr(self, f"inception{name}")(x)
        return torch.flatten(self.avgpool(x), 1)


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
    if config.backbone == "bninception":
        net = BNInception(config.in_channels)
        return net, net.num_features
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
    raise ValueError(f"backbone must be 'bninception', 'resnet50' or 'small', got {config.backbone!r}")


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
        nn.init.normal_(self.fc.weight, 0, 0.001)  # the release's classifier initialisation
        nn.init.zeros_(self.fc.bias)
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


_RELEASE = "yjxiong/tsn-pytorch@2f0468e (models.py; BN-Inception from yjxiong/tensorflow-model-zoo.torch@9788c67)"


@register_model("wang2016temporal", alias="tsn", stage=1, config=TSNConfig, temporal=False, clip_to_input=clip_to_input,
                reported=(Reported("params_m", 10.3738, f"{_RELEASE}: TSN(101, 3, 'RGB', base_model='BNInception', "
                                   "dropout=0.8), parameters counted on a CPU build", "authors' released code",
                                   kind="release", tolerance_pct=0.5),))
def tsn(config: TSNConfig) -> TSN:
    """Build :class:`TSN` from a :class:`TSNConfig`."""
    return TSN(config)


register_variant(
    "tsn_r50", of="wang2016temporal", paper_overrides={"backbone": "resnet50"},
    reported=(Reported("params_m", 23.715, f"{_RELEASE}: TSN(101, 3, 'RGB', base_model='resnet50', dropout=0.8) "
                       "with torchvision's resnet50, parameters counted on a CPU build", "authors' released code",
                       kind="release", tolerance_pct=0.5),),
    description="TSN with torchvision's ResNet-50 instead of the paper's BN-Inception, as the authors' PyTorch "
                "release also builds it (base_model='resnet50'); RGB, N = 3, UCF-101 head",
)

_BN_INCEPTION_KEY = re.compile(r"^(conv1_7x7_s2|conv2_3x3_reduce|conv2_3x3|inception_(\w\w)_(\w+?))(_bn)?\.(\w+)$")
_BN_INCEPTION_BRANCH = {"1x1": "branch1x1", "3x3_reduce": "branch3x3_reduce", "3x3": "branch3x3",
                        "double_3x3_reduce": "branch3x3dbl_reduce", "double_3x3_1": "branch3x3dbl_1",
                        "double_3x3_2": "branch3x3dbl_2", "pool_proj": "branch_pool_proj"}
_BN_INCEPTION_STEM = {"conv1_7x7_s2": "conv1", "conv2_3x3_reduce": "conv2_reduce", "conv2_3x3": "conv2"}


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Map a reference state dict onto :class:`TSN` keys (as timm's ``checkpoint_filter_fn``).

    Args:
        library: ``"tsn-pytorch"``: a checkpoint of the authors' PyTorch release
            (yjxiong/tsn-pytorch), the state dict of its ``TSN`` with or without DataParallel's
            ``module.`` prefix, for ``base_model='BNInception'`` (Caffe-style names such as
            ``inception_3a_double_3x3_1_bn.weight`` become
            ``backbone.inception3a.branch3x3dbl_1.bn.weight``) or ``'resnet50'`` (torchvision
            names under ``backbone.``); ``new_fc`` (or ``base_model.fc`` when the release was
            built without dropout) becomes ``fc``.
            ``"torchvision"``: a ``torchvision.models.resnet50`` state dict, whose ``fc``
            becomes TSN's snippet classifier and every other tensor goes to the backbone.
        state_dict: The reference state dict.

    Returns:
        A state dict for ``TSN`` (the same tensors, renamed).

    Raises:
        ValueError: for an unsupported library.
    """
    if library == "torchvision":
        return {(k if k.startswith("fc.") else f"backbone.{k}"): v for k, v in state_dict.items()}
    if library != "tsn-pytorch":
        raise ValueError(f"library must be 'tsn-pytorch' or 'torchvision', got {library!r}")
    out = {}
    for key, value in state_dict.items():
        k = key.removeprefix("module.")
        if k.startswith("new_fc.") or k.startswith("base_model.fc."):
            out["fc." + k.rsplit(".", 1)[1]] = value
            continue
        k = k.removeprefix("base_model.")
        m = _BN_INCEPTION_KEY.match(k)
        if m:
            layer, block, branch, bn, tensor = m.groups()
            unit = f"inception{block}.{_BN_INCEPTION_BRANCH[branch]}" if block else _BN_INCEPTION_STEM[layer]
            k = f"{unit}.{'bn' if bn else 'conv'}.{tensor}"
        out[f"backbone.{k}"] = value
    return out


def cross_modality_init(rgb_state_dict: dict, in_channels: int = 10, key: str | None = None) -> dict:
    """Cross-modality pre-training (Sec. 3.2): turn an RGB state dict into a flow one.

    The first convolution's weights ``(O, 3, k, k)`` are averaged over the 3 colour
    channels and the average is replicated over ``in_channels`` flow channels, giving
    ``(O, in_channels, k, k)``; every other tensor is copied.

    Args:
        rgb_state_dict: State dict of an RGB model (TSN or a torchvision ResNet).
        in_channels: Channels of a flow snippet (``2 * new_length``, 10 in the paper).
        key: Name of the first convolution's weight; default the first present of
            ``"backbone.conv1.conv.weight"`` (BN-Inception), ``"backbone.conv1.weight"`` and
            ``"conv1.weight"`` (ResNet).

    Returns:
        A new state dict (tensors cloned).

    Raises:
        KeyError: if the first convolution is not found. ValueError: if it does not have 3 input channels.
    """
    if key is None:
        key = next((k for k in ("backbone.conv1.conv.weight", "backbone.conv1.weight", "conv1.weight")
                    if k in rgb_state_dict), None)
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
    cfg = TSNConfig(num_classes=num_classes, num_segments=num_segments, size=size, backbone="resnet50")
    model = TSN(cfg)
    model.load_state_dict(load_state_dict_from("torchvision", ref.state_dict()), strict=True)
    model.eval()
    x = torch.rand(2, num_segments, 3, size, size)
    with torch.no_grad():
        out = model(x)
        manual = torch.stack([ref(x[:, k]) for k in range(num_segments)], dim=1).mean(dim=1)
    return {"max_abs_diff": (out - manual).abs().max().item(), "max_abs_reference": manual.abs().max().item()}


@register_check("wang2016temporal", "reference", evidence="independent-reference")
def _tsn_reference_check() -> dict:
    """(1) BN-Inception TSN: the layer table of the authors' release
    (``reference_tables/tsn_bninception_ucf101.json``) mapped by :func:`load_state_dict_from`
    equals our paper config's state dict, name by name and shape by shape. (2) ResNet-50 TSN
    (``tsn_r50``): equals torchvision ``resnet50`` per snippet + segment mean."""
    from videozoo.reference_tables import compare_with_table, load_table

    table = load_table("tsn_bninception_ucf101")
    with torch.device("meta"):
        paper = TSN(TSNConfig.paper())
    layers = compare_with_table(table, lambda sd: load_state_dict_from("tsn-pytorch", sd), paper.state_dict(),
                                sum(p.numel() for p in paper.parameters()))
    tol = 1e-5
    r = reference_diff()
    return {
        "passed": bool(layers["passed"] and r["max_abs_diff"] <= tol),
        "summary": (
            f"layer table of the authors' BN-Inception TSN (yjxiong/tsn-pytorch@2f0468e): {layers['matched']}/"
            f"{layers['entries']} entries map to ours with equal shapes ({len(layers['missing'])} missing, "
            f"{len(layers['unexpected'])} unexpected, {len(layers['shape_mismatches'])} shape mismatches); params "
            f"{layers['own_params'] / 1e6:.4f} M vs authors' {layers['authors_params'] / 1e6:.4f} M "
            f"({layers['params_gap_pct']:+.3f} %). ResNet-50 TSN with N=3 112x112 snippets vs torchvision resnet50 "
            f"(same random weights, eval) per snippet, averaged: max abs diff {r['max_abs_diff']:.2e} (tol {tol})"
        ),
        "layer_table": {k: v for k, v in layers.items() if k != "passed"},
        "max_abs_diff": r["max_abs_diff"],
        "torchvision_max_abs_diff": r["max_abs_diff"],
        "max_abs_reference": r["max_abs_reference"],
        "tolerance": tol,
        "reference": "authors' layer table (yjxiong/tsn-pytorch@2f0468e); torchvision.models.resnet50",
    }
