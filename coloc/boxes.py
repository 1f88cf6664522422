"""Boxes from score maps, and their IoU, exactly as ``PROTOCOL.md`` defines them.

The definitions are those of the reference WSOL evaluator (Choe et al., CVPR 2020,
"Evaluating weakly supervised object localization methods right"):

- a score map is ``[H, W]`` in [0, 1]; it is quantized as ``u8 = uint8(map * 255)``
  (computed in float64, as the reference does);
- at threshold ``tau`` in [0, 1) the foreground is ``u8 > int(tau * max(u8))``;
- OpenCV contours (``RETR_TREE``, ``CHAIN_APPROX_SIMPLE``) of the foreground give the
  boxes: the contour of largest ``contourArea`` (one-box mode: MaxBoxAcc, CorLoc,
  GT-known loc) or every contour (multi-contour mode: MaxBoxAccV2);
- a box is the bounding rectangle ``(x, y, w, h)`` as ``(x, y, x + w, y + h)`` with
  ``x1`` clipped to ``W - 1`` and ``y1`` to ``H - 1``; no contour gives ``(0, 0, 0, 0)``;
- IoU uses inclusive pixels: width ``x1 - x0 + 1``, height ``y1 - y0 + 1``.

Boxes are int64 arrays ``[K, 4]`` of ``(x0, y0, x1, y1)``. Functions accept numpy
arrays or torch tensors and return numpy arrays (``normalize_scoremap`` returns the
input's type).

Binarization rules (``rule=``): ``"raw"`` thresholds the quantized map (the protocol);
``"jet_gray"`` thresholds PsyNet's jet-colormapped gray rendering instead (see
:func:`psynet_jet_gray`), which some co-localization tables use for CorLoc.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

RULES = ("raw", "jet_gray")

_NO_BOX = np.zeros((1, 4), dtype=np.int64)


def _to_numpy(array: np.ndarray | torch.Tensor | Sequence) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def normalize_scoremap(score_maps: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Min-max normalize each map to [0, 1] (PROTOCOL.md, "Score maps").

    ``score_maps``: ``[H, W]`` or ``[N, H, W]``, numpy or torch (device and floating
    dtype kept; integer input becomes float32). A constant map, or one holding any
    non-finite value, becomes all zeros.
    """
    if score_maps.ndim not in (2, 3):
        raise ValueError(
            f"score_maps has shape {tuple(score_maps.shape)}; expected [H, W] or [N, H, W]"
        )
    if isinstance(score_maps, torch.Tensor):
        maps = score_maps if score_maps.is_floating_point() else score_maps.float()
        low = maps.amin(dim=(-2, -1), keepdim=True)
        span = maps.amax(dim=(-2, -1), keepdim=True) - low
        valid = torch.isfinite(maps).all(dim=-1, keepdim=True).all(dim=-2, keepdim=True)
        valid &= torch.isfinite(span) & (span > 0)
        safe_span = torch.where(valid, span, torch.ones_like(span))
        return torch.where(valid, (maps - low) / safe_span, torch.zeros_like(maps))
    maps = np.asarray(score_maps)
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        low = maps.min(axis=(-2, -1), keepdims=True)
        span = maps.max(axis=(-2, -1), keepdims=True) - low
        valid = np.isfinite(maps).all(axis=(-2, -1), keepdims=True)
        valid &= np.isfinite(span) & (span > 0)
        normalized = (maps - low) / np.where(valid, span, 1)
    return np.where(valid, normalized, 0).astype(maps.dtype)


def quantize_scoremap(score_map: np.ndarray | torch.Tensor) -> np.ndarray:
    """``uint8(map * 255)`` of a ``[H, W]`` map in [0, 1], computed in float64 as the
    reference evaluator does (it requires float64 maps); truncation, not rounding."""
    return (_to_numpy(score_map).astype(np.float64) * 255).astype(np.uint8)


def psynet_jet_gray(score_map: np.ndarray | torch.Tensor) -> np.ndarray:
    """The uint8 ``[H, W]`` gray image PsyNet's released code thresholds for CorLoc.

    PsyNet (Baek et al., AAAI 2020; github.com/FriedRonaldo/PsyNet, ``validation.py``
    with ``utils.intensity_to_rgb``) min-max normalizes the map, colours it with
    matplotlib's ``jet`` colormap, scales to [0, 255] in float32, truncates to uint8
    and converts RGB to gray with OpenCV; the foreground is then gray >
    ``int(0.2 * max(gray))``. (Its ``cv2.applyColorMap(COLORMAP_JET)`` call only draws
    the overlay.) Gray is not monotonic in the score, so this is not a raw-map
    threshold: roughly 0.15 of the raw range, and the very top of a peak can fall
    below it. A constant or non-finite map gives all zeros (PsyNet divides 0 by 0 and
    matplotlib paints NaN black), hence no foreground.
    """
    from matplotlib import colormaps  # imported here: only this rule needs matplotlib

    values = _to_numpy(score_map).astype(np.float64)
    low, high = values.min(), values.max()
    if not np.isfinite(values).all() or high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    rgb = colormaps["jet"]((values - low) / (high - low))[..., :3]
    rgb_u8 = (rgb.astype(np.float32) * 255.0).astype(np.uint8)
    return cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2GRAY)


def binarization_image(score_map: np.ndarray | torch.Tensor, rule: str = "raw") -> np.ndarray:
    """The uint8 ``[H, W]`` image that gets thresholded: the quantized map (``"raw"``)
    or PsyNet's jet-gray rendering (``"jet_gray"``)."""
    if rule == "raw":
        return quantize_scoremap(score_map)
    if rule == "jet_gray":
        return psynet_jet_gray(score_map)
    raise ValueError(f"rule={rule!r} is unknown; expected one of {RULES}")


def threshold_cutoffs(image: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """``int(tau * max(image))`` for each ``tau``: foreground pixels are ``image > cutoff``."""
    return np.trunc(np.asarray(thresholds, dtype=np.float64) * float(image.max())).astype(np.int64)


def foreground_mask(
    score_map: np.ndarray | torch.Tensor, threshold: float, rule: str = "raw"
) -> np.ndarray:
    """Bool ``[H, W]``: pixels above ``threshold`` of the max, per ``rule`` (module doc)."""
    image = binarization_image(score_map, rule)
    return image > threshold_cutoffs(image, [threshold])[0]


def _contour_boxes(
    foreground_u8: np.ndarray,
    multi_contour: bool,
    offset: tuple[int, int],
    image_size: tuple[int, int],
) -> list[tuple[int, int, int, int]]:
    """Boxes of the contours of a contiguous uint8 0/1 crop placed at ``offset=(x, y)``
    in an image of ``image_size=(H, W)``: all of them, or the largest contour's (the
    first of equal areas) unless ``multi_contour``; empty when there is no contour."""
    contours, _ = cv2.findContours(
        foreground_u8, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=offset
    )
    if contours and not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    height, width = image_size
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append((x, y, min(x + w, width - 1), min(y + h, height - 1)))
    return boxes


def contour_boxes(foreground: np.ndarray | torch.Tensor, multi_contour: bool = False) -> np.ndarray:
    """Boxes ``[K, 4]`` of the contours of a ``[H, W]`` foreground mask (nonzero = on):
    the largest contour (``K = 1``) or all of them; ``K = 0`` when there is no contour."""
    mask = _to_numpy(foreground)
    if mask.ndim != 2:
        raise ValueError(f"foreground has shape {mask.shape}; expected [H, W]")
    binary = np.ascontiguousarray(mask != 0).view(np.uint8)
    boxes = _contour_boxes(binary, multi_contour, (0, 0), mask.shape)
    return np.array(boxes, dtype=np.int64).reshape(-1, 4)


def boxes_from_scoremap(
    score_map: np.ndarray | torch.Tensor,
    threshold: float,
    multi_contour: bool = False,
    rule: str = "raw",
) -> np.ndarray:
    """Boxes ``[K, 4]`` of a ``[H, W]`` map in [0, 1] at ``threshold`` in [0, 1)
    (PROTOCOL.md, "Boxes from a score map"); ``[[0, 0, 0, 0]]`` when there is no contour."""
    boxes = contour_boxes(foreground_mask(score_map, threshold, rule), multi_contour)
    return boxes if len(boxes) else _NO_BOX.copy()


def box_areas(boxes: np.ndarray | torch.Tensor | Sequence) -> np.ndarray:
    """Areas ``[N]`` of boxes ``[N, 4]`` in inclusive pixels: ``(x1 - x0 + 1) * (y1 - y0 + 1)``."""
    b = _to_numpy(boxes).reshape(-1, 4)
    return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)


def _intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise inclusive-pixel intersection areas ``[N, M]``, floored at 0."""
    a, b = a[:, None, :], b[None, :, :]
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    return inter_w * inter_h


def box_iou(
    boxes_a: np.ndarray | torch.Tensor | Sequence, boxes_b: np.ndarray | torch.Tensor | Sequence
) -> np.ndarray:
    """Pairwise IoU ``[N, M]`` (float64) of boxes ``[N, 4]`` and ``[M, 4]`` in inclusive
    pixels (PROTOCOL.md, "IoU"): side ``x1 - x0 + 1``, intersection floored at 0, and
    IoU 0 where the union is not positive."""
    a = _to_numpy(boxes_a).reshape(-1, 4)
    b = _to_numpy(boxes_b).reshape(-1, 4)
    intersection = _intersection_areas(a, b)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - intersection
    positive = union > 0
    return np.where(positive, intersection / np.where(positive, union, 1), 0.0)


def _value_histogram(image: np.ndarray) -> np.ndarray:
    """Pixel count of each uint8 value (OpenCV's float32 counts are exact below 2**24)."""
    if image.size < 2**24:
        return cv2.calcHist([image], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    return np.bincount(image.ravel(), minlength=256)


def best_iou_per_threshold(
    score_map: np.ndarray | torch.Tensor,
    gt_boxes: np.ndarray | torch.Tensor,
    thresholds: Sequence[float] | np.ndarray,
    multi_contour: bool = True,
    rule: str = "raw",
    min_iou: float = 0.0,
) -> np.ndarray:
    """For each threshold, the image's IoU: the max over its predicted boxes
    (:func:`boxes_from_scoremap`) and its GT boxes ``[K, 4]``. Returns float64 ``[T]``.
    Thresholds whose IoU provably stays below ``min_iou`` report 0 instead.

    Same numbers as calling :func:`boxes_from_scoremap` once per threshold, with less
    work. Thresholds whose foregrounds are identical (no pixel value between their
    cutoffs) share one contour search. Each search runs on the crop holding the
    foreground: the contours are the same, since OpenCV pads the image with background
    and scans it in raster order either way. Every box lies inside its crop (one pixel
    wider for the ``x + w`` convention), so a search is skipped when that crop covers
    less than ``min_iou`` of every GT box: IoU(b, g) <= |b & g| / |g|. The IoU is one
    vectorized call.
    """
    image = binarization_image(score_map, rule)
    height, width = image.shape
    gt = _to_numpy(gt_boxes).reshape(-1, 4)
    cutoffs = threshold_cutoffs(image, thresholds)
    # Nested foregrounds are equal exactly when they hold the same number of pixels.
    pixels_above = image.size - np.cumsum(_value_histogram(image))
    counts, first_threshold, search_of_threshold = np.unique(
        np.where(cutoffs < 0, image.size, pixels_above[np.clip(cutoffs, 0, 255)]),
        return_index=True,
        return_inverse=True,
    )
    search_cutoffs = cutoffs[first_threshold]

    # Rows and columns holding foreground give each crop: (x0, y0) in, (x1, y1) out.
    rows_on = image.max(axis=1)[None, :] > search_cutoffs[:, None]
    cols_on = image.max(axis=0)[None, :] > search_cutoffs[:, None]
    y0, y1 = rows_on.argmax(axis=1), height - rows_on[:, ::-1].argmax(axis=1)
    x0, x1 = cols_on.argmax(axis=1), width - cols_on[:, ::-1].argmax(axis=1)
    crop_boxes = np.stack([x0, y0, np.minimum(x1, width - 1), np.minimum(y1, height - 1)], 1)
    gt_areas = np.broadcast_to(box_areas(gt), (len(counts), len(gt)))
    coverage = np.divide(
        _intersection_areas(crop_boxes, gt),
        gt_areas,
        out=np.full(gt_areas.shape, np.inf),  # a degenerate GT box never skips
        where=gt_areas > 0,
    )
    searched = np.flatnonzero((counts > 0) & (coverage.max(axis=1) >= min_iou))

    boxes, owners = [], []
    for search, cutoff, left, top, right, bottom in zip(
        searched.tolist(),
        search_cutoffs[searched].tolist(),
        x0[searched].tolist(),
        y0[searched].tolist(),
        x1[searched].tolist(),
        y1[searched].tolist(),
        strict=True,
    ):
        crop = (image[top:bottom, left:right] > cutoff).view(np.uint8)
        found = _contour_boxes(crop, multi_contour, (left, top), (height, width))
        boxes.extend(found)
        owners.extend([search] * len(found))
    best_ious = np.zeros(len(counts))
    best_ious[counts == 0] = box_iou(_NO_BOX, gt).max()
    if boxes:
        np.maximum.at(best_ious, owners, box_iou(np.array(boxes), gt).max(axis=1))
    return best_ious[search_of_threshold]
