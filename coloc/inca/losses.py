"""InCA's losses: contrastive attention (Eq. 2-3) and foreground consistency (Eq. 4).

Both read the :class:`coloc.inca.model.AttentionRecord` s that :class:`~coloc.inca.model.
INCANet` returns in training: the block's input feature ``F`` and attention map ``A`` at
each position. Maps are normalized per image (``map_norm``,
:func:`coloc.inca.model.normalize_map`) before thresholds and distances; the paper is
silent on that, and the chapter shows the choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc.inca.model import AttentionRecord, dropped_foreground_mask, normalize_map


def region_masks(attention: Tensor, gamma_fg: float, gamma_bg: float
                 ) -> dict[str, Tensor]:
    """InCA Eq. 1-2 for ``attention`` ``[B, h, w]``: float masks ``fg`` (``A > theta_bg``),
    ``bg`` (``A < theta_bg``) and ``dfg`` (Eq. 1), ``theta_bg = gamma_bg * mean(A)``."""
    theta_bg = gamma_bg * attention.flatten(1).mean(1)[:, None, None]
    return {"fg": (attention > theta_bg).float(), "bg": (attention < theta_bg).float(),
            "dfg": dropped_foreground_mask(attention, gamma_fg, gamma_bg).float()}


def masked_gap(features: Tensor, mask: Tensor) -> Tensor:
    """Masked global average pooling (InCA Sec. 3.2): the mean of ``features``
    ``[B, C, h, w]`` over the pixels where ``mask`` ``[B, h, w]`` is 1 -> ``[B, C]``
    (zeros where the mask is empty)."""
    total = (features * mask[:, None]).sum(dim=(2, 3))
    return total / mask.sum(dim=(1, 2)).clamp(min=1.0)[:, None]


def embedded_gap(features: Tensor, mask: Tensor, embedding: nn.Module) -> Tensor:
    """``masked_gap(embedding(features), mask)`` for a 1x1-conv ``embedding``, computed
    as the embedding of the masked average (a 1x1 conv commutes with the average over a
    non-empty mask), so the conv runs on ``[B, C]`` instead of every pixel: ``[B, D]``,
    zeros where the mask is empty (as :func:`masked_gap` gives)."""
    pooled = masked_gap(features, mask)[:, :, None, None]
    nonempty = (mask.flatten(1).sum(1) > 0).to(features.dtype)[:, None]
    return embedding(pooled).flatten(1) * nonempty


def contrastive_attention_loss(features: Tensor, attention: Tensor, embedding: nn.Module,
                               gamma_fg: float, gamma_bg: float, margin: float = 1.0
                               ) -> Tensor:
    """InCA Eq. 3 at one position: ``mean_x [d(z_dfg, z_fg) - d(z_dfg, z_bg) + m]_+``.

    ``z_a``: masked GAP of ``embedding(F)`` (the 128-d 1x1 conv of Sec. 3.2; a 1x1 conv
    commutes with the average) over the masks of :func:`region_masks` of ``attention``
    (already normalized); ``d``: L2 distance. The masks are thresholds and send no
    gradient; the loss trains the features and the embedding.
    """
    masks = region_masks(attention.detach(), gamma_fg, gamma_bg)
    z = {name: embedded_gap(features, mask, embedding) for name, mask in masks.items()}
    d_pos = (z["dfg"] - z["fg"]).norm(dim=1)
    d_neg = (z["dfg"] - z["bg"]).norm(dim=1)
    return F.relu(d_pos - d_neg + margin).mean()


def foreground_consistency_loss(early: Tensor, reference: Tensor, reduction: str = "mean"
                                ) -> Tensor:
    """InCA Eq. 4: ``||A_i - A_j||_2^2`` between an early map ``[B, h_i, w_i]`` and the
    reference (last) map, bilinearly resized to the early map's size, per image summed
    (``"sum"``, as written) or averaged (``"mean"``) over pixels, then averaged over the
    batch. The reference is detached: the gradient runs only into the early layer
    (Sec. 3.3)."""
    target = F.interpolate(reference.detach()[:, None], size=early.shape[-2:],
                           mode="bilinear", align_corners=False)[:, 0]
    squared = (early - target).pow(2).flatten(1)
    if reduction == "sum":
        return squared.sum(1).mean()
    if reduction == "mean":
        return squared.mean()
    raise ValueError(f"unknown reduction {reduction!r}; allowed: 'mean', 'sum'")


def inca_losses(records: Sequence[AttentionRecord], embeddings: Sequence[nn.Module], *,
                gamma_fg: float, gamma_bg: float, margin: float, map_norm: str,
                fc_reduction: str) -> dict[str, Tensor]:
    """L_ca summed over every attention position and L_fc summed over every position but
    the last (the reference), from one training forward pass: ``{"ca", "fc"}`` scalars
    (L_fc is 0 with a single position: it needs two layers, Table 3)."""
    maps = [normalize_map(r["attention"], map_norm) for r in records]
    ca = sum(contrastive_attention_loss(r["features"], a, e, gamma_fg, gamma_bg, margin)
             for r, a, e in zip(records, maps, embeddings, strict=True))
    fc = sum((foreground_consistency_loss(a, maps[-1], fc_reduction) for a in maps[:-1]),
             torch.zeros((), device=maps[-1].device))
    return {"ca": ca, "fc": fc}
