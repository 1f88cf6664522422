"""What the ContraCAM chapter measures beyond a run's own test record: mask mIoU of both
map kinds, linear evaluation on the benchmark's families and Background Challenge
variants, transfer to unseen families, and the figures.

The synthetic analogs (the chapter says why each is one): ImageNet-9's Background
Challenge (Table 7) is the generator's seven :data:`~coloc.data.synthetic.VARIANTS` of
the class-biased single-object birds; the distribution-shifted ImageNet-9 sets (Tables 6,
8) are the variants that change the background (:data:`SHIFTS`); "unseen datasets"
(Table 3) are the families a bird-trained model never saw; the linear-evaluation
datasets of Table 4 are the four single-object families.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from coloc import cam
from coloc.boxes import boxes_from_scoremap, expand_boxes
from coloc.contracam.augment import background_only, bg_mix, crop_resize, oa_crop_regions
from coloc.contracam.config import ContraCAMConfig
from coloc.contracam.linear import extract_features, fit_probe, linear_evaluation
from coloc.contracam.maps import contracam, object_boxes
from coloc.data import collate_samples, load
from coloc.data.common import IMAGENET_MEAN, IMAGENET_STD
from coloc.data.memory import InMemory
from coloc.data.synthetic import FAMILIES, VARIANTS
from coloc.evaluate import Evaluation, evaluate
from coloc.metrics import MaskIoUEvaluator
from coloc.plots import grid, show_map
from coloc.runtime import progress

SHIFTS = ("only_fg", "mixed_rand", "mixed_next")
"""Variants that keep the objects and change (or remove) the background: the analog of
Tables 6 and 8's distribution-shifted ImageNet-9 sets."""
LINEAR_SAMPLES = {"train": 1000, "val": 200, "test": 500}
"""Images per split of every linear evaluation (the CPU profile's, to fit the budget)."""


@cache
def synthetic(split: str, image_size: int, family: str = "bird", variant: str = "original",
              context_bias: float = 0.0, samples: int | None = None) -> InMemory:
    """A single-object synthetic split, generated once per process and kept."""
    options = {"context_bias": context_bias} if context_bias else {}
    return InMemory(load(f"synthetic-{family}", split=split, image_size=image_size,
                         num_samples=samples, variant=variant, **options))


def _split(config: ContraCAMConfig, split: str, family: str = "bird",
           variant: str = "original", context_bias: float | None = None,
           samples: Mapping[str, int] = LINEAR_SAMPLES) -> InMemory:
    bias = config.context_bias if context_bias is None else context_bias
    return synthetic(split, config.image_size, family, variant, bias, samples[split])


def background_challenge(model: nn.Module, config: ContraCAMConfig,
                         samples: Mapping[str, int] = LINEAR_SAMPLES) -> dict[str, float]:
    """Table 7: a linear probe on the frozen features of the original (class-biased)
    single-object birds, its L2 chosen on val, scored on every variant of the test
    birds; ``bg_gap`` = Mixed-Same - Mixed-Rand (accuracy in %)."""
    probe = fit_probe(extract_features(model, _split(config, "train", samples=samples)),
                      extract_features(model, _split(config, "val", samples=samples)))
    scores = {v: probe.accuracy(*extract_features(
        model, _split(config, "test", variant=v, samples=samples))) for v in VARIANTS}
    scores["bg_gap"] = scores["mixed_same"] - scores["mixed_rand"]
    return scores


@cache
def object_crops(split: str, image_size: int, samples: int, margin: float = 0.2
                 ) -> list[dict]:
    """The COCO-Crop analog (Table 4): every object of ``samples`` multi-object scenes
    (1-3 objects of every family, the Table 4 runs' data) cropped by its GT box grown by
    ``margin`` (the paper's 20 %), resized to ``image_size``; labelled by its class (48
    classes). Samples in the dataset contract, without boxes or masks."""
    scenes = load("synthetic", split=split, image_size=image_size, num_samples=samples,
                  families=FAMILIES, num_objects=(1, 3))
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    empty = torch.zeros(image_size, image_size, dtype=torch.uint8)
    crops = []
    for index in range(len(scenes)):
        scene = scenes.render(index)
        image = torch.from_numpy(scene.image).permute(2, 0, 1)
        for label, (x0, y0, x1, y1) in zip(scene.labels, expand_boxes(
                scene.boxes, margin, scene.image.shape[:2]), strict=True):
            crop = F.interpolate(image[None, :, y0:y1 + 1, x0:x1 + 1], size=image_size,
                                 mode="bilinear", align_corners=False)[0]
            crops.append({"image": (crop - mean) / std, "label": int(label),
                          "family": scenes.class_specs[label].family,
                          "boxes": torch.zeros(0, 4), "mask": empty,
                          "part_mask": empty.bool(), "index": len(crops)})
    return crops


def crop_linear(model: nn.Module, config: ContraCAMConfig,
                samples: Mapping[str, int] = LINEAR_SAMPLES) -> float:
    """Table 4's COCO-Crop column: a linear probe on the object crops of
    :func:`object_crops` (train / val / test scenes), test accuracy (%)."""
    splits = [extract_features(model, object_crops(s, config.image_size, samples[s],
                                                   config.box_margin))
              for s in ("train", "val", "test")]
    return linear_evaluation(*splits).accuracy


def family_linear(model: nn.Module, config: ContraCAMConfig,
                  families: Sequence[str] = FAMILIES,
                  samples: Mapping[str, int] = LINEAR_SAMPLES) -> dict[str, float]:
    """Table 4's linear evaluation on object-centric images: per family, a probe on its
    12 classes (single objects, backgrounds not tied to the class), test accuracy (%)."""
    scores = {}
    for family in families:
        splits = [extract_features(model, _split(config, s, family, context_bias=0.0,
                                                 samples=samples))
                  for s in ("train", "val", "test")]
        scores[family] = linear_evaluation(*splits).accuracy
    return scores


def predicted_class_cam(model: nn.Module, batch: dict) -> Tensor:
    """The classifier's CAM of its top-1 class (a class label of another family means
    nothing to it: Table 3's unseen datasets)."""
    with torch.no_grad():
        predicted = model(batch["image"])["logits"].argmax(1)
    return cam.score_maps(model, {**batch, "label": predicted})


def transfer(score_maps: Callable[[nn.Module, dict], Tensor], model: nn.Module,
             config: ContraCAMConfig, families: Sequence[str]) -> dict[str, Evaluation]:
    """Box metrics of ``score_maps`` on the test images of each of ``families`` (Table 3:
    a model trained on one family, evaluated on families it never saw)."""
    return {family: evaluate(score_maps, model, _split(config, "test", family),
                             batch_size=config.batch_size, desc=family)
            for family in families}


def mask_miou(score_maps: Callable[[nn.Module, dict], Tensor], model: nn.Module,
              dataset: Dataset, batch_size: int = 64, threshold: float = 0.5) -> float:
    """Mask mIoU (Tables 1-2) of any map: binarized at ``threshold``, ignore pixels left
    out (:class:`coloc.metrics.MaskIoUEvaluator`), streamed over batches."""
    model.eval()
    evaluator = MaskIoUEvaluator(threshold)
    for start in progress(range(0, len(dataset), batch_size), desc="mask mIoU", leave=False):
        batch = collate_samples([dataset[i] for i in
                                 range(start, min(start + batch_size, len(dataset)))])
        evaluator.update(score_maps(model, batch).detach().numpy(), batch["mask"].numpy())
    return evaluator.compute()


# ----------------------------------------------------------------------------- figures


def batch_of(dataset: Dataset, indices: Sequence[int]) -> dict:
    """The items ``indices`` of ``dataset`` collated into one batch."""
    return collate_samples([dataset[i] for i in indices])


def figure_maps(models: Mapping[str, tuple[Callable, nn.Module]],
                datasets: Mapping[str, Dataset], per_set: int = 4,
                context: int = 32) -> plt.Figure:
    """Figure 1: each model's maps (rows) on images of each dataset (column groups), GT
    boxes red and the box at 0.2 of the map's max green. ContraCAM scores each image
    against ``context`` images of its dataset (its negatives)."""
    fig, axes = grid(len(models), per_set * len(datasets), size=1.35)
    for g, (name, dataset) in enumerate(datasets.items()):
        batch = batch_of(dataset, range(context))
        for r, (label, (score_maps, model)) in enumerate(models.items()):
            maps = score_maps(model, batch).detach()
            for k in range(per_set):
                ax = axes[r, g * per_set + k]
                box = boxes_from_scoremap(maps[k], 0.2)
                show_map(ax, batch["image"][k], maps[k], batch["boxes"][k], box,
                         title=f"{label}\n{name}" if k == 0 else "")
    fig.tight_layout()
    return fig


def figure_iterations(model: nn.Module, dataset: Dataset, count: int = 3,
                      iterations: int = 3, context: int = 32) -> plt.Figure:
    """Figure 2: Algorithm 1 step by step on the first ``count`` images of ``dataset``
    (scored against its first ``context`` images): per iteration the input (the image,
    then the image with the union so far painted over), its CAM and the union."""
    batch = batch_of(dataset, range(context))
    _, steps = contracam(model, batch["image"], iterations=iterations, intermediate=True)
    inputs = [batch["image"], *steps["masked"][:-1]]
    fig, axes = grid(count, 3 * iterations, size=1.2)
    for r in range(count):
        for t in range(iterations):
            first = r == 0
            show_map(axes[r, 3 * t], inputs[t][r], title=f"input, t={t + 1}" if first else "")
            show_map(axes[r, 3 * t + 1], inputs[t][r], steps["cams"][t][r],
                     title=f"CAM, t={t + 1}" if first else "")
            show_map(axes[r, 3 * t + 2], batch["image"][r], steps["masks"][t][r],
                     batch["boxes"][r], title=f"union, t={t + 1}" if first else "")
    fig.tight_layout()
    return fig


def has_background(maps: Tensor, threshold: float = 0.2) -> Tensor:
    """Bool ``[B]``: whether each map, binarized at ``threshold``, leaves a background
    strip beside its foreground rectangle (:func:`coloc.contracam.augment.background_only`);
    only those images can serve as another image's background in BG-Mixup."""
    dummy = torch.zeros(len(maps), 1, *maps.shape[-2:])
    return background_only(dummy, maps >= threshold)[1]


def background_share(maps: Tensor, threshold: float = 0.2) -> float:
    """The share of images of :func:`has_background`."""
    return float(has_background(maps, threshold).float().mean())


def figure_bg_mixup(maps: Tensor, dataset: Dataset, pairs: Sequence[tuple[int, int]],
                    threshold: float = 0.2) -> plt.Figure:
    """Figure 3: BG-Mixup (Eq. 4) on training images: per ``(image, partner)`` pair of
    dataset indices the image, its ContraCAM map (the vanilla model's prior), the
    background-only version of the partner, and the mix ``x * CAM + background * (1 -
    CAM)``. ``maps``: the priors of the dataset's first images, by index."""
    images = batch_of(dataset, [i for i, _ in pairs])["image"]
    partners = batch_of(dataset, [j for _, j in pairs])["image"]
    weights = maps[[i for i, _ in pairs]].float()
    backgrounds, _ = background_only(partners, maps[[j for _, j in pairs]] >= threshold)
    mixed = bg_mix(images, weights, backgrounds)
    fig, axes = grid(len(pairs), 4, size=1.5)
    for r in range(len(pairs)):
        first = r == 0
        show_map(axes[r, 0], images[r], title="image" if first else "")
        show_map(axes[r, 1], images[r], weights[r], title="ContraCAM" if first else "")
        show_map(axes[r, 2], backgrounds[r], title="another's background" if first else "")
        show_map(axes[r, 3], mixed[r], title="BG-Mixup" if first else "")
    fig.tight_layout()
    return fig


def figure_oa_crop(maps: Tensor, dataset: Dataset, indices: Sequence[int],
                   config: ContraCAMConfig, crops: int = 3) -> plt.Figure:
    """Figure 4: OA-Crop on multi-object scenes: the ContraCAM boxes (green, 20 % margin)
    beside the GT boxes (red), and random crops drawn inside the ContraCAM boxes."""
    batch = batch_of(dataset, indices)
    images = batch["image"]
    boxes = [torch.from_numpy(object_boxes(m.float(), config.mask_threshold,
                                           config.min_box_area, config.box_margin)).float()
             for m in maps]
    fig, axes = grid(len(indices), 2 + crops, size=1.5)
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)  # the figure's crops, without touching the caller's draws
    for r in range(len(indices)):
        show_map(axes[r, 0], images[r], maps[r].float(), batch["boxes"][r],
                 boxes[r].numpy() if len(boxes[r]) else None,
                 title="ContraCAM boxes" if r == 0 else "")
        for c in range(crops):
            region = oa_crop_regions([boxes[r]], *images.shape[-2:])
            show_map(axes[r, 1 + c], crop_resize(images[r:r + 1], region)[0],
                       title=f"OA-Crop {c + 1}" if r == 0 else "")
        show_map(axes[r, 1 + crops], images[r], title="original" if r == 0 else "")
    torch.set_rng_state(generator_state)
    fig.tight_layout()
    return fig


def seeds_frame(values: Mapping[str, Sequence[Mapping[str, float]]], columns: Sequence[str]
                ) -> dict[str, dict[str, str]]:
    """``{row: {column: "mean ± sd"}}`` over the seeds of each row (sd over seeds, ddof 1;
    one seed prints the value alone)."""
    out = {}
    for row, per_seed in values.items():
        cells = {}
        for column in columns:
            v = np.array([s[column] for s in per_seed], dtype=float)
            cells[column] = (f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1
                             else f"{v[0]:.2f}")
        out[row] = cells
    return out
