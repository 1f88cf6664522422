"""Tests for coloc.metrics: hand-computed cases, randomized cases against plain loops
written from PROTOCOL.md, streaming behaviour and input validation."""

import numpy as np
import pytest
import torch

from coloc.bench import main as bench_main
from coloc.bench import reference_box_accuracy_curves
from coloc.metrics import (
    CorLocEvaluator,
    LocalizationAccuracyEvaluator,
    MaskIoUEvaluator,
    MaxBoxAccEvaluator,
    PxAPEvaluator,
    corloc,
    default_cam_thresholds,
    mask_miou,
    max_box_acc,
    pxap,
)
from tests.test_boxes import varied_gt_boxes, varied_maps


def two_images():
    """Image A: a 0.4 block (rows 1..5, cols 2..7) around a 1.0 block (rows 2..4,
    cols 3..6), GT = the inner block. Image B: all zeros (no contour), GT (0, 0, 0, 0)."""
    image_a = np.zeros((10, 10))
    image_a[1:6, 2:8] = 0.4
    image_a[2:5, 3:7] = 1.0
    image_b = np.zeros((10, 10))
    return np.stack([image_a, image_b]), [np.array([[3, 2, 6, 4]]), np.array([[0, 0, 0, 0]])]


# --- MaxBoxAcc / MaxBoxAccV2 ----------------------------------------------------------


def test_max_box_acc_by_hand():
    maps, gt_boxes = two_images()
    evaluator = MaxBoxAccEvaluator(cam_thresholds=[0.0, 0.5])
    evaluator.update(maps, gt_boxes)
    # A, tau 0: u8 > 0 is the outer block, box (2, 1, 8, 6) (area 7 * 6 = 42), holding
    #   the GT (area 4 * 3 = 12): IoU 12 / 42 = 0.286.
    # A, tau 0.5: u8 > 127 is the inner block, box (3, 2, 7, 5) (area 5 * 4 = 20): 12 / 20 = 0.6.
    # B: no contour -> box (0, 0, 0, 0), equal to its GT: IoU 1 at both thresholds.
    curves = evaluator.accuracy_curves()
    np.testing.assert_array_equal(curves[0.3], [50.0, 100.0])
    np.testing.assert_array_equal(curves[0.5], [50.0, 100.0])
    np.testing.assert_array_equal(curves[0.7], [50.0, 50.0])
    assert evaluator.best_thresholds() == {0.3: 0.5, 0.5: 0.5, 0.7: 0.0}
    result = evaluator.compute()
    assert result == {0.3: 100.0, 0.5: 100.0, 0.7: 50.0, "mean": pytest.approx(250 / 3)}
    assert max_box_acc(maps, gt_boxes, cam_thresholds=[0.0, 0.5]) == result


def test_multi_contour_finds_the_small_object_one_box_mode_misses():
    score_map = np.zeros((20, 20))
    score_map[0:12, 0:12] = 1.0  # large blob
    score_map[15:18, 15:18] = 1.0  # small blob, the object
    gt = [np.array([[15, 15, 17, 17]])]
    # Small blob box (15, 15, 18, 18): area 16, GT area 9 inside -> IoU 9 / 16 = 0.5625.
    multi = max_box_acc(score_map[None], gt, multi_contour=True, cam_thresholds=[0.5])
    single = max_box_acc(score_map[None], gt, multi_contour=False, cam_thresholds=[0.5])
    assert multi[0.5] == 100.0 and multi[0.7] == 0.0
    assert single[0.3] == 0.0


def test_image_iou_is_the_max_over_several_gt_boxes():
    maps, _ = two_images()
    gt = [np.array([[15, 15, 19, 19], [3, 2, 6, 4]])]  # a far box, then the right one
    assert max_box_acc(maps[:1], gt, cam_thresholds=[0.5])[0.5] == 100.0


@pytest.mark.parametrize("multi_contour", [True, False])
def test_max_box_acc_equals_the_plain_protocol_loop(multi_contour):
    rng = np.random.default_rng(10)
    maps = varied_maps(rng, 24, 40)
    gt_boxes = [varied_gt_boxes(rng, 40) for _ in maps]
    evaluator = MaxBoxAccEvaluator(multi_contour=multi_contour, num_threads=2)
    for start in range(0, len(maps), 5):  # streaming, uneven last batch
        evaluator.update(maps[start : start + 5], gt_boxes[start : start + 5])
    expected = reference_box_accuracy_curves(maps, gt_boxes, multi_contour)
    curves = evaluator.accuracy_curves()
    for delta in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(curves[delta], expected[delta])
    maxima = [expected[delta].max() for delta in (0.3, 0.5, 0.7)]
    assert evaluator.compute()["mean"] == pytest.approx(np.mean(maxima), abs=1e-9)


def test_max_box_acc_fine_thresholds_and_torch_input_equal_the_plain_loop():
    rng = np.random.default_rng(11)
    maps = np.stack(varied_maps(rng, 8, 32)).astype(np.float32)
    gt_boxes = [torch.from_numpy(varied_gt_boxes(rng, 32)).float() for _ in maps]
    thresholds = np.arange(0, 1, 0.001)
    result = max_box_acc(torch.from_numpy(maps), gt_boxes, cam_thresholds=thresholds)
    expected = reference_box_accuracy_curves(
        maps, [box.numpy() for box in gt_boxes], cam_thresholds=thresholds
    )
    for delta in (0.3, 0.5, 0.7):
        assert result[delta] == expected[delta].max()


def test_max_box_acc_v2_of_maps_of_several_shapes_equals_the_plain_loop():
    rng = np.random.default_rng(13)
    maps = varied_maps(rng, 6, 24) + varied_maps(rng, 6, 17)  # a list: map by map
    gt_boxes = [varied_gt_boxes(rng, len(m)) for m in maps]
    evaluator = MaxBoxAccEvaluator()
    evaluator.update(maps, gt_boxes)
    expected = reference_box_accuracy_curves(maps, gt_boxes)
    for delta in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(evaluator.accuracy_curves()[delta], expected[delta])


def test_threads_do_not_change_the_numbers():
    rng = np.random.default_rng(12)
    maps = varied_maps(rng, 10, 32)
    gt_boxes = [varied_gt_boxes(rng, 32) for _ in maps]
    curves = []
    for threads in (1, 2):
        evaluator = MaxBoxAccEvaluator(num_threads=threads)
        evaluator.update(maps, gt_boxes)
        curves.append(evaluator.accuracy_curves())
    for delta in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(curves[0][delta], curves[1][delta])


def test_bench_cli_reports_identical_results(capsys):
    assert bench_main(["metrics", "--n", "4", "--size", "32", "--threads", "2"]) == 0
    output = capsys.readouterr().out
    assert "results identical (accuracy at every threshold and IoU): yes" in output
    assert "images/s" in output


# --- CorLoc, GT-known / top-1 localization --------------------------------------------


def test_corloc_by_hand_counts_images_without_contour_as_misses():
    maps, gt_boxes = two_images()
    evaluator = CorLocEvaluator(threshold=0.5)
    evaluator.update(maps, gt_boxes)
    # A: box (3, 2, 7, 5), IoU 0.6 (see test_max_box_acc_by_hand). B: no contour, a miss,
    # although the (0, 0, 0, 0) box MaxBoxAcc would use equals its GT box.
    np.testing.assert_array_equal(evaluator.image_ious, [0.6, 0.0])
    result = evaluator.compute()
    assert result == {0.3: 50.0, 0.5: 50.0, 0.7: 0.0, "mean": pytest.approx(100 / 3)}
    assert corloc(maps, gt_boxes, threshold=0.5) == result


def test_corloc_default_threshold_is_a_fifth_of_the_max():
    maps, gt_boxes = two_images()
    # At 0.2: u8 > int(0.2 * 255) = 51 is the outer block: IoU 12 / 42 = 0.286.
    assert corloc(maps[:1], gt_boxes[:1]) == {0.3: 0.0, 0.5: 0.0, 0.7: 0.0, "mean": 0.0}


def test_corloc_jet_gray_rule_changes_the_box():
    ramp = np.tile(np.linspace(0, 1, 64), (16, 1))
    gt = [np.array([[13, 0, 63, 15]])]  # the raw foreground: u8 > 51 from column 13 on
    raw = CorLocEvaluator(rule="raw")
    raw.update(ramp[None], gt)
    jet = CorLocEvaluator(rule="jet_gray")
    jet.update(ramp[None], gt)
    assert raw.image_ious[0] == 1.0
    assert jet.image_ious[0] < 1.0  # reaches lower and drops the top columns
    with pytest.raises(ValueError, match="rule='gray' is unknown"):
        CorLocEvaluator(rule="gray")


def test_localization_accuracy_by_hand():
    maps, gt_boxes = two_images()
    evaluator = LocalizationAccuracyEvaluator(threshold=0.5)
    # A is localized (IoU 0.6) but misclassified; B is classified right but not localized.
    evaluator.update(maps, gt_boxes, torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([0, 0]))
    assert evaluator.compute() == {"gt_known_loc": 50.0, "top1_loc": 0.0, "top1_cls": 50.0}
    evaluator.update(maps[:1], gt_boxes[:1], np.array([1]), np.array([1]))  # A, now right
    result = evaluator.compute()
    assert result["top1_loc"] == pytest.approx(100 / 3) and result["top1_cls"] == 200 / 3


def test_localization_accuracy_rejects_mismatched_predictions():
    maps, gt_boxes = two_images()
    evaluator = LocalizationAccuracyEvaluator()
    with pytest.raises(ValueError, match=r"expected \[2, C\] or \[2\]"):
        evaluator.update(maps, gt_boxes, np.zeros((3, 5)), np.zeros(2))


# --- PxAP -----------------------------------------------------------------------------


def plain_pxap(score_maps, gt_masks, cam_thresholds):
    """PxAP straight from PROTOCOL.md: at each edge (highest first), tp and fp count the
    non-ignored pixels scored >= the edge; AP sums precision * recall increase over
    consecutive edges, skipping edges where nothing is predicted."""
    foreground = np.concatenate([m[g == 1] for m, g in zip(score_maps, gt_masks, strict=True)])
    background = np.concatenate([m[g == 0] for m, g in zip(score_maps, gt_masks, strict=True)])
    edges = list(cam_thresholds) + [1.0, 2.0]
    total, previous_recall = 0.0, 0.0
    for edge in reversed(edges):
        tp = np.count_nonzero(foreground >= edge)
        fp = np.count_nonzero(background >= edge)
        recall = tp / len(foreground)
        if tp + fp > 0:
            total += tp / (tp + fp) * (recall - previous_recall)
        previous_recall = recall
    return total * 100


def test_pxap_by_hand():
    score_map = np.array([[0.2, 0.6, 0.7, 1.0, 1.0]])
    mask = np.array([[0, 1, 1, 0, 255]], dtype=np.uint8)  # the last pixel is ignored
    # Edges 0, 0.5, 1, 2 (+3). From the top: >= 2: tp 0 fp 0 (skipped); >= 1: tp 0, fp 1,
    # precision 0, recall 0; >= 0.5: tp 2, fp 1, precision 2/3, recall 1; >= 0: tp 2,
    # fp 2, recall 1. AP = 2/3 * (1 - 0) = 66.67 %.
    evaluator = PxAPEvaluator(cam_thresholds=[0.0, 0.5])
    evaluator.update(score_map[None], [mask])
    assert evaluator.compute() == pytest.approx(200 / 3, abs=1e-12)
    curve = evaluator.curve()
    np.testing.assert_array_equal(curve["thresholds"], [2.0, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(curve["precision"], [np.nan, 0.0, 2 / 3, 0.5])
    np.testing.assert_array_equal(curve["recall"], [0.0, 0.0, 1.0, 1.0])
    # An image with an empty mask adds only negatives: 0.9 makes >= 0.5 hold fp 2,
    # so AP = 2/4 * 1 = 50 %.
    evaluator.update(np.array([[[0.9]]]), [np.zeros((1, 1), np.uint8)])
    assert evaluator.compute() == pytest.approx(50.0, abs=1e-12)


def test_pxap_equals_the_plain_protocol_computation():
    rng = np.random.default_rng(13)
    maps = varied_maps(rng, 12, 24)
    masks = []
    for _ in maps:
        mask = (rng.random((24, 24)) < rng.random()).astype(np.uint8)
        mask[rng.random((24, 24)) < 0.1] = 255
        masks.append(mask)
    masks[1][:] = 0  # an empty mask
    for thresholds in (default_cam_thresholds(), np.arange(0, 1, 0.001)):
        expected = plain_pxap(maps, masks, thresholds)
        assert pxap(maps, masks, thresholds) == pytest.approx(expected, abs=1e-9)
    streamed = PxAPEvaluator()
    for start in range(0, 12, 5):
        streamed.update(torch.tensor(np.stack(maps[start : start + 5])), masks[start : start + 5])
    assert streamed.compute() == pytest.approx(pxap(maps, masks), abs=1e-12)


def test_pxap_without_foreground_pixels_is_an_error():
    with pytest.raises(ValueError, match="no foreground pixel"):
        pxap(np.zeros((1, 4, 4)), [np.zeros((4, 4), np.uint8)])


# --- mask mIoU ------------------------------------------------------------------------


def test_mask_miou_by_hand():
    score_maps = [np.array([[0.6, 0.4], [0.5, 0.9]]), np.zeros((2, 2))]
    gt_masks = [np.array([[1, 1], [0, 255]], np.uint8), np.zeros((2, 2), np.uint8)]
    # Image 1: predicted (score > 0.5, 0.5 excluded) = {(0,0), (1,1)}, (1,1) ignored;
    # truth {(0,0), (0,1)}: intersection 1, union 2 -> 0.5. Image 2: both empty -> 1.
    evaluator = MaskIoUEvaluator()
    evaluator.update(score_maps, gt_masks)
    np.testing.assert_array_equal(evaluator.image_ious, [0.5, 1.0])
    assert evaluator.compute() == 0.75 == mask_miou(score_maps, gt_masks)
    assert mask_miou(score_maps[:1], gt_masks[:1], threshold=0.3) == 2 / 3  # adds (0, 1)


# --- input validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("score_maps", "gt_boxes", "message"),
    [
        (np.zeros((4, 4)), [[[0, 0, 1, 1]]], r"expected \[N, H, W\]"),
        ([np.zeros((4, 4, 3))], [[[0, 0, 1, 1]]], r"score_maps\[0\] has shape \(4, 4, 3\)"),
        (np.full((1, 4, 4), 1.5), [[[0, 0, 1, 1]]], r"values in \[1.5, 1.5\]; expected \[0, 1\]"),
        (np.full((1, 4, 4), np.nan), [[[0, 0, 1, 1]]], "NaN or inf"),
        (np.zeros((2, 4, 4)), [[[0, 0, 1, 1]]], "gt_boxes has 1 entries but score_maps has 2"),
        (np.zeros((1, 4, 4)), [np.zeros((0, 4))], r"expected \[K, 4\] with K >= 1"),
        (np.zeros((1, 4, 4)), [[0, 0, 1, 1]], r"has shape \(4,\); expected \[K, 4\]"),
        (np.zeros((1, 4, 4)), [[[0, 0, 1.5, 1]]], "non-integer coordinates"),
        (np.zeros((1, 4, 4)), [[[0, -1, 1, 1]]], "negative coordinates"),
        (np.zeros((1, 4, 4)), [[[3, 0, 1, 1]]], "x1 < x0 or y1 < y0"),
    ],
)
def test_box_metrics_reject_bad_inputs(score_maps, gt_boxes, message):
    with pytest.raises(ValueError, match=message):
        max_box_acc(score_maps, gt_boxes)
    with pytest.raises(ValueError, match=message):
        corloc(score_maps, gt_boxes)


def test_mask_metrics_reject_bad_masks():
    with pytest.raises(ValueError, match=r"expected the shape of score_maps\[0\], \(4, 4\)"):
        pxap(np.zeros((1, 4, 4)), [np.zeros((3, 4), np.uint8)])
    with pytest.raises(ValueError, match=r"holds values \[0, 2\]; expected 0"):
        mask_miou(np.zeros((1, 2, 2)), [np.array([[0, 2], [0, 0]], np.uint8)])
    with pytest.raises(ValueError, match="gt_masks has 2 entries but score_maps has 1"):
        pxap(np.zeros((1, 2, 2)), [np.zeros((2, 2), np.uint8)] * 2)


@pytest.mark.parametrize("thresholds", [[0.5, 0.2], [0.0, 1.0], [], [[0.1, 0.2]], [-0.1, 0.5]])
def test_bad_cam_thresholds_are_rejected(thresholds):
    with pytest.raises(ValueError, match="cam_thresholds=.*expected a non-empty increasing"):
        MaxBoxAccEvaluator(cam_thresholds=thresholds)
    with pytest.raises(ValueError, match="cam_thresholds="):
        PxAPEvaluator(cam_thresholds=thresholds)


def test_bad_iou_thresholds_and_early_compute_are_rejected():
    with pytest.raises(ValueError, match=r"iou_thresholds=\(0.5, 1.5\)"):
        max_box_acc(np.zeros((1, 4, 4)), [[[0, 0, 1, 1]]], iou_thresholds=(0.5, 1.5))
    for evaluator in (MaxBoxAccEvaluator(), CorLocEvaluator(), MaskIoUEvaluator()):
        with pytest.raises(ValueError, match="call update"):
            evaluator.compute()
