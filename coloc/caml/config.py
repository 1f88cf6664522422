"""CAML's run configuration: the method's switches, its profiles and allowed values.

:class:`CAMLConfig` adds to :class:`coloc.runs.RunConfig` the fields of Ki et al.,
"Contrastive Attention Maps for Self-supervised Co-localization" (ICCV 2021) and of its
PsyNet-style baseline; :data:`CPU_PROFILE` and :data:`PAPER_PROFILE` are what
:meth:`CAMLConfig.profile` resolves a dataset to. Building and training the model is
:mod:`coloc.caml.method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from coloc.caml.losses import DISTANCES, EMBEDDINGS, PAIRS
from coloc.caml.pretext import TRANSFORMS, build_transform
from coloc.caml.ptap import SELECTIONS
from coloc.data.memory import SYNTHETIC
from coloc.runs import Range, RunConfig, listing

CAML_DATASETS = ("cub", "cars", "aircraft", "dogs")
"""The four co-localization benchmarks of CAML (Tables 2 and 7)."""
DATASET_NAMES = (*SYNTHETIC, *CAML_DATASETS)
POOLINGS = ("ptap", "caam")
PRETEXTS = (*TRANSFORMS, "rotation+scale", "scale+translation")
"""Table 7's six tasks and supplement Table 3's two combinations (any ``a+b`` also works)."""

CPU_PROFILE: dict[str, Any] = dict(
    image_size=64, backbone="small_cnn", pretrained=True, augment=None,
    train_samples=1000, val_samples=200, test_samples=1000,
    epochs=6, batch_size=64, lr=0.01, momentum=0.9, weight_decay=1e-4, milestones=(),
    select="last", device="cpu", num_workers=0,
)
"""The synthetic benchmark on 2 CPU cores (about 40 s per CAML run): the small CNN
(stride 8, 8x8 maps at 64 px) starting from the synthetic stand-in for ImageNet weights
(:mod:`coloc.pretrain`). 6 epochs of 1,000 images are 90 steps, where the paper's
80 epochs of CUB are about 7,500: at the paper's lr 0.001 the rotation loss barely
leaves ln 4 in so few steps, so the CPU profile fine-tunes at 0.01."""


PAPER_PROFILE: dict[str, Any] = dict(
    image_size=224, backbone="vgg16_psynet", pretrained=True, augment="psynet",
    train_samples=None, val_samples=None, test_samples=None,
    epochs=80, batch_size=64, lr=1e-3, momentum=0.9, weight_decay=0.0, milestones=(60,),
    gamma=0.2, select="last", device="auto",
)
"""CAML Sec. 4: VGG16 with ImageNet weights, batch 64, SGD lr 1e-3 momentum 0.9. The
paper is silent on epochs and schedule: PsyNet's released code (80 epochs, lr x0.2 at
epoch 60, no weight decay) is what CAML builds on. PsyNet's Nesterov momentum is not
used: CAML names plain SGD with momentum."""


@dataclass(frozen=True)
class CAMLConfig(RunConfig):
    """Everything that defines one CAML or baseline run.

    Method switches (CAML Tables 3-7 and supplement): ``use_cls`` / ``use_caml`` (Table 3
    "- L_cls" / "- L_caml"), ``pooling`` ``"ptap"`` or ``"caam"`` (Table 3 "- A_PTAP" and
    the baseline), ``topk_ratio`` (supplement Fig. 1; 1/C is max, 1.0 average pooling),
    ``topk_largest=False`` (Table 6 bottom-k), ``selection`` pixel/channel (supplement
    Table 2), ``pairs`` (Table 5), ``embedding`` (Table 4), ``theta_bg`` (Eq. 3, Fig. 6),
    ``pretext`` (Table 7, supplement Table 3). ``distance`` and ``headroom`` settle what
    the paper leaves open, and so does ``peak_gradient`` (whether the loss may move the
    maximum a map is normalized by); the chapters explain all three.
    """

    pretext: str = "rotation"
    use_cls: bool = True
    use_caml: bool = True
    pooling: str = "ptap"
    topk_ratio: float = 0.7
    topk_largest: bool = True
    selection: str = "pixel"
    eca_kernel_size: int | None = None
    theta_bg: float = 2.3
    margin: float = 1.0
    pairs: str = "both"
    embedding: str = "attention"
    distance: str = "l2"
    headroom: float = 0.05
    peak_gradient: bool = False

    PAPER: ClassVar[str] = "caml"
    DATASETS: ClassVar[tuple[str, ...]] = DATASET_NAMES
    CPU_PROFILE: ClassVar[dict[str, Any]] = CPU_PROFILE
    PAPER_PROFILE: ClassVar[dict[str, Any]] = PAPER_PROFILE
    CHOICES: ClassVar[dict[str, tuple]] = {
        **RunConfig.CHOICES,
        "pooling": POOLINGS,
        "selection": SELECTIONS,
        "pairs": PAIRS,
        "embedding": EMBEDDINGS,
        "distance": DISTANCES,
    }
    """Allowed values of the categorical fields (``pretext``: a name of
    :data:`coloc.caml.pretext.TRANSFORMS` or several joined by ``+``; ``select``:
    ``"last"`` or ``"val:corloc@0.5"``-style keys of the validation metrics)."""
    RANGES: ClassVar[dict[str, Range]] = {
        **RunConfig.RANGES,
        "topk_ratio": Range(0, 1, low_open=True),  # supplement Fig. 1: 1/C (max) to 1 (mean)
        "eca_kernel_size": Range(1),
        "theta_bg": Range(1),  # Eq. 3: below 1 the background mask is every pixel
        "margin": Range(0),  # Eq. 4's triplet margin
        "headroom": Range(0, low_open=True),  # 0 makes Eq. 3 ignore theta_bg (losses.py)
    }
    """Allowed intervals of the numeric fields."""

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            build_transform(self.pretext)
        except ValueError as err:
            raise ValueError(f"unknown pretext {self.pretext!r}; allowed: "
                             f"{listing(PRETEXTS)} (or any of the first six joined by '+')"
                             ) from err
        if not self.use_cls and not self.use_caml:
            raise ValueError("use_cls and use_caml are both False: nothing to train")

    @property
    def method(self) -> str:
        """``"baseline"`` (L_cls with CAAM: PsyNet), ``"caml"`` (the full method) or
        ``"variant"`` (anything else, e.g. an ablation row)."""
        if self.use_cls and not self.use_caml and self.pooling == "caam":
            return "baseline"
        if self.use_cls and self.use_caml and self.pooling == "ptap":
            return "caml"
        return "variant"

    @property
    def name(self) -> str:
        """A readable run name: method, pretext and the switches that differ from CAML's."""
        parts = [self.method, self.pretext.replace("+", "-")]
        if self.method == "variant":
            parts += [s for s, off in (("nocls", not self.use_cls), ("nocaml", not self.use_caml),
                                       ("caam", self.pooling == "caam")) if off]
        return "-".join(parts)

    def baseline(self) -> CAMLConfig:
        """The PsyNet-style baseline of this run: CAAM pooling and ``L_cls`` only (CAML
        Tables 2, 3 and 7), everything else equal."""
        return self.replace(use_caml=False, pooling="caam")
