"""The report kit every chapter builds its tables, figures and sentences with.

Published beside measured (:func:`published`, :func:`corloc_beside`, :func:`as_printed`),
tables without plumbing (:func:`show`), numbers, sentences and figures pasted into the
chapter's prose (:func:`glue_text`, :func:`glue_figure`: MyST-NB ``glue``), claims decided
with a resolution from seed spread and recorded as data (:class:`Claim`,
:func:`seed_resolution`, :func:`record_claims`),
maps of recorded runs (:func:`figure_maps`, :func:`figure_maps_over_training`), training
curves (:func:`figure_losses`, :func:`figure_validation`), where maps put their mass
(:func:`map_statistics`), how boxes depend on the threshold (:func:`threshold_curves`)
and how recorded configurations differ (:func:`differences`).
Everything here works on :class:`coloc.runs.Run` and the score-map contract of
:mod:`coloc.maps`, so it serves every paper; a paper's own tables and figures are in its
folder (e.g. :mod:`coloc.caml.report`). One plotting style: :mod:`coloc.plots`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from coloc.boxes import boxes_from_scoremap
from coloc.data import collate_samples
from coloc.evaluate import Evaluation
from coloc.maps import ScoreMaps, upsample_maps
from coloc.metrics import MaxBoxAccEvaluator
from coloc.plots import grid, score_colorbar, show_map
from coloc.reference import CORLOC_COLUMNS, Table
from coloc.runs import Run, RunConfig
from coloc.runtime import atomic_write_json, read_json, results_root

MEASURED = "measured"
NOT_RUN = "not run"
HOLDS, FAILS, WITHIN_NOISE = "holds", "does not hold", "within noise"


# ---------------------------------------------------------------- published beside measured


def published(table: Table) -> pd.DataFrame:
    """A published table's rows with a first column naming the source ("published
    (Table 3)")."""
    frame = table.frame()
    frame.insert(0, "source", f"published ({table.source.split(', ')[-1]})")
    return frame


def as_printed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers with two decimals, as the papers print them, in columns that mix numbers
    and words ("-", "not run: ...")."""
    return frame.apply(lambda column: column.map(
        lambda v: f"{v:.2f}" if isinstance(v, float) else v))


def rounded(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` rounded to two decimals (as floats)."""
    return {k: round(float(v), 2) for k, v in values.items()}


def corloc_beside(table: Table, runs: Mapping[str, Run | Evaluation | None],
                  match: str = "method", why: str = "not run", published_on: str = "CUB"
                  ) -> pd.DataFrame:
    """A CorLoc table (e.g. CAML Tables 3-6): the published IoU columns (measured on
    ``published_on``) beside the measured ones, row by row. ``runs`` maps the published
    row's ``match`` value to the run (or a test :class:`Evaluation` of one) that
    measures it; missing or None: "not run", with ``why``."""
    frame = table.frame()
    dataset = next((r.config.dataset for r in runs.values() if isinstance(r, Run)), "-")
    measured = []
    for value in frame[match]:
        result = runs.get(value)
        if isinstance(result, Run):
            result = result.test
        measured.append(rounded(result.corloc) if result is not None
                        else dict.fromkeys(CORLOC_COLUMNS, why))
    described = frame.drop(columns=list(CORLOC_COLUMNS))
    described.columns = pd.MultiIndex.from_product([[""], described.columns])
    left = frame[list(CORLOC_COLUMNS)]
    left.columns = pd.MultiIndex.from_product([[f"published ({published_on})"],
                                               CORLOC_COLUMNS])
    right = pd.DataFrame(measured, columns=list(CORLOC_COLUMNS))
    right.columns = pd.MultiIndex.from_product([[f"measured ({dataset})"], CORLOC_COLUMNS])
    return pd.concat([described, left, right], axis=1)


@torch.no_grad()
def map_statistics(score_maps: ScoreMaps, models: Mapping[str, torch.nn.Module],
                   dataset: Dataset, n: int = 200, threshold: float = 0.2) -> pd.DataFrame:
    """Where the maps go, on the first ``n`` images of ``dataset``: the share of the
    map's mass outside the GT object mask, the share of the image above ``threshold``
    of the max (the CorLoc foreground) and, for scale, the object's share of the image.
    """
    batch = collate_samples([dataset[i] for i in range(min(n, len(dataset)))])
    foreground = batch["mask"] == 1
    rows = []
    for label, model in models.items():
        maps = score_maps(model.eval(), batch)
        rows.append({
            "maps of": label,
            "mass outside the object (%)": round(100 * float((maps * ~foreground).sum()
                                                             / maps.sum()), 1),
            "image above 0.2 of max (%)": round(100 * float((maps > threshold).float().mean()),
                                                1),
            "object share of image (%)": round(100 * float(foreground.float().mean()), 1),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the page


def show(frame: pd.DataFrame) -> Any:
    """``frame`` as an HTML table without its index (row numbers are plumbing)."""
    from IPython.display import HTML

    return HTML(frame.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}"))


def glue_text(name: str, markdown: str) -> None:
    """Paste ``markdown`` into the chapter's prose where it says ``{glue:md}`name```
    (MyST-NB ``glue``): computed sentences and numbers, never typed by hand."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(markdown), display=False)


def glue_number(name: str, value: float) -> None:
    """Paste a number into the prose: ``{glue:text}`name:.1f``` (MyST-NB ``glue``)."""
    from myst_nb import glue

    glue(name, float(value), display=False)


def glue_figure(name: str, fig: plt.Figure) -> None:
    """Paste ``fig`` where a ``{glue:figure} name`` directive gives it a numbered caption;
    the cell itself shows nothing (the figure appears once, captioned)."""
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


# ----------------------------------------------------------------------------- claims


def seed_resolution(samples: Iterable[Sequence[float]]) -> float:
    """The smallest difference between two runs that seeds do not explain, in the
    metric's units: ``2 * sqrt(2) * s``, ``s`` the standard deviation over seeds pooled
    over ``samples`` (each: one configuration's metric for several seeds). A difference
    of two runs has sd ``sqrt(2) * s``; two of those is a ~95 % band."""
    squares, dof = 0.0, 0
    for values in samples:
        values = np.asarray(list(values), dtype=float)
        if len(values) > 1:
            squares += float(((values - values.mean()) ** 2).sum())
            dof += len(values) - 1
    if dof == 0:
        raise ValueError("a seed resolution needs a configuration with two or more seeds")
    return 2 * math.sqrt(2) * math.sqrt(squares / dof)


@dataclass(frozen=True)
class Claim:
    """One comparative claim of a paper, decided on this book's runs.

    ``published`` and ``measured``: the effect (e.g. method minus baseline, in points) as
    printed and as measured here; the claim is the published effect's direction. The
    verdict: "holds" when the measured effect has that direction by at least
    ``resolution`` (and is not zero), "does not hold" when it has the other by at least
    ``resolution``, "within noise" otherwise, "not run" without a measurement.
    """

    paper: str
    where: str  # "Table 3"
    claim: str
    published: float | None
    measured: float | None
    resolution: float
    metric: str = "CorLoc@0.5"

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return NOT_RUN
        direction = 1.0 if self.published is None or self.published >= 0 else -1.0
        effect = direction * self.measured
        if effect > 0 and effect >= self.resolution:  # no effect never holds, even at
            return HOLDS                               # a resolution of 0 (equal seeds)
        return FAILS if effect < 0 and effect <= -self.resolution else WITHIN_NOISE


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """One row per claim: where, claim, published and measured effect, resolution,
    verdict."""
    return pd.DataFrame([{
        "where": c.where, "claim": c.claim, "metric": c.metric,
        "published effect": c.published, "measured effect": c.measured,
        "resolution": round(c.resolution, 2), "verdict": c.verdict} for c in claims])


def claims_sentence(claims: Sequence[Claim]) -> str:
    """The verdicts as prose: how many claims hold, and each one that does not, with its
    published and measured effect (a refuted finding is a sentence, not only a cell)."""
    counted = [c for c in claims if c.verdict != NOT_RUN]
    holding = sum(c.verdict == HOLDS for c in counted)
    parts = [f"{holding} of {len(counted)} claims measured here hold"]
    for c in counted:
        if c.verdict != HOLDS:
            published = "no number" if c.published is None else f"{c.published:+.2f}"
            parts.append(f"{c.where}, \"{c.claim}\": published {published}, "
                         f"measured {c.measured:+.2f} points ({c.verdict} at a resolution "
                         f"of {c.resolution:.1f})")
    missing = len(claims) - len(counted)
    tail = f"; {missing} not run" if missing else ""
    return "; ".join(parts) + tail + "."


def claims_path(chapter: str, config: RunConfig, output_dir: str | Path | None = None
                ) -> Path:
    """``<output_dir>/claims/<chapter>/<dataset>-<hash>.json``: where a chapter's claims
    for the run of ``config`` (its default configuration) are recorded, so a rerun with
    other parameters does not overwrite the default's."""
    return (results_root(output_dir) / "claims" / chapter
            / f"{config.dataset}-{config.hash()}.json")


def record_claims(chapter: str, claims: Sequence[Claim], config: RunConfig,
                  output_dir: str | Path | None = None) -> Path:
    """Write a chapter's claims (with their verdicts) to :func:`claims_path`, where a
    later page collects them across papers instead of retyping them."""
    path = claims_path(chapter, config, output_dir)
    records = [{**asdict(c), "verdict": c.verdict} for c in claims]
    atomic_write_json(path, records, indent=2)
    return path


def read_claims(chapter: str, config: RunConfig, output_dir: str | Path | None = None
                ) -> list[Claim] | None:
    """The claims a chapter recorded for ``config``, or None if it has not run."""
    path = claims_path(chapter, config, output_dir)
    if not path.is_file():
        return None
    fields = set(Claim.__dataclass_fields__)
    return [Claim(**{k: v for k, v in record.items() if k in fields})
            for record in read_json(path)]


# ----------------------------------------------------------------------------- figures


def feature_map(ax: plt.Axes, values: torch.Tensor, title: str, vmax: float | None = None,
                cmap: str = "jet") -> Any:
    """A map at feature resolution (no interpolation), ticks off; returns the image for a
    colour bar."""
    image = ax.imshow(values.numpy(), cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return image



@torch.no_grad()
def figure_maps(runs: Mapping[str, Run], dataset: Dataset, indices: Sequence[int],
                size: float = 1.9, per_row: int | None = None) -> plt.Figure:
    """Each run's score maps on the same images (e.g. CAML Figures 2 and 7), GT boxes red
    and the CorLoc box (largest contour at the run's threshold) green, IoU in the title.
    ``per_row`` wraps the images: each run then takes several rows, so panels stay large
    in a text column."""
    batch = collate_samples([dataset[i] for i in indices])
    per_row = per_row or len(indices)
    blocks = -(-len(indices) // per_row)
    fig, axes = grid(len(runs) * blocks, per_row, size=size)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, (label, result) in enumerate(runs.items()):
        maps = result.score_maps(batch)
        evaluation = result.test
        for k, index in enumerate(indices):
            ax = axes[r + len(runs) * (k // per_row), k % per_row]
            ax.set_axis_on()
            box = boxes_from_scoremap(maps[k], evaluation.threshold, rule=evaluation.rule)
            show_map(ax, batch["image"][k], maps[k], batch["boxes"][k], box,
                     title=f"{label}: IoU {_iou_of(evaluation, index):.2f}")
    fig.tight_layout()
    score_colorbar(fig, axes)
    return fig


def _iou_of(evaluation: Evaluation, index: int) -> float:
    where = np.flatnonzero(evaluation.indices == index)
    return float(evaluation.ious[where[0]]) if len(where) else float("nan")


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")



def figure_losses(runs: Mapping[str, Run], terms: Sequence[str], window: int = 10
                  ) -> plt.Figure:
    """Loss ``terms`` (e.g. CAML's ``("cls", "caml")``, Figure 5a) per training step
    (moving average of ``window`` steps) for each run that logged them; the first term
    solid, the others dashed."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for label, result in runs.items():
        for term, style in zip(terms, ["-"] + ["--"] * (len(terms) - 1), strict=True):
            values = result.curves["step_losses"].get(term)
            if values:
                ax.plot(_smooth(values, window), style, label=f"{label}: L_{term}")
    ax.set_xlabel(f"training step (moving average of {window})")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_validation(runs: Mapping[str, Run], metric: str = "corloc@0.5") -> plt.Figure:
    """Validation ``metric`` after every epoch, one line per run: how the localization
    the test split reports (last epoch) developed while training."""
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    for label, result in runs.items():
        values = [epoch[metric] for epoch in result.curves["val"]]
        ax.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric.replace('corloc', 'CorLoc')} (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_maps_over_training(runs: Mapping[str, Run], dataset: Dataset,
                              images: Sequence[int] = (0, 1)) -> plt.Figure:
    """CAML Figure 5b: the probe maps each run recorded before training and after
    every epoch, upsampled like the evaluation maps, over the probe images."""
    epochs = sorted(int(e) for e in next(iter(runs.values())).curves["probe_maps"])
    fig, axes = grid(len(runs) * len(images), len(epochs), size=1.5)
    for r, (label, result) in enumerate(runs.items()):
        probes = result.curves["probe_maps"]
        for k, image in enumerate(images):
            sample = dataset[image]
            for c, epoch in enumerate(epochs):
                raw = torch.tensor(probes[str(epoch)][image])[None]
                score = upsample_maps(raw, sample["image"].shape[-2:])[0]
                when = "init" if epoch < 0 else f"epoch {epoch + 1}"
                show_map(axes[r * len(images) + k, c], sample["image"], score,
                         title=f"{label}, {when}")
    fig.tight_layout()
    score_colorbar(fig, axes)
    return fig


def worst_cases(result: Run, k: int = 8) -> np.ndarray:
    """Dataset indices of the ``k`` test images with the lowest CorLoc IoU (ties by
    index), the cases of CAML Figure 8."""
    evaluation = result.test
    order = np.lexsort((evaluation.indices, evaluation.ious))[:k]
    return evaluation.indices[order]


def box_size_ratio(result: Run, dataset: Dataset, indices: Sequence[int]) -> np.ndarray:
    """Area of the predicted CorLoc box over the area of the largest GT box, per image."""
    evaluation = result.test
    ratios = []
    for index in indices:
        box = evaluation.boxes[np.flatnonzero(evaluation.indices == index)[0]]
        gt = dataset[index]["boxes"].numpy()
        area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
        gt_area = ((gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)).max()
        ratios.append(area / gt_area)
    return np.asarray(ratios)


def first_batches(dataset: Dataset, n: int, batch_size: int) -> Iterator[dict[str, Any]]:
    """The first ``n`` samples of ``dataset`` (all if fewer), collated ``batch_size`` at
    a time, in order."""
    n = min(n, len(dataset))
    for start in range(0, n, batch_size):
        yield collate_samples([dataset[i] for i in range(start, min(n, start + batch_size))])




# ----------------------------------------------------------------------------- recorded runs


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def differences(recorded: Mapping[str, Any], default: Mapping[str, Any]
                ) -> list[tuple[str, Any]]:
    """``(field, recorded value)`` for every configuration field that differs (JSON-wise,
    so tuples equal lists), in ``default``'s order; a field one side lacks differs."""
    recorded, default = _plain(dict(recorded)), _plain(dict(default))
    keys = list(dict.fromkeys([*default, *recorded]))
    return [(k, recorded.get(k, "<absent>")) for k in keys
            if recorded.get(k, "<absent>") != default.get(k, "<absent>")]


# ----------------------------------------------------------------------------- thresholds


@torch.no_grad()
def threshold_curves(runs: Mapping[str, Run], dataset: Dataset, iou: float = 0.5,
                     n: int = 1000, batch_size: int = 100) -> dict[str, dict[str, np.ndarray]]:
    """Box accuracy at IoU ``iou`` against the map threshold, per run, over the first ``n``
    images of ``dataset``: ``{"one box": ..., "every contour": ...}``, each 100 values for
    ``arange(0, 1, 0.01)``. One box at 0.2 is CorLoc; the maximum of "every contour" is
    MaxBoxAccV2's term at ``iou``, at the threshold it picks for the method."""
    curves = {}
    for label, result in runs.items():
        evaluators = {"one box": MaxBoxAccEvaluator((iou,), multi_contour=False),
                      "every contour": MaxBoxAccEvaluator((iou,), multi_contour=True)}
        for batch in first_batches(dataset, n, batch_size):
            maps = result.score_maps(batch).numpy()
            gt = [b.numpy() for b in batch["boxes"]]
            for evaluator in evaluators.values():
                evaluator.update(maps, gt)
        curves[label] = {mode: e.accuracy_curves()[iou] for mode, e in evaluators.items()}
    return curves


def figure_threshold_curves(curves: Mapping[str, Mapping[str, np.ndarray]],
                            corloc_threshold: float = 0.2, iou: float = 0.5) -> plt.Figure:
    """:func:`threshold_curves` drawn: one colour per run, one box solid and every contour
    dashed, CorLoc's fixed threshold as a vertical line, each curve's best threshold
    marked (the one MaxBoxAccV2 uses)."""
    thresholds = np.arange(0, 1, 0.01)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for (label, modes), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"],
                                      strict=False):
        for mode, style in (("one box", "-"), ("every contour", "--")):
            curve = modes[mode]
            ax.plot(thresholds, curve, style, color=colour["color"], label=f"{label}, {mode}")
            best = int(np.argmax(curve))
            ax.plot(thresholds[best], curve[best], "o", color=colour["color"])
    ax.axvline(corloc_threshold, color="0.4", lw=0.8)
    ax.text(corloc_threshold + 0.01, 2, "CorLoc threshold", fontsize=8, color="0.3")
    ax.set_xlabel("map threshold (share of the map's maximum)")
    ax.set_ylabel(f"boxes with IoU >= {iou} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- seeds


def seed_summary(runs_by_seed: Mapping[str, Sequence[Run]]) -> pd.DataFrame:
    """Per method, test CorLoc@0.5, CorLoc mean and MaxBoxAccV2 mean over its seeds as
    "mean ± sd" (sample sd), and the seeds used."""
    rows = []
    for label, runs in runs_by_seed.items():
        row: dict[str, Any] = {"method": label}
        for column, value in (("CorLoc@0.5", lambda r: r.test.corloc["0.5"]),
                              ("CorLoc mean", lambda r: r.test.corloc["mean"]),
                              ("MaxBoxAccV2 mean", lambda r: r.test.max_box_acc_v2["mean"])):
            values = np.array([value(r) for r in runs])
            row[column] = f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"
        row["seeds"] = ", ".join(str(r.config.seed) for r in runs)
        rows.append(row)
    return pd.DataFrame(rows)
