"""CAML wired end to end: configuration profiles, training steps, maps, evaluation, runs.

One module for the method of Ki et al., "Contrastive Attention Maps for Self-supervised
Co-localization" (ICCV 2021), and its PsyNet-style baseline:

- :func:`profile` resolves a :class:`CAMLConfig`: the CPU profile for the synthetic
  benchmark, the paper's settings (Sec. 4, "Implementation details") for a real dataset,
  user overrides on top; unknown names or values fail at once with the allowed ones.
- :func:`build_model` and :func:`make_step`: the pretext network (PTAP or CAAM pooling)
  and the training step of the baseline (``L_cls`` on the transformed view, CAML Eq. 6)
  or of CAML (``L_cls + L_caml``, Eq. 5), with the ablation switches of Tables 3-7.
- :func:`attention_maps`: the evaluation map (Sec. 3.3 "Inference"): the attention map of
  the untransformed image, bicubic-upsampled to the input and min-max normalized.
- :func:`evaluate`: streaming CorLoc@0.3/0.5/0.7/mean (one box at 0.2 of the max; the raw
  map rule by default, PROTOCOL.md) and MaxBoxAccV2, with per-image IoUs and boxes.
- :func:`run`: train-or-load. A run is identified by its full configuration
  (:func:`coloc.run.config_hash` of :meth:`CAMLConfig.identity`) and lives in
  ``<output_dir>/caml/<dataset>/<name>-<hash>/`` (``checkpoint.pt``, ``results.json``).
  Asking again loads it; ``force=True`` retrains. Rows of different tables that are the
  same configuration (Table 3 "Ours" = Table 5/6 "Ours" = Table 7 rotation) hit one run.
- :func:`explain`: the tensors of CAML Figures 1 and 3 for a batch (views, maps, inverse
  maps, background masks).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from coloc.boxes import RULES, boxes_from_scoremap, normalize_scoremap
from coloc.data import (
    DATASETS,
    DatasetError,
    DatasetNotFoundError,
    check,
    collate_samples,
    load,
)
from coloc.data.synthetic import FAMILIES
from coloc.losses import DISTANCES, EMBEDDINGS, PAIRS, CAMLLoss, background_mask, map_distance
from coloc.metrics import IOU_THRESHOLDS, CorLocEvaluator, MaxBoxAccEvaluator
from coloc.models import BACKBONES, PretextNet, build_backbone
from coloc.pretrain import PretrainConfig, families_except, synthetic_pretrained_backbone
from coloc.ptap import CAAM, PTAP, SELECTIONS, channel_average, normalize_attention
from coloc.run import (
    DEVICES,
    config_hash,
    progress,
    read_results,
    results_root,
    select_device,
    write_results,
)
from coloc.train import History, TrainConfig, fit
from coloc.transforms import TRANSFORMS, PretextTransform, build_transform

CAML_DATASETS = ("cub", "cars", "aircraft", "dogs")
"""The four co-localization benchmarks of CAML (Tables 2 and 7)."""
SYNTHETIC = ("synthetic", *(f"synthetic-{family}" for family in FAMILIES))
DATASET_NAMES = (*SYNTHETIC, *CAML_DATASETS)
POOLINGS = ("ptap", "caam")
PRETEXTS = (*TRANSFORMS, "rotation+scale", "scale+translation")
"""Table 7's six tasks and supplement Table 3's two combinations (any ``a+b`` also works)."""
SELECTS = ("last",)  # or "val:<metric>", e.g. "val:corloc@0.5"
RESULTS_FILE = "results.json"
PROBES = 4
"""Images whose maps every run records after each epoch (CAML Figure 5b)."""


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CAMLConfig:
    """Everything that defines one CAML or baseline run.

    Method switches (CAML Tables 3-7 and supplement): ``use_cls`` / ``use_caml`` (Table 3
    "- L_cls" / "- L_caml"), ``pooling`` ``"ptap"`` or ``"caam"`` (Table 3 "- A_PTAP" and
    the baseline), ``topk_ratio`` (supplement Fig. 1; 1/C is max, 1.0 average pooling),
    ``topk_largest=False`` (Table 6 bottom-k), ``selection`` pixel/channel (supplement
    Table 2), ``pairs`` (Table 5), ``embedding`` (Table 4), ``theta_bg`` (Eq. 3, Fig. 6),
    ``pretext`` (Table 7, supplement Table 3). ``distance`` and ``headroom`` settle what
    the paper leaves open, and so does ``peak_gradient`` (whether the loss may move the
    maximum a map is normalized by); the chapters explain all three.

    Fields that do not change the result (``data_root``, ``device``, ``num_workers``) are
    left out of :meth:`identity`, so a run on another machine or path is the same run.
    """

    dataset: str = "synthetic"
    data_root: str | None = None
    image_size: int = 64
    train_samples: int | None = None  # synthetic only: None = the whole split
    val_samples: int | None = None
    test_samples: int | None = None
    augment: str | None = None  # training transform of coloc.data.load
    backbone: str = "small_cnn"
    pretrained: bool = False
    weights_path: str | None = None
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
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    seed: int = 0
    select: str = "last"
    amp: bool = True  # used on CUDA only
    channels_last: bool = True  # used on CUDA only
    corloc_threshold: float = 0.2
    corloc_rule: str = "raw"
    device: str = "auto"
    num_workers: int = 0

    NOT_IDENTITY = ("data_root", "device", "num_workers")

    def __post_init__(self) -> None:
        _check_config(self)

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

    @property
    def synthetic_pretraining(self) -> PretrainConfig | None:
        """The stand-in for ImageNet weights this run starts from (:mod:`coloc.pretrain`):
        set for a synthetic dataset with ``pretrained=True`` and no ``weights_path``."""
        if self.dataset not in SYNTHETIC or not self.pretrained or self.weights_path:
            return None
        family = "bird" if self.dataset == "synthetic" else self.dataset.split("-", 1)[1]
        return PretrainConfig(backbone=self.backbone, image_size=self.image_size,
                              families=families_except(family))

    def identity(self) -> dict[str, Any]:
        """The fields that define the run's result (everything but paths and devices),
        plus the hash of the synthetic pretraining it starts from, if any."""
        identity = {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}
        pretraining = self.synthetic_pretraining
        identity["pretraining"] = pretraining.hash() if pretraining else None
        return identity

    def hash(self) -> str:
        """:func:`coloc.run.config_hash` of :meth:`identity` (includes the package version)."""
        return config_hash(_jsonable(self.identity()))

    def baseline(self) -> CAMLConfig:
        """The PsyNet-style baseline of this run: CAAM pooling and ``L_cls`` only (CAML
        Tables 2, 3 and 7), everything else equal."""
        return self.replace(use_caml=False, pooling="caam")

    def replace(self, **changes: Any) -> CAMLConfig:
        """A copy with ``changes`` applied (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def train_config(self, device: str) -> TrainConfig:
        """The :class:`coloc.train.TrainConfig` of this run (identity fields in ``extra``)."""
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, milestones=tuple(self.milestones), gamma=self.gamma,
            seed=self.seed, select=self.select, device=device, num_workers=self.num_workers,
            amp=self.amp, channels_last=self.channels_last, extra={"run": self.hash()},
        )


CHOICES: dict[str, tuple] = {
    "dataset": DATASET_NAMES,
    "backbone": BACKBONES,
    "pooling": POOLINGS,
    "selection": SELECTIONS,
    "pairs": PAIRS,
    "embedding": EMBEDDINGS,
    "distance": DISTANCES,
    "corloc_rule": RULES,
    "device": DEVICES,
    "augment": (None, "psynet", "wsol"),
}
"""Allowed values of the categorical fields (``pretext``: a name of
:data:`coloc.transforms.TRANSFORMS` or several joined by ``+``; ``select``: ``"last"``
or ``"val:corloc@0.5"``-style keys of the validation metrics)."""


def _check_config(config: CAMLConfig) -> None:
    for name, allowed in CHOICES.items():
        value = getattr(config, name)
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; allowed: {_listing(allowed)}")
    try:
        build_transform(config.pretext)
    except ValueError as err:
        raise ValueError(f"unknown pretext {config.pretext!r}; allowed: {_listing(PRETEXTS)} "
                         "(or any of the first six joined by '+')") from err
    if not config.use_cls and not config.use_caml:
        raise ValueError("use_cls and use_caml are both False: nothing to train")
    if not 0.0 < config.topk_ratio <= 1.0:
        raise ValueError(f"topk_ratio must be in (0, 1], got {config.topk_ratio}")
    if config.select != "last" and not config.select.startswith("val:"):
        raise ValueError(f"select must be 'last' or 'val:<metric>', got {config.select!r}")
    for name in ("image_size", "epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.lr <= 0:
        raise ValueError(f"lr must be > 0, got {config.lr}")


def _listing(values: Sequence) -> str:
    return ", ".join(repr(v) for v in values)


# ----------------------------------------------------------------------------- profiles

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


def profile(dataset: str = "synthetic", *, require_data: bool = True, **overrides: Any
            ) -> CAMLConfig:
    """Resolve a run configuration: the dataset's profile, then ``overrides``.

    ``synthetic`` (or ``synthetic-<family>``) gets :data:`CPU_PROFILE`; ``cub``, ``cars``,
    ``aircraft``, ``dogs`` get :data:`PAPER_PROFILE` and, on CUDA, DataLoader workers.
    Overrides that are ``None`` keep the profile's value (papermill parameters default to
    None); any other value wins. Unknown names raise ``TypeError`` listing the fields,
    unknown values ``ValueError`` listing the allowed values. A real dataset must be
    present under ``data_root``: otherwise the loader's error (expected path, layout,
    where to download) is raised here, before anything trains. ``require_data=False``
    skips that check, to name a run (e.g. look up a recorded one) without the data.
    """
    if dataset not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {_listing(DATASET_NAMES)}")
    fields = {f.name for f in dataclasses.fields(CAMLConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown parameters {unknown}; allowed: {', '.join(sorted(fields))}")
    synthetic = dataset in SYNTHETIC
    values = dict(CPU_PROFILE if synthetic else PAPER_PROFILE)
    if not synthetic:
        device = overrides.get("device") or values["device"]
        if device in DEVICES and select_device(device).type == "cuda":
            values["num_workers"] = min(8, os.cpu_count() or 1)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "milestones" in values:
        values["milestones"] = tuple(values["milestones"])
    config = CAMLConfig(dataset=dataset, **values)
    if not synthetic and require_data:
        _require_dataset(config)
    return config


def _require_dataset(config: CAMLConfig) -> None:
    """Fail now, with the loader's message, when a real dataset is missing."""
    if config.data_root is None or check(config.dataset, config.data_root):
        load(config.dataset, config.data_root, "train", config.image_size)  # raises
        raise DatasetNotFoundError(  # the loader found it after all: name what is missing
            f"{DATASETS[config.dataset].title}: missing "
            f"{check(config.dataset, config.data_root)}"
        )


# ----------------------------------------------------------------------------- data


class InMemory(Dataset):
    """A dataset's samples generated once and kept (synthetic scenes without augment).

    Every run of a chapter reads the same training images; generating them once saves
    most of the data time on the CPU profile. Only for deterministic datasets.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.samples = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


@lru_cache(maxsize=6)
def _synthetic_split(name: str, split: str, image_size: int, num_samples: int | None,
                     seed: int) -> Dataset:
    kwargs = {} if num_samples is None else {"num_samples": num_samples}
    return InMemory(load(name, split=split, image_size=image_size, seed=seed, **kwargs))


def dataset_split(config: CAMLConfig, split: str, train: bool = False) -> Dataset:
    """The ``split`` of the run's dataset at ``config.image_size``.

    Training (``train=True``) uses ``config.augment``; evaluation the protocol's test
    transform. Synthetic splits are generated once per process and kept in memory (the
    data seed is 0 whatever the run's seed: the benchmark is fixed, the run varies).
    ``train_samples``/``val_samples``/``test_samples`` cap a split (None: all of it).
    """
    sizes = {"train": config.train_samples, "val": config.val_samples,
             "test": config.test_samples}
    if config.dataset in SYNTHETIC:
        if train and config.augment is not None:
            kwargs = {} if sizes[split] is None else {"num_samples": sizes[split]}
            return load(config.dataset, split=split, image_size=config.image_size,
                        augment=config.augment, **kwargs)
        return _synthetic_split(config.dataset, split, config.image_size, sizes[split], 0)
    dataset = load(config.dataset, config.data_root, split, config.image_size,
                   augment=config.augment if train else None)
    if sizes[split] is not None and sizes[split] < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(sizes[split]))
    return dataset


def _optional_val(config: CAMLConfig) -> Dataset | None:
    """The val split for per-epoch CorLoc, or None where there is none (Cars, Aircraft,
    Dogs) or it is not on disk (CUB's val is wsolevaluation's metadata, an extra
    download); a ``select="val:..."`` run needs it and fails with the loader's error."""
    if not has_split(config, "val"):
        return None
    try:
        return dataset_split(config, "val")
    except DatasetError:
        if config.select.startswith("val:"):
            raise
        return None


def probe_split(config: CAMLConfig) -> Dataset:
    """Where the probe images of CAML Figure 5b come from: the val split, or the test
    split where there is no val split (a figure, never a model choice)."""
    val = _optional_val(config)
    return val if val is not None else dataset_split(config, "test")


def has_split(config: CAMLConfig, split: str) -> bool:
    """Whether the run's dataset has ``split`` (synthetic: all three)."""
    return config.dataset in SYNTHETIC or split in DATASETS[config.dataset].splits


# ----------------------------------------------------------------------------- model and step


def build_model(config: CAMLConfig, output_dir: str | Path | None = None) -> PretextNet:
    """The pretext network of ``config``: backbone, PTAP or CAAM pooling, one head per
    pretext component (CAML Sec. 3.1 and 3.3).

    ``pretrained=True`` loads ImageNet weights for the paper's backbones and, on the
    synthetic benchmark, the synthetic-family stand-in (:mod:`coloc.pretrain`, trained
    once and cached under ``output_dir``). A ``weights_path`` wins over both.
    """
    pretraining = config.synthetic_pretraining
    if pretraining is not None:
        weights = synthetic_pretrained_backbone(pretraining, results_root(output_dir))
        backbone = build_backbone(config.backbone, weights_path=weights)
    else:
        backbone = build_backbone(config.backbone, config.pretrained, config.weights_path)
    if config.pooling == "ptap":
        pooling: nn.Module = PTAP(
            backbone.out_channels, config.topk_ratio, largest=config.topk_largest,
            selection=config.selection, eca_kernel_size=config.eca_kernel_size,
        )
    else:
        pooling = CAAM()
    return PretextNet(backbone, build_transform(config.pretext).heads, pooling)


def make_step(config: CAMLConfig, transform: PretextTransform | None = None
              ) -> Callable[[nn.Module, dict], dict[str, Tensor]]:
    """The training step ``step(model, batch) -> {"loss", "cls"?, "caml"?, ...}``.

    Each image gets one pretext label drawn uniformly (identity included, as PsyNet
    does) from torch's global generator, which :func:`coloc.train.fit` reseeds per epoch.

    - Baseline and "- L_caml": only the transformed view is forwarded; ``L_cls`` (Eq. 6)
      on its logits.
    - With ``L_caml`` (Eq. 3-5): the original and transformed views go through the
      network as one batch (so BatchNorm sees both views; the paper is silent) and
      :class:`coloc.losses.CAMLLoss` combines ``L_cls`` (transformed view) and
      ``L_caml``; the step also reports ``hinge_active`` (the share of triplets whose
      hinge is open, i.e. that send a gradient), ``d_pos`` and ``d_neg``.
    """
    transform = transform or build_transform(config.pretext)
    loss = CAMLLoss(
        transform, cls_weight=float(config.use_cls), caml_weight=float(config.use_caml),
        theta_bg=config.theta_bg, margin=config.margin, pairs=config.pairs,
        embedding=config.embedding, headroom=config.headroom, distance=config.distance,
        peak_gradient=config.peak_gradient, stats=True,
    )

    def step(model: nn.Module, batch: dict) -> dict[str, Tensor]:
        images = batch["image"]
        labels = transform.sample_labels(len(images))
        transformed = transform.apply(images, labels.to(images.device))
        if not config.use_caml:
            trans = model(transformed)
            return loss(trans, trans, labels)
        both = model(torch.cat([images, transformed]))
        ori, trans = _split_output(both, len(images))
        return loss(ori, trans, labels)

    return step


def _split_output(output: Mapping[str, Any], n: int) -> tuple[dict, dict]:
    first, second = {}, {}
    for key, value in output.items():
        if isinstance(value, Mapping):
            first[key] = {k: v[:n] for k, v in value.items()}
            second[key] = {k: v[n:] for k, v in value.items()}
        else:
            first[key], second[key] = value[:n], value[n:]
    return first, second


# ----------------------------------------------------------------------------- maps


def upsample_maps(maps: Tensor, size: int | tuple[int, int]) -> Tensor:
    """``[B, h, w]`` feature-resolution maps -> ``[B, H, W]`` at the input resolution.

    Bicubic (as the reference evaluator of Choe et al. resizes), then min-max normalized
    per image into [0, 1] (:func:`coloc.boxes.normalize_scoremap`: constant or
    non-finite maps become zeros), float32 on the maps' device.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    up = F.interpolate(maps[:, None].float(), size=size, mode="bicubic", align_corners=False)
    return normalize_scoremap(up[:, 0])


@torch.no_grad()
def attention_maps(model: PretextNet, images: Tensor, test_pooling: str | None = None,
                   raw: bool = False) -> Tensor:
    """CAML Sec. 3.3 "Inference": attention maps of the untransformed ``images``.

    ``images`` ``[B, 3, H, W]`` (ImageNet-normalized, on the model's device) ->
    ``[B, H, W]`` in [0, 1] (:func:`upsample_maps`), or the feature-resolution maps
    ``[B, h, w]`` as pooled (``raw=True``). ``test_pooling="average"`` replaces the trained
    pooling by the channel mean of the backbone's features at test time (CAML supplement
    Table 1, "PTAP at test" unticked). The model is put in eval mode.
    """
    if test_pooling not in (None, "average"):
        raise ValueError(f"test_pooling must be None or 'average', got {test_pooling!r}")
    model.eval()
    output = model(images)
    maps = channel_average(output["features"]) if test_pooling else output["attention"]
    return maps.float() if raw else upsample_maps(maps, images.shape[-2:])


# ----------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """What :func:`evaluate` measured on a split.

    ``corloc`` and ``max_box_acc_v2``: ``{"0.3", "0.5", "0.7", "mean"}`` in percent.
    ``ious`` ``[N]``: each image's CorLoc IoU (its one box vs. its GT boxes, 0 without a
    contour); ``boxes`` ``[N, 4]``: that predicted box; ``indices`` ``[N]``: dataset
    positions. ``rule`` and ``threshold``: the CorLoc box rule.
    """

    corloc: dict[str, float]
    max_box_acc_v2: dict[str, float] | None
    ious: np.ndarray
    boxes: np.ndarray
    indices: np.ndarray
    rule: str
    threshold: float
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "corloc": self.corloc, "max_box_acc_v2": self.max_box_acc_v2,
            "corloc_rule": self.rule, "corloc_threshold": self.threshold,
            "per_image": {"iou": np.round(self.ious, 6).tolist(), "box": self.boxes.tolist(),
                          "index": self.indices.tolist()},
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Evaluation:
        per_image = record["per_image"]
        return cls(
            corloc=dict(record["corloc"]),
            max_box_acc_v2=None if record["max_box_acc_v2"] is None
            else dict(record["max_box_acc_v2"]),
            ious=np.asarray(per_image["iou"], dtype=np.float64),
            boxes=np.asarray(per_image["box"], dtype=np.int64).reshape(-1, 4),
            indices=np.asarray(per_image["index"], dtype=np.int64),
            rule=record["corloc_rule"], threshold=record["corloc_threshold"],
        )


def _keys(values: Mapping) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()}


@torch.no_grad()
def evaluate(
    model: PretextNet,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    threshold: float = 0.2,
    rule: str = "raw",
    max_box_acc: bool = True,
    test_pooling: str | None = None,
    num_workers: int = 0,
    desc: str = "evaluate",
) -> Evaluation:
    """Co-localization metrics of ``model`` on ``dataset``, streaming over batches.

    CorLoc (CAML Sec. 4 "Evaluation metrics"): one box per image, the largest contour at
    ``threshold`` (0.2) of the map's max; ``rule="raw"`` (default) thresholds the map
    itself, ``"jet_gray"`` PsyNet's jet-gray rendering (PROTOCOL.md). Images without a
    contour are misses. Reported at IoU 0.3/0.5/0.7 and their mean. MaxBoxAccV2 (Choe et
    al. 2020; CAML Table 1): best threshold over ``arange(0, 1, 0.01)`` per IoU, every
    contour a box. Maps come from :func:`attention_maps`.
    """
    started = time.perf_counter()
    device = torch.device(device)
    model.to(device).eval()
    corloc = CorLocEvaluator(threshold, IOU_THRESHOLDS, rule)
    boxacc = MaxBoxAccEvaluator(IOU_THRESHOLDS, multi_contour=True) if max_box_acc else None
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate_samples, num_workers=num_workers)
    boxes, indices = [], []
    for batch in progress(loader, desc=desc, leave=False):
        maps = attention_maps(model, batch["image"].to(device), test_pooling).cpu().numpy()
        gt = [b.numpy() for b in batch["boxes"]]
        corloc.update(maps, gt)
        if boxacc is not None:
            boxacc.update(maps, gt)
        boxes += [boxes_from_scoremap(m, threshold, rule=rule)[0] for m in maps]
        indices.append(batch["index"].numpy())
    return Evaluation(
        corloc=_keys(corloc.compute()),
        max_box_acc_v2=_keys(boxacc.compute()) if boxacc is not None else None,
        ious=corloc.image_ious, boxes=np.asarray(boxes, dtype=np.int64).reshape(-1, 4),
        indices=np.concatenate(indices), rule=rule, threshold=threshold,
        seconds=time.perf_counter() - started,
    )


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    """A trained (or loaded) run: its configuration, folder and recorded results.

    ``record`` is the results JSON (:func:`coloc.run.write_results`): ``metrics`` hold
    the test :class:`Evaluation` (``metrics["test"]``) and the selected epoch;
    ``curves`` the step and epoch losses, per-epoch validation CorLoc and the probe maps
    recorded after every epoch (Figure 5b). :meth:`model` loads the reported weights.
    """

    config: CAMLConfig
    directory: Path
    record: dict[str, Any]
    _model: PretextNet | None = field(default=None, repr=False)

    @property
    def test(self) -> Evaluation:
        return Evaluation.from_dict(self.record["metrics"]["test"])

    @property
    def curves(self) -> dict[str, Any]:
        return self.record["curves"]

    @property
    def seconds(self) -> dict[str, float]:
        return self.record["timings"]

    def model(self, device: str | torch.device = "cpu") -> PretextNet:
        """The reported model (last epoch, or the epoch chosen on val), in eval mode."""
        if self._model is None:
            state = torch.load(self.directory / "checkpoint.pt", map_location="cpu",
                               weights_only=True)
            model = build_model(self.config.replace(pretrained=False, weights_path=None))
            model.load_state_dict(state["best_model"] or state["model"])
            self._model = model
        return self._model.to(device).eval()


def run_directory(config: CAMLConfig, output_dir: str | Path | None = None) -> Path:
    """``<output_dir>/caml/<dataset>/<name>-<hash>``: where the run of ``config`` lives."""
    return results_root(output_dir) / "caml" / config.dataset / f"{config.name}-{config.hash()}"


def find_run(config: CAMLConfig, output_dir: str | Path | None = None) -> Run | None:
    """The recorded run of ``config`` under ``output_dir``, or None."""
    directory = run_directory(config, output_dir)
    path = directory / RESULTS_FILE
    if not (path.is_file() and (directory / "checkpoint.pt").is_file()):
        return None
    record = read_results(path)
    if record.get("config_hash") != config.hash():
        return None
    return Run(config, directory, record)


def run(
    config: CAMLConfig,
    output_dir: str | Path | None = None,
    *,
    force: bool = False,
) -> Run:
    """Train the run of ``config`` and evaluate it on test, or load it if recorded.

    A recorded run (same :meth:`CAMLConfig.hash`, i.e. same configuration and package
    version) under ``output_dir`` (default: :func:`results_root`) is loaded, not
    retrained; ``force=True`` deletes it and trains again. An interrupted run resumes
    from its last checkpoint (:func:`coloc.train.fit`). The model is seeded with
    ``config.seed`` before it is built, so a run does not depend on what ran before it
    in the process.

    After every epoch the run records the validation CorLoc (on ``config.val_samples``
    val images, where the dataset has a val split) and the raw attention maps of the
    first :data:`PROBES` val images (test images where there is no val split), before
    training and after each epoch (CAML Figure 5b). The test split is evaluated once, on
    the reported model (last epoch by default; a ``select="val:..."`` run picks its epoch
    on val, never on test).
    """
    directory = run_directory(config, output_dir)
    if force and directory.exists():
        shutil.rmtree(directory)
    recorded = None if force else find_run(config, output_dir)
    if recorded is not None:
        return recorded

    device = select_device(config.device)
    train_set = dataset_split(config, "train", train=True)
    val_set = _optional_val(config)
    if config.synthetic_pretraining is not None:  # before seeding: cached or not, same RNG
        synthetic_pretrained_backbone(config.synthetic_pretraining, results_root(output_dir))
    torch.manual_seed(config.seed)
    model = build_model(config, output_dir)
    probe_set = probe_split(config)
    probe_images = collate_samples([probe_set[i] for i in range(min(PROBES, len(probe_set)))]
                                   )["image"]
    probes_path = directory / "probes.json"
    probes: dict[str, list] = json.loads(probes_path.read_text()) if probes_path.is_file() \
        else {}

    def record_probes(net: nn.Module, epoch: int) -> None:
        maps = attention_maps(net, probe_images.to(device), raw=True)
        probes[str(epoch)] = np.round(maps.cpu().numpy(), 5).tolist()
        probes_path.parent.mkdir(parents=True, exist_ok=True)
        probes_path.write_text(json.dumps(probes))
        net.train()

    if "-1" not in probes:
        record_probes(model.to(device), -1)  # before training

    def validate(net: nn.Module) -> dict[str, float]:
        result = evaluate(net, val_set, batch_size=config.batch_size, device=device,
                          threshold=config.corloc_threshold, rule=config.corloc_rule,
                          max_box_acc=False, desc="val")
        net.train()
        return {f"corloc@{k}": v for k, v in result.corloc.items()}

    started = time.perf_counter()
    history: History = fit(
        model, train_set, make_step(config), config.train_config(str(device)), directory,
        evaluate=validate if val_set is not None else None, on_epoch_end=record_probes,
    )
    train_seconds = time.perf_counter() - started
    test = evaluate(model, dataset_split(config, "test"), batch_size=config.batch_size,
                    device=device, threshold=config.corloc_threshold, rule=config.corloc_rule,
                    num_workers=config.num_workers)
    metrics = {"test": test.to_dict(), "selected_epoch": history.selected_epoch,
               "select": config.select}
    curves = {
        "step_losses": history.step_losses, "epoch_losses": history.epoch_losses,
        "val": history.val_metrics, "probe_maps": probes,
    }
    timings = {"train": train_seconds, "epochs": history.epoch_seconds, "test": test.seconds}
    write_results(directory / RESULTS_FILE, config.identity(), metrics, curves, timings)
    # Read back: a trained run then holds exactly what a loaded one would (JSON floats).
    return Run(config, directory, read_results(directory / RESULTS_FILE), model.cpu().eval())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ----------------------------------------------------------------------------- figures


@torch.no_grad()
def explain(model: PretextNet, images: Tensor, labels: Tensor, config: CAMLConfig
            ) -> dict[str, Tensor]:
    """The tensors of CAML Figures 1 and 3 for ``images`` ``[B, 3, H, W]`` and pretext
    ``labels`` ``[B]``, all on the CPU.

    Returns ``image``, ``transformed`` (``T(x)``), the normalized attention maps at
    feature resolution as the loss sees them (:func:`coloc.ptap.normalize_attention`):
    ``A_ori``, ``A_trans``, ``A_trans2ori`` (``T^-1(A_trans)``), ``A_ori2trans``
    (``T(A_ori)``), the background masks ``M_bg_ori``, ``M_bg_trans`` (Eq. 3) and the
    negatives ``A_ori2bg``, ``A_trans2bg``; and ``valid`` (where ``T^-1`` recovers
    content).
    """
    transform = build_transform(config.pretext)
    model.eval()
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    transformed = transform.apply(images, labels)
    a_ori = normalize_attention(model(images)["attention"], config.headroom)
    a_trans = normalize_attention(model(transformed)["attention"], config.headroom)
    bg_ori, bg_trans = background_mask(a_ori, config.theta_bg), background_mask(
        a_trans, config.theta_bg)
    out = {
        "image": images, "transformed": transformed, "A_ori": a_ori, "A_trans": a_trans,
        "A_trans2ori": transform.invert(a_trans, labels), "A_ori2trans": transform.apply(
            a_ori, labels), "M_bg_ori": bg_ori, "M_bg_trans": bg_trans,
        "A_ori2bg": a_ori * bg_ori, "A_trans2bg": a_trans * bg_trans,
        "valid": transform.valid_mask(labels, tuple(a_ori.shape[-2:])),
    }
    return {k: v.cpu() for k, v in out.items()}


def triplet_distances(views: Mapping[str, Tensor], config: CAMLConfig
                      ) -> dict[str, dict[str, Tensor]]:
    """``d(anchor, positive)`` and ``d(anchor, negative)`` of both triplets of CAML Eq. 4,
    per image, for the output of :func:`explain` (``config.distance``; the original-frame
    triplet only where ``T^-1`` recovers content, as :func:`coloc.losses.caml_loss`).
    Returns ``{"ori": {"d_pos", "d_neg"}, "trans": {...}}``, each ``[B]``."""
    valid = views["valid"].float()
    anchor = views["A_trans2ori"] * valid
    ori = {"d_pos": map_distance(anchor, views["A_ori"] * valid, config.distance),
           "d_neg": map_distance(anchor, views["A_ori2bg"] * valid, config.distance)}
    anchor = views["A_ori2trans"]
    trans = {"d_pos": map_distance(anchor, views["A_trans"], config.distance),
             "d_neg": map_distance(anchor, views["A_trans2bg"], config.distance)}
    return {"ori": ori, "trans": trans}
