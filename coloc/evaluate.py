"""One evaluator for every method: box metrics of score maps, streamed over a split.

:func:`evaluate` takes a method's ``score_maps(model, batch)`` (:mod:`coloc.maps`) and
scores its maps on a dataset with CorLoc (one box per image at a fixed threshold) and
MaxBoxAccV2 (Choe et al., CVPR 2020), keeping per-image IoUs and boxes for the figures.
The metric definitions are :mod:`coloc.metrics`; how a method computes its maps is in
its paper's folder (e.g. :func:`coloc.caml.score_maps`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from coloc import distributed
from coloc.boxes import boxes_from_scoremap
from coloc.data import collate_samples
from coloc.maps import ScoreMaps
from coloc.metrics import IOU_THRESHOLDS, CorLocEvaluator, MaxBoxAccEvaluator
from coloc.runtime import base_seed_draw, progress
from coloc.train import to_device


@dataclass
class Evaluation:
    """What :func:`evaluate` measured on a split.

    ``corloc`` and ``max_box_acc_v2``: ``{"0.3", "0.5", "0.7", "mean"}`` in percent.
    ``ious`` ``[N]``: each image's CorLoc IoU (its one box vs. its GT boxes, 0 without a
    contour); ``boxes`` ``[N, 4]``: that predicted box; ``indices`` ``[N]``: dataset
    positions. ``rule`` and ``threshold``: the CorLoc box rule. ``scores``: the mean of
    each label-free per-image map score asked of :func:`evaluate` (``map_scores``).
    """

    corloc: dict[str, float]
    max_box_acc_v2: dict[str, float] | None
    ious: np.ndarray
    boxes: np.ndarray
    indices: np.ndarray
    rule: str
    threshold: float
    seconds: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "corloc": self.corloc, "max_box_acc_v2": self.max_box_acc_v2,
            "corloc_rule": self.rule, "corloc_threshold": self.threshold,
            "per_image": {"iou": np.round(self.ious, 6).tolist(), "box": self.boxes.tolist(),
                          "index": self.indices.tolist()},
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Evaluation:
        per_image = record["per_image"]
        return cls(
            corloc=dict(record["corloc"]),
            max_box_acc_v2=None if record["max_box_acc_v2"] is None
            else dict(record["max_box_acc_v2"]),
            ious=np.asarray(per_image["iou"], dtype=np.float64),
            boxes=np.asarray(per_image["box"], dtype=np.int64).reshape(-1, 4),
            indices=np.asarray(per_image["index"], dtype=np.int64),
            rule=record["corloc_rule"], threshold=record["corloc_threshold"],
        )


def _keys(values: Mapping) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items()}


@torch.no_grad()
def evaluate(
    score_maps: ScoreMaps,
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    threshold: float = 0.2,
    rule: str = "raw",
    max_box_acc: bool = True,
    num_workers: int = 0,
    desc: str = "evaluate",
    map_scores: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> Evaluation:
    """Box metrics of ``score_maps(model, batch)`` on ``dataset``, streaming over batches.

    CorLoc (CAML Sec. 4 "Evaluation metrics"): one box per image, the largest contour at
    ``threshold`` (0.2) of the map's max; ``rule="raw"`` (default) thresholds the map
    itself, ``"jet_gray"`` PsyNet's jet-gray rendering (PROTOCOL.md). Images without a
    contour are misses. Reported at IoU 0.3/0.5/0.7 and their mean. MaxBoxAccV2 (Choe et
    al. 2020; CAML Table 1): best threshold over ``arange(0, 1, 0.01)`` per IoU, every
    contour a box. The model is put in eval mode on ``device``; each batch's tensors are
    moved there before ``score_maps`` sees them. ``map_scores`` (name -> function of the
    maps ``[B, H, W]`` giving ``[B]``) are label-free scores of the maps themselves (e.g.
    WeightMap's early-stopping score), averaged over the split into ``scores``.

    Under a process group (:mod:`coloc.distributed`) each rank scores a contiguous
    shard and the evaluators' states are merged across ranks: every rank returns the
    metrics, per-image IoUs and boxes of the whole split, exactly as one process would.
    """
    started = time.perf_counter()
    device = torch.device(device)
    model.to(device).eval()
    corloc = CorLocEvaluator(threshold, IOU_THRESHOLDS, rule)
    boxacc = MaxBoxAccEvaluator(IOU_THRESHOLDS, multi_contour=True) if max_box_acc else None
    if distributed.active():  # this rank's contiguous shard; merged below
        dataset = Subset(dataset, distributed.shard(len(dataset)))  # type: ignore[arg-type]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        collate_fn=collate_samples, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    boxes, indices = [], []
    sums = dict.fromkeys(map_scores or {}, 0.0)
    bar = progress(total=len(loader), desc=desc, leave=False)
    base_seed_draw()  # the global-RNG draw of the iterator tqdm.auto used to open
    for batch in loader:
        maps_tensor = score_maps(model, to_device(batch, device)).cpu()
        for name, score in (map_scores or {}).items():
            sums[name] += float(score(maps_tensor).double().sum())
        maps = maps_tensor.numpy()
        gt = [b.numpy() for b in batch["boxes"]]
        corloc.update(maps, gt)
        if boxacc is not None:
            boxacc.update(maps, gt)
        boxes += [boxes_from_scoremap(m, threshold, rule=rule)[0] for m in maps]
        indices.append(batch["index"].numpy())
        bar.update()
    bar.close()
    corloc = distributed.merged(corloc)
    boxacc = distributed.merged(boxacc) if boxacc is not None else None
    boxes = [box for part in distributed.gather(boxes) for box in part]
    indices = [index for part in distributed.gather(indices) for index in part]
    sums = {name: sum(part[name] for part in distributed.gather(sums)) for name in sums}
    return Evaluation(
        corloc=_keys(corloc.compute()),
        max_box_acc_v2=_keys(boxacc.compute()) if boxacc is not None else None,
        ious=corloc.image_ious, boxes=np.asarray(boxes, dtype=np.int64).reshape(-1, 4),
        indices=np.concatenate(indices), rule=rule, threshold=threshold,
        seconds=time.perf_counter() - started,
        scores={name: total / len(corloc.image_ious) for name, total in sums.items()},
    )
