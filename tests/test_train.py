"""Tests for the shared training loop: resume, non-finite loss, selection."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from coloc.train import History, NonFiniteLossError, TrainConfig, fit


class TinySet(Dataset):
    """Eight 8x8 images in two classes, in the Sample format."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        label = index % 2
        image = torch.randn(3, 8, 8, generator=generator) + label
        return {"image": image, "label": label, "family": "toy", "boxes": torch.zeros(0, 4),
                "mask": torch.zeros(8, 8, dtype=torch.uint8),
                "part_mask": torch.zeros(8, 8, dtype=torch.bool), "index": index}


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def cross_entropy(model: nn.Module, batch: dict) -> dict:
    loss = nn.functional.cross_entropy(model(batch["image"]), batch["label"])
    return {"loss": loss, "cls": loss}


CONFIG = TrainConfig(epochs=3, batch_size=4, lr=0.1, seed=1)


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path):
    straight = tiny_model()
    history = fit(straight, TinySet(), cross_entropy, CONFIG, tmp_path / "straight")

    calls = {"n": 0}

    def interrupted_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # the first step of epoch 3 (2 steps per epoch)
            raise KeyboardInterrupt
        return cross_entropy(model, batch)

    resumed = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        fit(resumed, TinySet(), interrupted_step, CONFIG, tmp_path / "resumed")
    resumed = tiny_model()  # a fresh process: weights come from the checkpoint
    resumed_history = fit(resumed, TinySet(), cross_entropy, CONFIG, tmp_path / "resumed")

    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert resumed_history.epoch_losses == history.epoch_losses
    assert len(history.step_losses["loss"]) == 6


def test_rerun_of_a_finished_run_trains_nothing(tmp_path):
    fit(tiny_model(), TinySet(), cross_entropy, CONFIG, tmp_path)

    def must_not_run(model, batch):
        raise AssertionError("a finished run was trained again")

    model = tiny_model()
    history = fit(model, TinySet(), must_not_run, CONFIG, tmp_path)
    assert len(history.epoch_losses["loss"]) == 3


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    fit(tiny_model(), TinySet(), cross_entropy, CONFIG, tmp_path)
    other = TrainConfig(epochs=3, batch_size=4, lr=0.2, seed=1)
    with pytest.raises(ValueError, match="another configuration"):
        fit(tiny_model(), TinySet(), cross_entropy, other, tmp_path)


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    calls = {"n": 0}

    def exploding(model, batch):
        calls["n"] += 1
        losses = cross_entropy(model, batch)
        if calls["n"] == 3:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    with pytest.raises(NonFiniteLossError, match="epoch 2.*after epoch 1"):
        fit(tiny_model(), TinySet(), exploding, CONFIG, tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0


def test_validation_selection_keeps_the_best_epoch(tmp_path):
    scores = iter([0.2, 0.9, 0.1])
    config = TrainConfig(epochs=3, batch_size=4, lr=0.1, seed=1, select="val:acc")
    snapshots = []
    model = tiny_model()
    history = fit(model, TinySet(), cross_entropy, config, tmp_path,
                  evaluate=lambda m: {"acc": next(scores)},
                  on_epoch_end=lambda m, e: snapshots.append(
                      {k: v.clone() for k, v in m.state_dict().items()}))
    assert isinstance(history, History) and history.selected_epoch == 1
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[1][name])


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="test:acc")
    with pytest.raises(ValueError, match="evaluate"):
        fit(tiny_model(), TinySet(), cross_entropy, TrainConfig(select="val:acc"), "unused")
