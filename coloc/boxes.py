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

Speed (:func:`best_iou_per_threshold`, :func:`best_iou_per_threshold_batch`): in
multi-contour mode OpenCV's contours are exactly the 8-connected components of the
foreground and its holes (4-connected background components off the image border), and
their bounding rectangles are those of the components (holes: grown by one pixel). As
the threshold falls the foregrounds are nested, so one union-find sweep over the pixels
by descending value (plus one by ascending value for holes, only when the Euler number
says there are any) gives every threshold's boxes: the component tree of the map,
compiled with numba. The argument is spelled out above :func:`_contour_tree`; the tests
check the boxes against ``cv2.findContours`` on thousands of maps. One-box mode keeps
OpenCV, since it needs ``contourArea``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numba
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
    reference evaluator does (it requires float64 maps); truncation, not rounding.

    A map outside [0, 1] (or with NaN) raises ValueError: its uint8 cast would wrap
    around (1.5 -> 126) and give boxes that look valid."""
    values = _to_numpy(score_map).astype(np.float64)
    if values.size and not (values.min() >= 0 and values.max() <= 1):  # NaN fails both
        raise ValueError(
            f"score map has values in [{values.min():g}, {values.max():g}]; expected [0, 1] "
            "(normalize with coloc.boxes.normalize_scoremap)"
        )
    return (values * 255).astype(np.uint8)


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
    """Bool ``[H, W]``: pixels above ``threshold`` (in [0, 1)) of the max, per ``rule``
    (module doc)."""
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold={threshold!r}; expected a fraction of the max in [0, 1)")
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


def large_boxes(boxes: np.ndarray | torch.Tensor | Sequence, min_area: float,
                image_size: tuple[int, int]) -> np.ndarray:
    """The boxes ``[K, 4]`` whose area (inclusive pixels) is above ``min_area`` times the
    ``(H, W)`` image's: small contours dropped (ContraCAM Appendix B.2 keeps boxes above
    1 % of the image)."""
    b = _to_numpy(boxes).reshape(-1, 4)
    return b[box_areas(b) > min_area * image_size[0] * image_size[1]]


def expand_boxes(boxes: np.ndarray | torch.Tensor | Sequence, margin: float,
                 image_size: tuple[int, int]) -> np.ndarray:
    """Boxes ``[K, 4]`` grown by ``margin`` of their width on the left and right and of
    their height above and below, truncated to int and clipped to the ``(H, W)`` image
    (ContraCAM Appendix B.2: a 20 % margin around OA-Crop's boxes)."""
    b = _to_numpy(boxes).reshape(-1, 4).astype(np.float64)
    height, width = image_size
    dx, dy = margin * (b[:, 2] - b[:, 0]), margin * (b[:, 3] - b[:, 1])
    grown = np.stack([b[:, 0] - dx, b[:, 1] - dy, b[:, 2] + dx, b[:, 3] + dy], axis=1)
    upper = np.array([width - 1, height - 1, width - 1, height - 1])
    return np.clip(np.trunc(grown), 0, upper).astype(np.int64)


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


# --- every threshold's contour boxes in one pass: the component tree ------------------
#
# Why this is exact (tests/test_boxes.py checks it against cv2.findContours): OpenCV
# traces the borders of a binary image with Suzuki & Abe's algorithm (CVGIP 1985), on
# the image surrounded by a frame of background, 8-connectivity for foreground and 4 for
# background. Their theorems give one outer border per 8-connected foreground component
# and one hole border per hole, a 4-connected background component that does not reach
# the frame; RETR_TREE returns all of them. The bounding rectangle of
# - an outer border is the bounding box of its component: the border is made of the
#   component's pixels that have a 4-neighbour in the background around it, and each
#   extreme pixel (leftmost, topmost, ...) has one, beyond the extreme;
# - a hole border is the bounding box of the hole grown by one pixel on every side: the
#   border is made of the enclosing component's pixels that are 4-neighbours of the
#   hole, so within one pixel of it, and the pixel beyond each extreme pixel of the hole
#   is one of them (foreground, else it would be in the hole, and not an island inside).
# CHAIN_APPROX_SIMPLE keeps the end points of straight runs, so the extremes survive.
#
# As the cutoff c falls, the foregrounds {u8 > c} grow, nested. A union-find that adds
# the pixels by descending value, joining each to its 8-neighbours already added, holds
# the components of every foreground in turn (the max-tree of the map): read at each
# cutoff, the live components' boxes are that threshold's outer-contour boxes. Holes are
# rarer. Their number follows from the same sweep: the Euler number E = components -
# holes of an (8, 4) binary image is a sum over its 2x2 windows (Gray 1971), so adding
# one pixel changes it by an amount fixed by its 8 neighbours (a table), and the sweep
# knows the change in components. Only when some threshold has a hole does a second
# union-find add pixels by ascending value with 4-neighbours, the image frame pre-joined
# as "outside": its live components other than the outside are the holes of
# {u8 > c}. Two sweeps over the pixels (one when there is no hole) replace a contour
# trace per threshold; only the best IoU per threshold is kept, and a component's IoU
# is recomputed only when its box changed.

# Pixels around p, in ring order (consecutive ones are 4-adjacent): N, NE, E, SE, S,
# SW, W, NW as (dy, dx); bit i of a ring mask is ring pixel i.
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _euler_number_of_patch(patch: np.ndarray) -> int:
    """4x the 8-connectivity Euler number of the 0/1 windows of a zero-padded patch,
    by Gray's bit-quads: #(1 on) - #(3 on) - 2 #(2 on, diagonal)."""
    padded = np.pad(patch.astype(np.int64), 1)
    a, b, c, d = padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    on = a + b + c + d
    return int((on == 1).sum() - (on == 3).sum() - 2 * ((on == 2) & (a == d)).sum())


def _ring_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per ring mask (the 8 neighbours already added): int32 rows ``(count, rep_0 ..
    rep_3, euler)`` for the foreground sweep, ``(count, rep_0 .. rep_3, 0)`` for the
    background one. ``count`` is the number of groups of added neighbours known to be
    connected already through the ring alone (8-adjacency; for the background,
    4-adjacency and only groups holding a 4-neighbour of p), ``rep_j`` a ring position
    in each group (one find per group instead of one per neighbour), ``euler`` the change
    of the foreground's Euler number when p joins it."""
    foreground = np.zeros((256, 6), np.int32)
    background = np.zeros((256, 6), np.int32)
    for mask in range(256):
        on = [i for i in range(8) if mask >> i & 1]
        for table, distance in ((foreground, 1), (background, 0)):
            groups: list[set[int]] = []
            for i in on:  # merge the groups adjacent to ring pixel i
                dy, dx = _RING[i]
                linked = [
                    g
                    for g in groups
                    if any(
                        max(abs(dy - _RING[j][0]), abs(dx - _RING[j][1])) == 1
                        and (distance or abs(dy - _RING[j][0]) + abs(dx - _RING[j][1]) == 1)
                        for j in g
                    )
                ]
                groups = [g for g in groups if g not in linked] + [{i}.union(*linked)]
            if table is background:  # only 4-neighbours of p (even ring positions) join
                groups = [g for g in groups if any(j % 2 == 0 for j in g)]
            reps = [min(g) if table is foreground else min(j for j in g if j % 2 == 0)
                    for g in groups]
            table[mask, 0] = len(reps)
            table[mask, 1 : 1 + len(reps)] = reps
        patch = np.zeros((3, 3), np.int64)
        for i in on:
            patch[1 + _RING[i][0], 1 + _RING[i][1]] = 1
        before = _euler_number_of_patch(patch)
        patch[1, 1] = 1
        foreground[mask, 5] = (_euler_number_of_patch(patch) - before) // 4
    return foreground, background


_FOREGROUND_RING, _BACKGROUND_RING = _ring_tables()


class _Workspace(NamedTuple):
    """Scratch buffers of :func:`_contour_tree` for one image shape, reused (per
    thread) while the shape stays: fresh buffers of a 224x224 image's size cost more in
    page faults than the sweeps themselves."""

    image: np.ndarray  # uint8 [H, W]: the quantized map, when the kernel quantizes it
    values: np.ndarray  # int16 [H + 2, W + 2]: each pixel's batch, in a frame of -1
    masks: np.ndarray  # uint8 [H + 2, W + 2]: ring mask of the neighbours added before
    order: np.ndarray  # int32 [H * W]: pixels by ascending batch, packed (y << 16) | x
    parent: np.ndarray  # int32 [(H + 2) * (W + 2)]: union-find forest, padded indices
    rank: np.ndarray  # int32, idem: union by rank
    box: np.ndarray  # int32 [(H + 2) * (W + 2), 4]: (x0, y0, x1, y1) of each root's pixels
    live: np.ndarray  # int32 [(H + 2) * (W + 2)]: the roots, in any order
    slot: np.ndarray  # int32, idem: position of each root in live
    cached_iou: np.ndarray  # float64, idem: best IoU of each root's box, -1 if stale


_workspaces = threading.local()


def _workspace(height: int, width: int) -> _Workspace:
    """This thread's :class:`_Workspace` for ``[height, width]`` images."""
    workspace = getattr(_workspaces, "last", None)
    if workspace is None or workspace.image.shape != (height, width):
        num_padded = (height + 2) * (width + 2)
        workspace = _Workspace(
            image=np.empty((height, width), np.uint8),
            values=np.empty((height + 2, width + 2), np.int16),
            masks=np.zeros((height + 2, width + 2), np.uint8),
            order=np.empty(height * width, np.int32),
            parent=np.empty(num_padded, np.int32),
            rank=np.empty(num_padded, np.int32),
            box=np.empty((num_padded, 4), np.int32),
            live=np.empty(num_padded, np.int32),
            slot=np.empty(num_padded, np.int32),
            cached_iou=np.empty(num_padded),
        )
        _workspaces.last = workspace
    return workspace


@numba.njit(cache=True, nogil=True)
def _quantize_into(score_map: np.ndarray, image: np.ndarray) -> bool:
    """:func:`quantize_scoremap` of a float ``[H, W]`` map into ``image``, in one pass:
    the same float64 product and truncation. False if a value is outside [0, 1] (or
    NaN), where numpy's cast to uint8 is not defined; ``image`` is then unspecified."""
    height, width = score_map.shape
    in_range = True
    for y in range(height):
        for x in range(width):
            value = np.float64(score_map[y, x])
            in_range &= (value >= 0.0) & (value <= 1.0)
            value = value if value >= 0.0 else 0.0  # no undefined cast, even for NaN
            value = value if value <= 1.0 else 1.0
            image[y, x] = np.uint8(value * 255.0)
    return in_range


# Indices are cast to unsigned where arrays are read or written: numba then skips the
# negative-index wrap-around it adds to every signed index, which doubles the cost of
# these scattered reads. (Only at the subscript: numba types uint64 +/- int64 as float.)
_U = np.uint64


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, node: int) -> int:
    """Root of ``node``, halving the path on the way."""
    while True:
        up = np.int64(parent[_U(node)])
        if up == node:
            return node
        grand = np.int64(parent[_U(up)])
        parent[_U(node)] = grand
        node = grand


@numba.njit(cache=True, nogil=True)
def _union(
    a: int, b: int, parent: np.ndarray, rank: np.ndarray, box: np.ndarray,
    live: np.ndarray, slot: np.ndarray, num_live: int, cached_iou: np.ndarray, outside: int,
) -> tuple[int, int]:
    """Join the components of roots ``a != b``; return the new root and ``num_live``.
    The ``outside`` root (the frame) never joins another; it has no box nor slot."""
    if rank[_U(a)] < rank[_U(b)]:
        a, b = b, a
    elif rank[_U(a)] == rank[_U(b)]:
        rank[_U(a)] += 1
    parent[_U(b)] = a
    if a != outside:
        box[_U(a), 0] = min(box[_U(a), 0], box[_U(b), 0])
        box[_U(a), 1] = min(box[_U(a), 1], box[_U(b), 1])
        box[_U(a), 2] = max(box[_U(a), 2], box[_U(b), 2])
        box[_U(a), 3] = max(box[_U(a), 3], box[_U(b), 3])
        cached_iou[_U(a)] = -1.0
    num_live -= 1  # b is a root no more
    moved = live[_U(num_live)]
    live[_U(slot[_U(b)])] = moved
    slot[_U(moved)] = slot[_U(b)]
    return a, num_live


@numba.njit(cache=True, nogil=True)
def _new_root(
    pixel: int, x: int, y: int, parent: np.ndarray, rank: np.ndarray, box: np.ndarray,
    cached_iou: np.ndarray, live: np.ndarray, slot: np.ndarray, num_live: int,
) -> None:
    """Make ``pixel`` (at ``x, y``) a component of its own, the ``num_live``-th root."""
    parent[_U(pixel)] = pixel
    rank[_U(pixel)] = 0
    box[_U(pixel), 0] = box[_U(pixel), 2] = x
    box[_U(pixel), 1] = box[_U(pixel), 3] = y
    cached_iou[_U(pixel)] = -1.0
    slot[_U(pixel)] = num_live
    live[_U(num_live)] = pixel


@numba.njit(cache=True, nogil=True)
def _box_iou_with_gt(x0: int, y0: int, x1: int, y1: int, gt: np.ndarray) -> float:
    """Max IoU of one box with the GT boxes ``[G, 4]``, by :func:`box_iou`'s formula in
    the same float64 operations (so bit-identical); 0 without GT boxes."""
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    best = 0.0
    for g in range(len(gt)):
        inter_w = max(0, min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1)
        inter_h = max(0, min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1)
        intersection = inter_w * inter_h
        union = area + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - intersection
        if union > 0:
            best = max(best, intersection / union)
    return best


@numba.njit(cache=True, nogil=True)
def _read_boxes(
    k: int, live: np.ndarray, num_live: int, box: np.ndarray, cached_iou: np.ndarray,
    grow: int, height: int, width: int, gt: np.ndarray, records: np.ndarray,
    num_records: int, collect: bool,
) -> tuple[float, np.ndarray, int]:
    """Best IoU of the live roots' contour boxes with the GT boxes, recomputing only
    stale ones; with ``collect``, also append ``(k, x0, y0, x1, y1)`` to ``records``.
    A root's contour box is its pixels' box grown by ``grow`` (1 for a hole) as
    ``(x, y, x + w, y + h)`` clipped to the image (PROTOCOL.md)."""
    best = 0.0
    for index in range(num_live):
        root = live[index]
        if cached_iou[root] >= 0 and not collect:
            best = max(best, cached_iou[root])
            continue
        x0 = np.int64(box[root, 0]) - grow
        y0 = np.int64(box[root, 1]) - grow
        x1 = min(np.int64(box[root, 2]) + grow + 1, width - 1)
        y1 = min(np.int64(box[root, 3]) + grow + 1, height - 1)
        if collect:
            if num_records == len(records):  # grow (a loop compiles faster than numpy's)
                grown = np.empty((2 * len(records) + 16, 5), np.int64)
                for i in range(num_records):
                    for j in range(5):
                        grown[i, j] = records[i, j]
                records = grown
            records[num_records, 0] = k
            records[num_records, 1] = x0
            records[num_records, 2] = y0
            records[num_records, 3] = x1
            records[num_records, 4] = y1
            num_records += 1
        if cached_iou[root] < 0:
            cached_iou[root] = _box_iou_with_gt(x0, y0, x1, y1, gt)
        best = max(best, cached_iou[root])
    return best, records, num_records


@numba.njit(cache=True, nogil=True)
def _contour_tree(
    image: np.ndarray,
    thresholds: np.ndarray,
    gt: np.ndarray,
    collect: bool,
    foreground_ring: np.ndarray,
    background_ring: np.ndarray,
    values: np.ndarray,
    masks: np.ndarray,
    order: np.ndarray,
    parent: np.ndarray,
    rank: np.ndarray,
    box: np.ndarray,
    live: np.ndarray,
    slot: np.ndarray,
    cached_iou: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Multi-contour boxes of a uint8 ``[H, W]`` image (``H, W < 2**15``) at each of
    the float64 ``thresholds`` (foreground ``image > int(tau * max(image))``), by the
    sweeps described in the comment above; then the ring tables and the workspace.

    Returns per threshold the best IoU of its boxes with the GT boxes ``[G, 4]`` (that
    of the box (0, 0, 0, 0) when there is no contour) and the index of its cutoff among
    the distinct ones; per distinct cutoff, ascending, the number of holes from the
    Euler number and from the hole sweep (-1 where not swept); and with ``collect``
    (for tests; both sweeps then run in full) every box as a row ``(cutoff index, x0,
    y0, x1, y1)`` of an int64 ``[B, 5]`` array (``B = 0`` otherwise).
    """
    height, width = image.shape
    row = width + 2
    num_pixels = height * width
    num_padded = (height + 2) * row
    flat_masks = masks.ravel()
    ring = np.array([-row, -row + 1, 1, row + 1, row, row - 1, -1, -row - 1])
    # Per ring mask: the index offset of the first group's neighbour, and for the
    # foreground the group count and Euler change packed in one word (fewer reads).
    foreground_first = np.empty(256, np.int64)
    background_first = np.empty(256, np.int64)
    foreground_info = np.empty(256, np.int64)
    for mask in range(256):
        foreground_first[mask] = ring[foreground_ring[mask, 1]]
        background_first[mask] = ring[background_ring[mask, 1]]
        foreground_info[mask] = foreground_ring[mask, 0] | (foreground_ring[mask, 5] + 8) << 8

    # Histogram of the values, in 4 bands of rows run side by side: runs of one value
    # make each count wait for the previous one, and 4 chains at once wait less.
    band = height // 4
    counts = np.zeros((4, 256), np.int64)
    for y in range(band):
        for x in range(width):
            for part in range(4):
                counts[part, image[y + part * band, x]] += 1
    for y in range(4 * band, height):
        for x in range(width):
            counts[3, image[y, x]] += 1
    peak = 0
    for value in range(256):
        if counts[0, value] + counts[1, value] + counts[2, value] + counts[3, value]:
            peak = value

    # Cutoffs int(tau * peak) (threshold_cutoffs), clipped to [-1, 255] (same
    # foregrounds), and the distinct ones, ascending: c_0 < ... < c_{K-1}.
    cutoff_of = np.empty(len(thresholds), np.int64)
    used = np.zeros(257, np.bool_)
    for t in range(len(thresholds)):
        cutoff = np.trunc(thresholds[t] * np.float64(peak))
        cutoff_of[t] = 255 if cutoff > 255 else (cutoff if cutoff >= -1 else -1)
        used[cutoff_of[t] + 1] = True
    index_of = np.empty(257, np.int64)  # position of cutoff c among them: index_of[c + 1]
    cutoffs = np.empty(257, np.int64)
    num_cutoffs = 0
    for c in range(-1, 256):
        index_of[c + 1] = num_cutoffs
        if used[c + 1]:
            cutoffs[num_cutoffs] = c
            num_cutoffs += 1

    # Only which cutoffs a pixel is above matters: its batch b, the number of cutoffs
    # below its value, so that image > c_k holds the batches > k. Pixels are sorted by
    # batch, in raster order within one (counting sort, the 4 bands side by side
    # again): batch b is order[first[b]:first[b + 1]]. Fewer levels than values make
    # longer runs of one level, which the sweeps visit with better locality.
    batch_of = np.empty(256, np.int64)
    batch_counts = np.zeros((4, num_cutoffs + 1), np.int64)
    for value in range(256):
        batch_of[value] = index_of[value + 1]  # the number of cutoffs below value
        for part in range(4):
            batch_counts[part, batch_of[value]] += counts[part, value]
    first = np.zeros(num_cutoffs + 2, np.int64)
    fill = np.empty((4, num_cutoffs + 1), np.int64)  # where each band's next pixel goes
    for b in range(num_cutoffs + 1):
        offset = first[b]
        for part in range(4):
            fill[part, b] = offset
            offset += batch_counts[part, b]
        first[b + 1] = offset
    for x in range(width + 2):
        values[0, x] = values[height + 1, x] = -1  # a frame of -1: below every batch
    for y in range(height):
        values[y + 1, 0] = values[y + 1, width + 1] = -1
        for x in range(width):
            values[y + 1, x + 1] = batch_of[image[y, x]]
    for y in range(band):
        for x in range(width):
            for part in range(4):
                b = values[y + part * band + 1, x + 1]
                order[_U(fill[part, b])] = ((y + part * band) << 16) | x
                fill[part, b] += 1
    for y in range(4 * band, height):
        for x in range(width):
            b = values[y + 1, x + 1]
            order[_U(fill[3, b])] = (y << 16) | x
            fill[3, b] += 1

    # Ring masks of the neighbours added before each pixel in the foreground sweep
    # (by descending batch; equal batches in reverse raster order). The background
    # sweep goes the exact opposite way, so its masks are the complements (the frame,
    # -1, never comes before in the first and always in the second).
    for y in range(1, height + 1):
        up, middle, down, out = values[y - 1], values[y], values[y + 1], masks[y]
        for x in range(1, width + 1):
            v = middle[x]
            out[x] = (
                np.uint8(up[x] > v)
                | np.uint8(up[x + 1] > v) << 1
                | np.uint8(middle[x + 1] >= v) << 2
                | np.uint8(down[x + 1] >= v) << 3
                | np.uint8(down[x] >= v) << 4
                | np.uint8(down[x - 1] >= v) << 5
                | np.uint8(middle[x - 1] > v) << 6
                | np.uint8(up[x - 1] > v) << 7
            )

    outer_best = np.zeros(num_cutoffs)
    num_outer = np.zeros(num_cutoffs, np.int64)
    hole_best = np.zeros(num_cutoffs)
    euler_holes = np.zeros(num_cutoffs, np.int64)
    swept_holes = np.empty(num_cutoffs, np.int64)
    for k in range(num_cutoffs):
        swept_holes[k] = -1
    records = np.empty((16 if collect else 0, 5), np.int64)
    num_records = 0

    # Foreground sweep: 8-connected components of image > c, by descending c.
    num_live = 0
    num_holes = 0  # components - Euler number
    cursor = num_pixels - 1
    for k in range(num_cutoffs - 1, -1, -1):
        stop = first[k + 1]
        while cursor >= stop:
            packed = np.int64(order[_U(cursor)])
            cursor -= 1
            y = packed >> 16
            x = packed & 0xFFFF
            pixel = (y + 1) * row + x + 1
            mask = _U(flat_masks[_U(pixel)])
            info = foreground_info[mask]
            num_groups = info & 0xFF
            num_holes -= (info >> 8) - 8
            if num_groups == 0:  # a new component
                _new_root(pixel, x, y, parent, rank, box, cached_iou, live, slot, num_live)
                num_live += 1
                num_holes += 1
                continue
            root = np.int64(parent[_U(pixel + foreground_first[mask])])
            if parent[_U(root)] != root:
                root = _find(parent, root)
            for group in range(2, num_groups + 1):
                other = np.int64(parent[_U(pixel + ring[_U(foreground_ring[mask, _U(group)])])])
                if other != root and parent[_U(other)] != other:
                    other = _find(parent, other)
                if other != root:
                    root, num_live = _union(
                        root, other, parent, rank, box, live, slot, num_live, cached_iou, -1
                    )
                    num_holes -= 1
            parent[_U(pixel)] = root
            at = _U(root)
            if x < box[at, 0] or x > box[at, 2] or y < box[at, 1] or y > box[at, 3]:
                box[at, 0] = min(box[at, 0], x)
                box[at, 1] = min(box[at, 1], y)
                box[at, 2] = max(box[at, 2], x)
                box[at, 3] = max(box[at, 3], y)
                cached_iou[at] = -1.0
        outer_best[k], records, num_records = _read_boxes(
            k, live, num_live, box, cached_iou, 0, height, width, gt, records, num_records,
            collect,
        )
        num_outer[k] = num_live
        euler_holes[k] = num_holes

    # Background sweep, only as far as the last cutoff with a hole: 4-connected
    # components of image <= c by ascending c; the frame is one more, the outside.
    last = num_cutoffs - 1 if collect else -1
    for k in range(num_cutoffs):
        if euler_holes[k] > 0:
            last = max(last, k)
    if last >= 0:
        for index in range(row):
            parent[index] = parent[num_padded - 1 - index] = 0
        for index in range(0, num_padded, row):
            parent[index] = parent[index + row - 1] = 0
        rank[0] = num_padded  # never below another root: the outside stays the root
    num_live = 0
    cursor = 0
    for k in range(last + 1):
        stop = first[k + 1]
        while cursor < stop:
            packed = np.int64(order[_U(cursor)])
            cursor += 1
            y = packed >> 16
            x = packed & 0xFFFF
            pixel = (y + 1) * row + x + 1
            mask = _U(flat_masks[_U(pixel)] ^ 0xFF)
            num_groups = background_ring[mask, 0]
            if num_groups == 0:  # a new component
                _new_root(pixel, x, y, parent, rank, box, cached_iou, live, slot, num_live)
                num_live += 1
                continue
            root = np.int64(parent[_U(pixel + background_first[mask])])
            if parent[_U(root)] != root:
                root = _find(parent, root)
            for group in range(2, num_groups + 1):
                other = np.int64(parent[_U(pixel + ring[_U(background_ring[mask, _U(group)])])])
                if other != root and parent[_U(other)] != other:
                    other = _find(parent, other)
                if other != root:
                    root, num_live = _union(
                        root, other, parent, rank, box, live, slot, num_live, cached_iou, 0
                    )
            parent[_U(pixel)] = root
            if root == 0:  # the outside has no box
                continue
            at = _U(root)
            if x < box[at, 0] or x > box[at, 2] or y < box[at, 1] or y > box[at, 3]:
                box[at, 0] = min(box[at, 0], x)
                box[at, 1] = min(box[at, 1], y)
                box[at, 2] = max(box[at, 2], x)
                box[at, 3] = max(box[at, 3], y)
                cached_iou[at] = -1.0
        swept_holes[k] = num_live
        if euler_holes[k] > 0 or collect:
            hole_best[k], records, num_records = _read_boxes(
                k, live, num_live, box, cached_iou, 1, height, width, gt, records,
                num_records, collect,
            )

    no_contour = _box_iou_with_gt(0, 0, 0, 0, gt)
    best = np.empty(len(thresholds))
    cutoff_index = np.empty(len(thresholds), np.int64)
    for t in range(len(thresholds)):
        k = index_of[cutoff_of[t] + 1]
        cutoff_index[t] = k
        best[t] = max(outer_best[k], hole_best[k]) if num_outer[k] > 0 else no_contour
    return best, cutoff_index, euler_holes, swept_holes, records[:num_records]


_MAX_SIDE = 2**15  # _contour_tree packs (y, x) in an int32


def _run_contour_tree(
    image: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    gt: np.ndarray,
    collect: bool,
    workspace: _Workspace,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_contour_tree` of a uint8 ``[H, W]`` image with a workspace of its shape."""
    return _contour_tree(
        np.ascontiguousarray(image, dtype=np.uint8),
        np.ascontiguousarray(thresholds, dtype=np.float64).reshape(-1),
        np.ascontiguousarray(gt, dtype=np.int64).reshape(-1, 4),
        collect,
        _FOREGROUND_RING,
        _BACKGROUND_RING,
        *workspace[1:],
    )


def contour_tree_boxes(
    image: np.ndarray, thresholds: Sequence[float] | np.ndarray
) -> list[np.ndarray]:
    """Multi-contour boxes ``[K, 4]`` of a uint8 ``[H, W]`` image (a quantized map) at
    each threshold, read off its component tree (see the comment above
    ``_contour_tree``): the same box sets, in another order, as
    ``contour_boxes(image > cutoff, multi_contour=True)``, ``K = 0`` where there is no
    contour. For checking the tree against OpenCV; :func:`best_iou_per_threshold` is the
    fast path. Also checks the hole count the Euler number predicts against the holes
    found."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or max(image.shape) >= _MAX_SIDE:
        raise ValueError(
            f"image has shape {image.shape} and dtype {image.dtype}; expected a uint8 "
            f"[H, W] image with sides below {_MAX_SIDE}"
        )
    _, index_of, euler_holes, swept_holes, records = _run_contour_tree(
        image, thresholds, np.zeros((0, 4), np.int64), True, _workspace(*image.shape)
    )
    if not np.array_equal(euler_holes, swept_holes):
        raise AssertionError(f"holes by Euler number {euler_holes} != found {swept_holes}")
    per_cutoff: list[list[list[int]]] = [[] for _ in euler_holes]
    for k, *box in records.tolist():
        per_cutoff[k].append(box)
    return [np.array(per_cutoff[k], dtype=np.int64).reshape(-1, 4) for k in index_of]


def _integral(gt: np.ndarray) -> bool:
    """Whether GT boxes hold integer coordinates, which the kernel's int64 IoU needs."""
    return gt.dtype.kind in "iub" or bool(np.array_equal(gt, np.trunc(gt)))


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
    Thresholds whose IoU provably stays below ``min_iou`` may report 0 instead.

    Same numbers as calling :func:`boxes_from_scoremap` once per threshold, with less
    work. Multi-contour mode (MaxBoxAccV2) reads every threshold's boxes off the
    component tree of the map in one or two sweeps over its pixels (the comment above
    ``_contour_tree`` says why the boxes are exactly OpenCV's). One-box mode needs the
    largest ``contourArea``, the area of the traced polygon rather than a pixel count,
    so it keeps one OpenCV contour search per distinct foreground
    (:func:`_best_iou_by_contour_search`), as do images with a side of 2**15 or more
    and GT boxes with non-integer coordinates. For many maps of one shape,
    :func:`best_iou_per_threshold_batch` saves the per-call overhead.
    """
    gt = _to_numpy(gt_boxes).reshape(-1, 4)
    values = _to_numpy(score_map)
    if multi_contour and values.ndim == 2 and max(values.shape) < _MAX_SIDE and _integral(gt):
        workspace = _workspace(*values.shape)
        if rule == "raw" and values.dtype in (np.float32, np.float64):
            # Quantized by the kernel in one pass, unless a value is outside [0, 1].
            if _quantize_into(np.ascontiguousarray(values), workspace.image):
                image = workspace.image
            else:
                image = quantize_scoremap(values)
        else:
            image = binarization_image(values, rule)
        return _run_contour_tree(image, thresholds, gt, False, workspace)[0]
    image = binarization_image(values, rule)
    return _best_iou_by_contour_search(image, gt, thresholds, multi_contour, min_iou)


def best_iou_per_threshold_batch(
    score_maps: np.ndarray | torch.Tensor | Sequence,
    gt_boxes: Sequence,
    thresholds: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """:func:`best_iou_per_threshold` in multi-contour mode with the raw rule (what
    MaxBoxAccV2 needs) for maps ``[N, H, W]`` (or ``N`` maps ``[H, W]``) and ``N`` arrays
    of GT boxes ``[K, 4]``: float64 ``[N, T]``, the same numbers, with the per-map
    overhead cut to two compiled calls when the maps share a shape."""
    if isinstance(score_maps, (np.ndarray, torch.Tensor)):
        maps = _to_numpy(score_maps)
        if maps.ndim != 3:
            raise ValueError(f"score_maps has shape {maps.shape}; expected [N, H, W]")
    else:
        maps = [_to_numpy(m) for m in score_maps]
    gts = [_to_numpy(g).reshape(-1, 4) for g in gt_boxes]
    thresholds = np.ascontiguousarray(thresholds, dtype=np.float64).reshape(-1)
    if len(maps) != len(gts):
        raise ValueError(f"{len(maps)} maps but {len(gts)} arrays of GT boxes")
    if not len(maps):
        return np.zeros((0, len(thresholds)))

    def one_by_one() -> np.ndarray:
        pairs = zip(maps, gts, strict=True)
        return np.stack([best_iou_per_threshold(m, g, thresholds) for m, g in pairs])

    if isinstance(maps, list):
        if any(m.ndim != 2 or m.shape != maps[0].shape for m in maps):
            return one_by_one()
        maps = np.stack(maps)
    if max(maps.shape[1:]) >= _MAX_SIDE or not all(_integral(g) for g in gts):
        return one_by_one()
    if maps.dtype not in (np.float32, np.float64):
        maps = maps.astype(np.float64)  # exact for integers and float16, as quantization does
    maps = np.ascontiguousarray(maps)
    gt_all = np.ascontiguousarray(np.concatenate(gts), dtype=np.int64)
    gt_end = np.cumsum([len(g) for g in gts]).tolist()
    workspace = _workspace(*maps.shape[1:])
    image, scratch = workspace.image, workspace[1:]
    best = np.empty((len(maps), len(thresholds)))
    for index, end in enumerate(gt_end):  # one compiled call per map, little around it
        if _quantize_into(maps[index], image):
            gt = gt_all[end - len(gts[index]) : end]
            best[index] = _contour_tree(
                image, thresholds, gt, False, _FOREGROUND_RING, _BACKGROUND_RING, *scratch
            )[0]
        else:  # numpy's own quantization outside [0, 1]
            best[index] = best_iou_per_threshold(maps[index], gts[index], thresholds)
    return best


def _best_iou_by_contour_search(
    image: np.ndarray,
    gt: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    multi_contour: bool,
    min_iou: float,
) -> np.ndarray:
    """:func:`best_iou_per_threshold` by OpenCV contour searches on the uint8 ``image``.

    Thresholds whose foregrounds are identical (no pixel value between their cutoffs)
    share one contour search. Each search runs on the crop holding the foreground: the
    contours are the same, since OpenCV pads the image with background and scans it in
    raster order either way. Every box lies inside its crop (one pixel wider for the
    ``x + w`` convention), so a search is skipped when that crop covers less than
    ``min_iou`` of every GT box: IoU(b, g) <= |b & g| / |g|. The IoU is one vectorized
    call.
    """
    height, width = image.shape
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
