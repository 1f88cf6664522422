"""Benchmarks: ``python -m coloc.bench <command>``.

``metrics``: MaxBoxAccV2 of :mod:`coloc.metrics` against a plain per-image,
per-threshold loop written from ``PROTOCOL.md`` (:func:`reference_box_accuracy_curves`),
on seeded random smooth score maps; checks that both give identical numbers and prints
images/s and the speed-up. coloc's numba kernels are loaded (or compiled, on a first run)
before timing; the output says how long that took.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import cv2
import numpy as np

from coloc.boxes import box_iou, normalize_scoremap
from coloc.metrics import IOU_THRESHOLDS, MaxBoxAccEvaluator, default_cam_thresholds


def random_smooth_scoremaps(
    num_maps: int = 1000, size: int = 224, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Seeded CAM-like maps and GT boxes: float32 ``[N, size, size]`` in [0, 1], and
    per map int64 ``[K, 4]`` boxes (1-3). Each map is 1-3 anisotropic Gaussian blobs
    over blurred-noise clutter; each GT box is a blob's jittered 2-sigma extent clipped
    to the image (so some touch the border). Map ``i`` depends only on ``(seed, i)``."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    maps = np.empty((num_maps, size, size), dtype=np.float32)
    gt_boxes = []
    for index in range(num_maps):
        rng = np.random.default_rng([seed, index])
        clutter = cv2.GaussianBlur(rng.random((size, size)), (0, 0), size / 16)
        score = rng.uniform(0.0, 0.4) * normalize_scoremap(clutter)
        boxes = []
        for _ in range(rng.integers(1, 4)):
            center_x, center_y = rng.uniform(0, size, 2)
            sigma_x, sigma_y = rng.uniform(0.04, 0.2, 2) * size
            score += rng.uniform(0.5, 1.0) * np.exp(
                -((cols - center_x) ** 2) / (2 * sigma_x**2)
                - (rows - center_y) ** 2 / (2 * sigma_y**2)
            )
            half_w, half_h = 2 * np.array([sigma_x, sigma_y]) * rng.uniform(0.8, 1.2, 2)
            corners = [center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h]
            boxes.append(np.clip(corners, 0, size - 1).astype(np.int64))
        maps[index] = normalize_scoremap(score)
        gt_boxes.append(np.stack(boxes))
    return maps, gt_boxes


def reference_box_accuracy_curves(
    score_maps: np.ndarray | Sequence[np.ndarray],
    gt_boxes: Sequence[np.ndarray],
    multi_contour: bool = True,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    cam_thresholds: Sequence[float] | np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """Box accuracy (%) at each score-map threshold, per IoU criterion: a plain loop
    over images and thresholds, written straight from PROTOCOL.md ("Boxes from a score
    map", "MaxBoxAcc and MaxBoxAccV2") and laid out like the reference evaluator (one
    IoU call per image). The check for :class:`coloc.metrics.MaxBoxAccEvaluator`,
    whose ``accuracy_curves()`` must equal this exactly."""
    thresholds = default_cam_thresholds() if cam_thresholds is None else cam_thresholds
    num_correct = np.zeros((len(iou_thresholds), len(thresholds)))
    for score_map, gt in zip(score_maps, gt_boxes, strict=True):
        quantized = (np.asarray(score_map, dtype=np.float64) * 255).astype(np.uint8)
        height, width = quantized.shape
        peak = quantized.max()
        boxes_per_threshold = []
        for threshold in thresholds:
            foreground = (quantized > int(threshold * peak)).astype(np.uint8)
            contours, _ = cv2.findContours(foreground, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
            if not contours:
                boxes_per_threshold.append([[0, 0, 0, 0]])
                continue
            if not multi_contour:
                contours = [max(contours, key=cv2.contourArea)]
            boxes = []
            for contour in contours:
                x, y, w, h = cv2.boundingRect(contour)
                boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
            boxes_per_threshold.append(boxes)
        ious = box_iou(np.concatenate(boxes_per_threshold), gt).max(axis=1)
        start = 0
        for index, boxes in enumerate(boxes_per_threshold):
            image_iou = ious[start : start + len(boxes)].max()
            start += len(boxes)
            for row, delta in enumerate(iou_thresholds):
                if image_iou >= delta:
                    num_correct[row, index] += 1
    accuracies = num_correct * 100.0 / float(len(gt_boxes))
    return dict(zip(iou_thresholds, accuracies, strict=True))


def _images_per_second(num_images: int, seconds: float) -> str:
    return f"{seconds:7.2f} s  {num_images / seconds:8.1f} images/s"


def bench_metrics(num_maps: int, size: int, seed: int, num_threads: int, step: float) -> bool:
    """Time MaxBoxAccV2 (coloc, 1 and ``num_threads`` threads) against the plain loop
    with score-map thresholds ``arange(0, 1, step)``; print the rates and whether all
    results are identical, and return that."""
    print(
        f"MaxBoxAccV2, {num_maps} random smooth {size}x{size} maps (seed {seed}), "
        f"score-map thresholds arange(0, 1, {step}), IoU 0.3/0.5/0.7"
    )
    maps, gt_boxes = random_smooth_scoremaps(num_maps, size, seed)
    thresholds = np.arange(0, 1, step)

    # coloc's kernels are compiled by numba (cached on disk after the first run); load
    # them once before timing, as a long evaluation would, and say what that cost.
    start = time.perf_counter()
    MaxBoxAccEvaluator(cam_thresholds=thresholds).update(maps[:1], gt_boxes[:1])
    print(
        f"coloc's compiled kernels loaded once before timing: {time.perf_counter() - start:.2f} s"
    )

    start = time.perf_counter()
    reference = reference_box_accuracy_curves(maps, gt_boxes, cam_thresholds=thresholds)
    plain_seconds = time.perf_counter() - start
    print(f"plain per-image per-threshold loop: {_images_per_second(num_maps, plain_seconds)}")

    identical = True
    coloc_seconds = {}
    for threads in sorted({1, num_threads}):
        evaluator = MaxBoxAccEvaluator(cam_thresholds=thresholds, num_threads=threads)
        start = time.perf_counter()
        for batch in range(0, num_maps, 100):
            evaluator.update(maps[batch : batch + 100], gt_boxes[batch : batch + 100])
        result = evaluator.compute()
        coloc_seconds[threads] = time.perf_counter() - start
        label = f"coloc.metrics, {threads} thread{'s' if threads > 1 else ''}:"
        print(f"{label:<36}{_images_per_second(num_maps, coloc_seconds[threads])}")
        curves = evaluator.accuracy_curves()
        identical &= all(np.array_equal(curves[delta], reference[delta]) for delta in reference)

    maxima = {delta: float(curve.max()) for delta, curve in reference.items()}
    print(
        "MaxBoxAccV2: "
        + ", ".join(f"IoU {d}: {v:.2f}" for d, v in result.items() if d != "mean")
        + f", mean {result['mean']:.4f} (plain loop: {np.mean(list(maxima.values())):.4f})"
    )
    print(
        f"results identical (accuracy at every threshold and IoU): {'yes' if identical else 'NO'}"
    )
    for threads, seconds in coloc_seconds.items():
        print(f"speed-up over the plain loop, {threads} thread(s): {plain_seconds / seconds:.1f}x")
    return identical


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``python -m coloc.bench {metrics,synthetic} [--n N] [--size S]``."""
    parser = argparse.ArgumentParser(prog="python -m coloc.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    metrics = commands.add_parser("metrics", help="MaxBoxAccV2: coloc vs a plain loop")
    metrics.add_argument("--n", type=int, default=1000, help="number of maps (default 1000)")
    metrics.add_argument("--size", type=int, default=224, help="map side in pixels (default 224)")
    metrics.add_argument("--seed", type=int, default=0, help="map generator seed (default 0)")
    metrics.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="threads (default: all cores)"
    )
    metrics.add_argument(
        "--step", type=float, default=0.01, help="score-map threshold step (default 0.01)"
    )
    synthetic = commands.add_parser("synthetic", help="synthetic generator vs a JPEG decode")
    synthetic.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    synthetic.add_argument("--size", type=int, default=64, help="image side (default 64)")
    args = parser.parse_args(argv)
    if args.command == "metrics":
        return 0 if bench_metrics(args.n, args.size, args.seed, args.threads, args.step) else 1
    if args.command == "synthetic":
        bench_synthetic(args.n, args.size)
        return 0
    return 2


def bench_synthetic(num_images: int, size: int) -> None:
    """Print the synthetic generator's images/s on one thread beside a JPEG decode of the
    same size (what a real dataset pays per image once the file is in memory)."""
    from coloc.data.synthetic import benchmark

    result = benchmark(n=num_images, image_size=size)
    print(f"synthetic benchmark, {size} px, one thread, best of 5 rounds of {num_images // 5}")
    print(f"full samples (image, boxes, masks): {result['samples_per_s']:8.0f} images/s")
    print(f"rendering only:                     {result['render_per_s']:8.0f} images/s")
    print(f"JPEG decode + normalize (baseline): {result['jpeg_decode_per_s']:8.0f} images/s")
    print(f"samples vs JPEG decode: {result['samples_per_s'] / result['jpeg_decode_per_s']:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
