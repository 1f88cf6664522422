"""Tests for coloc.boxes: normalization, boxes from score maps and IoU (PROTOCOL.md)."""

import cv2
import numpy as np
import pytest
import torch

from coloc.boxes import (
    _FOREGROUND_RING,
    _best_iou_by_contour_search,
    best_iou_per_threshold,
    best_iou_per_threshold_batch,
    box_iou,
    boxes_from_scoremap,
    contour_boxes,
    contour_tree_boxes,
    expand_boxes,
    foreground_mask,
    large_boxes,
    normalize_scoremap,
    psynet_jet_gray,
    quantize_scoremap,
    threshold_cutoffs,
)
from coloc.metrics import default_cam_thresholds


def varied_maps(rng: np.random.Generator, count: int, size: int) -> list[np.ndarray]:
    """Score maps in [0, 1] covering the cases the fast paths must not get wrong."""
    maps = [
        np.zeros((size, size)),  # no contour at any threshold
        np.ones((size, size)),  # the whole image at every threshold
        np.round(rng.random((size, size)) * 3) / 3,  # 4 values: thresholds share searches
    ]
    corner = np.zeros((size, size))
    corner[-1, -1] = 1.0  # one pixel in the corner
    maps.append(corner)
    while len(maps) < count:
        sigma = rng.choice([0.8, 2.0, 5.0])
        maps.append(normalize_scoremap(cv2.GaussianBlur(rng.random((size, size)), (0, 0), sigma)))
    return maps


def varied_gt_boxes(rng: np.random.Generator, size: int) -> np.ndarray:
    """1-3 boxes, some on the border, some one pixel wide, some beyond the image."""
    boxes = []
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.integers(0, size, 2)
        x1, y1 = np.array([x0, y0]) + rng.integers(0, size // 2, 2)
        boxes.append([x0, y0, min(x1, size - 1 + rng.integers(0, 2)), y1])
    if rng.random() < 0.5:
        boxes[0][0] = 0
    return np.array(boxes)


# --- normalize_scoremap ---------------------------------------------------------------


def test_normalize_scoremap_min_max_per_map():
    maps = np.array([[[1.0, 3.0], [5.0, 9.0]], [[-2.0, -2.0], [0.0, 2.0]]])
    # (v - min) / (max - min): map 0 has min 1, span 8; map 1 min -2, span 4.
    expected = np.array([[[0.0, 0.25], [0.5, 1.0]], [[0.0, 0.0], [0.5, 1.0]]])
    np.testing.assert_allclose(normalize_scoremap(maps), expected)
    np.testing.assert_allclose(normalize_scoremap(maps[0]), expected[0])


def test_normalize_scoremap_constant_or_non_finite_maps_become_zeros():
    maps = np.array(
        [[[4.0, 4.0], [4.0, 4.0]], [[0.0, np.nan], [1.0, 2.0]], [[0.0, np.inf], [1.0, 2.0]]]
    )
    normalized = normalize_scoremap(maps)
    assert np.array_equal(normalized, np.zeros_like(maps))


def test_normalize_scoremap_torch_keeps_type_and_matches_numpy():
    maps = np.random.default_rng(0).normal(size=(3, 5, 7)).astype(np.float32)
    maps[1] = 2.5  # constant
    result = normalize_scoremap(torch.from_numpy(maps))
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    np.testing.assert_allclose(result.numpy(), normalize_scoremap(maps), atol=1e-6)
    assert torch.equal(result[1], torch.zeros(5, 7))


def test_normalize_scoremap_integer_input_becomes_float32():
    result = normalize_scoremap(np.array([[0, 2], [4, 8]], dtype=np.uint8))
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, [[0, 0.25], [0.5, 1]])


def test_normalize_scoremap_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"expected \[H, W\] or \[N, H, W\]"):
        normalize_scoremap(np.zeros(5))


# --- quantization and foreground ------------------------------------------------------


def test_quantize_truncates():
    # 0.5 * 255 = 127.5 -> 127; 1.0 -> 255; 0.003 * 255 = 0.765 -> 0.
    assert quantize_scoremap(np.array([[0.5, 1.0, 0.003]])).tolist() == [[127, 255, 0]]


def test_foreground_is_strictly_above_the_cutoff():
    score_map = np.array([[0.5, 1.0, 0.51]])
    # u8 = [127, 255, 130]; cutoff = int(0.5 * 255) = 127, so 127 is background.
    assert foreground_mask(score_map, 0.5).tolist() == [[False, True, True]]


# --- boxes from score maps ------------------------------------------------------------


def test_box_is_bounding_rect_with_x_plus_w_convention():
    score_map = np.zeros((10, 10))
    score_map[2:5, 3:7] = 1.0  # rows 2..4, columns 3..6
    # boundingRect = (x 3, y 2, w 4, h 3) -> (3, 2, 3 + 4, 2 + 3) = (3, 2, 7, 5)
    assert boxes_from_scoremap(score_map, 0.5).tolist() == [[3, 2, 7, 5]]


def test_box_touching_the_border_is_clipped_to_the_last_pixel():
    score_map = np.zeros((10, 10))
    score_map[7:10, 6:10] = 1.0
    # boundingRect = (6, 7, 4, 3) -> x1 = 10 clipped to W - 1 = 9, y1 = 10 clipped to 9
    assert boxes_from_scoremap(score_map, 0.5).tolist() == [[6, 7, 9, 9]]


def test_no_contour_gives_the_zero_box():
    assert boxes_from_scoremap(np.zeros((6, 8)), 0.3).tolist() == [[0, 0, 0, 0]]
    assert contour_boxes(np.zeros((6, 8), dtype=bool)).shape == (0, 4)


def test_one_box_mode_keeps_the_largest_contour_multi_contour_keeps_all():
    score_map = np.zeros((10, 10))
    score_map[0:2, 0:2] = 1.0  # contour through pixel centres: 1 x 1 -> area 1
    score_map[5:8, 3:7] = 1.0  # 3 x 2 -> area 6
    assert boxes_from_scoremap(score_map, 0.5).tolist() == [[3, 5, 7, 8]]
    multi = boxes_from_scoremap(score_map, 0.5, multi_contour=True).tolist()
    assert sorted(multi) == [[0, 0, 2, 2], [3, 5, 7, 8]]


def test_multi_contour_includes_hole_contours():
    score_map = np.zeros((10, 10))
    score_map[1:8, 1:8] = 1.0
    score_map[3:6, 3:6] = 0.0  # a 3 x 3 hole, bordered by the pixels 2..6
    multi = boxes_from_scoremap(score_map, 0.5, multi_contour=True).tolist()
    # outer: rect (1, 1, 7, 7) -> (1, 1, 8, 8); hole: rect (2, 2, 5, 5) -> (2, 2, 7, 7)
    assert sorted(multi) == [[1, 1, 8, 8], [2, 2, 7, 7]]


def test_boxes_from_torch_equal_boxes_from_numpy():
    score_map = np.random.default_rng(1).random((12, 12))
    expected = boxes_from_scoremap(score_map, 0.4, multi_contour=True)
    np.testing.assert_array_equal(
        boxes_from_scoremap(torch.from_numpy(score_map), 0.4, multi_contour=True), expected
    )


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError, match="rule='gray'"):
        boxes_from_scoremap(np.zeros((4, 4)), 0.2, rule="gray")


# --- PsyNet's jet-gray rule -----------------------------------------------------------


def test_jet_gray_values_by_hand():
    ramp = np.tile(np.linspace(0, 1, 256), (2, 1))
    gray = psynet_jet_gray(ramp)
    # jet(0) = (0, 0, 0.5) -> RGB (0, 0, 127); OpenCV gray = (1868 * 127 + 8192) >> 14 = 14.
    # jet(1) = (0.5, 0, 0) -> RGB (127, 0, 0); gray = (4899 * 127 + 8192) >> 14 = 38.
    assert gray.dtype == np.uint8
    assert gray[0, 0] == 14 and gray[0, -1] == 38


def test_jet_gray_rule_drops_the_top_of_a_peak_and_reaches_lower():
    ramp = np.tile(np.linspace(0, 1, 256), (2, 1))
    raw = np.flatnonzero(foreground_mask(ramp, 0.2)[0])
    jet = np.flatnonzero(foreground_mask(ramp, 0.2, rule="jet_gray")[0])
    assert raw[0] == 52 and raw[-1] == 255  # u8 > int(0.2 * 255) = 51
    assert jet[0] < raw[0]  # roughly 0.15 of the raw range
    assert jet[-1] < 255  # the map's maximum is not foreground


def test_jet_gray_of_constant_map_has_no_foreground():
    assert not psynet_jet_gray(np.full((5, 5), 0.3)).any()
    assert boxes_from_scoremap(np.full((5, 5), 0.3), 0.2, rule="jet_gray").tolist() == [
        [0, 0, 0, 0]
    ]


# --- IoU ------------------------------------------------------------------------------


def test_box_iou_by_hand():
    boxes_a = np.array([[0, 0, 9, 9], [0, 0, 4, 4], [20, 20, 29, 29]])
    boxes_b = np.array([[0, 0, 9, 9], [5, 5, 14, 14], [4, 0, 8, 4]])
    ious = box_iou(boxes_a, boxes_b)
    assert ious.shape == (3, 3)
    # identical: 1. (0,0,9,9) vs (5,5,14,14): inter 5 * 5 = 25, union 100 + 100 - 25 = 175.
    assert ious[0, 0] == 1.0 and ious[0, 1] == pytest.approx(25 / 175, abs=1e-12)
    # (0,0,4,4) vs (4,0,8,4) share column 4: inter 1 * 5 = 5, union 25 + 25 - 5 = 45.
    assert ious[1, 2] == pytest.approx(5 / 45, abs=1e-12)
    # disjoint boxes: intersection floored at 0.
    assert (ious[2] == 0).all()


def test_box_iou_non_positive_union_is_zero():
    # width 5 - 5 + 1 = 1, height 3 - 4 + 1 = 0: area 0, so the union is 0.
    degenerate = np.array([[5, 4, 5, 3]])
    with np.errstate(all="raise"):
        assert box_iou(degenerate, degenerate).tolist() == [[0.0]]


def test_box_iou_matches_a_scalar_loop_and_accepts_torch():
    rng = np.random.default_rng(2)
    boxes_a = np.sort(rng.integers(0, 30, (7, 2, 2)), axis=1).transpose(0, 2, 1).reshape(7, 4)
    boxes_b = np.sort(rng.integers(0, 30, (5, 2, 2)), axis=1).transpose(0, 2, 1).reshape(5, 4)

    def iou(a, b):
        inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
        inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        area = lambda box: (box[2] - box[0] + 1) * (box[3] - box[1] + 1)  # noqa: E731
        union = area(a) + area(b) - inter_w * inter_h
        return inter_w * inter_h / union if union > 0 else 0.0

    expected = [[iou(a, b) for b in boxes_b.tolist()] for a in boxes_a.tolist()]
    np.testing.assert_array_equal(box_iou(boxes_a, boxes_b), expected)
    np.testing.assert_array_equal(box_iou(torch.from_numpy(boxes_a), boxes_b), expected)


# --- the fast per-threshold search ----------------------------------------------------


@pytest.mark.parametrize("multi_contour", [True, False])
@pytest.mark.parametrize("rule", ["raw", "jet_gray"])
def test_best_iou_per_threshold_equals_one_search_per_threshold(multi_contour, rule):
    rng = np.random.default_rng(3)
    thresholds = default_cam_thresholds()
    for score_map in varied_maps(rng, 10, 24):
        gt = varied_gt_boxes(rng, 24)
        expected = [
            box_iou(boxes_from_scoremap(score_map, tau, multi_contour, rule), gt).max()
            for tau in thresholds
        ]
        result = best_iou_per_threshold(score_map, gt, thresholds, multi_contour, rule)
        np.testing.assert_array_equal(result, expected)


def test_best_iou_per_threshold_min_iou_keeps_every_iou_at_or_above_it():
    rng = np.random.default_rng(4)
    thresholds = np.arange(0, 1, 0.001)
    for score_map in varied_maps(rng, 12, 32):
        gt = varied_gt_boxes(rng, 32)
        exact = best_iou_per_threshold(score_map, gt, thresholds)
        bounded = best_iou_per_threshold(score_map, gt, thresholds, min_iou=0.3)
        above = exact >= 0.3
        np.testing.assert_array_equal(bounded[above], exact[above])
        assert (bounded[~above] < 0.3).all()


# --- the component tree against OpenCV ------------------------------------------------


def structured_images(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """uint8 images, 1x1 to 13x13, of the kinds that stress the contour <-> component
    correspondence: noise with few levels (diagonal contacts, 1-pixel holes), blurred
    blobs, checkerboards, rings nested in rings (islands in holes), frames on the border,
    constant and all-zero images."""
    images = [np.zeros((1, 1), np.uint8), np.full((1, 1), 7, np.uint8)]
    images += [np.zeros((2, 3), np.uint8), np.full((3, 2), 200, np.uint8)]
    while len(images) < count:
        height, width = rng.integers(1, 14, 2)
        rows, cols = np.mgrid[0:height, 0:width]
        kind = len(images) % 6
        if kind == 0:  # few-level noise
            image = rng.integers(0, rng.integers(2, 6), (height, width)) * 40
        elif kind == 1:  # blobs
            blurred = cv2.GaussianBlur(rng.random((height, width)), (0, 0), rng.uniform(0.5, 2))
            image = np.round(normalize_scoremap(blurred) * rng.integers(2, 7)) * 30
        elif kind == 2:  # checkerboard, some cells flipped
            image = ((rows + cols) % 2 ^ (rng.random((height, width)) < 0.15)) * 90
        elif kind == 3:  # concentric rings: islands inside holes inside components
            center = rng.uniform(-1, [height, width])
            radius = np.hypot(rows - center[0], cols - center[1])
            image = (radius.astype(int) % rng.integers(2, 4)) * 60 + (radius < 2) * 60
        elif kind == 4:  # frames along the border and inside
            image = np.zeros((height, width), int)
            for level, inset in enumerate(range(0, min(height, width), 2)):
                image[inset : height - inset, inset : width - inset] = 50 * (level % 3)
        else:  # constant (zero or not)
            image = np.full((height, width), rng.integers(0, 2) * rng.integers(0, 256))
        images.append(image.astype(np.uint8))
    return images


def every_foreground_thresholds(image: np.ndarray) -> np.ndarray:
    """Thresholds whose cutoffs are the image's values below its max (so every distinct
    non-empty foreground), plus 0.0 and 0.999, shuffled: int((c + 0.5) / max * max) = c."""
    peak = int(image.max())
    if not peak:
        return np.array([0.0, 0.5])
    cutoffs = np.unique(image)[:-1]
    thresholds = np.concatenate([[0.0, 0.999], (cutoffs + 0.5) / peak])
    return np.random.default_rng(peak).permutation(thresholds)


def test_contour_tree_boxes_equal_opencv_contour_boxes_on_many_images():
    # contour_tree_boxes also checks the hole count from the Euler number against the
    # holes its second sweep finds, at every threshold.
    rng = np.random.default_rng(20)
    for image in structured_images(rng, 2000):
        thresholds = every_foreground_thresholds(image)
        tree_boxes = contour_tree_boxes(image, thresholds)
        for cutoff, boxes in zip(threshold_cutoffs(image, thresholds), tree_boxes, strict=True):
            expected = contour_boxes(image > cutoff, multi_contour=True)
            assert sorted(boxes.tolist()) == sorted(expected.tolist()), (image, cutoff)


def test_contour_tree_boxes_of_diagonal_contacts_and_one_pixel_holes_by_hand():
    diamond = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.uint8)
    # One 8-connected component, rect (0, 0, 3, 3) -> (0, 0, 2, 2) clipped; the centre is
    # a 4-connected hole, rect of its border (0, 0, 3, 3) -> (0, 0, 2, 2) too.
    assert contour_tree_boxes(diamond, [0.0])[0].tolist() == [[0, 0, 2, 2], [0, 0, 2, 2]]
    assert contour_boxes(diamond > 0, multi_contour=True).tolist() == [[0, 0, 2, 2]] * 2
    # Background touching the image border is no hole, even when walled off inside.
    cup = np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1]], np.uint8)
    assert contour_tree_boxes(cup, [0.0])[0].tolist() == [[0, 0, 2, 2]]
    # Nothing above the cutoff: no box at all.
    assert contour_tree_boxes(np.zeros((2, 3), np.uint8), [0.0])[0].shape == (0, 4)


def test_ring_tables_by_hand():
    # Columns: groups, first group's ring position, ..., Euler change when p is added.
    assert _FOREGROUND_RING[0].tolist() == [0, 0, 0, 0, 0, 1]  # isolated: a component
    assert _FOREGROUND_RING[0b11111111].tolist() == [1, 0, 0, 0, 0, 1]  # fills a hole
    assert _FOREGROUND_RING[0b10101010, [0, 5]].tolist() == [4, -3]  # joins 4 corners
    assert _FOREGROUND_RING[0b00000101, 0] == 1  # N and E touch diagonally (8-adjacent)


def test_contour_tree_boxes_rejects_non_uint8_images():
    with pytest.raises(ValueError, match="expected a uint8"):
        contour_tree_boxes(np.zeros((3, 3)), [0.5])


def test_fast_path_equals_the_contour_search_on_many_maps():
    rng = np.random.default_rng(21)
    images = structured_images(rng, 400)
    for index, image in enumerate(images):
        score_map = (image.astype(np.float64) + rng.random(image.shape)) / 256
        gt = varied_gt_boxes(rng, max(2, *image.shape))
        thresholds = default_cam_thresholds() if index % 2 else rng.random(7)
        expected = _best_iou_by_contour_search(
            quantize_scoremap(score_map), gt, thresholds, True, 0.0
        )
        np.testing.assert_array_equal(best_iou_per_threshold(score_map, gt, thresholds), expected)


def map_by_map(maps, gt_boxes, thresholds) -> np.ndarray:
    pairs = zip(maps, gt_boxes, strict=True)
    return np.stack([best_iou_per_threshold(m, g, thresholds) for m, g in pairs])


def test_batch_equals_map_by_map_including_the_fallbacks():
    rng = np.random.default_rng(22)
    thresholds = default_cam_thresholds()
    maps = np.stack(varied_maps(rng, 9, 20)).astype(np.float32)
    gt_boxes = [varied_gt_boxes(rng, 20) for _ in maps]
    expected = map_by_map(maps, gt_boxes, thresholds)
    for batch in (maps, torch.from_numpy(maps)):
        result = best_iou_per_threshold_batch(batch, gt_boxes, thresholds)
        np.testing.assert_array_equal(result, expected)
    # Mixed shapes and integer maps go map by map; float GT boxes that are integral stay.
    mixed = [maps[0], maps[1][:15], (maps[2] > 0.5).astype(np.int64)]
    float_gt = [g.astype(np.float64) for g in gt_boxes[:3]]
    np.testing.assert_array_equal(
        best_iou_per_threshold_batch(mixed, float_gt, thresholds),
        map_by_map(mixed, float_gt, thresholds),
    )
    # Non-integer GT boxes fall back to the OpenCV contour search.
    gt = [g + 0.5 for g in gt_boxes[:2]]
    np.testing.assert_array_equal(
        best_iou_per_threshold_batch(maps[:2], gt, thresholds), map_by_map(maps[:2], gt, thresholds)
    )
    # Values outside [0, 1] are refused on every path (a uint8 cast would wrap around).
    odd = maps[:2].copy()
    odd[0, 0, 0] = 1.2
    for gt in (gt_boxes[:2], [g + 0.5 for g in gt_boxes[:2]]):
        with pytest.raises(ValueError, match=r"values in \[0, 1.2\]; expected \[0, 1\]"):
            best_iou_per_threshold_batch(odd, gt, thresholds)
    assert best_iou_per_threshold_batch(maps[:0], [], thresholds).shape == (0, 100)


@pytest.mark.parametrize("value", [1.5, -0.2, float("nan"), float("inf")])
def test_box_extraction_refuses_maps_outside_the_unit_range(value):
    score_map = np.zeros((6, 6))
    score_map[1:4, 1:4] = 0.8
    score_map[0, 0] = value  # uint8(1.5 * 255) would wrap around to 126
    with pytest.raises(ValueError, match="expected \\[0, 1\\]"):
        boxes_from_scoremap(score_map, 0.2)
    with pytest.raises(ValueError, match="expected \\[0, 1\\]"):
        quantize_scoremap(score_map)


@pytest.mark.parametrize("threshold", [1.0, 20, -0.5])
def test_box_extraction_refuses_thresholds_outside_zero_one(threshold):
    with pytest.raises(ValueError, match="expected a fraction of the max in \\[0, 1\\)"):
        boxes_from_scoremap(np.zeros((4, 4)), threshold)
def test_large_boxes_keep_those_above_the_area_share():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 10, 9], [5, 5, 5, 5]])  # 100, 110, 1 pixels
    assert large_boxes(boxes, 0.01, (100, 100)).tolist() == [[0, 0, 10, 9]]
    assert large_boxes(boxes, 0.0, (100, 100)).shape == (3, 4)
    assert large_boxes(np.zeros((0, 4)), 0.01, (10, 10)).shape == (0, 4)


def test_expand_boxes_by_a_share_of_each_side_and_clip():
    grown = expand_boxes(np.array([[10, 20, 30, 60]]), 0.2, (100, 50))
    assert grown.tolist() == [[6, 12, 34, 68]]  # 20 % of width 20 and of height 40
    assert expand_boxes(np.array([[0, 0, 40, 99]]), 0.2, (100, 50)).tolist() == [
        [0, 0, 48, 99]]  # clipped to W - 1 = 49 and H - 1 = 99
    assert expand_boxes(np.array([[3, 4, 5, 6]]), 0.0, (10, 10)).tolist() == [[3, 4, 5, 6]]
