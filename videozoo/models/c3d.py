"""C3D: a plain 3D ConvNet over short clips.

Paper: Du Tran, Lubomir Bourdev, Rob Fergus, Lorenzo Torresani, Manohar Paluri,
"Learning Spatiotemporal Features with 3D Convolutional Networks", ICCV 2015,
arXiv 1412.0767.

What this file follows:

* Sec. 3.2-3.3 and Fig. 3: every convolution is ``3x3x3`` with stride 1 and padding 1
  ("homogeneous" kernels, the best temporal depth found in Sec. 3.2); 8 convolution
  layers with 64, 128, 256, 256, 512, 512, 512, 512 filters grouped in 5 blocks
  (1, 1, 2, 2, 2 convolutions); 5 max-pooling layers, ``pool1`` is ``1x2x2`` (it keeps
  the temporal signal early) and ``pool2``-``pool5`` are ``2x2x2``; two fully connected
  layers of 4096 units with dropout; a softmax classifier (487 Sports-1M classes).
* Input: clips of 16 RGB frames at ``112x112`` (the paper crops ``112x112`` out of
  ``128x171`` frames), i.e. ``(B, 3, 16, 112, 112)``.

Simplifications and choices:

* Pooling uses ``ceil_mode=True`` (Caffe's rounding), so ``pool5`` turns the ``2x7x7``
  map into ``1x4x4`` and ``fc6`` sees ``512*1*4*4 = 8192`` features, as in the released
  model. Public PyTorch ports reach the same size with ``padding=(0, 1, 1)`` on ``pool5``.
* ``batch_norm`` (off in :meth:`C3DConfig.paper`) adds BatchNorm after every
  convolution; the tiny config turns it on so that it trains from scratch in CPU
  minutes. The original network has no normalisation layers.
* ``pool_t`` lets the tiny config keep its 8 frames longer before pooling time away.

The parameter count of the paper configuration is about 80.0 M (27.7 M in the
convolutions, 33.6 M in ``fc6``, 16.8 M in ``fc7`` and 2 M in ``fc8``). The survey "A
Survey on Backbones for Deep Video Action Recognition" (Table 1) lists C3D with 34.8 M
parameters; we could not trace which variant that figure counts (it is neither the full
network nor its convolutional trunk alone, 27.7 M), so it is shown but not checked, and
the paper configuration has no figure to be checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from videozoo.registry import Reported, register_check, register_model

__all__ = ["C3DConfig", "C3D", "c3d"]


@dataclass
class C3DConfig:
    """Configuration of :class:`C3D`.

    Attributes:
        num_classes: Number of output classes (487 for Sports-1M in the paper).
        channels: Filters of the 8 convolutions (``conv1a, conv2a, conv3a, conv3b,
            conv4a, conv4b, conv5a, conv5b``).
        fc_dim: Width of ``fc6`` and ``fc7`` (4096 in the paper).
        frames: Clip length ``T`` (16 in the paper).
        size: Crop size ``H = W`` (112 in the paper).
        pool_t: Temporal kernel/stride of ``pool1``..``pool5`` (paper ``(1, 2, 2, 2, 2)``).
        batch_norm: Add BatchNorm3d after each convolution (not in the paper).
        dropout: Dropout probability after ``fc6`` and ``fc7`` (0.5 in the paper).
    """

    num_classes: int = 487
    channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512, 512, 512)
    fc_dim: int = 4096
    frames: int = 16
    size: int = 112
    pool_t: tuple[int, ...] = (1, 2, 2, 2, 2)
    batch_norm: bool = False
    dropout: float = 0.5

    @classmethod
    def paper(cls) -> "C3DConfig":
        """The network of Fig. 3 on ``3x16x112x112`` clips (Sports-1M, 487 classes)."""
        return cls()

    @classmethod
    def tiny(cls) -> "C3DConfig":
        """About 0.35 M parameters on ``3x8x32x32`` clips, with BatchNorm, for CPU tests."""
        return cls(
            num_classes=8,
            channels=(8, 16, 32, 32, 48, 48, 64, 64),
            fc_dim=64,
            frames=8,
            size=32,
            pool_t=(1, 1, 2, 2, 2),
            batch_norm=True,
            dropout=0.1,
        )

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample input shape ``(C, T, H, W) = (3, frames, size, size)``."""
        return (3, self.frames, self.size, self.size)


# Number of convolutions in each of the 5 blocks (Fig. 3).
_BLOCK_DEPTHS = (1, 1, 2, 2, 2)


def _pooled(n: int, k: int) -> int:
    """Output length of a max pool with kernel = stride = ``k`` and ``ceil_mode=True``."""
    out = math.ceil((n - k) / k) + 1
    if (out - 1) * k >= n:  # the last window must start inside the input
        out -= 1
    return out


class C3D(nn.Module):
    """C3D network (Tran et al. 2015, arXiv 1412.0767, Fig. 3).

    Args:
        config: A :class:`C3DConfig`.

    Raises:
        ValueError: if ``channels`` does not hold 8 numbers or ``pool_t`` 5, or the
            input size pools down to nothing.
    """

    def __init__(self, config: C3DConfig) -> None:
        super().__init__()
        if len(config.channels) != 8 or len(config.pool_t) != 5:
            raise ValueError("C3D needs 8 conv widths and 5 temporal pool sizes")
        self.config = config
        layers: list[nn.Module] = []
        in_ch, conv_idx = 3, 0
        t, hw = config.frames, config.size
        for block, depth in enumerate(_BLOCK_DEPTHS):
            for _ in range(depth):
                out_ch = config.channels[conv_idx]
                layers.append(nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1, bias=not config.batch_norm))
                if config.batch_norm:
                    layers.append(nn.BatchNorm3d(out_ch))
                layers.append(nn.ReLU(inplace=True))
                in_ch, conv_idx = out_ch, conv_idx + 1
            kt = config.pool_t[block]
            layers.append(nn.MaxPool3d(kernel_size=(kt, 2, 2), stride=(kt, 2, 2), ceil_mode=True))
            t, hw = _pooled(t, kt), _pooled(hw, 2)
        if t < 1 or hw < 1:
            raise ValueError(f"input {config.input_shape()} pools down to nothing")
        self.features = nn.Sequential(*layers)
        self.flat_dim = in_ch * t * hw * hw
        self.fc6 = nn.Linear(self.flat_dim, config.fc_dim)
        self.fc7 = nn.Linear(config.fc_dim, config.fc_dim)
        self.fc8 = nn.Linear(config.fc_dim, config.num_classes)
        self.dropout = nn.Dropout(config.dropout)
        self.relu = nn.ReLU(inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Convolutional trunk.

        Args:
            x: Clip ``(B, 3, T, H, W)``.

        Returns:
            ``pool5`` output ``(B, 512, T/16, H/32, W/32)`` (rounded up) for the paper config.
        """
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (the softmax is left to the loss).

        Args:
            x: Clip ``(B, 3, T, H, W)`` with ``T, H, W`` of the config.

        Returns:
            Logits ``(B, num_classes)``.
        """
        # x: (B, 3, T, H, W)
        x = self.forward_features(x).flatten(1)  # (B, flat_dim)
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return self.fc8(x)


@register_model(
    "tran2015learning",
    alias="c3d",
    stage=1,
    config=C3DConfig,
    reported=(
        Reported(
            "params_m",
            34.8,
            "A Survey on Backbones for Deep Video Action Recognition, Table 1",
            note="variant not stated by the survey; the full Fig. 3 network with fc6 on 512x1x4x4 has ~80 M",
            kind="survey",
            tolerance_pct=None,
        ),
    ),
    temporal=True,
)
def c3d(config: C3DConfig) -> C3D:
    """Build :class:`C3D` from a :class:`C3DConfig`."""
    return C3D(config)


@register_check("tran2015learning", "reference", evidence="independent-reference")
def _c3d_matches_layer_table() -> dict:
    """The paper config against :mod:`videozoo.references.c3d`, the Fig. 3 layer table restated.

    Our parameters, in module order, must have the shapes of the reference table (so every
    width, kernel and the ``fc6`` input size match), and with those weights the two give the
    same logits on a random clip.
    """
    from videozoo.references import c3d as ref

    torch.manual_seed(0)
    cfg = C3DConfig.paper()
    model = C3D(cfg).eval()
    with torch.no_grad():  # unit-scale activations through all 11 layers, so that differences show
        for p in model.parameters():
            nn.init.kaiming_normal_(p, nonlinearity="relu") if p.dim() > 1 else nn.init.normal_(p, 0.0, 0.1)
    params = [p.detach() for p in model.parameters()]
    table = ref.layer_table(cfg.num_classes)
    ours_shapes = [tuple(p.shape) for p in params]
    ref_shapes = [shape for _, shape in table]
    shapes_ok = ours_shapes == ref_shapes
    x = torch.rand(1, *ref.CLIP, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        diff = (out - ref.forward(params, x)).abs().max().item() if shapes_ok else float("inf")
    tol = 1e-4
    return {
        "passed": bool(shapes_ok and diff <= tol),
        "summary": (f"paper config vs the Fig. 3 layer table restated with torch.nn.functional: "
                    f"{len(table)} parameter shapes {'equal' if shapes_ok else 'DIFFER'}, logits on a 3x16x112x112 "
                    f"clip max abs diff {diff:.2e} (tolerance {tol:g}, logit scale {out.abs().max().item():.3g})"),
        "max_abs_diff": diff,
        "tolerance": tol,
        "shapes_equal": shapes_ok,
        "reference": "videozoo.references.c3d (Fig. 3 layer table, Caffe rounding)",
    }
