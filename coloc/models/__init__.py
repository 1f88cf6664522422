"""Backbones with access to the last feature map, and the pretext-task network."""

from coloc.models.backbones import (
    BACKBONES,
    PsyNetVGG16,
    ResNet50,
    SmallCNN,
    WeightsUnavailableError,
    build_backbone,
)
from coloc.models.pretext import PretextNet, PretextOutput

__all__ = [
    "BACKBONES",
    "PretextNet",
    "PretextOutput",
    "PsyNetVGG16",
    "ResNet50",
    "SmallCNN",
    "WeightsUnavailableError",
    "build_backbone",
]
