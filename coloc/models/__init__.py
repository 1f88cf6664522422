"""Backbones with access to the last feature map, shared by every paper (a paper's own
network, e.g. CAML's pretext network, is in its folder)."""

from coloc.models.backbones import (
    BACKBONES,
    PsyNetVGG16,
    ResNet50,
    ResNetS32,
    SmallCNN,
    WeightsUnavailableError,
    build_backbone,
)

__all__ = [
    "BACKBONES",
    "PsyNetVGG16",
    "ResNet50",
    "ResNetS32",
    "SmallCNN",
    "WeightsUnavailableError",
    "build_backbone",
]
