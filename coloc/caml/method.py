"""CAML's method: the pretext network, its training step, its maps, and runs of it.

- :func:`build_model` and :func:`make_step`: the pretext network (PTAP or CAAM pooling)
  and the training step of the baseline (``L_cls`` on the transformed view, CAML Eq. 6)
  or of CAML (``L_cls + L_caml``, Eq. 5), with the ablation switches of Tables 3-7.
- :func:`attention_maps` / :func:`score_maps`: the evaluation map (Sec. 3.3
  "Inference"): the attention map of the untransformed image, bicubic-upsampled to the
  input and min-max normalized (the score-map contract of :mod:`coloc.maps`).
- :data:`METHOD`, :func:`run`, :func:`find_run`: CAML through the shared runner
  (:mod:`coloc.runs`): runs live in ``<output_dir>/caml/<dataset>/<name>-<hash>/``. Rows
  of different tables that are the same configuration (Table 3 "Ours" = Table 5/6
  "Ours" = Table 7 rotation) hit one run.
- :func:`explain` and :func:`triplet_distances`: the tensors of CAML Figures 1 and 3.

The configuration is :mod:`coloc.caml.config`; the loss :mod:`coloc.caml.losses`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coloc import runs
from coloc.caml.config import CAMLConfig
from coloc.caml.losses import CAMLLoss, background_mask, map_distance
from coloc.caml.model import PretextNet
from coloc.caml.pretext import PretextTransform, build_transform
from coloc.caml.ptap import CAAM, PTAP, channel_average, normalize_attention
from coloc.maps import upsample_maps
from coloc.runs import Run


def build_model(config: CAMLConfig, output_dir: str | Path | None = None) -> PretextNet:
    """The pretext network of ``config``: backbone, PTAP or CAAM pooling, one head per
    pretext component (CAML Sec. 3.1 and 3.3).

    ``pretrained=True`` loads ImageNet weights for the paper's backbones and, on the
    synthetic benchmark, the synthetic-family stand-in (:mod:`coloc.pretrain`, trained
    once and cached under ``output_dir``). A ``weights_path`` wins over both.
    """
    backbone = runs.backbone(config, output_dir)
    if config.pooling == "ptap":
        pooling: nn.Module = PTAP(
            backbone.out_channels, config.topk_ratio, largest=config.topk_largest,
            selection=config.selection, eca_kernel_size=config.eca_kernel_size,
        )
    else:
        pooling = CAAM()
    return PretextNet(backbone, build_transform(config.pretext).heads, pooling)


def make_step(config: CAMLConfig, transform: PretextTransform | None = None
              ) -> Callable[[nn.Module, dict], dict[str, Tensor]]:
    """The training step ``step(model, batch) -> {"loss", "cls"?, "caml"?, ...}``.

    Each image gets one pretext label drawn uniformly (identity included, as PsyNet
    does) from torch's global generator, which :func:`coloc.train.fit` reseeds per epoch.

    - Baseline and "- L_caml": only the transformed view is forwarded; ``L_cls`` (Eq. 6)
      on its logits.
    - With ``L_caml`` (Eq. 3-5): the original and transformed views go through the
      network as one batch (so BatchNorm sees both views; the paper is silent) and
      :class:`coloc.caml.losses.CAMLLoss` combines ``L_cls`` (transformed view) and
      ``L_caml``; the step also reports ``hinge_active`` (the share of triplets whose
      hinge is open, i.e. that send a gradient), ``d_pos`` and ``d_neg``.
    """
    transform = transform or build_transform(config.pretext)
    loss = CAMLLoss(
        transform, cls_weight=float(config.use_cls), caml_weight=float(config.use_caml),
        theta_bg=config.theta_bg, margin=config.margin, pairs=config.pairs,
        embedding=config.embedding, headroom=config.headroom, distance=config.distance,
        peak_gradient=config.peak_gradient, stats=True,
    )

    def step(model: nn.Module, batch: dict) -> dict[str, Tensor]:
        images = batch["image"]
        labels = transform.sample_labels(len(images))
        transformed = transform.apply(images, labels.to(images.device))
        if not config.use_caml:
            trans = model(transformed)
            return loss(trans, trans, labels)
        both = model(torch.cat([images, transformed]))
        ori, trans = _split_output(both, len(images))
        return loss(ori, trans, labels)

    return step


def _split_output(output: Mapping[str, Any], n: int) -> tuple[dict, dict]:
    first, second = {}, {}
    for key, value in output.items():
        if isinstance(value, Mapping):
            first[key] = {k: v[:n] for k, v in value.items()}
            second[key] = {k: v[n:] for k, v in value.items()}
        else:
            first[key], second[key] = value[:n], value[n:]
    return first, second


@torch.no_grad()
def attention_maps(model: PretextNet, images: Tensor, test_pooling: str | None = None,
                   raw: bool = False) -> Tensor:
    """CAML Sec. 3.3 "Inference": attention maps of the untransformed ``images``.

    ``images`` ``[B, 3, H, W]`` (ImageNet-normalized, on the model's device) ->
    ``[B, H, W]`` in [0, 1] (:func:`upsample_maps`), or the feature-resolution maps
    ``[B, h, w]`` as pooled (``raw=True``). ``test_pooling="average"`` replaces the trained
    pooling by the channel mean of the backbone's features at test time (CAML supplement
    Table 1, "PTAP at test" unticked). The model is put in eval mode.
    """
    if test_pooling not in (None, "average"):
        raise ValueError(f"test_pooling must be None or 'average', got {test_pooling!r}")
    model.eval()
    output = model(images)
    maps = channel_average(output["features"]) if test_pooling else output["attention"]
    return maps.float() if raw else upsample_maps(maps, images.shape[-2:])


def score_maps(model: PretextNet, batch: dict, test_pooling: str | None = None) -> Tensor:
    """CAML's score maps (:mod:`coloc.maps` contract): :func:`attention_maps` of
    ``batch["image"]``; ``functools.partial(score_maps, test_pooling="average")`` scores
    the channel mean instead (supplement Table 1)."""
    return attention_maps(model, batch["image"], test_pooling)


def probe_maps(model: PretextNet, batch: dict) -> Tensor:
    """The raw attention maps ``[B, h, w]`` recorded after every epoch (CAML Figure 5b)."""
    return attention_maps(model, batch["image"], raw=True)


METHOD = runs.Method(build_model=build_model, make_step=make_step, score_maps=score_maps,
                     probe_maps=probe_maps)
"""CAML (and its baseline) for the shared runner :func:`coloc.runs.run`."""


def run(config: CAMLConfig, output_dir: str | Path | None = None, *, force: bool = False
        ) -> Run:
    """Train-or-load the run of ``config`` (:func:`coloc.runs.run` with :data:`METHOD`):
    recorded under ``<output_dir>/caml/<dataset>/``, evaluated once on test."""
    return runs.run(METHOD, config, output_dir, force=force)


def find_run(config: CAMLConfig, output_dir: str | Path | None = None) -> Run | None:
    """The recorded run of ``config`` under ``output_dir``, or None (never trains)."""
    return runs.find_run(METHOD, config, output_dir)


def run_seeds(config: CAMLConfig, seeds: int, output_dir: str | Path | None = None, *,
              force: bool = False) -> dict[str, list[Run]]:
    """The baseline and CAML of ``config`` on ``seeds`` consecutive seeds from
    ``config.seed`` (trained once, then loaded): ``{"Baseline": [...], "CAML": [...]}``,
    the spread that sets a chapter's resolution (:func:`coloc.report.seed_resolution`)."""
    return {label: [run(variant.replace(seed=config.seed + s), output_dir, force=force)
                    for s in range(seeds)]
            for label, variant in (("Baseline", config.baseline()), ("CAML", config))}


average_pooling_maps = partial(score_maps, test_pooling="average")
"""Score maps of the channel mean of the features (supplement Table 1, "PTAP at test"
unticked)."""


# ----------------------------------------------------------------------------- figures


@torch.no_grad()
def explain(model: PretextNet, images: Tensor, labels: Tensor, config: CAMLConfig
            ) -> dict[str, Tensor]:
    """The tensors of CAML Figures 1 and 3 for ``images`` ``[B, 3, H, W]`` and pretext
    ``labels`` ``[B]``, all on the CPU.

    Returns ``image``, ``transformed`` (``T(x)``), the normalized attention maps at
    feature resolution as the loss sees them (:func:`coloc.caml.ptap.normalize_attention`):
    ``A_ori``, ``A_trans``, ``A_trans2ori`` (``T^-1(A_trans)``), ``A_ori2trans``
    (``T(A_ori)``), the background masks ``M_bg_ori``, ``M_bg_trans`` (Eq. 3) and the
    negatives ``A_ori2bg``, ``A_trans2bg``; and ``valid`` (where ``T^-1`` recovers
    content).
    """
    transform = build_transform(config.pretext)
    model.eval()
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    transformed = transform.apply(images, labels)
    a_ori = normalize_attention(model(images)["attention"], config.headroom)
    a_trans = normalize_attention(model(transformed)["attention"], config.headroom)
    bg_ori, bg_trans = background_mask(a_ori, config.theta_bg), background_mask(
        a_trans, config.theta_bg)
    out = {
        "image": images, "transformed": transformed, "A_ori": a_ori, "A_trans": a_trans,
        "A_trans2ori": transform.invert(a_trans, labels), "A_ori2trans": transform.apply(
            a_ori, labels), "M_bg_ori": bg_ori, "M_bg_trans": bg_trans,
        "A_ori2bg": a_ori * bg_ori, "A_trans2bg": a_trans * bg_trans,
        "valid": transform.valid_mask(labels, tuple(a_ori.shape[-2:])),
    }
    return {k: v.cpu() for k, v in out.items()}


def triplet_distances(views: Mapping[str, Tensor], config: CAMLConfig
                      ) -> dict[str, dict[str, Tensor]]:
    """``d(anchor, positive)`` and ``d(anchor, negative)`` of both triplets of CAML Eq. 4,
    per image, for the output of :func:`explain` (``config.distance``; the original-frame
    triplet only where ``T^-1`` recovers content, as :func:`coloc.caml.losses.caml_loss`).
    Returns ``{"ori": {"d_pos", "d_neg"}, "trans": {...}}``, each ``[B]``."""
    valid = views["valid"].float()
    anchor = views["A_trans2ori"] * valid
    ori = {"d_pos": map_distance(anchor, views["A_ori"] * valid, config.distance),
           "d_neg": map_distance(anchor, views["A_ori2bg"] * valid, config.distance)}
    anchor = views["A_ori2trans"]
    trans = {"d_pos": map_distance(anchor, views["A_trans"], config.distance),
             "d_neg": map_distance(anchor, views["A_trans2bg"], config.distance)}
    return {"ori": ori, "trans": trans}

