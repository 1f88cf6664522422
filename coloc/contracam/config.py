"""ContraCAM's run configuration: the SSL model, the map's switches, the debiasing choice.

:class:`ContraCAMConfig` adds to :class:`coloc.runs.RunConfig` the fields of Mo et al.,
"Object-aware Contrastive Learning for Debiased Scene Representation" (NeurIPS 2021):
the self-supervised model (MoCo v2 or BYOL, Sec. 2.1), ContraCAM's switches (Eq. 1-3,
Algorithms 1-3) and the debiasing transform (OA-Crop, BG-Mixup, BG-HardMix, and the
Mixup / CutMix baselines of Table 8). :data:`CPU_PROFILE` and :data:`PAPER_PROFILE` are
what :meth:`ContraCAMConfig.profile` resolves a dataset to. Building and training is
:mod:`coloc.contracam.method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from coloc.data.memory import SYNTHETIC
from coloc.data.synthetic import FAMILIES
from coloc.runs import RunConfig
from coloc.train import SCHEDULES

CONTRACAM_DATASETS = ("cub", "flowers", "coco")
"""Real datasets of the paper profile (Table 1's CUB, Flowers, COCO)."""
SSL_METHODS = ("moco", "byol")
DEBIAS = ("none", "oa-crop-contracam", "oa-crop-gt", "bg-mixup", "bg-hardmix", "mixup",
          "cutmix")
"""Debiasing batch transforms (:mod:`coloc.contracam.augment`): none; OA-Crop (Sec. 2.3,
Table 4) with ContraCAM or ground-truth boxes; BG-Mixup (Eq. 4, Table 7) with the
ContraCAM map; BG-HardMix (Table 7) with the GT mask; Mixup and CutMix (Table 8)."""
SCENES = ("single", "multi")
"""Synthetic images: one object (Tables 1-3, 7-8) or 1-3 objects of every family
(the multi-object scenes of Tables 4-6, the COCO analog)."""
USES_CONTRACAM = ("oa-crop-contracam", "bg-mixup")
"""Debiasing that needs the maps of a vanilla model, trained first (Sec. 3 "Common setup")."""

CPU_PROFILE: dict[str, Any] = dict(
    image_size=64, backbone="small_cnn", pretrained=False, augment=None,
    train_samples=2000, val_samples=200, test_samples=1000,
    epochs=4, batch_size=64, lr=0.03, momentum=0.9, weight_decay=1e-4, schedule="cosine",
    select="last", device="cpu", num_workers=0,
    queue_size=1024, moco_momentum=0.99, proj_dim=128,
    byol_hidden=512, byol_dim=128, blur_kernel=7, context_bias=0.5,
)
"""The synthetic benchmark on 2 CPU cores: the small CNN (8x8 maps at 64 px) trained
from scratch, as the paper trains its SSL models from scratch (Sec. 3 "Common setup"),
batch 64 and SGD lr 0.03 with the cosine schedule (Appendix B.1), for 4 epochs (about
20 s): on val, 8 epochs gave no better ContraCAM masks than 4, nor did lr 0.12,
a queue of 256 or temperature 0.1 (the chapter shows why: at this scale training moves
the maps towards the background). Scaled down from the
paper's defaults, and why: 2,000 training images (31 steps per epoch), so the queue holds
1,024 keys (half the data, where 65,536 would hold each image's own stale keys as
negatives), the key encoder's momentum is 0.99 (at 0.999 it would keep about half of
its random initialization after 600 steps), BYOL's 4,096/256 become 512/128, and the
blur kernel is 7 px (23 px at 224, scaled). Half of the single-object images have the
background tied to their class (``context_bias`` 0.5, the book's calibrated benchmark,
as the CAM baseline's): the analog of ImageNet-9's class-correlated backgrounds that the
Background Challenge (Table 7) measures. MoCo's projector keeps its hidden width equal
to the backbone's channels (256), as MoCo v2's does (2,048 on ResNet-50)."""

PAPER_PROFILE: dict[str, Any] = dict(
    image_size=224, backbone="resnet18", pretrained=False, augment=None,
    train_samples=None, val_samples=None, test_samples=None,
    epochs=2000, batch_size=256, lr=0.03, momentum=0.9, weight_decay=1e-4,
    schedule="cosine", select="last", device="auto",
    queue_size=65536, moco_momentum=0.999, proj_dim=128,
    byol_hidden=4096, byol_dim=256, blur_kernel=23, context_bias=0.0,
)
"""Sec. 3 "Common setup" and Appendix B.1: ResNet-18 trained from scratch, batch 256,
2,000 epochs on CUB and Flowers (800 on COCO: :meth:`ContraCAMConfig.profile` sets it),
SGD lr 0.03 with cosine annealing; MoCo v2's defaults (temperature 0.2, queue 65,536,
momentum 0.999, 2-layer MLP head of the feature width to 128-d; He et al. / Chen et al.)
and BYOL's (projector and predictor 4,096 -> 256; Grill et al.), except the minimum
crop scale 0.08. Augmentations (B.1): colour jitter (0.4, 0.4, 0.4, 0.1) with p 0.8,
grayscale p 0.2, Gaussian blur kernel 23, sigma in (0.1, 2.0) with p 0.5, flip. Images are
resized to 224 before the SSL crops (the masks of OA-Crop / BG-Mixup index that frame)."""

PAPER_EPOCHS = {"coco": 800}
"""Sec. 3: 800 epochs on COCO (and ImageNet-9), 2,000 on CUB and Flowers."""


@dataclass(frozen=True)
class ContraCAMConfig(RunConfig):
    """Everything that defines one ContraCAM run (a MoCo v2 or BYOL model and its maps).

    SSL (Sec. 2.1): ``ssl`` (``"moco"``/``"byol"``), ``temperature`` (MoCo v2: 0.2),
    ``queue_size``, ``moco_momentum``, ``byol_momentum`` (constant tau; BYOL's schedule
    towards 1 is not used), ``proj_hidden``/``proj_dim`` (MoCo's MLP head; hidden None is
    the backbone's width),
    ``byol_hidden``/``byol_dim`` (BYOL's projector and predictor), ``crop_min_scale``
    (0.08, Sec. 3), ``blur_kernel``. ContraCAM (Eq. 1-3, Algorithms 1-3):
    ``clamp_weights`` (negative-signal removal, Table 1), ``iterations`` (1 for single
    objects, 10 for scenes, Sec. 3), ``expand`` (the expansion trick at inference, needs
    a ResNet). Masks and boxes: ``mask_threshold`` (0.5, mIoU and boxes),
    ``box_margin`` (0.2) and ``min_box_area`` (0.01 of the image), Appendix B.2.
    Debiasing (Sec. 2.3, :data:`DEBIAS`): ``debias``, ``mix_prob`` (p_mix: None means
    the paper's 0.4 for MoCo v2, 0.3 for BYOL), ``bg_threshold`` (0.2, the binarized CAM
    that locates the background patch, Sec. 3), ``mix_alpha`` (Mixup/CutMix's Beta(1, 1)).
    ``scene``: single- or multi-object synthetic images (:data:`SCENES`);
    ``context_bias``: the share of synthetic images whose background style is tied to
    their class (0 on real data).
    """

    ssl: str = "moco"
    temperature: float = 0.2
    queue_size: int = 65536
    moco_momentum: float = 0.999
    byol_momentum: float = 0.996
    proj_hidden: int | None = None
    proj_dim: int = 128
    byol_hidden: int = 4096
    byol_dim: int = 256
    crop_min_scale: float = 0.08
    blur_kernel: int = 23
    schedule: str = "cosine"
    clamp_weights: bool = True
    iterations: int = 1
    expand: bool = False
    mask_threshold: float = 0.5
    box_margin: float = 0.2
    min_box_area: float = 0.01
    debias: str = "none"
    mix_prob: float | None = None
    bg_threshold: float = 0.2
    mix_alpha: float = 1.0
    scene: str = "single"
    context_bias: float = 0.0

    PAPER: ClassVar[str] = "contracam"
    DATASETS: ClassVar[tuple[str, ...]] = (*SYNTHETIC, *CONTRACAM_DATASETS)
    CPU_PROFILE: ClassVar[dict[str, Any]] = CPU_PROFILE
    PAPER_PROFILE: ClassVar[dict[str, Any]] = PAPER_PROFILE
    CHOICES: ClassVar[dict[str, tuple]] = {
        **RunConfig.CHOICES,
        "ssl": SSL_METHODS,
        "debias": DEBIAS,
        "scene": SCENES,
        "schedule": SCHEDULES,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.queue_size < self.batch_size:
            raise ValueError(f"queue_size ({self.queue_size}) must hold at least one batch "
                             f"({self.batch_size})")
        for name in ("moco_momentum", "byol_momentum", "crop_min_scale", "mask_threshold",
                     "box_margin", "min_box_area", "bg_threshold", "context_bias"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mix_prob is not None and not 0.0 <= self.mix_prob <= 1.0:
            raise ValueError(f"mix_prob must be in [0, 1] or None, got {self.mix_prob}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.expand and not self.backbone.startswith("resnet"):
            raise ValueError(f"expand (the expansion trick) halves the stride of a ResNet's "
                             f"layer4; backbone {self.backbone!r} has none")
        if self.context_bias and self.dataset not in SYNTHETIC:
            raise ValueError("context_bias is a setting of the synthetic benchmark; "
                             f"{self.dataset} has its own backgrounds")
        if self.scene == "multi" and self.dataset != "synthetic":
            raise ValueError("scene='multi' is a setting of the synthetic benchmark "
                             f"(dataset 'synthetic'); got {self.dataset!r}")

    @classmethod
    def profile(cls, dataset: str = "synthetic", *, require_data: bool = True,
                **overrides: Any) -> ContraCAMConfig:
        """:meth:`RunConfig.profile`, with the paper's 800 epochs on COCO (Sec. 3)."""
        if dataset in PAPER_EPOCHS and overrides.get("epochs") is None:
            overrides["epochs"] = PAPER_EPOCHS[dataset]
        return super().profile(dataset, require_data=require_data, **overrides)

    @property
    def p_mix(self) -> float:
        """BG-Mixup's probability per view (Sec. 3.3): ``mix_prob``, or the paper's choice
        on its grid {0.2, 0.3, 0.4, 0.5}: 0.4 for MoCo v2, 0.3 for BYOL."""
        if self.mix_prob is not None:
            return self.mix_prob
        return 0.4 if self.ssl == "moco" else 0.3

    @property
    def name(self) -> str:
        """``<ssl>-<debias>`` plus the scene and the map switches that differ."""
        parts = [self.ssl, self.debias]
        if self.scene != "single":
            parts.append(self.scene)
        return "-".join(parts)

    def vanilla(self) -> ContraCAMConfig:
        """The model without debiasing whose ContraCAM maps (or boxes) a debiased run
        uses, precomputed once with this run's map switches and then fixed (Sec. 3
        "Common setup"; the paper: 10 iterations and the expansion trick for OA-Crop's
        boxes on COCO, one iteration without expansion for BG-Mixup)."""
        return self.replace(debias="none", mix_prob=None)

    def map_options(self) -> dict[str, Any]:
        """The ContraCAM switches of this run's maps (:func:`coloc.contracam.maps.contracam`
        keyword arguments): the recorded test metrics and the precomputed maps use them.
        They are part of the run's identity; to compare map variants of one trained model
        (Table 1) call :func:`coloc.contracam.method.score_maps` with overrides."""
        return {"clamp_weights": self.clamp_weights, "iterations": self.iterations,
                "expand": self.expand}

    def synthetic_options(self) -> dict[str, Any]:
        """Multi-object scenes: 1-3 objects drawn from every family (Tables 4-6); the
        class-tied backgrounds of ``context_bias``."""
        options: dict[str, Any] = {"context_bias": self.context_bias} if self.context_bias else {}
        if self.scene == "multi":
            options |= {"families": FAMILIES, "num_objects": (1, 3)}
        return options
