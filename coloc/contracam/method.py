"""ContraCAM for the shared runner: build the SSL model, its training step, its maps.

:data:`METHOD` gives :func:`coloc.runs.run` what it needs (as :mod:`coloc.cam` does):
``build_model`` (MoCo v2 or BYOL over the run's backbone, trained from scratch as in the
paper), ``make_step`` (two views, the debiasing transform of ``config.debias``, the
model's loss), ``score_maps`` (ContraCAM of each image against the rest of its batch,
with the run's map switches) and ``probe_maps``. :func:`run` trains-or-loads a run under
``results/contracam/<dataset>/``; a debiased run that needs ContraCAM maps or boxes
(OA-Crop (CAM), BG-Mixup) first trains-or-loads its vanilla model and precomputes them
on the training split, fixed for the whole training (Sec. 3 "Common setup").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from coloc import runs
from coloc.boxes import expand_boxes
from coloc.contracam.augment import (
    TwoViews,
    bg_mix_batch,
    crop_resize,
    cutmix,
    mixup,
    oa_crop_regions,
)
from coloc.contracam.config import USES_CONTRACAM, ContraCAMConfig
from coloc.contracam.maps import contracam, object_boxes
from coloc.contracam.model import BYOL, Mix, MoCo, SSLModel
from coloc.data import collate_samples
from coloc.metrics import MaskIoUEvaluator
from coloc.runs import Run
from coloc.runtime import progress, select_device
from coloc.train import StepFn, to_device


def build_model(config: ContraCAMConfig, output_dir: str | Path | None = None) -> SSLModel:
    """MoCo v2 or BYOL (``config.ssl``) over the run's backbone (``pretrained=False``: from
    scratch, as the paper). ``map_options`` (the run's ContraCAM switches) ride along as a
    plain attribute, so :func:`score_maps` of a loaded model uses them."""
    backbone = runs.backbone(config, output_dir)
    if config.ssl == "moco":
        hidden = config.proj_hidden or backbone.out_channels  # MoCo v2: the feature width
        model: SSLModel = MoCo(backbone, hidden, config.proj_dim,
                               config.queue_size, config.moco_momentum, config.temperature)
    else:
        model = BYOL(backbone, config.byol_hidden, config.byol_dim, config.byol_momentum)
    model.map_options = config.map_options()
    return model


@dataclass(frozen=True)
class Priors:
    """What a vanilla model's ContraCAM says about each training image, by dataset index:
    ``maps`` uint8 ``[N, H, W]`` (the soft map x 255) and ``boxes`` (OA-Crop's boxes,
    :func:`coloc.contracam.maps.object_boxes`, one ``[K, 4]`` tensor per image)."""

    maps: Tensor
    boxes: list[Tensor]


@torch.no_grad()
def precompute_priors(model: SSLModel, dataset: Dataset, config: ContraCAMConfig,
                      device: str | torch.device = "cpu") -> Priors:
    """ContraCAM maps and boxes of every image of ``dataset`` (in order, batches of
    ``config.batch_size`` as the negatives), with ``config``'s map and box settings."""
    device = torch.device(device)
    loader = DataLoader(dataset, batch_size=config.batch_size, collate_fn=collate_samples)
    indices, maps = [], []
    for batch in progress(loader, desc="ContraCAM priors", leave=False):
        images = batch["image"].to(device)
        maps.append((contracam(model.to(device), images, **config.map_options()) * 255)
                    .round().to(torch.uint8).cpu())
        indices.append(batch["index"])
    index, soft = torch.cat(indices), torch.cat(maps)
    table = torch.zeros(int(index.max()) + 1, *soft.shape[1:], dtype=torch.uint8)
    table[index] = soft
    boxes = [torch.zeros(0, 4)] * len(table)
    for i, m in zip(index.tolist(), soft, strict=True):
        boxes[i] = torch.from_numpy(object_boxes(
            m.float() / 255, config.mask_threshold, config.min_box_area, config.box_margin)
        ).float()
    return Priors(table, boxes)


def crop_boxes(config: ContraCAMConfig, batch: dict, priors: Priors | None
               ) -> list[Tensor]:
    """OA-Crop's boxes of each image of ``batch``: the vanilla model's ContraCAM boxes
    (precomputed, margin included) or the GT boxes grown by the same ``box_margin``
    (Appendix B.2: the 20 % margin was found with GT boxes and reused for CAM boxes)."""
    if config.debias == "oa-crop-contracam":
        return [priors.boxes[i] for i in batch["index"].tolist()]
    size = tuple(batch["image"].shape[-2:])
    return [torch.from_numpy(expand_boxes(b, config.box_margin, size)).float()
            for b in batch["boxes"]]


def _sources(config: ContraCAMConfig, batch: dict, priors: Priors | None
             ) -> tuple[Tensor, Tensor]:
    """The two images each view is cropped from, after the debiasing transform that acts
    before the view augmentation (OA-Crop, BG-Mixup, BG-HardMix; Sec. 2.3)."""
    images = batch["image"]
    if config.debias in ("oa-crop-contracam", "oa-crop-gt"):
        boxes = crop_boxes(config, batch, priors)
        regions = oa_crop_regions(boxes, *images.shape[-2:]).to(images.device)
        cropped = crop_resize(images, regions)
        return cropped, cropped  # both views inside the same box
    if config.debias in ("bg-mixup", "bg-hardmix"):
        if config.debias == "bg-mixup":  # soft ContraCAM weights (Eq. 4)
            weights = priors.maps[batch["index"].cpu()].to(images.device).float() / 255
            foreground = weights >= config.bg_threshold
        else:  # BG-HardMix: the binary GT mask (ignore pixels count as background)
            foreground = batch["mask"] == 1
            weights = foreground.float()
        return tuple(bg_mix_batch(images, weights, foreground, config.p_mix)
                     for _ in range(2))  # independently per view (Sec. 3.3)
    return images, images


def make_step(config: ContraCAMConfig, priors: Priors | None = None) -> StepFn:
    """The training step: two augmented views (:class:`TwoViews`), the debiasing of
    ``config.debias`` and the model's loss (MoCo: InfoNCE, query view 1, key view 2;
    BYOL: the symmetric loss over both view orders). Mixup and CutMix mix the query view
    only, keys stay clean. ``priors`` are required for OA-Crop (CAM) and BG-Mixup:
    :func:`run` precomputes them."""
    if config.debias in USES_CONTRACAM and priors is None:
        raise ValueError(f"debias={config.debias!r} needs the vanilla model's ContraCAM "
                         "maps: train through coloc.contracam.run, which precomputes them")
    views = TwoViews(config.crop_min_scale, config.blur_kernel)

    def step(model: nn.Module, batch: dict) -> dict[str, Tensor]:
        first, second = _sources(config, batch, priors)
        clean, key = views.view(first), views.view(second)
        query, mix = clean, None
        if config.debias == "mixup":
            query, mix = mixup(clean, config.mix_alpha)
        elif config.debias == "cutmix":
            query, mix = cutmix(clean, config.mix_alpha)
        if config.ssl == "moco":
            output = model(query, key)
        else:
            n = len(query)
            output = model(torch.cat([query, key]), torch.cat([key, clean]))
            if mix is not None:  # the second order's query is clean
                mix = Mix(torch.cat([mix.partner, torch.arange(n, 2 * n, device=key.device)]),
                          torch.cat([mix.lam, torch.ones_like(mix.lam)]))
        return {"loss": model.loss(output, mix)}

    return step


def score_maps(model: SSLModel, batch: dict, **overrides: Any) -> Tensor:
    """ContraCAM maps ``[B, H, W]`` in [0, 1] of ``batch["image"]``, each image against the
    others of the batch (:func:`coloc.contracam.maps.contracam`), with the model's
    ``map_options`` and ``overrides`` (e.g. ``clamp_weights=False``, ``iterations=5``)."""
    options = {**getattr(model, "map_options", {}), **overrides}
    return contracam(model, batch["image"], **options)


def probe_maps(model: SSLModel, batch: dict) -> Tensor:
    """First-iteration raw CAMs ``[B, h, w]`` of the probe images (against each other)."""
    clamp = getattr(model, "map_options", {}).get("clamp_weights", True)
    return contracam(model, batch["image"], clamp_weights=clamp, raw=True)


def mask_miou(model: SSLModel, dataset: Dataset, *, batch_size: int = 64,
              device: str | torch.device = "cpu", threshold: float = 0.5,
              **overrides: Any) -> float:
    """Mask mIoU (Tables 1-2) of the model's ContraCAM on ``dataset``: maps binarized at
    ``threshold`` (0.5), streamed over batches of ``batch_size`` (the negatives), ignore
    pixels left out (:class:`coloc.metrics.MaskIoUEvaluator`); ``overrides`` as in
    :func:`score_maps`."""
    device = torch.device(device)
    model.to(device).eval()
    evaluator = MaskIoUEvaluator(threshold)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples)
    for batch in progress(loader, desc="mask mIoU", leave=False):
        maps = score_maps(model, to_device(batch, device), **overrides)
        evaluator.update(maps.cpu().numpy(), batch["mask"].numpy())
    return evaluator.compute()


METHOD = runs.Method(build_model=build_model, make_step=make_step, score_maps=score_maps,
                     probe_maps=probe_maps)
"""ContraCAM (MoCo v2 / BYOL, any debiasing without precomputed maps) for the runner."""

profile = ContraCAMConfig.profile


def find_run(config: ContraCAMConfig, output_dir: str | Path | None = None) -> Run | None:
    """The recorded run of ``config`` under ``output_dir``, or None (never trains)."""
    return runs.find_run(METHOD, config, output_dir)


def run(config: ContraCAMConfig, output_dir: str | Path | None = None, *,
        force: bool = False) -> Run:
    """Train-or-load the run of ``config`` (:func:`coloc.runs.run`), recorded under
    ``<output_dir>/contracam/<dataset>/`` and evaluated once on test (box metrics of its
    ContraCAM). OA-Crop (CAM) and BG-Mixup first train-or-load ``config.vanilla()`` and
    precompute its maps and boxes on the training split."""
    if not force and (recorded := find_run(config, output_dir)) is not None:
        return recorded
    method = METHOD
    if config.debias in USES_CONTRACAM:
        vanilla = run(config.vanilla(), output_dir)
        device = select_device(config.device)
        priors = precompute_priors(vanilla.model(device),
                                   runs.dataset_split(config, "train", train=True),
                                   config, device)
        method = dataclasses.replace(METHOD, make_step=partial(make_step, priors=priors))
    return runs.run(method, config, output_dir, force=force)
