"""A tiny data-parallel training run, the program of the torchrun tests.

``torchrun --standalone --nproc_per_node 2 tests/torchrun_fit.py OUT`` trains a small
model without BatchNorm on :class:`tests.test_train.TinySet` for 3 epochs (global batch
4) with :func:`coloc.train.fit`, checkpointing to ``OUT/run``, and rank 0 saves the
final weights and step losses to ``OUT/final.pt``. With ``COLOC_TEST_KILL_AT=N``, rank 0
kills itself (SIGKILL) at its N-th training step, as a crash or a pre-empted job would.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

from coloc import distributed
from coloc.train import History, TrainConfig, fit
from tests.test_train import TinySet

CONFIG = TrainConfig(epochs=3, batch_size=4, lr=0.1, seed=3)
SIZE = 12  # 3 global steps per epoch


def plain_model() -> nn.Module:
    """Conv, ReLU, pooling, linear: no BatchNorm and no dropout, so N processes x b and
    one process x Nb compute the same gradient (up to float summation order)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 2))


def train(out: Path, kill_at: int | None = None) -> tuple[nn.Module, History]:
    """The run; every rank calls it. Returns the trained model and its history."""
    calls = {"n": 0}

    def step(model: nn.Module, batch: dict) -> dict:
        calls["n"] += 1
        if kill_at is not None and calls["n"] == kill_at and distributed.is_main():
            os.kill(os.getpid(), signal.SIGKILL)
        loss = nn.functional.cross_entropy(model(batch["image"]), batch["label"])
        return {"loss": loss}

    model = plain_model()
    history = fit(model, TinySet(SIZE), step, CONFIG, out / "run")
    if distributed.is_main():
        torch.save({"state": model.state_dict(), "losses": history.step_losses},
                   out / "final.pt")
    return model, history


if __name__ == "__main__":
    distributed.setup(torch.device("cpu"))
    kill = os.environ.get("COLOC_TEST_KILL_AT")
    train(Path(sys.argv[1]), int(kill) if kill else None)
