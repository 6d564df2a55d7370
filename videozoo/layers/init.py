"""Weight initialisation shared by the transformer models.

``trunc_normal_init`` is the scheme of timm's ViT (``init_weights_vit_timm``), which the
TimeSformer and Swin releases also use: every ``nn.Linear`` weight is drawn from a normal
distribution of std 0.02 truncated at +-2 std, biases are zero, LayerNorm starts at weight 1
and bias 0.  Convolutions (the patch embedding) keep PyTorch's default.
"""

from __future__ import annotations

from torch import nn

__all__ = ["trunc_normal_init"]


def trunc_normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Initialise one module in place (use with ``model.apply``).

    Args:
        module: Any module; only ``nn.Linear`` and ``nn.LayerNorm`` are touched.
        std: Standard deviation of the truncated normal (truncation at +-2 std).
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
