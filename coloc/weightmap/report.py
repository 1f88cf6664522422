"""The WeightMap chapter's tables and figures, from recorded runs.

- :func:`localization`: GT-known loc, top-1 loc, top-1 cls of a run's test evaluation
  (Tables 1-3); :func:`pxap_of`: PxAP of a method's maps on the test masks (Tables 4-5).
- :func:`epochs_frame` and :func:`stopping_summary`: S and GT-known per epoch on val, the
  S-selected, best (oracle) and last epoch (the central claim, Figures 1 and 4).
- :func:`figure_epochs`, :func:`figure_boxes`, :func:`figure_masks`: Figures 1/4, 5 and
  6-8.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from coloc.boxes import boxes_from_scoremap
from coloc.data import collate_samples
from coloc.maps import ScoreMaps
from coloc.metrics import PxAPEvaluator
from coloc.plots import grid, show_map
from coloc.report import first_batches
from coloc.runs import Run
from coloc.weightmap.config import STOPPING
from coloc.weightmap.method import classify
from coloc.weightmap.stopping import TAU, stopping_score

GT_KNOWN = "corloc@0.5"
"""GT-known loc on val as the runner records it: CorLoc at IoU 0.5 (boxes at tau)."""


@torch.no_grad()
def predictions(classifier: nn.Module, dataset: Dataset, batch_size: int = 100
                ) -> np.ndarray:
    """The classifier's predicted class of every image of ``dataset`` ``[N]``."""
    return torch.cat([classify(classifier, batch)
                      for batch in first_batches(dataset, len(dataset), batch_size)]).numpy()


def localization(result: Run, labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """``{"gt_known_loc", "top1_loc", "top1_cls"}`` in percent from the run's test
    evaluation (per-image IoU of its one box) and the classifier's predictions (Sec. 4:
    IoU >= 0.5; top-1 loc also needs the right class)."""
    test = result.test
    localized = test.ious >= 0.5
    correct = predicted[test.indices] == labels[test.indices]
    return {"gt_known_loc": 100.0 * localized.mean(),
            "top1_loc": 100.0 * (localized & correct).mean(),
            "top1_cls": 100.0 * correct.mean()}


@torch.no_grad()
def pxap_of(score_maps: ScoreMaps, model: nn.Module, dataset: Dataset, batch_size: int = 100
            ) -> float:
    """PxAP (%) of ``score_maps`` on ``dataset``'s foreground masks (Eq. 7-8)."""
    evaluator = PxAPEvaluator()
    for batch in first_batches(dataset, len(dataset), batch_size):
        evaluator.update(score_maps(model, batch).numpy(), batch["mask"].numpy())
    return evaluator.compute()


def epochs_frame(result: Run) -> pd.DataFrame:
    """Per epoch (1-based): mean S on val, GT-known loc on val, mean weight of M
    (training), and which epoch S selects."""
    val = result.curves["val"]
    selected = result.record["metrics"]["selected_epoch"]
    return pd.DataFrame({
        "epoch": range(1, len(val) + 1),
        "S (val)": [m[STOPPING] for m in val],
        "GT-known loc (val, %)": [m[GT_KNOWN] for m in val],
        "mean weight of M": result.curves["epoch_losses"]["coverage"],
        "selected by S": ["yes" if e == selected else "" for e in range(len(val))],
    })


def stopping_summary(result: Run) -> dict[str, dict[str, float]]:
    """GT-known loc on val at the S-selected epoch, the best epoch (an oracle: it reads
    the labels) and the last epoch: ``{"S-selected": {"epoch", "gt_known", "S"}, ...}``
    (epochs 1-based)."""
    val = result.curves["val"]
    known = [m[GT_KNOWN] for m in val]
    picks = {"S-selected": result.record["metrics"]["selected_epoch"],
             "best epoch (oracle, labels)": int(np.argmax(known)), "last epoch": len(val) - 1}
    return {name: {"epoch": e + 1, "gt_known": known[e], "S": val[e][STOPPING]}
            for name, e in picks.items()}


def figure_epochs(result: Run, dataset: Dataset, images: int = 3) -> plt.Figure:
    """Figures 1 and 4: M of the probe images after each epoch with its box at tau (green)
    and the GT box (red), and below, S and GT-known loc on val per epoch with the
    S-selected and the best epoch marked."""
    probes = result.curves["probe_maps"]
    epochs = sorted(int(e) for e in probes if int(e) >= 0)
    images = min(images, len(probes["0"]))
    fig = plt.figure(figsize=(1.6 * len(epochs) + 0.4, 1.6 * (images + 1) + 2.4))
    grid_spec = fig.add_gridspec(images + 2, len(epochs) + 1,
                                 height_ratios=[1] * (images + 1) + [1.2])
    for row in range(images):
        sample = dataset[row]
        ax = fig.add_subplot(grid_spec[row, 0])
        show_map(ax, sample["image"], gt_boxes=sample["boxes"], title="image" if not row
                 else None)
        for col, epoch in enumerate(epochs, start=1):
            score_map = torch.tensor(probes[str(epoch)][row])
            s = stopping_score(score_map[None])[0].item()
            ax = fig.add_subplot(grid_spec[row, col])
            show_map(ax, None, score_map, gt_boxes=sample["boxes"],
                     pred_boxes=boxes_from_scoremap(score_map, TAU),
                     title=f"epoch {epoch + 1}\nS {s:.2f}" if not row else f"S {s:.2f}")
    frame = epochs_frame(result)
    summary = stopping_summary(result)
    ax = fig.add_subplot(grid_spec[images:, :])
    ax.plot(frame["epoch"], frame["GT-known loc (val, %)"], "o-", label="GT-known loc (val, %)")
    ax.set_xlabel("epoch")
    ax.set_xticks(list(frame["epoch"]))
    ax.set_ylabel("GT-known loc (%)")
    twin = ax.twinx()
    twin.plot(frame["epoch"], frame["S (val)"], "s--", color="tab:orange", label="S (val)")
    twin.set_ylabel("mean S")
    for name, style in (("S-selected", "tab:orange"), ("best epoch (oracle, labels)", "k")):
        ax.axvline(summary[name]["epoch"], color=style, linestyle=":", label=name)
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _maps(models: Mapping[str, tuple[ScoreMaps, nn.Module]], batch: dict
          ) -> dict[str, torch.Tensor]:
    return {name: score_maps(model, batch) for name, (score_maps, model) in models.items()}


def figure_boxes(models: Mapping[str, tuple[ScoreMaps, nn.Module]], dataset: Dataset,
                 indices: Sequence[int], thresholds: Mapping[str, float]) -> plt.Figure:
    """Figure 5: each method's map and box (green, at its threshold) with the GT (red)."""
    batch = collate_samples([dataset[i] for i in indices])
    maps = _maps(models, batch)
    fig, axes = grid(len(indices), len(models) + 1, size=1.8)
    for row in range(len(indices)):
        show_map(axes[row, 0], batch["image"][row], gt_boxes=batch["boxes"][row],
                 title="image" if not row else None)
        for col, name in enumerate(models, start=1):
            score_map = maps[name][row]
            show_map(axes[row, col], batch["image"][row], score_map,
                     gt_boxes=batch["boxes"][row],
                     pred_boxes=boxes_from_scoremap(score_map, thresholds[name]),
                     title=name if not row else None)
    fig.tight_layout()
    return fig


def figure_masks(models: Mapping[str, tuple[ScoreMaps, nn.Module]], dataset: Dataset,
                 indices: Sequence[int]) -> plt.Figure:
    """Figures 6-8: image, GT foreground mask, and each method's map (rows: images)."""
    batch = collate_samples([dataset[i] for i in indices])
    maps = _maps(models, batch)
    fig, axes = grid(len(indices), len(models) + 2, size=1.8)
    for row in range(len(indices)):
        show_map(axes[row, 0], batch["image"][row], title="image" if not row else None)
        show_map(axes[row, 1], None, (batch["mask"][row] == 1).float(),
                 title="GT mask" if not row else None)
        for col, name in enumerate(models, start=2):
            show_map(axes[row, col], None, maps[name][row], title=name if not row else None)
    fig.tight_layout()
    return fig
