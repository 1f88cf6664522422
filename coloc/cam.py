"""Class activation maps (CAM) of a GAP classifier, and where a map puts its mass.

CAM (Zhou et al., CVPR 2016): for a backbone with feature map ``F [B, C, h, w]``, GAP
and a linear classifier ``W [K, C]``, the map of class ``k`` is ``sum_c W[k, c] F[c]``.
It is the baseline of InCA and WeightMap, and the datasets chapter uses it to show
that the synthetic benchmark reproduces classifier CAM's failure modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CAMClassifier(nn.Module):
    """Backbone -> GAP -> linear classifier; ``forward`` returns logits and features.

    ``backbone`` comes from :func:`coloc.models.build_backbone` (needs ``out_channels``).
    """

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.backbone(images)
        return {"features": features, "logits": self.classifier(features.mean(dim=(2, 3)))}

    def cam(self, features: Tensor, labels: Tensor) -> Tensor:
        """``[B, h, w]`` CAM of class ``labels[b]`` from ``features [B, C, h, w]``."""
        weights = self.classifier.weight[labels]  # [B, C]
        return torch.einsum("bc,bchw->bhw", weights, features)


def cam_step(model: CAMClassifier, batch: dict) -> dict[str, Tensor]:
    """Training step for :func:`coloc.train.fit`: cross-entropy on the class labels."""
    loss = F.cross_entropy(model(batch["image"])["logits"], batch["label"])
    return {"loss": loss}


def mass_inside(maps: Tensor, regions: Tensor) -> Tensor:
    """Share of each map's (non-negative) mass inside a region: ``[B, H, W]`` -> ``[B]``.

    ``maps`` are clamped at 0 (a CAM's negative evidence is not "mass"); a map without
    positive mass gives NaN, so averages can skip it. Compare the share with the region's
    area share to see whether a map concentrates on it.
    """
    if maps.shape != regions.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and regions {tuple(regions.shape)} differ")
    mass = maps.clamp(min=0).double()
    total = mass.sum(dim=(1, 2))
    inside = (mass * regions.double()).sum(dim=(1, 2))
    return torch.where(total > 0, inside / total, torch.full_like(total, float("nan")))
