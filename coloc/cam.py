"""The shared WSOL baseline: a CAM classifier, its configuration and its runs.

CAM (Zhou et al., CVPR 2016): for a backbone with feature map ``F [B, C, h, w]``, GAP
and a linear classifier ``W [K, C]``, the map of class ``k`` is ``sum_c W[k, c] F[c]``.
It is the baseline of InCA and WeightMap (and of the WSOL rows of CAML Table 1), and
the datasets chapter uses it to show that the synthetic benchmark reproduces classifier
CAM's failure modes. :class:`CAMConfig` and :func:`run` train-or-load it through the
shared runner (:mod:`coloc.runs`), recorded under ``results/cam/<dataset>/``; its score
maps are the CAM of the ground-truth class (the GT-known protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc import runs
from coloc.data import DATASETS
from coloc.data.memory import SYNTHETIC
from coloc.data.synthetic import SyntheticDataset
from coloc.maps import upsample_maps
from coloc.runs import Run, RunConfig
from coloc.train import StepFn

WSOL_DATASETS = ("cub", "wsol-cub", "wsol-imagenet", "tinyimagenet", "cars", "aircraft",
                 "dogs", "flowers")
"""Real datasets with class labels and boxes that a CAM classifier trains on."""


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


# ----------------------------------------------------------------------------- runs

CPU_PROFILE: dict[str, Any] = dict(
    image_size=64, backbone="small_cnn", pretrained=True, augment=None,
    train_samples=2000, val_samples=200, test_samples=1000,
    epochs=10, batch_size=16, lr=0.02, momentum=0.9, weight_decay=1e-4, milestones=(7,),
    gamma=0.1, select="last", device="cpu", num_workers=0,
)
"""The synthetic benchmark on 2 CPU cores (about a minute): the small CNN from the
synthetic stand-in for ImageNet weights (:mod:`coloc.pretrain`), fine-tuned on the whole
training split (2,000 images of 12 classes) for 10 epochs, lr x0.1 for the last 3."""

PAPER_PROFILE: dict[str, Any] = dict(
    image_size=224, backbone="resnet50", pretrained=True, augment="wsol",
    train_samples=None, val_samples=None, test_samples=None,
    epochs=50, batch_size=32, lr=1e-3, momentum=0.9, weight_decay=1e-4,
    milestones=(15, 30, 45), gamma=0.1, select="last", device="auto",
)
"""InCA Sec. 4.1's fine-tuning settings (ResNet50 from ImageNet weights, batch 32, SGD
lr 0.001, momentum 0.9, weight decay 1e-4; resize 256, random crop 224, flip). InCA is
silent on epochs; the schedule is the WSOL evaluation protocol's (Choe et al.: 50
epochs on CUB, lr x0.1 every 15)."""


@dataclass(frozen=True)
class CAMConfig(RunConfig):
    """A CAM classifier run: the shared fields plus the synthetic benchmark's
    ``context_bias`` (the share of images whose background matches their class)."""

    context_bias: float = 0.0

    PAPER: ClassVar[str] = "cam"
    DATASETS: ClassVar[tuple[str, ...]] = (*SYNTHETIC, *WSOL_DATASETS)
    CPU_PROFILE: ClassVar[dict[str, Any]] = CPU_PROFILE
    PAPER_PROFILE: ClassVar[dict[str, Any]] = PAPER_PROFILE

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.context_bias <= 1.0:
            raise ValueError(f"context_bias must be in [0, 1], got {self.context_bias}")
        if self.context_bias and self.dataset not in SYNTHETIC:
            raise ValueError("context_bias is a setting of the synthetic benchmark; "
                             f"{self.dataset} has its own backgrounds")

    @property
    def name(self) -> str:
        return f"cam-bias{self.context_bias:g}"

    def synthetic_options(self) -> dict[str, Any]:
        return {"context_bias": self.context_bias} if self.context_bias else {}


def num_classes(config: RunConfig) -> int:
    """The class count of the run's dataset (the classifier's output size)."""
    if config.dataset in SYNTHETIC:
        family = config.dataset.removeprefix("synthetic").removeprefix("-") or "bird"
        return SyntheticDataset(families=(family,)).num_classes
    return DATASETS[config.dataset].num_classes


def build_model(config: RunConfig, output_dir: str | Path | None = None) -> CAMClassifier:
    """The CAM classifier of ``config``: backbone (ImageNet weights, or on the synthetic
    benchmark the stand-in of :mod:`coloc.pretrain`; ``weights_path`` wins) and a linear
    layer over its GAP feature, one output per class."""
    return CAMClassifier(runs.backbone(config, output_dir), num_classes(config))


def make_step(config: RunConfig) -> StepFn:
    """:func:`cam_step`: cross-entropy on the class labels."""
    return cam_step


@torch.no_grad()
def probe_maps(model: CAMClassifier, batch: dict) -> Tensor:
    """Raw CAMs ``[B, h, w]`` of the ground-truth class of ``batch``."""
    model.eval()
    return model.cam(model(batch["image"])["features"], batch["label"]).float()


def score_maps(model: CAMClassifier, batch: dict) -> Tensor:
    """CAM of the ground-truth class (GT-known), upsampled and min-max normalized."""
    return upsample_maps(probe_maps(model, batch), batch["image"].shape[-2:])


METHOD = runs.Method(build_model=build_model, make_step=make_step, score_maps=score_maps,
                     probe_maps=probe_maps)
"""The CAM baseline for the shared runner :func:`coloc.runs.run`."""

profile = CAMConfig.profile


def run(config: CAMConfig, output_dir: str | Path | None = None, *, force: bool = False
        ) -> Run:
    """Train-or-load the CAM classifier of ``config`` (:func:`coloc.runs.run`)."""
    return runs.run(METHOD, config, output_dir, force=force)
