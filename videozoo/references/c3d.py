"""C3D restated from the layer table of its paper, as plain ``torch.nn.functional`` calls.

Paper: Du Tran, Lubomir Bourdev, Rob Fergus, Lorenzo Torresani, Manohar Paluri, "Learning
Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015, arXiv 1412.0767,
Sec. 3.3 and Fig. 3: 8 convolutions, all ``3x3x3`` with stride 1 and padding 1, with 64, 128,
256, 256, 512, 512, 512, 512 filters; ``pool1`` is ``1x2x2``, ``pool2``-``pool5`` are
``2x2x2`` (kernel = stride); ``fc6`` and ``fc7`` have 4096 units; input clips are
``3x16x112x112``.  Pooling rounds up, as Caffe (the authors' release) does, so ``fc6`` takes
``512 x 1 x 4 x 4 = 8192`` features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CONVS = (("conv1a", 64), ("conv2a", 128), ("conv3a", 256), ("conv3b", 256),
         ("conv4a", 512), ("conv4b", 512), ("conv5a", 512), ("conv5b", 512))
"""The 8 convolutions of Fig. 3: (name, filters)."""

POOLS = {"conv1a": (1, 2, 2), "conv2a": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2), "conv5b": (2, 2, 2)}
"""Max pooling (kernel = stride) after these convolutions: pool1 ... pool5."""

FC = (("fc6", 4096), ("fc7", 4096))
CLIP = (3, 16, 112, 112)


def _pooled(n: int, k: int) -> int:
    # Caffe: ceil((n - k) / k) + 1 windows
    return math.ceil((n - k) / k) + 1


def layer_table(num_classes: int = 487) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of every weight and bias in forward order (conv1a ... fc8).

    Args:
        num_classes: Classes of ``fc8`` (487 Sports-1M classes in the paper).
    """
    table, c_in = [], 3
    t, s = CLIP[1], CLIP[2]
    for name, c_out in CONVS:
        table += [(f"{name}.weight", (c_out, c_in, 3, 3, 3)), (f"{name}.bias", (c_out,))]
        c_in = c_out
        if name in POOLS:
            kt, ks, _ = POOLS[name]
            t, s = _pooled(t, kt), _pooled(s, ks)
    flat = c_in * t * s * s
    for name, units in FC + (("fc8", num_classes),):
        table += [(f"{name}.weight", (units, flat)), (f"{name}.bias", (units,))]
        flat = units
    return table


def forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """C3D logits from weights given in :func:`layer_table` order.

    Args:
        params: The 22 tensors of :func:`layer_table`, in its order.
        x: Clips ``(B, 3, 16, 112, 112)``.

    Returns:
        Logits ``(B, num_classes)`` (dropout is off: inference).
    """
    it = iter(params)
    for name, _ in CONVS:
        x = F.relu(F.conv3d(x, next(it), next(it), stride=1, padding=1))
        if name in POOLS:
            x = F.max_pool3d(x, POOLS[name], POOLS[name], ceil_mode=True)
    x = x.flatten(1)
    x = F.relu(F.linear(x, next(it), next(it)))
    x = F.relu(F.linear(x, next(it), next(it)))
    return F.linear(x, next(it), next(it))
