"""Helpers shared by the models' reference checks and the tests."""

from __future__ import annotations

import torch
from torch import nn


def randomise_batchnorm(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Give every ``BatchNorm2d`` of ``module`` non-trivial affine parameters and running
    statistics (weight, running_var in [0.5, 1.5); bias, running_mean ~ N(0, 0.1²)), so that
    eval-mode comparisons with a reference really exercise them. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
    return module
