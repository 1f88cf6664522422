"""Localization metrics, as ``PROTOCOL.md`` defines them.

Box metrics (MaxBoxAcc, MaxBoxAccV2) and PxAP give the same numbers as the reference
evaluator of Choe et al. (CVPR 2020, clovaai/wsolevaluation ``evaluation.py``) on the
same score maps. CorLoc, GT-known / top-1 localization and mask mIoU follow the
papers' definitions summarized in the protocol.

Inputs, for every metric (numpy arrays or torch tensors):

- ``score_maps``: ``[N, H, W]`` or a sequence of ``[H, W]`` maps, finite, in [0, 1]
  (see :func:`coloc.boxes.normalize_scoremap`);
- ``gt_boxes``: a sequence of ``[K_i, 4]`` boxes ``(x0, y0, x1, y1)``, integer pixel
  coordinates (float dtypes are fine if integral), inclusive corners, ``K_i >= 1``;
- ``gt_masks``: a sequence of ``[H, W]`` uint8 masks, 1 foreground, 0 background,
  255 ignore (bool masks are read as 1/0).

Evaluators stream: ``update(...)`` per batch, ``compute()`` once. They keep counts
(per threshold, per histogram bin) or one number per image, never the maps, and
``merge(other)`` adds another shard's state (sharded evaluation over processes:
:func:`coloc.distributed.merged`), giving exactly the numbers of one evaluator.
Percentages are in [0, 100]; mask mIoU is a fraction in [0, 1], as ContraCAM reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch

from coloc.boxes import (
    RULES,
    _to_numpy,
    best_iou_per_threshold,
    best_iou_per_threshold_batch,
    box_iou,
    contour_boxes,
    foreground_mask,
)

IOU_THRESHOLDS = (0.3, 0.5, 0.7)
"""IoU criteria of MaxBoxAccV2 and of CAML's CorLoc table."""


def default_cam_thresholds() -> np.ndarray:
    """``arange(0, 1, 0.01)``: the reference command line's score-map thresholds
    (its training code defaults to a 0.001 step; pass that explicitly if wanted)."""
    return np.arange(0, 1, 0.01)


def _checked_score_maps(
    score_maps: np.ndarray | torch.Tensor | Sequence,
) -> np.ndarray | list[np.ndarray]:
    """The maps as one numpy array ``[N, H, W]`` (array input) or a list of ``[H, W]``
    arrays, once checked: 2-D, real, finite and in [0, 1]."""
    if isinstance(score_maps, (np.ndarray, torch.Tensor)):
        if score_maps.ndim != 3:
            raise ValueError(
                f"score_maps has shape {tuple(score_maps.shape)}; "
                "expected [N, H, W] or a sequence of [H, W] maps"
            )
        score_maps = _to_numpy(score_maps)
        if score_maps.dtype.kind in "fiu" and score_maps.size:
            low, high = score_maps.min(), score_maps.max()  # NaN fails both tests below
            if low >= 0 and high <= 1:
                return score_maps
    maps = []
    for index, score_map in enumerate(score_maps):  # one by one, to name the bad map
        values = _to_numpy(score_map)
        if values.ndim != 2:
            raise ValueError(
                f"score_maps[{index}] has shape {values.shape}; expected a 2-D map [H, W]"
            )
        if values.dtype.kind not in "fiu":
            raise ValueError(
                f"score_maps[{index}] has dtype {values.dtype}; expected a float (or integer) map"
            )
        low, high = values.min(), values.max()  # min and max propagate NaN
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(
                f"score_maps[{index}] holds NaN or inf; expected finite values in [0, 1] "
                "(coloc.boxes.normalize_scoremap maps such maps to zeros)"
            )
        if low < 0 or high > 1:
            raise ValueError(
                f"score_maps[{index}] has values in [{low:g}, {high:g}]; expected [0, 1] "
                "(normalize with coloc.boxes.normalize_scoremap)"
            )
        maps.append(values)
    return maps


def _check_score_maps(score_maps: np.ndarray | torch.Tensor | Sequence) -> list[np.ndarray]:
    """The checked maps (:func:`_checked_score_maps`) as a list of ``[H, W]`` arrays."""
    return list(_checked_score_maps(score_maps))


def _check_gt_boxes(gt_boxes: Sequence, maps: np.ndarray | Sequence[np.ndarray],
                    first: int = 0) -> list[np.ndarray]:
    """The GT boxes as int64 ``[K, 4]`` arrays, once checked against their maps: integer
    pixels inside the map (a box in original-image pixels against a 224 map would
    otherwise score 0 % silently). ``first`` is the index of the batch's first image
    among all images added, so an error names the image."""
    num_maps = len(maps)
    if len(gt_boxes) != num_maps:
        raise ValueError(
            f"gt_boxes has {len(gt_boxes)} entries but score_maps has {num_maps} maps; "
            "expected one [K, 4] array of GT boxes per map"
        )
    checked = []
    for index, boxes in enumerate(gt_boxes):
        values = _to_numpy(boxes)
        if values.ndim != 2 or values.shape[1] != 4 or len(values) == 0:
            raise ValueError(
                f"gt_boxes[{index}] has shape {values.shape}; expected [K, 4] with K >= 1"
            )
        if not np.isfinite(values).all() or (values != np.round(values)).any():
            raise ValueError(
                f"gt_boxes[{index}] = {values.tolist()} holds non-integer coordinates; "
                "expected integer pixels (the protocol truncates rescaled boxes with int())"
            )
        values = values.astype(np.int64)
        if (values < 0).any():
            raise ValueError(
                f"gt_boxes[{index}] = {values.tolist()} has negative coordinates; "
                "expected pixels >= 0"
            )
        if (values[:, 2] < values[:, 0]).any() or (values[:, 3] < values[:, 1]).any():
            raise ValueError(
                f"gt_boxes[{index}] = {values.tolist()} has x1 < x0 or y1 < y0; "
                "expected (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1"
            )
        # x1 = W (one past the last pixel) happens when a box reaching the image's far
        # edge is rescaled with int(), as the protocol does; anything further is not a
        # box of this map.
        height, width = maps[index].shape[-2:]
        outside = (values[:, 2] > width) | (values[:, 3] > height)
        if outside.any():
            raise ValueError(
                f"image {first + index}: GT box {values[outside][0].tolist()} lies outside "
                f"its {height}x{width} (H x W) score map (x1 <= {width}, y1 <= {height}); "
                "expected boxes in the map's pixels (rescale boxes given in original-image "
                "pixels to the map's size)"
            )
        checked.append(values)
    return checked


def _check_gt_masks(gt_masks: Sequence, maps: list[np.ndarray]) -> list[np.ndarray]:
    if len(gt_masks) != len(maps):
        raise ValueError(
            f"gt_masks has {len(gt_masks)} entries but score_maps has {len(maps)} maps; "
            "expected one [H, W] mask per map"
        )
    checked = []
    for index, (mask, score_map) in enumerate(zip(gt_masks, maps, strict=True)):
        values = _to_numpy(mask)
        if values.shape != score_map.shape:
            raise ValueError(
                f"gt_masks[{index}] has shape {values.shape}; expected the shape of "
                f"score_maps[{index}], {score_map.shape}"
            )
        if values.dtype == bool:
            values = values.astype(np.uint8)
        if not ((values == 0) | (values == 1) | (values == 255)).all():
            raise ValueError(
                f"gt_masks[{index}] holds values {np.unique(values)[:8].tolist()}; "
                "expected 0 (background), 1 (foreground) or 255 (ignore)"
            )
        checked.append(values)
    return checked


def _check_iou_thresholds(iou_thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(value) for value in iou_thresholds)
    if not values or not all(0 < value <= 1 for value in values):
        raise ValueError(
            f"iou_thresholds={iou_thresholds!r}; expected a non-empty sequence in (0, 1]"
        )
    return values


def _check_cam_thresholds(cam_thresholds: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if cam_thresholds is None:
        return default_cam_thresholds()
    values = np.asarray(cam_thresholds, dtype=np.float64)
    if (
        values.ndim != 1
        or len(values) == 0
        or not np.isfinite(values).all()
        or (values < 0).any()
        or (values >= 1).any()
        or (np.diff(values) <= 0).any()
    ):
        raise ValueError(
            f"cam_thresholds={cam_thresholds!r}; expected a non-empty increasing 1-D "
            "sequence in [0, 1), e.g. numpy.arange(0, 1, 0.01)"
        )
    return values


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is unknown; expected one of {RULES}")
    return rule


def _one_box_iou(score_map: np.ndarray, gt_boxes: np.ndarray, threshold: float, rule: str) -> float:
    """IoU of the largest-contour box with the best GT box; 0 when there is no contour."""
    boxes = contour_boxes(foreground_mask(score_map, threshold, rule))
    return float(box_iou(boxes, gt_boxes).max()) if len(boxes) else 0.0


def _with_mean(values: dict[float, float]) -> dict[float | str, float]:
    return {**values, "mean": float(np.mean(list(values.values())))}


class MaxBoxAccEvaluator:
    """Streaming MaxBoxAcc / MaxBoxAccV2 (Choe et al., CVPR 2020; PROTOCOL.md).

    For each IoU criterion ``delta`` and each score-map threshold ``tau``, counts the
    images whose IoU (max over predicted and GT boxes) is ``>= delta``; the result for
    ``delta`` is the best ``tau`` over the whole split. ``multi_contour=True`` is
    MaxBoxAccV2 (every contour is a box), ``False`` is MaxBoxAcc (largest contour).

    MaxBoxAccV2 reads all thresholds' boxes of a map off its component tree in one
    compiled call per batch (:func:`coloc.boxes.best_iou_per_threshold_batch`; exactly
    OpenCV's contour boxes, see ``coloc.boxes``); MaxBoxAcc needs OpenCV's contour
    areas, so it traces contours per distinct foreground. ``num_threads > 1`` splits
    each batch over a thread pool (both release the GIL for their heavy part; measure
    with ``python -m coloc.bench metrics``). The numbers do not depend on it.
    """

    def __init__(
        self,
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
        cam_thresholds: Sequence[float] | np.ndarray | None = None,
        multi_contour: bool = True,
        num_threads: int = 1,
    ) -> None:
        self.iou_thresholds = _check_iou_thresholds(iou_thresholds)
        self.cam_thresholds = _check_cam_thresholds(cam_thresholds)
        self.multi_contour = multi_contour
        self.num_threads = num_threads
        self.num_images = 0
        self._num_correct = np.zeros((len(self.iou_thresholds), len(self.cam_thresholds)), int)

    def update(self, score_maps: np.ndarray | torch.Tensor | Sequence, gt_boxes: Sequence) -> None:
        """Add a batch: maps ``[B, H, W]`` in [0, 1] and ``B`` arrays of GT boxes ``[K, 4]``."""
        maps = _checked_score_maps(score_maps)
        boxes = _check_gt_boxes(gt_boxes, maps, self.num_images)
        if not len(maps):
            return
        if self.multi_contour:  # all thresholds of a map at once, maps in one call
            image_ious = partial(best_iou_per_threshold_batch, thresholds=self.cam_thresholds)
            size = -(-len(maps) // max(1, self.num_threads))  # ceil: one part per thread
            parts = [slice(start, start + size) for start in range(0, len(maps), size)]
            if len(parts) > 1:
                with ThreadPoolExecutor(len(parts)) as pool:
                    chunks = pool.map(lambda part: image_ious(maps[part], boxes[part]), parts)
                    ious = np.concatenate(list(chunks))
            else:
                ious = image_ious(maps, boxes)
        else:
            image_ious = partial(
                best_iou_per_threshold,
                thresholds=self.cam_thresholds,
                multi_contour=False,
                min_iou=min(self.iou_thresholds),
            )
            if self.num_threads > 1 and len(maps) > 1:
                with ThreadPoolExecutor(self.num_threads) as pool:
                    ious = np.stack(list(pool.map(image_ious, maps, boxes)))
            else:
                ious = np.stack([image_ious(m, gt) for m, gt in zip(maps, boxes, strict=True)])
        deltas = np.asarray(self.iou_thresholds)[:, None, None]
        self._num_correct += (ious[None] >= deltas).sum(axis=1)
        self.num_images += len(ious)

    def merge(self, other: MaxBoxAccEvaluator) -> MaxBoxAccEvaluator:
        """Add ``other``'s counts (another shard of the split, same settings); return self.

        Counts per IoU criterion and threshold add up, so the merged result is exactly
        the result of one evaluator over both shards (sharded evaluation)."""
        if (self.iou_thresholds != other.iou_thresholds or self.multi_contour
                != other.multi_contour or not np.array_equal(self.cam_thresholds,
                                                             other.cam_thresholds)):
            raise ValueError("cannot merge MaxBoxAcc evaluators with different settings")
        self._num_correct += other._num_correct
        self.num_images += other.num_images
        return self

    def accuracy_curves(self) -> dict[float, np.ndarray]:
        """Per IoU criterion, the box accuracy (%) at each of ``cam_thresholds``."""
        if self.num_images == 0:
            raise ValueError("no images were added; call update() before computing")
        accuracies = self._num_correct * 100.0 / float(self.num_images)
        return dict(zip(self.iou_thresholds, accuracies, strict=True))

    def best_thresholds(self) -> dict[float, float]:
        """Per IoU criterion, the first score-map threshold reaching the best accuracy."""
        return {
            delta: float(self.cam_thresholds[np.argmax(curve)])
            for delta, curve in self.accuracy_curves().items()
        }

    def compute(self) -> dict[float | str, float]:
        """``{delta: best accuracy (%)}`` for each IoU criterion, plus their ``"mean"``."""
        return _with_mean(
            {delta: float(curve.max()) for delta, curve in self.accuracy_curves().items()}
        )


def max_box_acc(
    score_maps: np.ndarray | torch.Tensor | Sequence,
    gt_boxes: Sequence,
    multi_contour: bool = True,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    cam_thresholds: Sequence[float] | np.ndarray | None = None,
) -> dict[float | str, float]:
    """MaxBoxAccV2 (``multi_contour=True``) or MaxBoxAcc (``False``) in percent, keyed
    by IoU criterion, plus ``"mean"`` (MaxBoxAccV2 is the mean over 0.3/0.5/0.7;
    MaxBoxAcc is the 0.5 entry of one-box mode). ``cam_thresholds=None`` is
    ``arange(0, 1, 0.01)``. See :class:`MaxBoxAccEvaluator`."""
    evaluator = MaxBoxAccEvaluator(iou_thresholds, cam_thresholds, multi_contour)
    evaluator.update(score_maps, gt_boxes)
    return evaluator.compute()


class CorLocEvaluator:
    """Streaming CorLoc (PROTOCOL.md, "CorLoc"): the share of images whose one-box
    prediction at a fixed ``threshold`` of the max has IoU ``>= delta`` with a GT box.

    ``rule="raw"`` thresholds the quantized map; ``"jet_gray"`` thresholds PsyNet's
    jet-gray rendering (:func:`coloc.boxes.psynet_jet_gray`). An image without any
    contour is a miss (IoU 0) and stays in the denominator. ``image_ious`` keeps each
    image's IoU (max over its GT boxes), e.g. to show the worst cases.
    """

    def __init__(
        self,
        threshold: float = 0.2,
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
        rule: str = "raw",
    ) -> None:
        if not 0 <= threshold < 1:
            raise ValueError(f"threshold={threshold!r}; expected a fraction of the max in [0, 1)")
        self.threshold = float(threshold)
        self.iou_thresholds = _check_iou_thresholds(iou_thresholds)
        self.rule = _check_rule(rule)
        self._image_ious: list[float] = []

    def update(self, score_maps: np.ndarray | torch.Tensor | Sequence, gt_boxes: Sequence) -> None:
        """Add a batch: maps ``[B, H, W]`` in [0, 1] and ``B`` arrays of GT boxes ``[K, 4]``."""
        maps = _check_score_maps(score_maps)
        boxes = _check_gt_boxes(gt_boxes, maps, len(self._image_ious))
        for score_map, gt in zip(maps, boxes, strict=True):
            self._image_ious.append(_one_box_iou(score_map, gt, self.threshold, self.rule))

    def merge(self, other: CorLocEvaluator) -> CorLocEvaluator:
        """Append ``other``'s images (the next shard of the split, same settings); return
        self. Per-image IoUs concatenate in shard order."""
        if (self.threshold, self.iou_thresholds, self.rule) != (
                other.threshold, other.iou_thresholds, other.rule):
            raise ValueError("cannot merge CorLoc evaluators with different settings")
        self._image_ious += other._image_ious
        return self

    @property
    def image_ious(self) -> np.ndarray:
        """IoU of each image so far, ``[N]`` float64 (0 where no contour was found)."""
        return np.asarray(self._image_ious, dtype=np.float64)

    def compute(self) -> dict[float | str, float]:
        """``{delta: CorLoc (%)}`` for each IoU criterion, plus their ``"mean"``."""
        ious = self.image_ious
        if len(ious) == 0:
            raise ValueError("no images were added; call update() before computing")
        return _with_mean(
            {
                delta: float(np.count_nonzero(ious >= delta) * 100.0 / len(ious))
                for delta in self.iou_thresholds
            }
        )


def corloc(
    score_maps: np.ndarray | torch.Tensor | Sequence,
    gt_boxes: Sequence,
    threshold: float = 0.2,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    rule: str = "raw",
) -> dict[float | str, float]:
    """CorLoc (%) at each IoU criterion plus ``"mean"``, one box per image at
    ``threshold`` of the max; ``rule`` is ``"raw"`` or ``"jet_gray"`` (PsyNet). See
    :class:`CorLocEvaluator`."""
    evaluator = CorLocEvaluator(threshold, iou_thresholds, rule)
    evaluator.update(score_maps, gt_boxes)
    return evaluator.compute()


class LocalizationAccuracyEvaluator:
    """Streaming GT-known loc, top-1 loc and top-1 cls (PROTOCOL.md), in percent.

    GT-known loc is CorLoc at ``iou_threshold`` (0.5) with the score map of the GT
    class; top-1 loc also needs the top-1 class to be right; top-1 cls is the
    classification accuracy.
    """

    def __init__(
        self, threshold: float = 0.2, iou_threshold: float = 0.5, rule: str = "raw"
    ) -> None:
        if not 0 <= threshold < 1:
            raise ValueError(f"threshold={threshold!r}; expected a fraction of the max in [0, 1)")
        self.threshold = float(threshold)
        self.iou_threshold = _check_iou_thresholds((iou_threshold,))[0]
        self.rule = _check_rule(rule)
        self._localized: list[bool] = []
        self._classified: list[bool] = []

    def update(
        self,
        score_maps: np.ndarray | torch.Tensor | Sequence,
        gt_boxes: Sequence,
        predictions: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor | Sequence[int],
    ) -> None:
        """Add a batch: GT-class maps ``[B, H, W]``, GT boxes, ``predictions`` as class
        scores ``[B, C]`` or predicted classes ``[B]``, and GT ``labels`` ``[B]``."""
        maps = _check_score_maps(score_maps)
        boxes = _check_gt_boxes(gt_boxes, maps, len(self._localized))
        scores, truth = _to_numpy(predictions), _to_numpy(labels)
        predicted = scores.argmax(axis=1) if scores.ndim == 2 else scores
        if predicted.shape != (len(maps),) or truth.shape != (len(maps),):
            raise ValueError(
                f"predictions have shape {scores.shape} and labels {truth.shape}; expected "
                f"[{len(maps)}, C] or [{len(maps)}], and [{len(maps)}] (one per map)"
            )
        for score_map, gt in zip(maps, boxes, strict=True):
            iou = _one_box_iou(score_map, gt, self.threshold, self.rule)
            self._localized.append(iou >= self.iou_threshold)
        self._classified.extend((predicted == truth).tolist())

    def merge(self, other: LocalizationAccuracyEvaluator) -> LocalizationAccuracyEvaluator:
        """Append ``other``'s images (the next shard, same settings); return self."""
        if (self.threshold, self.iou_threshold, self.rule) != (
                other.threshold, other.iou_threshold, other.rule):
            raise ValueError("cannot merge localization evaluators with different settings")
        self._localized += other._localized
        self._classified += other._classified
        return self

    def compute(self) -> dict[str, float]:
        """``{"gt_known_loc", "top1_loc", "top1_cls"}`` in percent."""
        if not self._localized:
            raise ValueError("no images were added; call update() before computing")
        localized, classified = np.array(self._localized), np.array(self._classified)
        return {
            "gt_known_loc": float(np.count_nonzero(localized) * 100.0 / len(localized)),
            "top1_loc": float(np.count_nonzero(localized & classified) * 100.0 / len(localized)),
            "top1_cls": float(np.count_nonzero(classified) * 100.0 / len(localized)),
        }


class PxAPEvaluator:
    """Streaming PxAP, pixel average precision (Choe et al., CVPR 2020; PROTOCOL.md).

    Histograms the scores of GT-foreground and GT-background pixels (ignore pixels,
    255, left out) over the bin edges ``cam_thresholds + [1, 2, 3]``; precision and
    recall at each edge come from the reverse cumulative counts.
    """

    def __init__(self, cam_thresholds: Sequence[float] | np.ndarray | None = None) -> None:
        self.cam_thresholds = _check_cam_thresholds(cam_thresholds)
        self.bin_edges = np.append(self.cam_thresholds, [1.0, 2.0, 3.0])
        self._foreground_hist = np.zeros(len(self.bin_edges) - 1, dtype=np.int64)
        self._background_hist = np.zeros(len(self.bin_edges) - 1, dtype=np.int64)

    def update(self, score_maps: np.ndarray | torch.Tensor | Sequence, gt_masks: Sequence) -> None:
        """Add a batch: maps ``[B, H, W]`` in [0, 1] and masks ``[B, H, W]`` (0/1/255)."""
        maps = _check_score_maps(score_maps)
        for score_map, mask in zip(maps, _check_gt_masks(gt_masks, maps), strict=True):
            self._foreground_hist += np.histogram(score_map[mask == 1], self.bin_edges)[0]
            self._background_hist += np.histogram(score_map[mask == 0], self.bin_edges)[0]

    def merge(self, other: PxAPEvaluator) -> PxAPEvaluator:
        """Add ``other``'s pixel histograms (another shard, same thresholds); return self."""
        if not np.array_equal(self.bin_edges, other.bin_edges):
            raise ValueError("cannot merge PxAP evaluators with different thresholds")
        self._foreground_hist += other._foreground_hist
        self._background_hist += other._background_hist
        return self

    def curve(self) -> dict[str, np.ndarray]:
        """The precision-recall curve behind PxAP, from the highest edge down:
        ``thresholds`` (scores ``>=`` each), ``precision`` (NaN where nothing is
        predicted), ``recall``; all float64 ``[len(cam_thresholds) + 2]``."""
        num_positives = self._foreground_hist.sum()
        if num_positives == 0:
            raise ValueError(
                "no foreground pixel (mask value 1) was added; PxAP needs at least one"
            )
        true_positives = self._foreground_hist[::-1].cumsum().astype(np.float64)
        false_positives = self._background_hist[::-1].cumsum().astype(np.float64)
        predicted = true_positives + false_positives
        with np.errstate(invalid="ignore"):
            precision = true_positives / predicted
        return {
            "thresholds": self.bin_edges[-2::-1].copy(),
            "precision": precision,
            "recall": true_positives / float(num_positives),
        }

    def compute(self) -> float:
        """PxAP in percent: sum of precision times recall increase over the edges,
        skipping edges where nothing is predicted."""
        curve = self.curve()
        predicted = ~np.isnan(curve["precision"])
        terms = curve["precision"][1:] * np.diff(curve["recall"])
        return float(terms[predicted[1:]].sum() * 100)


def pxap(
    score_maps: np.ndarray | torch.Tensor | Sequence,
    gt_masks: Sequence,
    cam_thresholds: Sequence[float] | np.ndarray | None = None,
) -> float:
    """PxAP in percent over all images (``cam_thresholds=None``: ``arange(0, 1, 0.01)``).
    See :class:`PxAPEvaluator`."""
    evaluator = PxAPEvaluator(cam_thresholds)
    evaluator.update(score_maps, gt_masks)
    return evaluator.compute()


class MaskIoUEvaluator:
    """Streaming mask mIoU (ContraCAM Tables 1-2; PROTOCOL.md): per image, IoU of the
    binarized map (``score > threshold``) and the GT foreground, ignore pixels (255)
    left out; an image with empty prediction and empty GT counts as IoU 1 (as in
    ContraCAM's code). ``image_ious`` keeps each image's IoU."""

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0 <= threshold < 1:  # maps are in [0, 1]: 1 or more predicts nothing
            raise ValueError(f"threshold={threshold!r}; expected a score in [0, 1)")
        self.threshold = float(threshold)
        self._image_ious: list[float] = []

    def update(self, score_maps: np.ndarray | torch.Tensor | Sequence, gt_masks: Sequence) -> None:
        """Add a batch: maps ``[B, H, W]`` in [0, 1] and masks ``[B, H, W]`` (0/1/255)."""
        maps = _check_score_maps(score_maps)
        for score_map, mask in zip(maps, _check_gt_masks(gt_masks, maps), strict=True):
            predicted = (score_map > self.threshold) & (mask != 255)
            truth = mask == 1
            union = np.count_nonzero(predicted | truth)
            intersection = np.count_nonzero(predicted & truth)
            self._image_ious.append(intersection / union if union else 1.0)

    def merge(self, other: MaskIoUEvaluator) -> MaskIoUEvaluator:
        """Append ``other``'s images (the next shard, same threshold); return self."""
        if self.threshold != other.threshold:
            raise ValueError("cannot merge mask IoU evaluators with different thresholds")
        self._image_ious += other._image_ious
        return self

    @property
    def image_ious(self) -> np.ndarray:
        """IoU of each image so far, ``[N]`` float64."""
        return np.asarray(self._image_ious, dtype=np.float64)

    def compute(self) -> float:
        """Mean IoU over images, a fraction in [0, 1]."""
        if not self._image_ious:
            raise ValueError("no images were added; call update() before computing")
        return float(self.image_ious.mean())


def mask_miou(
    score_maps: np.ndarray | torch.Tensor | Sequence,
    gt_masks: Sequence,
    threshold: float = 0.5,
) -> float:
    """Mask mIoU (fraction in [0, 1]) of maps binarized at ``score > threshold``.
    See :class:`MaskIoUEvaluator`."""
    evaluator = MaskIoUEvaluator(threshold)
    evaluator.update(score_maps, gt_masks)
    return evaluator.compute()
