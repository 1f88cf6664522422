"""The methods' own training steps under DistributedDataParallel (2 gloo processes).

ContraCAM's step calls ``model.loss``, InCA's reads ``model.embeddings`` and WeightMap's
calls ``model.frozen``: :func:`coloc.train.fit` runs the whole step as DDP's forward, so
those parameters get all-reduced gradients too. Two processes are spawned once for the
module (``spawn_two`` of :mod:`tests.test_distributed`, torch.multiprocessing + gloo);
each trains one step of every method on a global batch of 8 (4 per process), and this
process trains the same step with the whole batch.

- Without BatchNorm (every BN layer replaced by the identity; ContraCAM's random views
  replaced by the images themselves; InCA with ``drop_rate=0`` so no block drops), 2 x 4
  equals 1 x 8 to :data:`TOLERANCE`: parameters, and MoCo's queue (which holds both
  ranks' keys, in the order of the one-process batch).
- With the methods' BatchNorm (per-process statistics, which no 1 x 8 run reproduces)
  and ContraCAM's random views: both ranks end with the same parameters and the same
  MoCo queue, and every trainable parameter has the same gradient on both (all-reduced).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import coloc.contracam.method as contracam_method
from coloc import contracam, distributed, inca, weightmap
from coloc.contracam.method import TwoViews
from coloc.data.memory import synthetic_split
from coloc.train import TrainConfig, fit
from tests.test_distributed import spawn_two

IMAGES = 8  # one global batch: 2 processes x 4
CONFIG = TrainConfig(epochs=1, batch_size=IMAGES, lr=0.05, seed=2)
TOLERANCE = dict(rtol=1e-5, atol=1e-6)
"""2 x 4 against 1 x 8: the same gradient summed in another order (float32)."""
METHODS = ("moco", "byol", "inca", "weightmap")


class SameViews(TwoViews):
    """ContraCAM's views without their random augmentation: the images themselves."""

    def view(self, images: torch.Tensor) -> torch.Tensor:
        return images


def method(name: str):
    """The config and method module of one case (32 px, small CNN, from scratch)."""
    if name in ("moco", "byol"):
        return contracam_method, contracam.profile(
            "synthetic", ssl=name, image_size=32, batch_size=IMAGES, queue_size=16)
    if name == "inca":  # InCA proper: non-local attention, M_dfg, both extra losses
        return inca.method, inca.profile(
            "synthetic", pretrained=False, image_size=32, attention="nonlocal",
            drop_mask="dfg", ca_weight=1.0, fc_weight=1.0, drop_rate=0.0)
    return weightmap.method, weightmap.profile("synthetic", pretrained=False, image_size=32)


def without_bn(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm layer replaced by the identity."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(module, name, nn.Identity())
    return model


def train_one_step(name: str, out: Path, bn: bool) -> nn.Module:
    """One step of ``name`` on the global batch through :func:`coloc.train.fit`."""
    module, config = method(name)
    torch.manual_seed(0)
    model = module.build_model(config)
    if not bn:
        model = without_bn(model)
    model.initial = {k: v.detach().clone() for k, v in model.named_parameters()}
    data = synthetic_split("synthetic", "train", 32, IMAGES, 0)
    fit(model, data, module.make_step(config), CONFIG, out / f"{name}-{'bn' if bn else 'plain'}")
    return model


def trained(model: nn.Module) -> dict:
    """Parameters, buffers and gradients of a trained model (copies)."""
    return {"params": {k: v.detach().clone() for k, v in model.named_parameters()},
            "buffers": {k: v.clone() for k, v in model.named_buffers()},
            "grads": {k: v.grad.clone() for k, v in model.named_parameters()
                      if v.requires_grad and v.grad is not None},
            "trainable": sorted(k for k, v in model.named_parameters() if v.requires_grad),
            "initial": model.initial}


def _scenarios(rank: int, out: Path) -> None:
    saved: dict = {}
    for bn in (False, True):
        contracam_method.TwoViews = TwoViews if bn else SameViews  # read by make_step
        for name in METHODS:
            saved[(name, bn)] = distributed.gather(trained(train_one_step(name, out, bn)))

    # MoCo's forward alone, uneven shards (3 and 2 key views): the queue gets all five.
    module, config = method("moco")
    torch.manual_seed(0)
    moco = module.build_model(config).train()
    views = torch.randn(3 - rank, 3, 32, 32, generator=torch.Generator().manual_seed(rank))
    initial = moco.queue.clone()
    keys = moco(views, views)["k"]
    saved["queue"] = distributed.gather((keys, moco.queue.clone(), int(moco.queue_ptr),
                                         initial))
    if rank == 0:
        torch.save(saved, out / "methods.pt")
    distributed.barrier()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("methods")
    spawn_two(_scenarios, out)
    return torch.load(out / "methods.pt", weights_only=False)


@pytest.mark.parametrize("name", METHODS)
def test_two_processes_x_4_equal_one_process_x_8_without_bn(two_ranks, name, tmp_path,
                                                            monkeypatch):
    monkeypatch.setattr(contracam_method, "TwoViews", SameViews)
    single = trained(train_one_step(name, tmp_path, bn=False))
    ranks = two_ranks[(name, False)]
    for part in ("params", "buffers"):  # buffers: MoCo's queue and pointer
        assert ranks[0][part].keys() == single[part].keys()
        for key, value in single[part].items():
            torch.testing.assert_close(ranks[0][part][key], value, **TOLERANCE,
                                       msg=lambda m, key=key: f"{name} {key}: {m}")
            assert torch.equal(ranks[1][part][key], ranks[0][part][key])
    assert all(torch.equal(single["initial"][k], ranks[0]["initial"][k])
               for k in single["initial"])  # the same start
    moved = [k for k in single["trainable"]
             if not torch.equal(single["params"][k], single["initial"][k])]
    assert len(moved) > len(single["trainable"]) // 2  # not two untouched models


@pytest.mark.parametrize("name", METHODS)
def test_with_bn_the_ranks_stay_identical_and_every_parameter_gets_its_gradient(
        two_ranks, name):
    first, second = two_ranks[(name, True)]
    assert first["params"].keys() == second["params"].keys()
    for key, value in first["params"].items():
        assert torch.equal(second["params"][key], value), key
    assert sorted(first["grads"]) == first["trainable"]  # a gradient for each one
    for key, grad in first["grads"].items():
        assert torch.equal(second["grads"][key], grad), key  # all-reduced
    # InCA's embeddings are only read by the step (L_ca), outside model(images)
    learning = {"inca": "embeddings.", "weightmap": "g.", "moco": "encoder.",
                "byol": "predictor."}[name]
    assert any(grad.abs().sum() > 0 for key, grad in first["grads"].items()
               if key.startswith(learning))
    if name == "moco":
        assert torch.equal(first["buffers"]["queue"], second["buffers"]["queue"])


def test_moco_queue_holds_every_ranks_keys(two_ranks):
    (keys0, queue0, ptr0, initial), (keys1, queue1, ptr1, _) = two_ranks["queue"]
    assert (len(keys0), len(keys1)) == (3, 2)
    assert ptr0 == ptr1 == 5
    assert torch.equal(queue0, queue1)
    assert torch.equal(queue0[:5], torch.cat([keys0, keys1]))  # rank order
    assert torch.equal(queue0[5:], initial[5:])
    torch.testing.assert_close(keys0.norm(dim=1), torch.ones(3))
