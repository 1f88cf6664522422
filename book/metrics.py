# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# (metrics)=
# # How localization is scored
#
# Every number in this book comes from one of a handful of metrics, and small
# differences in how they are computed move published numbers by several points. This
# chapter shows, on worked examples, exactly what `coloc.metrics` computes. The
# definitions follow the evaluation protocol of Choe et al. (CVPR 2020, *Evaluating
# weakly supervised object localization methods right*), and the tests check our code
# against a plain implementation of that definition to 1e-9.
#
# A method produces a **score map** per image: an attention map, a CAM, a weight map,
# upsampled to the input size and min-max normalized to [0, 1]. The metrics turn score
# maps into boxes or pixels and compare them with the ground truth:
#
# | metric | from a score map | compared with | threshold |
# |---|---|---|---|
# | CorLoc | one box (largest contour) | GT boxes, IoU ≥ 0.3 / 0.5 / 0.7 | fixed (0.2) |
# | MaxBoxAcc | one box (largest contour) | GT boxes, IoU ≥ 0.5 | best over the split |
# | MaxBoxAccV2 | a box per contour | GT boxes, IoU ≥ 0.3 / 0.5 / 0.7, mean | best over the split, per IoU |
# | PxAP | every pixel | GT mask (255 = ignore) | all thresholds (area under PR) |
#
# We use three made-up "methods" on the same synthetic images, so the differences
# between metrics are easy to see: a map that covers only the discriminative **part**
# (the failure of classifier CAM), a map that covers the whole **object**, and a map
# that covers the object but is **smeared** over the background (the failure of
# rotation-pretext attention that CAML fixes).

# %% tags=["parameters", "hide-input"]
dataset = "synthetic"  # this chapter trains nothing; it scores hand-made maps
image_size = 128  # pixels; the maps are made at the input resolution
num_images = 200  # images of the synthetic test split
seed = 0

# %% tags=["hide-input"]
import warnings

warnings.filterwarnings("ignore")

from coloc.runtime import check_parameters

check_parameters()  # stops on a papermill -p name the parameters cell lacks

import time

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from coloc.bench import reference_box_accuracy_curves
from coloc.boxes import (
    boxes_from_scoremap,
    box_iou,
    foreground_mask,
    normalize_scoremap,
)
from coloc.data import load
from coloc.metrics import (
    CorLocEvaluator,
    MaxBoxAccEvaluator,
    PxAPEvaluator,
    max_box_acc,
)
from coloc.plots import grid, show_map
from coloc.report import glue_figure, show
from coloc.runtime import seed_everything

seed_everything(seed, threads=2)
if dataset != "synthetic":
    raise ValueError(
        f"the metrics chapter uses the synthetic benchmark only, got {dataset!r}"
    )
test_set = load("synthetic", split="test", image_size=image_size, seed=seed)
samples = [test_set[i] for i in range(num_images)]

# %% [markdown] tags=[]
# ## Three score maps per image
#
# Each "method" is a blurred version of a ground-truth mask: the part mask, the object
# mask shifted by a few pixels, or the object mask plus smooth background noise. Real methods are judged the
# same way in the chapters that follow.

# %% tags=["hide-input"]
rng = np.random.default_rng(seed)


def blurred(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A soft score map around a binary mask."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


def smooth_noise(size: int) -> np.ndarray:
    """Low-frequency background activation in [0, 1]."""
    coarse = rng.random((6, 6)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


methods = {"part": [], "object": [], "smeared": []}
for s in samples:
    obj, part = s["mask"].numpy() == 1, s["part_mask"].numpy()
    methods["part"].append(normalize_scoremap(blurred(part, image_size / 40)))
    shift = rng.integers(
        -image_size // 12, image_size // 12 + 1, size=2
    )  # a little off
    methods["object"].append(
        normalize_scoremap(np.roll(blurred(obj, image_size / 30), shift, axis=(0, 1)))
    )
    smear = blurred(obj, image_size / 30) + 0.5 * smooth_noise(image_size)
    methods["smeared"].append(normalize_scoremap(smear))
methods = {name: np.stack(maps) for name, maps in methods.items()}
gt_boxes = [s["boxes"].numpy().astype(int) for s in samples]
gt_masks = [s["mask"].numpy() for s in samples]

fig, axes = grid(3, 4, size=2.2)
for col in range(4):
    s = samples[col]
    for row, name in enumerate(methods):
        show_map(
            axes[row, col],
            s["image"],
            methods[name][col],
            gt_boxes=s["boxes"],
            title=f"{name}, image {col}",
        )
fig.tight_layout()
glue_figure("fig-methods", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-methods
# :name: fig-metrics-methods
#
# The three made-up methods' score maps (rows) on four synthetic test images
# (columns), GT box in red. They fail differently: on the part only, shifted, or
# spread over the background.
# ```

# %% [markdown] tags=[]
# ## From a score map to boxes
#
# A threshold τ turns the map into a foreground mask. As the reference evaluator does,
# the map is first quantized to 8 bits, `u8 = uint8(map * 255)`, and the foreground is
# `u8 > int(τ · max(u8))`, strictly greater. OpenCV traces the contours of that mask
# (`RETR_TREE`, so holes count as contours too), and each contour's bounding rectangle
# is a box. CorLoc and MaxBoxAcc keep the contour of largest area; MaxBoxAccV2 keeps
# every contour and scores the best one. Low thresholds give one large box, high
# thresholds small boxes around the peaks.

# %% tags=[]
example = 1
score_map = methods["smeared"][example]
thresholds = [0.1, 0.3, 0.5, 0.7]
fig, axes = grid(2, len(thresholds), size=2.6)
for col, tau in enumerate(thresholds):
    largest = boxes_from_scoremap(score_map, tau)
    every = boxes_from_scoremap(score_map, tau, multi_contour=True)
    iou_one = box_iou(largest, gt_boxes[example]).max()
    iou_all = box_iou(every, gt_boxes[example]).max()
    show_map(
        axes[0, col],
        None,
        foreground_mask(score_map, tau),
        gt_boxes=gt_boxes[example],
        pred_boxes=largest,
        title=f"τ={tau}: largest contour\nIoU {iou_one:.2f}",
    )
    show_map(
        axes[1, col],
        samples[example]["image"],
        score_map,
        gt_boxes=gt_boxes[example],
        pred_boxes=every,
        title=f"every contour ({len(every)})\nbest IoU {iou_all:.2f}",
    )
fig.tight_layout()
glue_figure("fig-thresholds", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-thresholds
# :name: fig-metrics-thresholds
#
# One smeared score map thresholded at four values of τ (columns): the foreground mask
# (top) and the boxes of its contours (bottom; GT red, predicted green). Low
# thresholds give one large box, high ones small boxes around the peaks.
# ```

# %% [markdown] tags=[]
# ## IoU with inclusive pixel corners
#
# Boxes are `(x0, y0, x1, y1)` with both corners inside the box, so a box from x = 10
# to x = 19 is 10 pixels wide: `width = x1 - x0 + 1`. For A = (10, 10, 19, 19) and
# B = (15, 15, 24, 24): each has area 10 × 10 = 100, they overlap on 5 × 5 = 25 pixels,
# the union is 100 + 100 − 25 = 175 and IoU = 25 / 175 = 0.142857. With several
# predicted or GT boxes, an image's IoU is the maximum over all pairs.

# %% tags=[]
a = np.array([[10, 10, 19, 19]])
b = np.array([[15, 15, 24, 24], [10, 10, 19, 19]])
print("IoU of A with each B:", box_iou(a, b).round(6).tolist())

# %% [markdown] tags=[]
# ## MaxBoxAccV2: the best threshold over the whole split
#
# For each IoU criterion δ and each threshold τ in `arange(0, 1, 0.01)`, count the
# images whose best box reaches IoU ≥ δ. MaxBoxAccV2(δ) is the peak of that curve:
# one threshold for the whole split, chosen separately for each δ; the reported
# number is the mean over δ = 0.3, 0.5, 0.7. MaxBoxAcc is the older variant: the
# largest contour only, δ = 0.5. The evaluators are streaming: `update()` per batch
# keeps only counts per threshold, so no map is held in memory.

# %% tags=[]
curves, best = {}, {}
for name, maps in methods.items():
    evaluator = MaxBoxAccEvaluator()
    for start in range(0, num_images, 50):  # batches, as a data loader would give them
        evaluator.update(maps[start : start + 50], gt_boxes[start : start + 50])
    curves[name], best[name] = evaluator.accuracy_curves(), evaluator.compute()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, name in zip(axes, methods, strict=True):
    for delta, curve in curves[name].items():
        (line,) = ax.plot(evaluator.cam_thresholds, curve, label=f"IoU ≥ {delta}")
        tau = evaluator.cam_thresholds[np.argmax(curve)]
        ax.plot(tau, curve.max(), "o", color=line.get_color())
    ax.set_title(f"{name}: MaxBoxAccV2 = {best[name]['mean']:.1f}")
    ax.set_xlabel("score-map threshold τ")
axes[0].set_ylabel("box accuracy (%)")
axes[0].legend()
fig.tight_layout()
glue_figure("fig-boxacc", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-boxacc
# :name: fig-metrics-boxacc
#
# Box accuracy against the threshold τ for each method and IoU criterion; dots mark
# the best τ per criterion, which MaxBoxAccV2 reports. Each method gets its own best
# threshold.
# ```

# %% [markdown] tags=[]
# ## PxAP: precision and recall of pixels
#
# PxAP needs masks instead of boxes. Over the whole split, the scores of foreground
# pixels and of background pixels are histogrammed (pixels marked 255 are ignored); at
# each threshold, precision and recall of "score ≥ τ" follow from the counts above τ,
# and PxAP is the area under the precision-recall curve. It needs no threshold choice
# at all.

# %% tags=[]
fig, ax = plt.subplots(figsize=(4.5, 3.5))
pxaps = {}
for name, maps in methods.items():
    evaluator = PxAPEvaluator()
    evaluator.update(maps, gt_masks)
    pxaps[name] = evaluator.compute()
    curve = evaluator.curve()
    ax.plot(
        curve["recall"], curve["precision"], label=f"{name}: PxAP {pxaps[name]:.1f}"
    )
ax.set_xlabel("recall")
ax.set_ylabel("precision")
ax.set_title("Pixel precision-recall curves")
ax.legend()
fig.tight_layout()
glue_figure("fig-pr", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-pr
# :name: fig-metrics-pr
#
# Pixel precision-recall curves of the three methods; PxAP is the area under each
# curve, with no threshold to choose.
# ```

# %% [markdown] tags=[]
# ## CorLoc: one fixed threshold, and two ways to apply it
#
# Co-localization papers report CorLoc: the share of images whose single box (largest
# contour) at a fixed threshold has IoU ≥ δ. The common threshold is 0.2 of the map's
# maximum. PsyNet's released code, whose numbers CAML compares with, applies it to a
# *jet-coloured gray rendering* of the map rather than to the map itself: the map is
# coloured with matplotlib's `jet`, converted to gray, and thresholded at 0.2 of the
# gray maximum. Gray is not monotonic in the raw score (below, left): the cut falls near
# 0.15 of the raw range, and the very top of a peak can drop out of the foreground.
# `coloc` defaults to the raw map and offers `rule="jet_gray"`; every table says which
# it uses. Images without any contour count as misses.

# %% tags=[]
from coloc.boxes import psynet_jet_gray  # noqa: E402

ramp = np.linspace(0, 1, 256)[None, :]
gray = psynet_jet_gray(ramp)[0].astype(float)
raw_fg, jet_fg = (
    foreground_mask(ramp, 0.2)[0],
    foreground_mask(ramp, 0.2, rule="jet_gray")[0],
)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot(ramp[0], gray, color="k")
axes[0].axhline(
    int(0.2 * gray.max()), color="tab:red", ls="--", label="0.2 of gray max"
)
axes[0].fill_between(ramp[0], 0, 255 * raw_fg, alpha=0.15, label="raw rule: foreground")
axes[0].fill_between(ramp[0], 0, 255 * jet_fg, alpha=0.15, label="jet-gray: foreground")
axes[0].set_xlabel("raw score")
axes[0].set_ylabel("jet-gray value")
axes[0].legend(fontsize=7)
for ax, rule in zip(axes[1:], ("raw", "jet_gray"), strict=True):
    box = boxes_from_scoremap(score_map, 0.2, rule=rule)
    show_map(
        ax,
        None,
        foreground_mask(score_map, 0.2, rule=rule),
        gt_boxes=gt_boxes[example],
        pred_boxes=box,
        title=f"{rule} rule at 0.2: IoU {box_iou(box, gt_boxes[example]).max():.2f}",
    )
fig.tight_layout()
glue_figure("fig-jet", fig)

# %% [markdown] tags=[]
# ```{glue:figure} fig-jet
# :name: fig-metrics-jet
#
# Left: the jet-gray value of each raw score, and which scores each rule keeps at 0.2
# of the maximum. Middle and right: CorLoc boxes of the same maps under the raw rule
# and under PsyNet's jet-gray rule. The two rules keep different pixels.
# ```

# %% [markdown] tags=[]
# ## All metrics side by side
#
# The same maps, every metric. Note how the metrics disagree about *which failure is
# worse*: the part map gives tight boxes around a small region (low IoU at every
# threshold), the smeared map gives boxes that are too large at a low threshold but can
# recover at a higher one — which MaxBoxAccV2 finds and a fixed-threshold CorLoc
# does not.

# %% tags=[]
rows = []
for name, maps in methods.items():
    row = {"method": name}
    for rule in ("raw", "jet_gray"):
        evaluator = CorLocEvaluator(rule=rule)
        evaluator.update(maps, gt_boxes)
        row[f"CorLoc@0.5 ({rule})"] = evaluator.compute()[0.5]
    row["MaxBoxAcc (δ=0.5)"] = max_box_acc(maps, gt_boxes, multi_contour=False)[0.5]
    row.update({f"MaxBoxAccV2 @{d}": best[name][d] for d in (0.3, 0.5, 0.7)})
    row["MaxBoxAccV2 mean"] = best[name]["mean"]
    row["PxAP"] = pxaps[name]
    rows.append(row)
show(pd.DataFrame(rows).round(2))

# %% [markdown] tags=[]
# ## How fast is it?
#
# MaxBoxAccV2 traces contours at 100 thresholds for every image; over a test split
# that is the slow part of a WSOL evaluation. `coloc` computes exactly the same
# accuracies as a plain per-image, per-threshold loop written from the protocol (the
# tests check this at every threshold), faster. The cell measures both on this
# chapter's maps; `python -m coloc.bench metrics` measures 1,000 maps at 224 px.

# %% tags=[]
maps = methods["smeared"]
start = time.perf_counter()
plain = reference_box_accuracy_curves(list(maps), gt_boxes)
plain_seconds = time.perf_counter() - start
start = time.perf_counter()
evaluator = MaxBoxAccEvaluator()
evaluator.update(maps, gt_boxes)
ours = evaluator.accuracy_curves()
coloc_seconds = time.perf_counter() - start
identical = all(np.array_equal(plain[d], ours[d]) for d in ours)
print(f"plain loop: {len(maps) / plain_seconds:.0f} img/s")
print(f"coloc: {len(maps) / coloc_seconds:.0f} img/s ({plain_seconds / coloc_seconds:.1f}x faster)")
print(f"identical accuracy curves: {identical}")
