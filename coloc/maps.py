"""Score maps: the one contract between a method and the evaluator.

Every method of the book (CAML's attention, CAM, InCA, WeightMap's ``g(I)``, ContraCAM)
exposes ``score_maps(model, batch) -> Tensor [B, H, W]``: float maps at the network
input's resolution, min-max normalized per image into [0, 1], from a batch of
:func:`coloc.data.collate_samples` already on the model's device. :func:`upsample_maps`
turns feature-resolution maps into that form, as the reference evaluator of Choe et al.
does. Boxes from maps are :mod:`coloc.boxes`; metrics :mod:`coloc.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from coloc.boxes import normalize_scoremap

ScoreMaps = Callable[[nn.Module, dict], Tensor]
"""``score_maps(model, batch) -> [B, H, W]`` in [0, 1] at input resolution."""


def upsample_maps(maps: Tensor, size: int | tuple[int, int]) -> Tensor:
    """``[B, h, w]`` feature-resolution maps -> ``[B, H, W]`` at the input resolution.

    Bicubic (as the reference evaluator of Choe et al. resizes), then min-max normalized
    per image into [0, 1] (:func:`coloc.boxes.normalize_scoremap`: constant or
    non-finite maps become zeros), float32 on the maps' device.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    up = F.interpolate(maps[:, None].float(), size=size, mode="bicubic", align_corners=False)
    return normalize_scoremap(up[:, 0])
