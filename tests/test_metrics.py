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


def gt_boxes_in(rng: np.random.Generator, size: int) -> np.ndarray:
    """:func:`varied_gt_boxes` within reach of a ``size`` map (x1, y1 <= size: one past
    the edge, as the protocol's int() rescaling gives); the metrics refuse boxes beyond."""
    return np.minimum(varied_gt_boxes(rng, size), size)


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
    gt = [np.array([[8, 7, 9, 9], [3, 2, 6, 4]])]  # a far box, then the right one
    assert max_box_acc(maps[:1], gt, cam_thresholds=[0.5])[0.5] == 100.0


@pytest.mark.parametrize("multi_contour", [True, False])
def test_max_box_acc_equals_the_plain_protocol_loop(multi_contour):
    rng = np.random.default_rng(10)
    maps = varied_maps(rng, 24, 40)
    gt_boxes = [gt_boxes_in(rng, 40) for _ in maps]
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
    gt_boxes = [torch.from_numpy(gt_boxes_in(rng, 32)).float() for _ in maps]
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
    gt_boxes = [gt_boxes_in(rng, len(m)) for m in maps]
    evaluator = MaxBoxAccEvaluator()
    evaluator.update(maps, gt_boxes)
    expected = reference_box_accuracy_curves(maps, gt_boxes)
    for delta in (0.3, 0.5, 0.7):
        np.testing.assert_array_equal(evaluator.accuracy_curves()[delta], expected[delta])


def test_threads_do_not_change_the_numbers():
    rng = np.random.default_rng(12)
    maps = varied_maps(rng, 10, 32)
    gt_boxes = [gt_boxes_in(rng, 32) for _ in maps]
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


def blocks_at_exact_ious():
    """Three 12 x 16 maps, each one block of ones, with GT boxes giving an IoU of exactly
    0.3, 0.5 and 0.7 (the contour box of a ``w x h`` block spans ``(w + 1) x (h + 1)``
    inclusive pixels; IoU = intersection / union of integer areas, correctly rounded):

    - 4 x 1 block at (1, 1): box (1, 1, 5, 2), area 10; GT (1, 1, 3, 1) inside, area 3: 3/10;
    - 3 x 1 block: box (1, 1, 4, 2), area 8; GT (1, 1, 4, 1) inside, area 4: 4/8;
    - 6 x 1 block: box (1, 1, 7, 2), area 14; GT (1, 1, 10, 2) around it, area 20: 14/20.
    """
    maps = np.zeros((3, 12, 16))
    for index, width in enumerate((4, 3, 6)):
        maps[index, 1, 1 : 1 + width] = 1.0
    gt_boxes = [np.array([[1, 1, 3, 1]]), np.array([[1, 1, 4, 1]]), np.array([[1, 1, 10, 2]])]
    return maps, gt_boxes


def test_an_iou_exactly_at_the_criterion_counts_as_correct():
    maps, gt_boxes = blocks_at_exact_ious()
    evaluator = CorLocEvaluator(threshold=0.5)
    evaluator.update(maps, gt_boxes)
    assert evaluator.image_ious.tolist() == [0.3, 0.5, 0.7]
    assert evaluator.compute() == {0.3: 100.0, 0.5: 200 / 3, 0.7: 100 / 3,
                                   "mean": pytest.approx(200 / 3)}
    boxes = max_box_acc(maps, gt_boxes, cam_thresholds=[0.5])
    assert (boxes[0.3], boxes[0.5], boxes[0.7]) == (100.0, 200 / 3, 100 / 3)
    one_box = max_box_acc(maps, gt_boxes, multi_contour=False, cam_thresholds=[0.5])
    assert (one_box[0.3], one_box[0.5], one_box[0.7]) == (100.0, 200 / 3, 100 / 3)
    # the third image (IoU 0.7) is misclassified: top-1 loc counts images 1-2 if localized
    for delta, gt_known, top1 in ((0.3, 100.0, 200 / 3), (0.5, 200 / 3, 100 / 3),
                                  (0.7, 100 / 3, 0.0)):
        evaluator = LocalizationAccuracyEvaluator(threshold=0.5, iou_threshold=delta)
        evaluator.update(maps, gt_boxes, np.array([1, 1, 1]), np.array([1, 1, 0]))
        assert evaluator.compute() == {"gt_known_loc": gt_known, "top1_loc": top1,
                                       "top1_cls": 200 / 3}


def two_blocks():
    """A 1.0 block (the GT, its contour box) and a smaller 0.5 block apart from it."""
    score_map = np.zeros((16, 24))
    score_map[2:8, 2:10] = 1.0
    score_map[10:13, 14:18] = 0.5
    return score_map, [np.array([[2, 2, 10, 8]])]


def test_localization_accuracy_with_the_jet_gray_rule():
    # Two blocks: 1.0 (larger, the GT) and 0.5. Raw at a quarter of the max keeps both and
    # boxes the larger. PsyNet's jet colouring paints 1.0 dark red (gray 38) and 0.5
    # green-yellow (gray ~200, the brightest): 38 is below a quarter of 200, so jet-gray
    # keeps only the 0.5 block, which misses the GT.
    score_map, gt = two_blocks()
    results = {}
    for rule in ("raw", "jet_gray"):
        evaluator = LocalizationAccuracyEvaluator(threshold=0.25, rule=rule)
        evaluator.update(score_map[None], gt, np.array([0]), np.array([0]))
        results[rule] = evaluator.compute()["gt_known_loc"]
    assert results == {"raw": 100.0, "jet_gray": 0.0}
    with pytest.raises(ValueError, match="rule='gray' is unknown"):
        LocalizationAccuracyEvaluator(rule="gray")


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


def test_bool_masks_read_as_foreground_and_background():
    score_map = np.array([[0.2, 0.6, 0.7, 1.0]])
    as_bool = np.array([[False, True, True, False]])
    # >= 1: fp 1 (precision 0); >= 0.5: tp 2, fp 1; AP = 2/3 (as test_pxap_by_hand)
    assert pxap(score_map[None], [as_bool], [0.0, 0.5]) == pytest.approx(200 / 3, abs=1e-12)
    assert pxap(score_map[None], [torch.from_numpy(as_bool)], [0.0, 0.5]) == pytest.approx(
        200 / 3, abs=1e-12)
    # score > 0.5 predicts columns 1..3, truth is 1..2: IoU 2 / 3
    assert mask_miou(score_map[None], [as_bool]) == pytest.approx(2 / 3)


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


def test_default_cam_thresholds_are_hundredths():
    thresholds = default_cam_thresholds()
    assert len(thresholds) == 100 and thresholds[0] == 0.0
    np.testing.assert_allclose(thresholds, np.arange(100) / 100, atol=1e-12)


def test_boundary_settings_are_accepted_or_rejected_with_the_allowed_range():
    maps, gt_boxes = two_images()
    # image A's contour boxes: (2, 1, 8, 6) at threshold 0, (3, 2, 7, 5) at 0.5
    for threshold, box in ((0.0, [2, 1, 8, 6]), (0.5, [3, 2, 7, 5])):
        exact = corloc(maps[:1], [np.array([box])], threshold, iou_thresholds=(1.0,))
        assert exact == {1.0: 100.0, "mean": 100.0}
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"expected a fraction of the max in \[0, 1\)"):
            CorLocEvaluator(threshold=bad)
        with pytest.raises(ValueError, match=r"expected a fraction of the max in \[0, 1\)"):
            LocalizationAccuracyEvaluator(threshold=bad)
    for bad in ((0.0,), (), (0.5, 1.01)):
        with pytest.raises(ValueError, match=r"expected a non-empty sequence in \(0, 1\]"):
            CorLocEvaluator(iou_thresholds=bad)
    for bad in ([0.5, 0.5], [np.nan], [0.2, np.inf]):
        with pytest.raises(ValueError, match="expected a non-empty increasing"):
            PxAPEvaluator(cam_thresholds=bad)
    assert MaxBoxAccEvaluator(cam_thresholds=[0.0]).cam_thresholds.tolist() == [0.0]


def test_non_finite_maps_and_boxes_are_rejected_by_name():
    inf_map = np.zeros((4, 4))
    inf_map[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"score_maps\[1\] holds NaN or inf"):
        corloc([np.zeros((4, 4)), inf_map], [[[0, 0, 1, 1]]] * 2)
    with pytest.raises(ValueError, match=r"score_maps\[0\] has values in \[-0.5, -0.5\]"):
        corloc(np.full((1, 4, 4), -0.5), [[[0, 0, 1, 1]]])
    with pytest.raises(ValueError, match=r"score_maps\[0\] has dtype complex128"):
        corloc([np.zeros((4, 4), complex)], [[[0, 0, 1, 1]]])
    with pytest.raises(ValueError, match="non-integer coordinates"):
        corloc(np.zeros((1, 4, 4)), [[[0, 0, np.inf, 1]]])


def test_localization_accuracy_rejects_labels_of_another_length():
    maps, gt_boxes = two_images()
    evaluator = LocalizationAccuracyEvaluator()
    with pytest.raises(ValueError, match=r"labels \(3,\); expected"):
        evaluator.update(maps, gt_boxes, np.zeros((2, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="call update"):
        evaluator.compute()


def test_pxap_curve_warns_about_nothing():
    import warnings

    score_map = np.array([[0.2, 0.6, 0.7, 1.0, 1.0]])
    mask = np.array([[0, 1, 1, 0, 255]], dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the empty top edge divides 0 by 0 on purpose
        assert pxap(score_map[None], [mask], [0.0, 0.5]) == pytest.approx(200 / 3, abs=1e-12)


def error_message(call) -> str:
    with pytest.raises(ValueError) as raised:
        call()
    return str(raised.value)


def test_error_messages_name_the_input_and_what_is_expected():
    # errors are part of the interface (STYLE.md): pinned in full
    box = [[[0, 0, 1, 1]]]
    expected = {
        "score_maps has shape (4, 4); expected [N, H, W] or a sequence of [H, W] maps":
            lambda: corloc(np.zeros((4, 4)), box),
        "score_maps[0] holds NaN or inf; expected finite values in [0, 1] "
        "(coloc.boxes.normalize_scoremap maps such maps to zeros)":
            lambda: corloc(np.full((1, 4, 4), np.nan), box),
        "score_maps[0] has values in [1.5, 1.5]; expected [0, 1] "
        "(normalize with coloc.boxes.normalize_scoremap)":
            lambda: corloc(np.full((1, 4, 4), 1.5), box),
        "gt_boxes has 1 entries but score_maps has 2 maps; expected one [K, 4] array of GT "
        "boxes per map": lambda: corloc(np.zeros((2, 4, 4)), box),
        "gt_boxes[0] = [[0.0, 0.0, 1.5, 1.0]] holds non-integer coordinates; expected integer "
        "pixels (the protocol truncates rescaled boxes with int())":
            lambda: corloc(np.zeros((1, 4, 4)), [[[0, 0, 1.5, 1]]]),
        "gt_boxes[0] = [[0, -1, 1, 1]] has negative coordinates; expected pixels >= 0":
            lambda: corloc(np.zeros((1, 4, 4)), [[[0, -1, 1, 1]]]),
        "gt_boxes[0] = [[3, 0, 1, 1]] has x1 < x0 or y1 < y0; expected (x0, y0, x1, y1) with "
        "x0 <= x1 and y0 <= y1": lambda: corloc(np.zeros((1, 4, 4)), [[[3, 0, 1, 1]]]),
        "gt_masks has 2 entries but score_maps has 1 maps; expected one [H, W] mask per map":
            lambda: pxap(np.zeros((1, 2, 2)), [np.zeros((2, 2), np.uint8)] * 2),
        "gt_masks[0] holds values [0, 1, 2, 3, 4, 5, 6, 7]; expected 0 (background), "
        "1 (foreground) or 255 (ignore)":  # the first 8 distinct values
            lambda: mask_miou(np.zeros((1, 4, 4)), [np.arange(16).reshape(4, 4).astype(np.uint8)]),
        "no foreground pixel (mask value 1) was added; PxAP needs at least one":
            lambda: pxap(np.zeros((1, 4, 4)), [np.zeros((4, 4), np.uint8)]),
        "cam_thresholds=[0.5, 0.2]; expected a non-empty increasing 1-D sequence in [0, 1), "
        "e.g. numpy.arange(0, 1, 0.01)": lambda: PxAPEvaluator(cam_thresholds=[0.5, 0.2]),
    }
    for message, call in expected.items():
        assert error_message(call) == message
    for evaluator in (MaxBoxAccEvaluator(), CorLocEvaluator(), LocalizationAccuracyEvaluator(),
                      MaskIoUEvaluator()):
        assert error_message(evaluator.compute) == (
            "no images were added; call update() before computing")


def test_complex_maps_are_rejected_as_arrays_too():
    with pytest.raises(ValueError, match=r"score_maps\[0\] has dtype complex128"):
        corloc(np.zeros((1, 4, 4), complex), [[[0, 0, 1, 1]]])


def test_the_wrappers_pass_their_settings_on():
    maps, gt_boxes = two_images()
    # at tau 0 alone, A's box is the outer block (IoU 0.286); B is right (IoU 1)
    assert max_box_acc(maps, gt_boxes, cam_thresholds=[0.0]) == {
        0.3: 50.0, 0.5: 50.0, 0.7: 50.0, "mean": 50.0}
    score_map, gt = two_blocks()  # jet-gray keeps only the block that misses the GT
    assert corloc(score_map[None], gt, 0.25, rule="raw")["mean"] == 100.0
    assert corloc(score_map[None], gt, 0.25, rule="jet_gray")["mean"] == 0.0
    evaluator = LocalizationAccuracyEvaluator(threshold=0.0)
    evaluator.update(maps[:1], [np.array([[2, 1, 8, 6]])], np.array([0]), np.array([0]))
    assert evaluator.compute()["gt_known_loc"] == 100.0  # tau 0: the outer block's box


# ----------------------------------------------------------------------------- input checks (#16)


@pytest.mark.parametrize("evaluator", [
    lambda: MaxBoxAccEvaluator(), lambda: MaxBoxAccEvaluator(multi_contour=False),
    lambda: CorLocEvaluator(),
])
def test_a_gt_box_beyond_the_map_names_the_image_and_the_box(evaluator):
    maps = np.zeros((2, 224, 224))
    inside = [np.array([[10, 10, 50, 50]]), np.array([[0, 0, 224, 224]])]  # x1 = W: allowed
    original_pixels = [np.array([[10, 10, 50, 50]]), np.array([[60, 27, 385, 331]])]
    metric = evaluator()
    metric.update(maps, inside)
    with pytest.raises(ValueError) as error:
        metric.update(maps, original_pixels)
    assert "image 3: GT box [60, 27, 385, 331] lies outside its 224x224" in str(error.value)


@pytest.mark.parametrize("threshold", [5, 1.0, -0.1, float("nan")])
def test_mask_miou_refuses_thresholds_outside_the_map_range(threshold):
    with pytest.raises(ValueError, match="expected a score in \\[0, 1\\)"):
        mask_miou(np.zeros((1, 4, 4)), [np.zeros((4, 4), np.uint8)], threshold=threshold)
