"""InCA's method (and ADL's): the network, its training step, its maps, runs of it.

- :func:`build_model` / :func:`make_step`: :class:`coloc.inca.model.INCANet` from the
  run's backbone, trained with ``L_cls + ca_weight L_ca + fc_weight L_fc`` (InCA Eq. 6;
  ADL: ``L_cls`` alone);
- :func:`score_maps` / :func:`probe_maps`: the CAM of the ground-truth class of the
  vanilla network (InCA Sec. 3.5: the blocks are off at test), i.e. the CAM baseline's
  (:mod:`coloc.cam`);
- :data:`METHOD`, :func:`run`, :func:`find_run`, :func:`run_seeds`: through the shared
  runner (:mod:`coloc.runs`), under ``<output_dir>/inca/<dataset>/``;
- :func:`split_metrics`: MaxBoxAccV2, GT-known loc, top-1 loc and top-1 cls of a run on
  a split (val for choices, test once per chosen configuration), cached beside the run;
- :func:`explain`: the tensors of InCA Figures 2-4 for a batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc import cam, runs
from coloc.data import collate_samples
from coloc.evaluate import evaluate
from coloc.inca.config import INCAConfig
from coloc.inca.losses import inca_losses, region_masks
from coloc.inca.model import INCANet, adl_drop_mask, normalize_map
from coloc.runs import Run
from coloc.runtime import atomic_write_bytes
from coloc.train import to_device


def build_model(config: INCAConfig, output_dir: str | Path | None = None) -> INCANet:
    """The classifier of ``config`` (backbone from :func:`coloc.runs.backbone`, linear
    head over GAP) with ``config.positions`` attention blocks (ADL or InCA)."""
    return INCANet(
        runs.backbone(config, output_dir), cam.num_classes(config), config.backbone,
        config.positions, embed_dim=config.embed_dim, attention=config.attention,
        drop_mask=config.drop_mask, drop_rate=config.drop_rate, gamma_fg=config.gamma_fg,
        gamma_bg=config.gamma_bg, map_norm=config.map_norm, reduction=config.reduction,
        residual=config.nonlocal_residual,
    )


def make_step(config: INCAConfig) -> Callable[[nn.Module, dict], dict[str, Tensor]]:
    """The training step: ``{"loss", "cls", "ca", "fc"}`` with ``loss = L_cls +
    ca_weight L_ca + fc_weight L_fc`` (InCA Eq. 6-7; a weight of 0 skips its loss)."""

    def step(model: INCANet, batch: dict) -> dict[str, Tensor]:
        output = model(batch["image"])
        cls = F.cross_entropy(output["logits"], batch["label"])
        out = {"cls": cls.detach()}
        loss = cls
        if config.ca_weight or config.fc_weight:
            extra = inca_losses(output["attended"], model.embeddings,
                                gamma_fg=config.gamma_fg, gamma_bg=config.gamma_bg,
                                margin=config.margin, map_norm=config.map_norm,
                                fc_reduction=config.fc_reduction)
            loss = loss + config.ca_weight * extra["ca"] + config.fc_weight * extra["fc"]
            out.update(ca=extra["ca"].detach(), fc=extra["fc"].detach())
        return {"loss": loss, **out}

    return step


score_maps = cam.score_maps
"""CAM of the ground-truth class of the vanilla network, upsampled and normalized."""
probe_maps = cam.probe_maps
"""Raw CAMs ``[B, h, w]`` recorded after every epoch."""

METHOD = runs.Method(build_model=build_model, make_step=make_step, score_maps=score_maps,
                     probe_maps=probe_maps)
"""ADL and InCA (and every ablation) for the shared runner :func:`coloc.runs.run`."""


def run(config: INCAConfig, output_dir: str | Path | None = None, *, force: bool = False
        ) -> Run:
    """Train-or-load the run of ``config`` (:func:`coloc.runs.run` with :data:`METHOD`)."""
    return runs.run(METHOD, config, output_dir, force=force)


def find_run(config: INCAConfig, output_dir: str | Path | None = None) -> Run | None:
    """The recorded run of ``config``, or None (never trains)."""
    return runs.find_run(METHOD, config, output_dir)


def run_seeds(configs: dict[str, Any], seeds: int, output_dir: str | Path | None = None
              ) -> dict[str, list[Run]]:
    """Each labelled configuration on ``seeds`` consecutive seeds from its own: a
    :class:`INCAConfig` through :func:`run`, a :class:`coloc.cam.CAMConfig` through
    :func:`coloc.cam.run` (the shared CAM runs)."""
    out = {}
    for label, config in configs.items():
        train = run if isinstance(config, INCAConfig) else cam.run
        out[label] = [train(config.replace(seed=config.seed + s), output_dir)
                      for s in range(seeds)]
    return out


# ----------------------------------------------------------------------------- metrics


@torch.no_grad()
def split_metrics(result: Run, split: str = "val") -> dict[str, float]:
    """A run's metrics on ``split`` (val: every image of it; test: the runner's test
    evaluation, on ``config.test_samples`` images): ``maxboxacc@0.3/0.5/0.7``,
    ``maxboxacc`` (MaxBoxAccV2 mean), ``gt_known`` (CorLoc@0.5 of the GT-class map),
    ``top1_loc`` (GT-known and the top-1 class right) and ``top1_cls`` (PROTOCOL.md),
    in percent. Cached in the run's folder (``metrics-<split>.json``)."""
    path = result.directory / f"metrics-{split}.json"
    if path.is_file():
        return json.loads(path.read_text())
    model = result.model()
    if split == "test":  # the runner's one test evaluation (config.test_samples images)
        config, evaluation = result.config, result.test
        dataset = runs.dataset_split(config, split)
    else:
        config = result.config.replace(**{f"{split}_samples": None})
        dataset = runs.dataset_split(config, split)
        evaluation = evaluate(result.method.score_maps, model, dataset,
                              batch_size=config.batch_size,
                              threshold=config.corloc_threshold, rule=config.corloc_rule,
                              desc=split)
    correct = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=100, shuffle=False,
                                         collate_fn=collate_samples)
    for batch in loader:
        correct.append((model(batch["image"])["logits"].argmax(1) == batch["label"]).numpy())
    right = np.concatenate(correct)[evaluation.indices] if len(dataset) else np.zeros(0)
    hit = evaluation.ious >= 0.5
    metrics = {f"maxboxacc@{k}": v for k, v in evaluation.max_box_acc_v2.items()
               if k != "mean"}
    metrics.update(maxboxacc=evaluation.max_box_acc_v2["mean"],
                   gt_known=100 * float(hit.mean()), top1_loc=100 * float((hit & right).mean()),
                   top1_cls=100 * float(right.mean()))
    metrics = {k: round(float(v), 4) for k, v in metrics.items()}
    atomic_write_bytes(path, json.dumps(metrics).encode())
    return metrics


# ----------------------------------------------------------------------------- figures


@torch.no_grad()
def explain(model: INCANet, batch: dict, config: INCAConfig) -> dict[str, Any]:
    """The tensors of InCA Figures 2-4 for ``batch`` (CPU, eval mode: BatchNorm frozen,
    no random draw): per position (earliest first, ``positions`` labels) the block's
    input feature norm ``F`` (channel mean), attention ``A`` (normalized by
    ``config.map_norm``), importance map ``sigmoid(A)`` of the raw map, ADL's drop mask,
    M_dfg (Eq. 1), M_fg and M_bg (Eq. 2); and the CAM ``cam`` and ``logits``."""
    model.eval()
    inputs: list[Tensor] = []
    handles = [block.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
               for block in model.blocks]
    try:
        output = model(batch["image"])
    finally:
        for handle in handles:
            handle.remove()
    per_position = []
    for label, block, x in zip(model.position_labels, model.blocks, inputs, strict=True):
        raw = block.attention(x)
        norm = normalize_map(raw, config.map_norm)
        masks = region_masks(norm, config.gamma_fg, config.gamma_bg)
        per_position.append({
            "label": label, "F": x.mean(1), "A": norm, "importance": torch.sigmoid(raw),
            "adl_drop": adl_drop_mask(norm, config.gamma_fg).float(),
            "dfg": masks["dfg"], "fg": masks["fg"], "bg": masks["bg"],
        })
    return {"positions": per_position,
            "cam": model.cam(output["features"], batch["label"]), "logits": output["logits"],
            "image": batch["image"]}


def first_batch(config: INCAConfig, split: str, n: int) -> dict:
    """The first ``n`` images of ``split`` as a batch (CPU)."""
    dataset = runs.dataset_split(config, split)
    return to_device(collate_samples([dataset[i] for i in range(n)]), "cpu")
