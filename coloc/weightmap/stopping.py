"""WeightMap's unsupervised early stopping (Sec. 3 "Early stopping", Eq. 5-6).

For a map M in [0, 1]: M̂ = M where M is above tau = max(M)/10 (Eq. 5), else 0; the
box is that of the largest contour of M̂ (the project's one-box extractor,
:func:`coloc.boxes.boxes_from_scoremap` at threshold 0.1); S is the share of M̂'s mass
inside the box (Eq. 6). "Above tau" is the extractor's own foreground
(:func:`coloc.boxes.foreground_mask`: the protocol's uint8 quantization, strictly
above), so M̂ is exactly what the contours are drawn on. S = 1 when every weight
above tau lies in one box; it drops when g splits the object into parts whose weight
falls outside the largest contour's box. The checkpoint with the largest mean S on val is selected.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coloc.boxes import boxes_from_scoremap, foreground_mask

TAU = 0.1
"""Eq. 5: tau = max(M) / 10."""


def thresholded(maps: Tensor) -> Tensor:
    """M̂ of Eq. 5-6: ``[B, H, W]`` with values not above max(M)/10 (per map, in the
    protocol's quantization) set to zero."""
    keep = torch.stack([torch.from_numpy(foreground_mask(m, TAU)) for m in maps.cpu()])
    return torch.where(keep.to(maps.device), maps, torch.zeros_like(maps))


def stopping_score(maps: Tensor) -> Tensor:
    """Eq. 6 per image: ``maps [B, H, W]`` in [0, 1] -> S ``[B]`` float in [0, 1].

    The box is the largest contour's at tau = max/10 (:mod:`coloc.boxes`, whose
    quantization is the protocol's). An all-zero map has no weight and no contour:
    its S is defined as 0 (it localizes nothing, so it must not win the selection).
    """
    maps = maps.detach().float().cpu()
    kept = thresholded(maps)
    scores = torch.zeros(len(maps))
    for i, (score_map, mass) in enumerate(zip(maps, kept, strict=True)):
        total = mass.sum()
        if total <= 0:
            continue
        x0, y0, x1, y1 = boxes_from_scoremap(score_map, TAU)[0].tolist()
        scores[i] = mass[y0:y1 + 1, x0:x1 + 1].sum() / total
    return scores
