"""Gradient (activation) checkpointing of a model's blocks, switched on per model as in timm.

A model opts in with a ``set_grad_checkpointing(enable: bool = True)`` method that sets a
``grad_checkpointing`` flag, and runs each block through :func:`run_block`: while training with
the flag on, a block's activations are not kept for the backward pass but recomputed
(``torch.utils.checkpoint.checkpoint``, non-reentrant), trading compute for memory on long
token sequences.  Outputs and gradients are the same as without it.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["run_block"]


def run_block(block: Callable[..., Any], *args: Any, enabled: bool) -> Any:
    """``block(*args)``, checkpointed when ``enabled`` and gradients are being recorded.

    Args:
        block: A module (or function) of tensors.
        *args: Its positional arguments.
        enabled: The model's ``grad_checkpointing`` flag.
    """
    if enabled and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)
