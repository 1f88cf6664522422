"""WeightMap's method: f (trained first, then frozen), g, the training steps, the maps.

- f: Method I's classifier is the CAM classifier of :mod:`coloc.cam` (backbone, GAP, one
  FC layer, Sec. 3), loaded through :func:`coloc.cam.run`, so the CPU profile's f *is*
  the shared CAM baseline run; Method II's Siamese net (:class:`SiameseConfig`) is its
  own run of the shared runner, trained with Eq. 2 (:data:`SIAMESE`).
- :func:`build_model`: g (:class:`~coloc.weightmap.model.WeightGenerator`) over the frozen
  f (:class:`~coloc.weightmap.model.WeightMapNet`).
- :func:`make_step`: Eq. 1 (Method I) or Eq. 3 + Eq. 4 + lambda R (Method II).
- :func:`score_maps`: M = g(I) as it is, ``[B, H, W]`` in (0, 1). Not min-max normalized
  (the one exception to :mod:`coloc.maps`' contract): Eq. 5 thresholds M at max(M)/10
  of M itself, so a broad, low map stays broad, and PxAP (Tables 4-5) scores M.
- :data:`METHOD` with Eq. 6's S as a map score, so every epoch's mean S on val is
  recorded beside CorLoc and ``select="val:stopping_score"`` picks the epoch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from coloc import cam, runs
from coloc.maps import upsample_maps
from coloc.runs import Run
from coloc.train import StepFn
from coloc.weightmap.config import STOPPING, SiameseConfig, WeightMapConfig
from coloc.weightmap.losses import (
    inner_loss,
    method1_loss,
    outer_loss,
    regularizer,
    sample_triplets,
    triplet,
)
from coloc.weightmap.model import SiameseNet, WeightGenerator, WeightMapNet
from coloc.weightmap.stopping import stopping_score

# ----------------------------------------------------------------------------- Method II's f


def build_siamese(config: SiameseConfig, output_dir: str | Path | None = None) -> SiameseNet:
    """Method II's f: the run's backbone (pretrained as the CAM baseline's) and a linear
    projection of its GAP feature to ``embedding_dim``."""
    return SiameseNet(runs.backbone(config, output_dir), config.embedding_dim)


def make_siamese_step(config: SiameseConfig) -> StepFn:
    """Eq. 2 over in-batch triplets by class (:func:`sample_triplets`), margin 1."""

    def step(model: nn.Module, batch: dict) -> dict[str, Tensor]:
        embedding = model(batch["image"])["embedding"]
        a, p, n = (i.to(embedding.device) for i in sample_triplets(batch["label"]))
        return {"loss": triplet(embedding[a], embedding[p], embedding[n], config.margin)}

    return step


@torch.no_grad()
def siamese_probe_maps(model: SiameseNet, batch: dict) -> Tensor:
    """The channel mean of f's features ``[B, h, w]``: what the runner records and
    evaluates for the Siamese run (a by-product, in no table)."""
    model.eval()
    return model(batch["image"])["features"].mean(dim=1).float()


def siamese_score_maps(model: SiameseNet, batch: dict) -> Tensor:
    return upsample_maps(siamese_probe_maps(model, batch), batch["image"].shape[-2:])


SIAMESE = runs.Method(build_model=build_siamese, make_step=make_siamese_step,
                      score_maps=siamese_score_maps, probe_maps=siamese_probe_maps)
"""Method II's f for the shared runner (results under ``weightmap/<dataset>/siamese-*``)."""


def f_run(config: WeightMapConfig, output_dir: str | Path | None = None) -> Run:
    """Train-or-load f of ``config``: the CAM classifier run (Method I) or the Siamese run
    (Method II)."""
    f_config = config.f_config()
    if isinstance(f_config, SiameseConfig):
        return runs.run(SIAMESE, f_config, output_dir)
    return cam.run(f_config, output_dir)


# ----------------------------------------------------------------------------- g


def build_model(config: WeightMapConfig, output_dir: str | Path | None = None
                ) -> WeightMapNet:
    """g over the frozen f. With ``pretrained=True`` (the profiles) f is the trained f run
    (trained first if not recorded) and g's ResNet18 encoder has ImageNet weights;
    ``pretrained=False`` builds the architecture only (what :meth:`Run.model` loads a
    checkpoint into)."""
    f_config = config.f_config()
    if config.pretrained:
        f = f_run(config, output_dir).model()
    elif isinstance(f_config, SiameseConfig):
        f = build_siamese(f_config.replace(pretrained=False, weights_path=None))
    else:
        f = cam.build_model(f_config.replace(pretrained=False, weights_path=None))
    g = WeightGenerator(config.encoder, pretrained=config.pretrained)  # ResNet18: ImageNet
    return WeightMapNet(g, f)


def make_step(config: WeightMapConfig) -> StepFn:
    """The training step of g (f frozen).

    Method I (Eq. 1): ``CE(f(I), f(I ⊙ M)) + lambda R(M)``, ``M = g(I)``.
    Method II (Eq. 3-4): ``L_inner + L_outer + lambda R(M)`` with ``J^f = M ⊙ I`` and
    ``J^b = (1 - M) ⊙ I``; the anchor's ``R(M_a)`` over every image of the batch (each is
    an anchor). ``use_reg``/``use_inner``/``use_outer`` drop terms (Table 6, Figure 8).
    Logged: every term, and ``coverage`` (the mean weight of M, R's value).
    """
    reg_weight = config.reg_weight if config.use_reg else 0.0

    def step_one(model: WeightMapNet, batch: dict) -> dict[str, Tensor]:
        images = batch["image"]
        maps = model(images)
        with torch.no_grad():
            original = model.frozen(images)
        losses = method1_loss(original, model.frozen(images * maps[:, None]), maps,
                              reg_weight)
        return {**losses, "coverage": losses["reg"].detach()}

    def step_two(model: WeightMapNet, batch: dict) -> dict[str, Tensor]:
        images = batch["image"]
        maps = model(images)[:, None]
        with torch.no_grad():
            whole = model.frozen(images)
        foreground = model.frozen(maps * images)
        losses = {"reg": regularizer(maps[:, 0])}
        if config.use_inner:
            losses["inner"] = inner_loss(whole, foreground, model.frozen((1 - maps) * images),
                                         config.margin)
        if config.use_outer:
            losses["outer"] = outer_loss(foreground, batch["label"], config.margin)
        loss = reg_weight * losses["reg"] + sum(v for k, v in losses.items() if k != "reg")
        return {"loss": loss, **losses, "coverage": losses["reg"].detach()}

    return step_one if config.method == "I" else step_two


@torch.no_grad()
def score_maps(model: WeightMapNet, batch: dict) -> Tensor:
    """M = g(I) ``[B, H, W]`` in (0, 1), not renormalized (module docstring)."""
    model.eval()
    return model(batch["image"]).float()


probe_maps = score_maps
"""The probe maps recorded after every epoch are M itself (Figures 1 and 4)."""

METHOD = runs.Method(build_model=build_model, make_step=make_step, score_maps=score_maps,
                     probe_maps=probe_maps, map_scores={STOPPING: stopping_score})
"""WeightMap for the shared runner, with Eq. 6 recorded on val after every epoch."""


def run(config: WeightMapConfig, output_dir: str | Path | None = None, *,
        force: bool = False) -> Run:
    """Train-or-load g of ``config`` (f first, if not recorded), evaluated once on test
    at the epoch ``config.select`` picks on val (S by default)."""
    return runs.run(METHOD, config, output_dir, force=force)


def find_run(config: WeightMapConfig, output_dir: str | Path | None = None) -> Run | None:
    """The recorded run of ``config`` under ``output_dir``, or None (never trains)."""
    return runs.find_run(METHOD, config, output_dir)


@torch.no_grad()
def classify(f: nn.Module, batch: dict) -> Tensor:
    """Predicted classes ``[B]`` of the classifier f (top-1 loc and top-1 cls)."""
    f.eval()
    return f(batch["image"])["logits"].argmax(dim=1)
