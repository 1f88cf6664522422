"""InCA's run configuration: the ADL baseline and InCA as switches of one config.

:class:`INCAConfig` adds to the CAM baseline's configuration (:class:`coloc.cam.CAMConfig`:
the shared :class:`coloc.runs.RunConfig` fields and the synthetic benchmark's
``context_bias``) the fields of Ki et al., "In-sample Contrastive Learning and Consistent
Attention for Weakly Supervised Object Localization" (ACCV 2020) and of its baseline ADL
(Choe & Shim, CVPR 2019). ADL, InCA and every ablation row of InCA Table 2 are values of
these fields (:meth:`INCAConfig.adl`, :meth:`INCAConfig.inca`); building and training the
model is :mod:`coloc.inca.method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from coloc.cam import CPU_PROFILE as CAM_CPU_PROFILE
from coloc.cam import PAPER_PROFILE as CAM_PAPER_PROFILE
from coloc.cam import CAMConfig
from coloc.runs import RunConfig

ATTENTIONS = ("channel", "nonlocal")
"""``channel``: ADL's channel mean; ``nonlocal``: InCA's non-local attention block (Eq. 5)."""
DROP_MASKS = ("adl", "dfg")
"""``adl``: ADL's drop mask ``A < gamma_fg * max``; ``dfg``: InCA's M_dfg (Eq. 1)."""
MAP_NORMS = ("none", "max", "minmax")
"""How an attention map is normalized per image before the thresholds of Eq. 1-2 and the
distance of Eq. 4 (the paper is silent)."""
REDUCTIONS = ("mean", "sum")
"""How Eq. 4's squared L2 norm reduces over pixels (the paper writes a sum)."""

TABLE1: dict[str, dict[str, float]] = {
    "vgg16_psynet": {"drop_rate": 0.33, "gamma_fg": 0.72, "gamma_bg": 1.2},
    "resnet50": {"drop_rate": 0.85, "gamma_fg": 0.95, "gamma_bg": 1.2},
}
"""InCA Table 1's hyper-parameters per backbone (InceptionV3's row, 0.69 / 0.86 / 1.2,
has no backbone in this package)."""

CPU_PROFILE: dict[str, Any] = dict(CAM_CPU_PROFILE)
"""The CAM baseline's CPU profile (:data:`coloc.cam.CPU_PROFILE`): small CNN from the
synthetic stand-in weights, 64 px, 2,000 training images, 10 epochs."""

PAPER_PROFILE: dict[str, Any] = {**CAM_PAPER_PROFILE, **TABLE1["resnet50"]}
"""InCA Sec. 4.1 (ResNet50 from ImageNet weights, 224 px, batch 32, SGD lr 0.001,
momentum 0.9, weight decay 1e-4; the schedule is the CAM baseline's) with Table 1's
ResNet50 hyper-parameters; ``-p backbone vgg16_psynet`` takes Table 1's VGG row
(:meth:`INCAConfig.profile`)."""


@dataclass(frozen=True)
class INCAConfig(CAMConfig):
    """Everything that defines one ADL, InCA or ablation run.

    - ``attention``: ``"channel"`` (ADL; InCA Table 2 "w/o non-local") or ``"nonlocal"``
      (Eq. 5); ``drop_mask``: ``"adl"`` (ADL; Table 2 "w/o M_dfg") or ``"dfg"`` (Eq. 1);
    - ``drop_rate``, ``gamma_fg``, ``gamma_bg``: Table 1 (ADL's drop threshold is
      ``gamma_fg``); ``positions``: how many attention positions, counted from the last
      (Table 3; 3 = ADL's);
    - ``ca_weight`` / ``fc_weight``: weights of L_ca (Eq. 3) and L_fc (Eq. 4) in Eq. 6
      (0 switches a loss off: Table 2 "w/o contrastive", "w/o L_fc"); ``margin`` (m,
      Eq. 3, 1 in Sec. 4.1); ``embed_dim`` (128, Sec. 3.2);
    - where the paper is silent: ``map_norm`` (normalization of A before Eq. 1, 2 and 4),
      ``fc_reduction`` (sum or mean over pixels in Eq. 4), ``nonlocal_residual`` (the
      non-local block of Wang et al. adds its input and starts as the identity; here:
      A = channel mean of F plus the non-local term, whose ``z`` starts at zero),
      ``reduction`` (the block's f, g channels are C / reduction).
    """

    attention: str = "channel"
    drop_mask: str = "adl"
    drop_rate: float = 0.75
    gamma_fg: float = 0.9
    gamma_bg: float = 1.2
    positions: int = 3
    ca_weight: float = 0.0
    fc_weight: float = 0.0
    margin: float = 1.0
    embed_dim: int = 128
    map_norm: str = "max"
    fc_reduction: str = "mean"
    nonlocal_residual: bool = True
    reduction: int = 8

    PAPER: ClassVar[str] = "inca"
    CPU_PROFILE: ClassVar[dict[str, Any]] = CPU_PROFILE
    PAPER_PROFILE: ClassVar[dict[str, Any]] = PAPER_PROFILE
    CHOICES: ClassVar[dict[str, tuple]] = {
        **RunConfig.CHOICES,
        "attention": ATTENTIONS,
        "drop_mask": DROP_MASKS,
        "map_norm": MAP_NORMS,
        "fc_reduction": REDUCTIONS,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("drop_rate", "gamma_fg"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.positions < 1:
            raise ValueError(f"positions must be >= 1, got {self.positions}")
        if self.ca_weight < 0 or self.fc_weight < 0:
            raise ValueError("loss weights must be >= 0")

    @classmethod
    def profile(cls, dataset: str = "synthetic", *, require_data: bool = True,
                **overrides: Any) -> INCAConfig:
        """:meth:`RunConfig.profile`; on a real dataset a VGG16 backbone also takes Table
        1's VGG row, unless those values are given."""
        backbone = overrides.get("backbone")
        if backbone in TABLE1 and dataset in cls.DATASETS and not dataset.startswith(
                "synthetic"):
            overrides = {**TABLE1[backbone],
                         **{k: v for k, v in overrides.items() if v is not None}}
        return super().profile(dataset, require_data=require_data, **overrides)

    @property
    def method(self) -> str:
        """``"adl"``, ``"inca"`` or ``"variant"`` (an ablation row)."""
        if self.attention == "channel" and self.drop_mask == "adl" and not (
                self.ca_weight or self.fc_weight):
            return "adl"
        if self.attention == "nonlocal" and self.drop_mask == "dfg" and self.ca_weight \
                and self.fc_weight:
            return "inca"
        return "variant"

    @property
    def name(self) -> str:
        parts = [self.method, f"bias{self.context_bias:g}"]
        if self.method == "variant":
            parts += [self.attention, self.drop_mask]
            parts += [s for s, off in (("noca", not self.ca_weight),
                                       ("nofc", not self.fc_weight)) if off]
        return "-".join(parts)

    def adl(self, **changes: Any) -> INCAConfig:
        """The ADL baseline of this run (channel attention, ADL's drop mask, no extra
        losses), everything else equal."""
        return self.replace(attention="channel", drop_mask="adl", ca_weight=0.0,
                            fc_weight=0.0, **changes)

    def inca(self, ca_weight: float = 1.0, fc_weight: float = 1.0, **changes: Any
             ) -> INCAConfig:
        """InCA of this run: non-local attention, M_dfg, L_ca and L_fc (Eq. 6's weights
        are 1 in the paper)."""
        return self.replace(attention="nonlocal", drop_mask="dfg", ca_weight=ca_weight,
                            fc_weight=fc_weight, **changes)
