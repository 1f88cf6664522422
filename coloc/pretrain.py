"""A stand-in for ImageNet weights on the CPU profile: synthetic-family pretraining.

Every paper of the book fine-tunes ImageNet weights (CAML Sec. 4, "Implementation
details"; PsyNet; InCA). Their baselines owe much of their localization to those
weights: the channel mean of a pretrained VGG16 already finds birds in CUB (DDT, SCDA).
The CPU profile's small CNN has no ImageNet weights, and trained from scratch on a
pretext task its attention never meets the object. The stand-in: the backbone plus a
linear head, trained for a few epochs to tell apart the synthetic *families* the run
does not localize (for birds: car, aircraft, dog). Like ImageNet pretraining it uses
image-level labels only and teaches generic "object vs. background" features; unlike
ImageNet, the target superclass is never seen.

:func:`synthetic_pretrained_backbone` trains once and caches the backbone's state dict
under ``<output_dir>/pretrain/<name>-<hash>/backbone.pt`` with a results JSON (training
loss and accuracy per epoch), both written atomically, the weights first; later calls
load it (a damaged cache raises :class:`coloc.runtime.RunFileError` naming the file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc.data import load
from coloc.data.memory import InMemory
from coloc.data.synthetic import CLASSES_PER_FAMILY, FAMILIES
from coloc.models import build_backbone
from coloc.runtime import atomic_save_torch, config_hash, load_torch, read_results, write_results
from coloc.train import TrainConfig, fit


@dataclass(frozen=True)
class PretrainConfig:
    """Synthetic-family pretraining of a backbone (labels: the family of each image).

    Defaults: 3,000 images at 64 px of the three families other than birds, 6 epochs,
    SGD lr 0.05 with momentum 0.9 (about 75 % training accuracy, half a minute on 2 CPU
    cores). ``data_seed`` 1 draws other scenes than the benchmark's seed 0.
    """

    backbone: str = "small_cnn"
    image_size: int = 64
    families: tuple[str, ...] = ("car", "aircraft", "dog")
    num_samples: int = 3000
    data_seed: int = 1
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or len(self.families) < 2:
            raise ValueError(f"families must be two or more of {FAMILIES}, got {self.families}")

    def hash(self) -> str:
        data = asdict(self)
        data["families"] = list(self.families)
        return config_hash(data)

    def directory(self, output_dir: str | Path) -> Path:
        return Path(output_dir) / "pretrain" / f"{self.backbone}-families-{self.hash()}"


def families_except(excluded: tuple[str, ...] | str) -> tuple[str, ...]:
    """The synthetic families other than ``excluded`` (the ones a run localizes)."""
    excluded = (excluded,) if isinstance(excluded, str) else tuple(excluded)
    return tuple(f for f in FAMILIES if f not in excluded)


class _FamilyClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_families: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_families)

    def forward(self, images: Tensor) -> Tensor:
        return self.fc(self.backbone(images).mean(dim=(2, 3)))


def _step(model: nn.Module, batch: dict) -> dict[str, Tensor]:
    families = batch["label"] // CLASSES_PER_FAMILY  # classes are concatenated per family
    logits = model(batch["image"])
    return {"loss": F.cross_entropy(logits, families),
            "accuracy": (logits.argmax(1) == families).float().mean()}


def synthetic_pretrained_backbone(
    config: PretrainConfig = PretrainConfig(), output_dir: str | Path = "results"
) -> Path:
    """Path of the pretrained backbone's state dict, training it first if not cached.

    The file loads with ``coloc.models.build_backbone(config.backbone,
    weights_path=path)``. Deterministic given ``config`` (the model is seeded before it
    is built; :func:`coloc.train.fit` seeds every epoch).
    """
    directory = config.directory(output_dir)
    weights = directory / "backbone.pt"
    results = directory / "results.json"
    if results.is_file() and read_results(results).get("config_hash") == config.hash():
        load_torch(weights)  # a missing or damaged cache names its path and the remedy
        return weights
    images = InMemory(load("synthetic", split="train", image_size=config.image_size,
                           families=config.families, num_samples=config.num_samples,
                           seed=config.data_seed))
    torch.manual_seed(config.seed)
    model = _FamilyClassifier(build_backbone(config.backbone), len(config.families))
    history = fit(model, images, _step, TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        momentum=config.momentum, weight_decay=config.weight_decay, seed=config.seed,
    ), directory)
    atomic_save_torch(weights, model.backbone.state_dict())
    record: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v
                              for k, v in asdict(config).items()}
    write_results(results, record, {"train_accuracy": history.epoch_losses["accuracy"][-1]},
                  {"epoch_losses": history.epoch_losses}, {"epochs": history.epoch_seconds})
    return weights
