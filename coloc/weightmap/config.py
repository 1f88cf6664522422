"""WeightMap's run configuration: the method's switches, its profiles, its classifier f.

:class:`WeightMapConfig` adds to :class:`coloc.runs.RunConfig` the fields of
Shaharabany and Wolf, "Learning a Weight Map for Weakly-Supervised Localization"
(2021): which method (I: a classifier f, Eq. 1; II: a Siamese f, Eq. 2-4), the loss
switches of Table 6, the encoder of g, and where the frozen f comes from. The
RunConfig optimization fields are g's; f is its own run (:meth:`WeightMapConfig.f_config`),
the shared CAM baseline for Method I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from coloc.cam import CPU_PROFILE as CAM_CPU_PROFILE
from coloc.cam import WSOL_DATASETS, CAMConfig
from coloc.data.memory import SYNTHETIC
from coloc.runs import RunConfig, has_split

METHODS = ("I", "II")
"""Method I: classifier f (Eq. 1); Method II: Siamese f and triplet losses (Eq. 2-4)."""
ENCODERS = ("small", "resnet18")
"""g's encoder: the CPU profile's five conv stages, or the paper's ResNet18."""
WEIGHTMAP_DATASETS = ("cub", "cars", "flowers", "tinyimagenet")
"""The paper's four benchmarks (Tables 1-5)."""
STOPPING = "stopping_score"
"""Name of Eq. 6's score in the per-epoch validation metrics (``select="val:..."``)."""

CPU_PROFILE: dict[str, Any] = dict(
    image_size=64, backbone="small_cnn", pretrained=True, augment=None, encoder="small",
    train_samples=1000, val_samples=200, test_samples=1000,
    epochs=8, batch_size=32, lr=0.01, momentum=0.9, weight_decay=1e-4, milestones=(),
    select=f"val:{STOPPING}", corloc_threshold=0.1, context_bias=0.5,
    device="cpu", num_workers=0,
)
"""The synthetic benchmark on 2 CPU cores: f is the shared CAM baseline (small CNN,
2,000 birds, context bias 0.5, as the InCA chapter's); g is the small encoder-decoder,
8 epochs of the first 1,000 of those images at batch 32 and lr 0.01 (the paper's lr 1e-4 at batch
128 barely moves g in so few steps). Boxes at tau = max/10 (Eq. 5); the epoch is the
one with the best mean S on val (Eq. 6)."""

PAPER_PROFILE: dict[str, Any] = dict(
    image_size=224, backbone="resnet18", pretrained=True, augment="wsol", encoder="resnet18",
    train_samples=None, val_samples=None, test_samples=None, f_train_samples=None,
    epochs=100, batch_size=128, lr=1e-4, momentum=0.9, weight_decay=1e-4, milestones=(),
    select=f"val:{STOPPING}", corloc_threshold=0.1, context_bias=0.0,
    f_epochs=200, f_batch_size=16, f_lr=1e-3, f_milestones=(80, 160),
    device="auto",
)
"""Sec. 4 "Implementation details": g with SGD, batch 128, lr 1e-4, 100 epochs (1,000 and
weight decay 5e-5 on Tiny-ImageNet, :meth:`WeightMapConfig.profile`); f with SGD, batch
16, lr 1e-3, 200 epochs, weight decay 1e-4, lr x0.1 every 80 epochs; resize 256, random
crop 224, flip (centre crop at test). g's encoder is an ImageNet ResNet18; so is f's
backbone on the fine-grained sets (ResNet50 on Tiny-ImageNet, :data:`TINYIMAGENET`). The
paper's momentum is unstated; 0.9 as every paper of the book."""

TINYIMAGENET = dict(epochs=1000, weight_decay=5e-5, backbone="resnet50")
"""Sec. 4: on Tiny-ImageNet f is a ResNet50 and g trains 1,000 epochs with weight decay
5e-5."""


@dataclass(frozen=True)
class WeightMapConfig(RunConfig):
    """Everything that defines one WeightMap run (g trained over a frozen f).

    ``method``: ``"I"`` (Eq. 1) or ``"II"`` (Eq. 3-4 with ``R``). ``use_reg``,
    ``use_inner``, ``use_outer``: the terms of Table 6 (``use_reg`` also switches Eq. 1's
    ``R`` off for Figure 8). ``reg_weight``: lambda (Sec. 3: 1, never tuned). ``margin``:
    the triplet margin (Eq. 2-4: 1). ``embedding_dim``: the Siamese projection (Sec. 3:
    200). ``encoder``: g's encoder. ``f_*``: f's training images and optimization (the
    CAM baseline's CPU profile on the synthetic benchmark, Sec. 4's on real data);
    ``f_seed``: f's seed, so seeds of g share one f; ``f_pretrained``: f's backbone
    starts from ImageNet weights (the synthetic stand-in on the synthetic benchmark).
    ``pretrained``: g starts from the trained f run (and ImageNet weights for a ResNet18
    encoder); False builds the architecture only, as :meth:`coloc.runs.Run.model` does
    before loading a checkpoint.
    ``context_bias``: the synthetic data's, as the CAM run's.
    """

    method: str = "I"
    use_reg: bool = True
    use_inner: bool = True
    use_outer: bool = True
    reg_weight: float = 1.0
    margin: float = 1.0
    embedding_dim: int = 200
    encoder: str = "small"
    context_bias: float = 0.0
    f_epochs: int = CAM_CPU_PROFILE["epochs"]
    f_batch_size: int = CAM_CPU_PROFILE["batch_size"]
    f_lr: float = CAM_CPU_PROFILE["lr"]
    f_milestones: tuple[int, ...] = CAM_CPU_PROFILE["milestones"]
    f_train_samples: int | None = CAM_CPU_PROFILE["train_samples"]
    f_seed: int = 0
    f_pretrained: bool = True

    PAPER: ClassVar[str] = "weightmap"
    DATASETS: ClassVar[tuple[str, ...]] = (*SYNTHETIC, *WEIGHTMAP_DATASETS)
    CPU_PROFILE: ClassVar[dict[str, Any]] = CPU_PROFILE
    PAPER_PROFILE: ClassVar[dict[str, Any]] = PAPER_PROFILE
    CHOICES: ClassVar[dict[str, tuple]] = {**RunConfig.CHOICES, "method": METHODS,
                                           "encoder": ENCODERS}
    SELECTS: ClassVar[tuple[str, ...]] = (*RunConfig.SELECTS, f"val:{STOPPING}")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method == "I" and not (self.use_inner and self.use_outer):
            raise ValueError("use_inner/use_outer are Method II's terms (Eq. 3-4)")
        if self.method == "II" and not (self.use_inner or self.use_outer):
            raise ValueError("Method II needs L_inner or L_outer (Eq. 3-4)")
        self.f_config()  # validates the f fields and context_bias
        if self.select.startswith("val:") and not has_split(self, "val"):
            raise ValueError(f"{self.dataset} has no val split, so the epoch cannot be "
                             f"selected by S on val (Sec. 3); the paper never selects on "
                             f"test. Pass select='last' to report the last epoch")

    @classmethod
    def profile(cls, dataset: str = "synthetic", *, require_data: bool = True,
                **overrides: Any) -> WeightMapConfig:
        """:meth:`RunConfig.profile`, with Tiny-ImageNet's ResNet50 f and longer g schedule
        (Sec. 4)."""
        if dataset == "tinyimagenet":
            overrides = {**TINYIMAGENET, **{k: v for k, v in overrides.items()
                                              if v is not None}}
        return super().profile(dataset, require_data=require_data, **overrides)

    @property
    def name(self) -> str:
        """``method1`` / ``method2`` and the terms switched off, e.g. ``method2-noreg``."""
        parts = [f"method{len(self.method)}"]
        parts += [s for s, off in (("noreg", not self.use_reg), ("noinner", not self.use_inner),
                                   ("noouter", not self.use_outer)) if off]
        return "-".join(parts)

    @property
    def synthetic_pretraining(self) -> None:
        """None: g's encoder does not start from the synthetic stand-in (f's run does,
        through its own configuration)."""
        return None

    def synthetic_options(self) -> dict[str, Any]:
        return {"context_bias": self.context_bias} if self.context_bias else {}

    def f_config(self) -> CAMConfig:
        """The run of f: for Method I the CAM classifier (the shared baseline run when the
        fields match its profile), for Method II the Siamese net on the same data and
        backbone (:class:`SiameseConfig`); trained once, then frozen."""
        values = dict(
            data_root=self.data_root, image_size=self.image_size,
            train_samples=self.f_train_samples, val_samples=self.val_samples,
            test_samples=self.test_samples, augment=self.augment, backbone=self.backbone,
            pretrained=self.f_pretrained, weights_path=self.weights_path, epochs=self.f_epochs,
            batch_size=self.f_batch_size, lr=self.f_lr, milestones=tuple(self.f_milestones),
            weight_decay=1e-4, seed=self.f_seed, context_bias=self.context_bias,
            device=self.device, num_workers=self.num_workers,
        )
        if self.method == "I":
            return CAMConfig(dataset=self.dataset, **values)
        return SiameseConfig(dataset=self.dataset, embedding_dim=self.embedding_dim,
                             margin=self.margin, **values)


@dataclass(frozen=True)
class SiameseConfig(CAMConfig):
    """Method II's f (Sec. 3): the backbone's GAP feature projected linearly to
    ``embedding_dim`` (200), trained with the triplet loss of Eq. 2 (margin 1)."""

    embedding_dim: int = 200
    margin: float = 1.0

    PAPER: ClassVar[str] = "weightmap"
    DATASETS: ClassVar[tuple[str, ...]] = (*SYNTHETIC, *WSOL_DATASETS)

    @property
    def name(self) -> str:
        return f"siamese-bias{self.context_bias:g}"
