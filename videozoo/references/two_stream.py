"""The two-stream ConvNet restated from its layer table, as plain ``torch.nn.functional`` calls.

Paper: Karen Simonyan, Andrew Zisserman, "Two-Stream Convolutional Networks for Action
Recognition in Videos", NeurIPS 2014, arXiv 1406.2199: Fig. 1 (both streams are CNN-M-2048;
the temporal stream has no second normalisation layer, Sec. 4) and Sec. 6 (fusion by
averaging the two softmax scores).  The CNN-M-2048 table is that of Chatfield et al., "Return
of the Devil in the Details", arXiv 1405.3531, Table 1, as released by its authors:

=======  ==========================================================
conv1    96 filters 7x7, stride 2, no padding; ReLU; LRN; max pool 3x3 stride 2
conv2    256 filters 5x5, stride 2, padding 1; ReLU; LRN; max pool 3x3 stride 2
conv3-5  512 filters 3x3, stride 1, padding 1; ReLU; max pool 3x3 stride 2 after conv5
full6    4096 units, ReLU, dropout
full7    2048 units, ReLU, dropout
full8    one unit per class, softmax
=======  ==========================================================

LRN: 5 channels, alpha 5e-4, beta 0.75, k 2; pooling rounds up (Caffe).  Widths are
arguments so that a check can run narrow streams with the paper's kernels, strides and
pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WIDTHS = (96, 256, 512, 512, 512)
FC_DIMS = (4096, 2048)
KERNELS = ((7, 2, 0), (5, 2, 1), (3, 1, 1), (3, 1, 1), (3, 1, 1))
"""(kernel, stride, padding) of conv1 ... conv5."""


def _lrn(x: torch.Tensor) -> torch.Tensor:
    return F.local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, ceil_mode=True)


def stream(params: list[torch.Tensor], x: torch.Tensor, second_lrn: bool) -> torch.Tensor:
    """Class scores (logits) of one stream.

    Args:
        params: conv1..conv5 then full6..full8, each weight then bias (16 tensors).
        x: ``(B, 3, H, W)`` frame (spatial stream) or ``(B, 2L, H, W)`` flow stack (temporal).
        second_lrn: LRN after conv2 (spatial stream: yes; temporal stream: no).

    Returns:
        ``(B, num_classes)``.
    """
    it = iter(params)
    for i, (k, s, p) in enumerate(KERNELS):
        x = F.relu(F.conv2d(x, next(it), next(it), stride=s, padding=p))
        if i == 0 or (i == 1 and second_lrn):
            x = _lrn(x)
        if i in (0, 1, 4):
            x = _pool(x)
    x = x.flatten(1)
    x = F.relu(F.linear(x, next(it), next(it)))
    x = F.relu(F.linear(x, next(it), next(it)))
    return F.linear(x, next(it), next(it))


def fused_log_scores(spatial: list[torch.Tensor], temporal: list[torch.Tensor], rgb: torch.Tensor,
                     flow: torch.Tensor) -> torch.Tensor:
    """Log of the averaged softmax scores of the two streams (Sec. 6, fusion by averaging).

    Args:
        spatial, temporal: The streams' weights as in :func:`stream`.
        rgb: ``(B, 3, H, W)``. flow: ``(B, 2L, H, W)``.

    Returns:
        ``(B, num_classes)``.
    """
    s = F.softmax(stream(spatial, rgb, second_lrn=True), dim=-1)
    t = F.softmax(stream(temporal, flow, second_lrn=False), dim=-1)
    return torch.log((s + t) / 2)
