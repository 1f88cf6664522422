"""The InCA chapter's tables and figures, from recorded runs (:mod:`coloc.inca.method`).

Measured tables: :func:`metric_table` (one row per run or per method over seeds, on val
or test: MaxBoxAccV2 per IoU and mean, GT-known, top-1 loc, top-1 cls), :func:`beside`
(a published table with measured columns), :func:`map_shares` ("where the maps go": the
share of map mass on the discriminative part, the rest of the object and the
background). Figures: :func:`figure_masks` (InCA Fig. 3), :func:`figure_contrastive`
(Fig. 4), :func:`figure_overview` (Fig. 2). Figures 1 and 5 are
:func:`coloc.report.figure_maps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc.cam import mass_inside
from coloc.data import collate_samples
from coloc.inca.method import split_metrics
from coloc.plots import grid, show_map
from coloc.reference import Table
from coloc.report import NOT_RUN, feature_map, published
from coloc.runs import Run

COLUMNS = {"maxboxacc@0.3": "0.3", "maxboxacc@0.5": "0.5", "maxboxacc@0.7": "0.7",
           "maxboxacc": "mean", "gt_known": "GT-known loc", "top1_loc": "top-1 loc",
           "top1_cls": "top-1 cls"}
"""Measured columns (percent): MaxBoxAccV2 at IoU 0.3/0.5/0.7 and mean, then the
one-box metrics at the CorLoc threshold."""


def values(runs: Sequence[Run], split: str, key: str) -> np.ndarray:
    """``key`` of :func:`coloc.inca.method.split_metrics` for each run."""
    return np.array([split_metrics(r, split)[key] for r in runs])


def metric_table(runs: Mapping[str, Run | Sequence[Run]], split: str) -> pd.DataFrame:
    """One row per label: the :data:`COLUMNS` on ``split``; a label with several runs
    (seeds) gets "mean ± sd" and its seeds."""
    rows = []
    for label, found in runs.items():
        group = [found] if isinstance(found, Run) else list(found)
        row: dict[str, Any] = {"method": label}
        for key, column in COLUMNS.items():
            v = values(group, split, key)
            row[column] = round(float(v[0]), 2) if len(v) == 1 else \
                f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"
        if len(group) > 1:
            row["seeds"] = ", ".join(str(r.config.seed) for r in group)
        rows.append(row)
    return pd.DataFrame(rows)


def beside(table: Table, runs: Mapping[str, Run | None], match: str, split: str = "test",
           keys: Mapping[str, str] | None = None, why: str = NOT_RUN) -> pd.DataFrame:
    """``table``'s published rows (:func:`coloc.report.published`) with measured columns
    on ``split``: ``runs`` maps a row's ``match`` value to the run that measures it (None
    or absent: ``why``); ``keys`` maps measured column names to metric keys (default:
    MaxBoxAccV2 per IoU and mean, and top-1 cls)."""
    keys = keys or {"0.3": "maxboxacc@0.3", "0.5": "maxboxacc@0.5", "0.7": "maxboxacc@0.7",
                    "mean": "maxboxacc", "top-1 cls": "top1_cls"}
    frame = published(table)
    measured = []
    for value in frame[match]:
        result = runs.get(value)
        metrics = split_metrics(result, split) if result is not None else None
        measured.append({f"measured {c}": round(metrics[k], 2) if metrics else why
                         for c, k in keys.items()})
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(measured)], axis=1)


@torch.no_grad()
def map_shares(runs: Mapping[str, Run], dataset: Dataset, n: int = 500) -> pd.DataFrame:
    """Where the maps go (the datasets chapter's measure, :func:`coloc.cam.mass_inside`):
    per run, the mean share (%) of each score map's mass on the discriminative part, on
    the rest of the object and on the background, over the first ``n`` images of
    ``dataset``; and, for scale, the regions' shares of the image."""
    batch = collate_samples([dataset[i] for i in range(min(n, len(dataset)))])
    obj, part = batch["mask"] == 1, batch["part_mask"].bool()
    regions = {"part": part, "rest of object": obj & ~part, "background": ~obj}
    rows = [{"maps of": "(area of the image)", **{
        k: round(100 * float(r.double().mean()), 1) for k, r in regions.items()}}]
    for label, result in runs.items():
        maps = result.score_maps(batch)
        rows.append({"maps of": label, **{
            k: round(100 * float(mass_inside(maps, r).nanmean()), 1)
            for k, r in regions.items()}})
    return pd.DataFrame(rows)


def figure_masks(views: Mapping[str, Any], images: Sequence[int], position: int = -1
                 ) -> plt.Figure:
    """InCA Fig. 3: per image, the input, the attention map A, the importance map
    sigmoid(A), ADL's drop mask and M_dfg (Eq. 1) at one position (default: the last)."""
    p = views["positions"][position]
    fig, axes = grid(len(images), 5, size=1.7)
    for row, i in enumerate(images):
        show_map(axes[row, 0], views["image"][i], title="image" if row == 0 else None)
        for col, (key, title) in enumerate((("A", "attention A"),
                                            ("importance", "importance map"),
                                            ("adl_drop", "ADL drop mask"),
                                            ("dfg", "M_dfg (ours)")), start=1):
            feature_map(axes[row, col], p[key][i], title if row == 0 else "", vmax=1)
    fig.suptitle(f"at {p['label']}", fontsize=9)
    fig.tight_layout()
    return fig


def figure_contrastive(views: Mapping[str, Any], i: int = 0, position: int = -1
                       ) -> plt.Figure:
    """InCA Fig. 4: the three masks of L_ca (M_dfg, M_fg, M_bg; Eq. 1-2) and the masked
    features F * M (channel mean) whose pooled embeddings are z_dfg, z_fg, z_bg."""
    p = views["positions"][position]
    feature = p["F"][i]
    vmax = float(feature.max())
    fig, axes = grid(2, 4, size=1.8)
    feature_map(axes[0, 0], p["A"][i], f"A ({p['label']})", vmax=1)
    feature_map(axes[1, 0], feature, "feature F", vmax=vmax)
    for col, (key, name) in enumerate((("dfg", "dfg"), ("fg", "fg"), ("bg", "bg")), start=1):
        feature_map(axes[0, col], p[key][i], f"M_{name}", vmax=1, cmap="gray")
        feature_map(axes[1, col], feature * p[key][i], f"F * M_{name} -> z_{name}", vmax=vmax)
    fig.tight_layout()
    return fig


def figure_overview(views: Mapping[str, Any], i: int = 0) -> plt.Figure:
    """InCA Fig. 2 from real tensors: for one image, at every attention position (rows,
    earliest first) the feature F, the attention A, the importance map, M_dfg; and the
    last position's map beside each earlier one, the pair that L_fc compares."""
    positions = views["positions"]
    fig, axes = grid(len(positions), 5, size=1.7)
    for row, p in enumerate(positions):
        feature_map(axes[row, 0], p["F"][i], f"F at {p['label']}")
        feature_map(axes[row, 1], p["A"][i], "A", vmax=1)
        feature_map(axes[row, 2], p["importance"][i], "sigmoid(A)", vmax=1)
        feature_map(axes[row, 3], p["dfg"][i], "M_dfg", vmax=1, cmap="gray")
        if row < len(positions) - 1:
            feature_map(axes[row, 4], positions[-1]["A"][i], "reference A (L_fc)", vmax=1)
        else:
            show_map(axes[row, 4], views["image"][i], title="image")
    fig.tight_layout()
    return fig


def seed_mean(runs: Sequence[Run], split: str, key: str) -> float:
    """Mean of ``key`` over the runs (seeds) on ``split``."""
    return float(values(runs, split, key).mean())


def beside_seeds(table: Table, by_seed: Mapping[str, Sequence[Run]], key: str,
                 column: str, split: str = "test", rows: Mapping[str, Any] | None = None
                 ) -> pd.DataFrame:
    """A published table (Tables 4, 6, 7; only the rows matching ``rows``, e.g. CUB) with
    one measured column: the published method's run here (``by_seed`` by the table's
    ``method`` name), ``key`` as "mean ± sd" over its seeds; methods not run here are
    "published only"."""
    frame = published(table)
    for name, value in (rows or {}).items():
        frame = frame[frame[name] == value]
    measured = []
    for method in frame["method"]:
        group = by_seed.get(method)
        if group is None:
            measured.append("published only")
            continue
        v = values(group, split, key)
        measured.append(f"{v.mean():.2f} ± {v.std(ddof=1):.2f}")
    frame = frame.reset_index(drop=True)
    frame[column] = measured
    return frame
