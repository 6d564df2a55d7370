"""The soft-target "NCE" loss of BIKE's release, reused by OST's.

BIKE (Wu et al., arXiv 2301.00182; github.com/whwu95/BIKE ``utils/NCELoss.py``) trains
video-text similarities with a KL divergence between the softmax of the logits and the softmax
of ``10 x`` the same-class indicator matrix, in the video -> text and text -> video directions;
OST (Chen et al., arXiv 2312.00096; github.com/tomchen-ctj/OST ``utils/NCELoss.py``, the same
code) sums the two directions where BIKE averages them.  With every sample of a batch its own
class the target is close to one-hot, so the loss is close to CLIP's cross entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_target_nce"]


def soft_target_nce(logits: torch.Tensor, labels: torch.Tensor | None = None, target_scale: float = 10.0) -> torch.Tensor:
    """One direction of the loss: ``sum_ij KL(softmax(s G)_i || softmax(logits)_i) / B``.

    The release computes ``nn.KLDivLoss(reduction="mean")(log_softmax(logits), softmax(s G)) * B``,
    the same number (the mean runs over the ``B x B`` entries).

    Args:
        logits: ``(B, B)`` scaled similarities; row ``i`` is sample ``i``'s clip (or caption),
            column ``j`` sample ``j``'s caption (or clip).
        labels: ``(B,)`` class ids; ``G[i, j] = 1`` when samples ``i`` and ``j`` share a class
            (default: the identity, every sample its own class).
        target_scale: ``s``, the scale of ``G`` before its softmax (10 in both releases).

    Returns:
        Scalar loss (nats).

    Raises:
        ValueError: ``logits`` is not a non-empty square matrix, or ``labels`` does not match it.
    """
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1] or not logits.numel():
        raise ValueError(f"logits must be a square (B, B) matrix of matched pairs, got {tuple(logits.shape)}")
    B = logits.shape[0]
    if labels is None:
        target = torch.eye(B, dtype=logits.dtype, device=logits.device)
    else:
        if labels.shape != (B,):
            raise ValueError(f"labels must have shape ({B},), got {tuple(labels.shape)}")
        target = (labels[:, None] == labels[None, :]).to(logits.dtype)
    return F.kl_div(logits.log_softmax(dim=1), (target * target_scale).softmax(dim=1), reduction="sum") / B
