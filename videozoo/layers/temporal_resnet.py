"""A 2D ResNet over segments folded into the batch, with a temporal module in each block.

TSM (arXiv 1811.08383), TEA (arXiv 2004.01398) and TDN (arXiv 2012.10071) all start from an
ImageNet ResNet-50 that is applied to every segment (snippet) of a video independently, as
in TSN (arXiv 1608.00859), and add temporal modelling *inside* the residual blocks: the
features of the N segments of one video are folded into the batch, ``(B*N, C, H, W)``, and a
temporal module reshapes them to ``(B, N, C, H, W)`` to exchange information across segments.

This file provides that common skeleton:

* :class:`TemporalBottleneck` / :class:`TemporalBasicBlock` are torchvision's own
  ``Bottleneck`` / ``BasicBlock`` (same constructor, same parameters and parameter names)
  plus a ``temporal`` sub-module applied to the input of the *residual branch* only, before
  ``conv1`` ("residual shift" placement, TSM Sec. 3.3, Fig. 3b). The shortcut still carries
  the untouched input, so the spatial features learnt on ImageNet are kept.
* :class:`TemporalResNet` has the attribute names of ``torchvision.models.ResNet``
  (``conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc``) so that a torchvision state
  dict loads as it is (:func:`load_torchvision_resnet`). With every temporal module an
  ``nn.Identity`` it computes exactly what torchvision's ResNet computes on each frame; that
  is the reference check of the TSM and TDN backbones.
* Widths, the stem stride and the stem max-pool are parameters so that the tiny configs can
  keep a 32x32 input from collapsing to 1x1 before the last stage.

The class scores of the N segments are averaged (segment consensus, TSN Sec. 3.1 eq. 1).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from videozoo.layers.consensus import SegmentConsensus

__all__ = [
    "TemporalBottleneck",
    "TemporalBasicBlock",
    "TemporalResNet",
    "TemporalFactory",
    "load_torchvision_resnet",
    "segment_center_indices",
    "clip_to_segments",
]

#: ``factory(channels, stage, block_index) -> nn.Module`` builds the temporal module of one
#: block; ``channels`` is the number of channels at the block input (where the module acts),
#: ``stage`` is 0..3 for ``layer1..layer4``. Returning ``None`` leaves the block purely spatial.
TemporalFactory = Callable[[int, int, int], "nn.Module | None"]


class TemporalBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with a temporal module on the residual branch.

    ``out = relu(x' + bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(temporal(x)))))))))`` where
    ``x'`` is ``x`` or ``downsample(x)``. All layers are created by torchvision's constructor.

    Args:
        *args, **kwargs: Passed to ``torchvision.models.resnet.Bottleneck``.
        temporal: Module mapping ``(B*N, C, H, W) -> (B*N, C, H, W)``; ``None`` = identity.

    Shapes:
        x: ``(B*N, inplanes, H, W)`` -> ``(B*N, planes*4, H/stride, W/stride)``.
    """

    def __init__(self, *args, temporal: nn.Module | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.temporal = temporal if temporal is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.temporal(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TemporalBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with a temporal module on the residual branch (see
    :class:`TemporalBottleneck`).

    Shapes:
        x: ``(B*N, inplanes, H, W)`` -> ``(B*N, planes, H/stride, W/stride)``.
    """

    def __init__(self, *args, temporal: nn.Module | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.temporal = temporal if temporal is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B*N, C, H, W)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.temporal(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


_TEMPORAL_BLOCKS = {Bottleneck: TemporalBottleneck, BasicBlock: TemporalBasicBlock}


class TemporalResNet(nn.Module):
    """ResNet applied per segment, with temporal modules, and average segment consensus.

    Args:
        block: ``torchvision.models.resnet.Bottleneck`` or ``BasicBlock`` (their temporal
            subclasses are used), or any block class with the torchvision constructor
            signature ``(inplanes, planes, stride, downsample, ...)``, a class attribute
            ``expansion`` and a ``temporal=`` keyword (e.g. TEA's Res2Net block); extra
            constructor keywords go in ``block_kwargs``.
        layers: Blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        n_segment: N, the number of segments per video.
        num_classes: K.
        widths: ``planes`` of the four stages (torchvision: ``(64, 128, 256, 512)``).
        stem_width: Output channels of the stem convolution (torchvision: 64).
        stem_kernel: Kernel size of the stem convolution (torchvision: 7, padding k//2).
        stem_stride: Stride of the stem convolution (torchvision: 2).
        stem_pool: Whether the 3x3/2 max-pool follows the stem (torchvision: ``True``).
        temporal: :data:`TemporalFactory` building each block's temporal module, or
            ``None`` for a plain per-frame ResNet (TSN).
        dropout: Dropout probability before ``fc`` (TSM uses 0.5 on Kinetics).
        block_kwargs: Extra keywords for every block constructor.

    Shapes:
        forward: ``x: (B, N, C, H, W)`` -> ``(B, num_classes)``.
        forward_frames: ``x: (B*N, C, H, W)`` -> ``(B*N, num_classes)`` (no consensus).

    Raises:
        ValueError: ``forward`` with ``N != n_segment``.
    """

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        *,
        n_segment: int,
        num_classes: int,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        stem_kernel: int = 7,
        stem_stride: int = 2,
        stem_pool: bool = True,
        temporal: TemporalFactory | None = None,
        dropout: float = 0.0,
        block_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.n_segment = n_segment
        block = _TEMPORAL_BLOCKS.get(block, block)
        block_kwargs = dict(block_kwargs or {})
        self.conv1 = nn.Conv2d(3, stem_width, stem_kernel, stem_stride, stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem_pool else nn.Identity()
        inplanes = stem_width
        for stage, (planes, n_blocks) in enumerate(zip(widths, layers)):
            stride = 1 if stage == 0 else 2
            blocks = []
            for i in range(n_blocks):
                downsample = None
                out_planes = planes * block.expansion
                if i == 0 and (stride != 1 or inplanes != out_planes):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
                    )
                tmod = temporal(inplanes, stage, i) if temporal is not None else None
                blocks.append(
                    block(inplanes, planes, stride if i == 0 else 1, downsample, temporal=tmod, **block_kwargs)
                )
                inplanes = out_planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(inplanes, num_classes)
        self.consensus = SegmentConsensus("avg")
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's ResNet initialisation: He normal for 2D convs, BN weight 1 / bias 0.
        # Other layers (e.g. 1D temporal convs) keep the initialisation their module chose.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B*N, 3, H, W)`` -> ``(B*N, stem_width, H/s, W/s)`` (conv1, bn1, relu, maxpool)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stages(self, x: torch.Tensor) -> torch.Tensor:
        """``layer1..layer4`` then global average pooling: ``(B*N, C, H, W) -> (B*N, F)``."""
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Per-segment class scores: ``x: (B*N, 3, H, W)`` -> ``(B*N, num_classes)``."""
        return self.fc(self.dropout(self.forward_stages(self.stem(x))))

    def consensus_avg(self, scores: torch.Tensor) -> torch.Tensor:
        """Segment consensus: ``(B*N, K)`` -> ``(B, K)`` by averaging the N segments."""
        scores = scores.view(-1, self.n_segment, scores.shape[-1])
        return self.consensus(scores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, N, C, H, W)
        if x.dim() != 5 or x.shape[1] != self.n_segment:
            raise ValueError(f"expected (B, {self.n_segment}, C, H, W), got {tuple(x.shape)}")
        scores = self.forward_frames(x.flatten(0, 1))  # (B*N, K)
        return self.consensus_avg(scores)


def load_torchvision_resnet(model: TemporalResNet, state_dict: dict, strict: bool = True) -> list[str]:
    """Load a ``torchvision.models.ResNet`` state dict into a :class:`TemporalResNet`.

    The parameter names are the same, so no key is renamed; the parameters of the temporal
    modules (absent from torchvision) keep their values. ``fc`` is skipped when its shape
    differs (e.g. ImageNet's 1000 classes vs Kinetics' 400).

    Args:
        model: The model to load into (modified in place).
        state_dict: ``torchvision.models.resnet50().state_dict()`` or similar.
        strict: Raise when a torchvision key has no place in ``model``.

    Returns:
        The names of ``model``'s entries that were *not* loaded (temporal modules, maybe fc).

    Raises:
        KeyError: with ``strict``, for unexpected keys; ValueError: for shape mismatches
        other than ``fc``.
    """
    own = model.state_dict()
    loaded = {}
    for k, v in state_dict.items():
        if k not in own:
            if strict:
                raise KeyError(f"unexpected key {k!r} for {type(model).__name__}")
            continue
        if own[k].shape != v.shape:
            if k.startswith("fc."):
                continue
            raise ValueError(f"shape mismatch for {k!r}: {tuple(v.shape)} vs {tuple(own[k].shape)}")
        loaded[k] = v
    model.load_state_dict(loaded, strict=False)
    return sorted(set(own) - set(loaded))


def segment_center_indices(num_frames: int, n_segment: int) -> torch.Tensor:
    """TSN test-time sparse sampling: the centre frame of each of N equal chunks.

    Args:
        num_frames: T, frames in the clip. n_segment: N.

    Returns:
        ``(N,)`` long tensor, ``floor((k + 0.5) * T / N)`` for ``k = 0..N-1``.

    Raises:
        ValueError: if ``num_frames < 1`` or ``n_segment < 1``.
    """
    if num_frames < 1 or n_segment < 1:
        raise ValueError("num_frames and n_segment must be >= 1")
    k = torch.arange(n_segment, dtype=torch.float64)
    return torch.floor((k + 0.5) * num_frames / n_segment).long()


def clip_to_segments(config, clip: torch.Tensor) -> torch.Tensor:
    """TSN-style test sampling of one frame per segment (the ``clip_to_input`` of TSM and TEA).

    Args:
        config: Any config with ``n_segment``.
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``.

    Returns:
        ``(B, N, 3, H, W)``: frames :func:`segment_center_indices` ``(T, N)`` of the clip.
    """
    idx = segment_center_indices(clip.shape[2], config.n_segment).to(clip.device)
    return clip.index_select(2, idx).transpose(1, 2).contiguous()
