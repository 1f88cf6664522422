"""Tests for the shared training loop: resume, non-finite loss, selection."""

import math
from dataclasses import asdict, replace

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import Dataset

from coloc.runtime import config_hash
from coloc.train import History, NonFiniteLossError, TrainConfig, _identity, fit


class TinySet(Dataset):
    """``size`` (8) 8x8 images in two classes, in the Sample format; images carry 0 or 1
    boxes, so only the package's collate (boxes as a list) can batch them."""

    def __init__(self, size: int = 8) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        label = index % 2
        image = torch.randn(3, 8, 8, generator=generator) + label
        boxes = torch.zeros(index % 2, 4)
        return {"image": image, "label": label, "family": "toy", "boxes": boxes,
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
    assert history.selected_epoch == resumed_history.selected_epoch == 2  # select="last"
    for name in ("loss", "cls"):  # an epoch's loss is the mean of its two steps
        steps = history.step_losses[name]
        assert history.epoch_losses[name] == pytest.approx(
            [(steps[2 * e] + steps[2 * e + 1]) / 2 for e in range(3)], rel=1e-12)


class StepRecorder:
    """Records the learning rate of every SGD step (a global optimizer pre-step hook) and
    the optimizer itself, so a test can read its final ``param_groups``."""

    def __enter__(self):
        self.lrs, self.optimizer = [], None
        self._handle = register_optimizer_step_pre_hook(self._record)
        return self

    def _record(self, optimizer, args, kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])
        self.optimizer = optimizer

    def __exit__(self, *exc):
        self._handle.remove()


# Four epochs of two steps; lr 0.1, x0.5 after epochs 1 and 3 (milestones count the
# scheduler steps, one per epoch); validation peaks at the first epoch, before the
# interruption below, so the selected model must come back from the checkpoint.
SCHEDULED = TrainConfig(epochs=4, batch_size=4, lr=0.1, seed=1, milestones=(1, 3), gamma=0.5,
                        select="val:acc")
VAL_SCORES = [0.9, 0.2, 0.1, 0.5]
LR_PER_STEP = [0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]


def scores_from(epoch: int):
    """The validation score of each epoch from ``epoch`` on, one per call."""
    scores = iter(VAL_SCORES[epoch:])
    return lambda model: {"acc": next(scores)}


def test_resume_keeps_the_schedule_and_the_selected_epoch(tmp_path):
    straight = tiny_model()
    with StepRecorder() as recorded:
        history = fit(straight, TinySet(), cross_entropy, SCHEDULED, tmp_path / "straight",
                      evaluate=scores_from(0))
    assert recorded.lrs == pytest.approx(LR_PER_STEP, rel=1e-12)
    assert recorded.optimizer.param_groups[0]["lr"] == pytest.approx(0.025, rel=1e-12)
    assert history.selected_epoch == 0

    calls = {"n": 0}

    def interrupted_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:  # the first step of epoch 2 (index 1): after one milestone
            raise KeyboardInterrupt
        return cross_entropy(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), TinySet(), interrupted_step, SCHEDULED, tmp_path / "resumed",
            evaluate=scores_from(0))
    resumed = tiny_model()  # a fresh process: weights, schedule and best come from disk
    with StepRecorder() as recorded:
        resumed_history = fit(resumed, TinySet(), cross_entropy, SCHEDULED,
                              tmp_path / "resumed", evaluate=scores_from(1))
    assert recorded.lrs == pytest.approx(LR_PER_STEP[2:], rel=1e-12)
    assert recorded.optimizer.param_groups[0]["lr"] == pytest.approx(0.025, rel=1e-12)
    assert resumed_history.selected_epoch == 0
    assert resumed_history.val_metrics == [{"acc": v} for v in VAL_SCORES]
    assert resumed_history.step_losses == history.step_losses
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_cosine_schedule_per_epoch_and_resume(tmp_path):
    """lr * (1 + cos(pi e / E)) / 2 at epoch e (MoCo's schedule), milestones unused; a
    resumed run continues the curve; the step schedule's checkpoint hash is unchanged."""
    cosine = TrainConfig(epochs=4, batch_size=4, lr=0.1, seed=1, schedule="cosine",
                         milestones=(1,), gamma=0.5)
    expected = [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4) for _ in (0, 1)]
    with StepRecorder() as recorded:
        fit(tiny_model(), TinySet(), cross_entropy, cosine, tmp_path / "straight")
    assert recorded.lrs == pytest.approx(expected, rel=1e-12)

    calls = {"n": 0}

    def interrupted_step(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return cross_entropy(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), TinySet(), interrupted_step, cosine, tmp_path / "resumed")
    with StepRecorder() as recorded:
        fit(tiny_model(), TinySet(), cross_entropy, cosine, tmp_path / "resumed")
    assert recorded.lrs == pytest.approx(expected[4:], rel=1e-12)
    with pytest.raises(ValueError, match="another configuration"):  # not the step schedule's
        fit(tiny_model(), TinySet(), cross_entropy, replace(cosine, schedule="step"),
            tmp_path / "resumed")
    with pytest.raises(ValueError, match="schedule must be"):
        TrainConfig(schedule="linear")


def test_the_step_schedule_keeps_the_checkpoint_hash_of_configs_without_schedule():
    fields = asdict(CONFIG)
    del fields["schedule"]
    assert _identity(CONFIG) == config_hash(fields)


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

    def inf_at_once(model, batch):
        return {"loss": cross_entropy(model, batch)["loss"] * float("inf")}

    with pytest.raises(NonFiniteLossError, match=r"loss became inf in epoch 1; training stopped "
                       r"and no epoch had completed, so no checkpoint exists\. Lower lr \(now "
                       r"0\.1\) or check the inputs\.$"):
        fit(tiny_model(), TinySet(), inf_at_once, CONFIG, tmp_path / "first")
    assert not (tmp_path / "first" / "checkpoint.pt").exists()


def test_validation_selection_keeps_the_best_epoch(tmp_path):
    scores = iter([0.2, 0.9, 0.9])  # a tie keeps the earlier epoch
    config = TrainConfig(epochs=3, batch_size=4, lr=0.1, seed=1, select="val:acc")
    snapshots, epochs = [], []
    model = tiny_model()

    def evaluate(m):
        assert m is model and not m.training and not torch.is_grad_enabled()
        return {"acc": next(scores)}

    def on_epoch_end(m, epoch):
        assert m is model
        epochs.append(epoch)
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})

    history = fit(model, TinySet(), cross_entropy, config, tmp_path, evaluate=evaluate,
                  on_epoch_end=on_epoch_end)
    assert epochs == [0, 1, 2] and history.val_metrics == [{"acc": s} for s in (0.2, 0.9, 0.9)]
    assert isinstance(history, History) and history.selected_epoch == 1
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[1][name])


def test_sgd_step_by_hand_with_momentum_and_weight_decay(tmp_path):
    # loss = 1 * w (gradient 1), w0 = 1, lr 0.1, momentum 0.9, weight decay 0.01 (torch's
    # SGD: d = g + wd * w; buf = d, then mu * buf + d; w -= lr * buf):
    # step 1: d = 1.01, buf = 1.01, w = 0.899; step 2: d = 1.00899, buf = 1.91799,
    # w = 0.707201. Only ``params`` move: the second weight has a gradient but is not trained.
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    trained = nn.Parameter(model.weight[:, :1].detach().clone())

    def linear(m, batch):
        return {"loss": (trained * 1.0).sum() + m.weight.sum()}

    config = TrainConfig(epochs=1, batch_size=4, lr=0.1, momentum=0.9, weight_decay=0.01)
    fit(model, TinySet(), linear, config, tmp_path, params=[trained])
    assert trained.item() == pytest.approx(0.707201, abs=1e-6)
    assert model.weight.tolist() == [[1.0, 1.0]]
    assert not model.training  # handed back in eval mode


def test_a_parameter_without_a_gradient_in_a_step_is_left_alone(tmp_path):
    # p is used in the first step only. Its gradient is cleared to None (not zero), so SGD
    # skips it in step 2: no weight decay, no momentum (step 1 as above: 0.899)
    p = nn.Parameter(torch.ones(1))
    calls = {"n": 0}

    def first_step_only(model, batch):
        calls["n"] += 1
        loss = model(batch["image"]).sum() * 0
        return {"loss": loss + p.sum() if calls["n"] == 1 else loss}

    config = TrainConfig(epochs=1, batch_size=4, lr=0.1, momentum=0.9, weight_decay=0.01)
    model = tiny_model()
    fit(model, TinySet(), first_step_only, config, tmp_path, params=[p, *model.parameters()])
    assert calls["n"] == 2 and p.item() == pytest.approx(0.899, abs=1e-7)


def test_each_epoch_shuffles_with_its_own_seed(tmp_path):
    runs = []

    def order_of(seed):
        order = []
        runs.append(seed)

        def record(model, batch):
            order.append(batch["index"].tolist())
            return cross_entropy(model, batch)

        config = TrainConfig(epochs=2, batch_size=4, lr=0.1, seed=seed)
        fit(tiny_model(), TinySet(), record, config, tmp_path / str(len(runs)))
        return [order[0] + order[1], order[2] + order[3]]  # per epoch

    first, second = order_of(1)
    assert sorted(first) == sorted(second) == list(range(8))  # each epoch sees all images
    assert first != list(range(8)) and first != second  # shuffled, differently per epoch
    assert order_of(1) == [first, second]
    assert order_of(2) != [first, second]


def test_global_random_streams_are_reseeded_per_epoch(tmp_path):
    import random

    import numpy as np

    draws = []

    def record(model, batch):
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))  # noqa: NPY002
        return cross_entropy(model, batch)

    # epoch e seeds Python, NumPy (modulo 2**32) and torch with seed * 100003 + e; this
    # seed puts NumPy's past 2**32. The shuffling generator is separate, so the first
    # draws of an epoch are the step's.
    seed = 42950
    fit(tiny_model(), TinySet(), record, TrainConfig(epochs=2, batch_size=8, seed=seed),
        tmp_path)
    epoch_seed = seed * 100003 + 1
    assert epoch_seed > 2**32
    random.seed(epoch_seed)
    np.random.seed(epoch_seed % 2**32)  # noqa: NPY002
    torch.manual_seed(epoch_seed)
    assert draws[1] == (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002


@pytest.mark.parametrize(("size", "steps"), [(10, 2), (3, 1), (4, 1)])
def test_a_partial_last_batch_is_dropped_unless_it_is_the_only_one(tmp_path, size, steps):
    history = fit(tiny_model(), TinySet(size), cross_entropy,
                  TrainConfig(epochs=1, batch_size=4), tmp_path)
    assert len(history.step_losses["loss"]) == steps


class RecordingBar:
    """A stand-in for the progress bar: records its settings, steps and postfixes."""

    def __init__(self, iterable=None, **kwargs):
        self.iterable, self.kwargs, self.postfixes, self.steps = iterable, kwargs, [], 0
        self.closed = False

    def set_postfix(self, refresh=True, **values):
        self.postfixes.append(values)

    def update(self, n=1):
        self.steps += n

    def close(self):
        self.closed = True


def test_epoch_seconds_and_progress_bars(tmp_path, monkeypatch):
    import coloc.train

    clock = iter([1.0, 3.5, 10.0, 10.25])  # start and end of each epoch
    monkeypatch.setattr(coloc.train, "time", type("Clock", (), {
        "perf_counter": staticmethod(lambda: next(clock))}))
    bars = []

    def recording_progress(iterable=None, **kwargs):
        bars.append(RecordingBar(iterable, **kwargs))
        return bars[-1]

    monkeypatch.setattr(coloc.train, "progress", recording_progress)
    history = fit(tiny_model(), TinySet(), cross_entropy, TrainConfig(epochs=2, batch_size=4),
                  tmp_path)
    assert history.epoch_seconds == [2.5, 0.25]
    assert history.images_per_second == [8 / 2.5, 8 / 0.25]
    # The bar counts steps itself: it never opens a second iterator of the loader.
    assert [(bar.iterable, bar.kwargs, bar.steps, bar.closed) for bar in bars] == [
        (None, {"desc": "epoch 1/2", "leave": False, "total": 2}, 2, True),
        (None, {"desc": "epoch 2/2", "leave": False, "total": 2}, 2, True)]
    shown = [postfix for bar in bars for postfix in bar.postfixes]
    assert shown == [{"loss": f"{v:.3f}"} for v in history.step_losses["loss"]]


def test_a_cpu_run_warns_about_nothing_even_with_cuda_options(tmp_path):
    # amp and channels_last only act on CUDA: on the CPU the run is the plain one, and
    # torch has nothing to warn about (no autocast, GradScaler or pinned memory asked for)
    import warnings

    plain, amp = tiny_model(), tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(plain, TinySet(), cross_entropy, CONFIG, tmp_path / "plain")
        fit(amp, TinySet(), cross_entropy, TrainConfig(**{**CONFIG.__dict__, "amp": True,
                                                           "channels_last": True}),
            tmp_path / "amp")
    for name, tensor in plain.state_dict().items():
        assert torch.equal(tensor, amp.state_dict()[name]), name


def test_the_loader_gets_the_configured_workers(tmp_path, monkeypatch):
    import coloc.train

    seen, real = [], coloc.train.DataLoader

    def loader(*args, **kwargs):  # records the workers, runs in this process
        seen.append((kwargs["num_workers"], kwargs["persistent_workers"]))
        return real(*args, **{**kwargs, "num_workers": 0, "persistent_workers": False})

    monkeypatch.setattr(coloc.train, "DataLoader", loader)
    fit(tiny_model(), TinySet(), cross_entropy,
        TrainConfig(epochs=2, batch_size=4, num_workers=3), tmp_path)
    assert seen == [(3, True)]  # one loader whose workers live across the epochs


def test_persistent_workers_see_the_batches_of_the_main_process(tmp_path):
    def recorded(num_workers):
        seen = []

        def step(model, batch):
            seen.append(batch["index"].tolist())
            return cross_entropy(model, batch)

        model = tiny_model()
        config = TrainConfig(epochs=2, batch_size=3, seed=4, num_workers=num_workers)
        history = fit(model, TinySet(9), step, config, tmp_path / str(num_workers))
        return seen, history.step_losses, model.state_dict()

    (seen0, losses0, state0), (seen2, losses2, state2) = recorded(0), recorded(2)
    assert seen0 == seen2 and losses0 == losses2
    assert all(torch.equal(state0[k], state2[k]) for k in state0)


def test_to_device_moves_tensors_and_keeps_the_rest():
    from coloc.train import to_device

    boxes = [torch.zeros(1, 4)]
    batch = {"image": torch.zeros(2, 3, 4, 4), "label": torch.tensor([0, 1]), "boxes": boxes}
    moved = to_device(batch, torch.device("cpu"))
    assert moved.keys() == batch.keys() and moved["boxes"] is boxes
    assert torch.equal(moved["label"], batch["label"])
    assert moved["image"].is_contiguous()
    on_meta = to_device(batch, torch.device("meta"))  # shapes only: any device will do
    assert on_meta["image"].device.type == on_meta["label"].device.type == "meta"
    last = to_device(batch, torch.device("cpu"), channels_last=True)
    assert last["image"].is_contiguous(memory_format=torch.channels_last)
    assert not last["image"].is_contiguous() and torch.equal(last["image"], batch["image"])


def test_bad_settings_are_rejected():
    TrainConfig(epochs=1, batch_size=1, lr=1e-9)  # the smallest valid settings
    for name, bad in (("epochs", 0), ("batch_size", 0), ("lr", 0.0)):
        with pytest.raises(ValueError, match=f"{name} must be"):
            TrainConfig(**{name: bad})
    with pytest.raises(ValueError, match="select"):
        TrainConfig(select="test:acc")
    with pytest.raises(ValueError, match="evaluate"):
        fit(tiny_model(), TinySet(), cross_entropy, TrainConfig(select="val:acc"), "unused")


class OnDevice(nn.Sequential):
    """tiny_model's layers; ``to`` records its arguments instead of moving anything."""

    def to(self, *args, **kwargs):
        self.moves.append((args, kwargs))
        return self


@pytest.mark.parametrize("bf16", [True, False])
def test_on_cuda_fit_asks_for_autocast_the_scaler_channels_last_and_pinned_memory(
        tmp_path, monkeypatch, bf16):
    """No GPU here: torch's CUDA entry points are replaced by recorders, to check what fit
    asks of them on a CUDA device (bf16 autocast without a scaler where supported, else
    fp16 with a GradScaler; channels-last model and images; pinned memory; checkpoints
    mapped to the device and read as weights only)."""
    import contextlib

    import coloc.train

    calls = {"autocast": [], "batches": [], "scalers": [], "scaler_states": [], "loads": []}

    class Scaler:
        def __init__(self, device, enabled):
            calls["scalers"].append((device, enabled))

        def scale(self, loss):
            return loss

        def step(self, optimizer):
            optimizer.step()

        def update(self):
            pass

        def state_dict(self):
            return {"scale": 1.0}

        def load_state_dict(self, state):
            calls["scaler_states"].append(state)

    @contextlib.contextmanager
    def autocast(device_type, dtype):
        calls["autocast"].append((device_type, dtype))
        yield

    def to_device(batch, device, channels_last=False):
        calls["batches"].append((device, channels_last))
        return batch

    real_loader, real_load = coloc.train.DataLoader, torch.load

    def loader(*args, **kwargs):
        calls["pin_memory"] = kwargs["pin_memory"]
        return real_loader(*args, **{**kwargs, "pin_memory": False})

    def load(path, map_location, weights_only):
        calls["loads"].append((map_location, weights_only))
        return real_load(path, map_location="cpu", weights_only=weights_only)

    monkeypatch.setattr(torch.amp, "GradScaler", Scaler)
    monkeypatch.setattr(torch, "autocast", autocast)
    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    monkeypatch.setattr(coloc.train, "to_device", to_device)
    monkeypatch.setattr(coloc.train, "DataLoader", loader)

    model = OnDevice(*tiny_model())
    model.moves = []
    config = TrainConfig(epochs=1, batch_size=4, device="cuda", amp=True, channels_last=True)
    fit(model, TinySet(), cross_entropy, config, tmp_path)
    cuda = torch.device("cuda")
    dtype = torch.bfloat16 if bf16 else torch.float16
    assert model.moves == [((cuda,), {}), ((), {"memory_format": torch.channels_last})]
    assert calls["autocast"] == [("cuda", dtype)] * 2
    assert calls["scalers"] == [("cuda", not bf16)]  # bf16 needs no loss scaling
    assert calls["batches"] == [(cuda, True)] * 2 and calls["pin_memory"] is True
    fit(model, TinySet(), cross_entropy, config, tmp_path)  # finished: loads, trains nothing
    assert calls["loads"] == [(cuda, True)] and calls["scaler_states"] == [{"scale": 1.0}]

    plain = TrainConfig(epochs=1, batch_size=4, device="cuda")  # no amp, no channels_last
    calls["autocast"].clear()
    calls["batches"].clear()
    model.moves = []
    fit(model, TinySet(), cross_entropy, plain, tmp_path / "plain")
    assert calls["autocast"] == [] and calls["scalers"][-1] == ("cuda", False)
    assert model.moves == [((cuda,), {})] and calls["batches"] == [(cuda, False)] * 2


def test_a_non_finite_validation_metric_stops_training(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"validation metrics \{'corloc@0.5': nan\}"):
        fit(tiny_model(), TinySet(), cross_entropy, CONFIG, tmp_path,
            evaluate=lambda model: {"corloc@0.5": float("nan"), "corloc@0.3": 10.0})
