"""One training loop for every chapter, with a hook for each method's loss.

A method supplies ``step(model, batch) -> dict[str, Tensor]`` whose ``"loss"`` entry is
optimized (other entries, e.g. ``"cls"`` and ``"caml"``, are logged), and optionally
``evaluate(model) -> dict[str, float]`` run on the validation split after each epoch.

Reliability (DESIGN.md): a checkpoint is written atomically after every epoch; calling
:func:`fit` again with the same configuration resumes from it and ends with the same
weights and metrics as an uninterrupted run (every epoch reseeds its own random
streams, so epoch e draws the same numbers whether or not the run was interrupted);
a non-finite loss stops the run with :class:`NonFiniteLossError`, keeping the last good
checkpoint. On CUDA: autocast, channels_last, pinned-memory DataLoader workers.

The reported model is the last epoch (``select="last"``) or the epoch with the best
validation metric (``select="val:<metric>"``); never a test-set choice (PROTOCOL.md).
"""

from __future__ import annotations

import contextlib
import io
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from coloc.data.common import collate_samples
from coloc.runtime import atomic_write_bytes, config_hash, progress

StepFn = Callable[[nn.Module, dict], Mapping[str, torch.Tensor]]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
EpochHook = Callable[[nn.Module, int], None]
SCHEDULES = ("step", "cosine")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept on disk."""


@dataclass
class TrainConfig:
    """Optimization settings; everything that changes the result is here (run identity).

    SGD with momentum, as all four papers use. ``schedule="step"``: ``milestones`` are
    epochs at which the learning rate is multiplied by ``gamma`` (PsyNet: x0.2 at 60 of
    80); ``schedule="cosine"``: the rate follows ``lr * (1 + cos(pi * e / epochs)) / 2``
    at epoch ``e``, stepped per epoch as the MoCo reference code does (ContraCAM
    Appendix B.1); milestones and gamma are then unused.
    """

    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    schedule: str = "step"
    seed: int = 0
    select: str = "last"
    device: str = "cpu"
    num_workers: int = 0
    amp: bool = False
    channels_last: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.select != "last" and not self.select.startswith("val:"):
            raise ValueError(f"select must be 'last' or 'val:<metric>', got {self.select!r}")


@dataclass
class History:
    """What a run produced: per-step and per-epoch losses, validation metrics, timings."""

    step_losses: dict[str, list[float]] = field(default_factory=dict)
    epoch_losses: dict[str, list[float]] = field(default_factory=dict)
    val_metrics: list[dict[str, float]] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    selected_epoch: int = -1

    def add_step(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.step_losses.setdefault(name, []).append(value)


def _seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Reseed every random stream for one epoch; return the shuffling generator."""
    epoch_seed = seed * 100_003 + epoch
    random.seed(epoch_seed)
    np.random.seed(epoch_seed % 2**32)  # noqa: NPY002 - datasets may draw from the global
    torch.manual_seed(epoch_seed)
    return torch.Generator().manual_seed(epoch_seed)


def to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """The batch with its tensors on ``device`` (images channels-last if asked); other
    entries (e.g. the per-image box lists) as they are."""
    moved = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if key == "image" and channels_last:
                value = value.contiguous(memory_format=torch.channels_last)
        moved[key] = value
    return moved


def _state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig
               ) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.gamma)


def _identity(config: TrainConfig) -> str:
    """The checkpoint's configuration hash. ``schedule`` came later: the step schedule,
    its default, is left out so checkpoints written before keep their hash (resume)."""
    fields = asdict(config)
    if fields["schedule"] == "step":
        del fields["schedule"]
    return config_hash(fields)


def fit(
    model: nn.Module,
    train_set: Dataset,
    step: StepFn,
    config: TrainConfig,
    run_dir: str | Path,
    evaluate: EvalFn | None = None,
    on_epoch_end: EpochHook | None = None,
    params: Any = None,
) -> History:
    """Train ``model`` on ``train_set`` with ``step``; checkpoint to ``run_dir``; resume.

    ``params`` (default: all model parameters) are what SGD updates. Returns the
    :class:`History`; the model ends holding the selected epoch's weights.
    """
    if config.select.startswith("val:") and evaluate is None:
        raise ValueError(f"select={config.select!r} needs an evaluate function")
    run_dir = Path(run_dir)
    device = torch.device(config.device)
    use_amp = config.amp and device.type == "cuda"
    model.to(device)
    if config.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        params if params is not None else model.parameters(),
        lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
    )
    scheduler = _scheduler(optimizer, config)
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    identity = _identity(config)
    checkpoint = run_dir / "checkpoint.pt"
    history, start_epoch, best = History(), 0, (-float("inf"), None)
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state["config_hash"] != identity:
            raise ValueError(
                f"{checkpoint} belongs to another configuration (hash {state['config_hash']}, "
                f"this run {identity}); use another run_dir or delete it to start over"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = History(**state["history"])
        start_epoch = state["epoch"] + 1
        best = (state["best_score"], state["best_model"])

    for epoch in range(start_epoch, config.epochs):
        shuffle = _seed_epoch(config.seed, epoch)
        loader = DataLoader(
            train_set, batch_size=config.batch_size, shuffle=True, generator=shuffle,
            collate_fn=collate_samples, drop_last=len(train_set) > config.batch_size,
            num_workers=config.num_workers, pin_memory=device.type == "cuda",
            persistent_workers=False,
        )
        model.train()
        sums: dict[str, float] = {}
        started = time.perf_counter()
        bar = progress(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for batch in bar:
            batch = to_device(batch, device, config.channels_last and device.type == "cuda")
            autocast = (torch.autocast("cuda", dtype=amp_dtype) if use_amp
                        else contextlib.nullcontext())
            with autocast:
                losses = step(model, batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                kept = (f"the checkpoint after epoch {epoch} is kept at {checkpoint}"
                        if epoch else "no epoch had completed, so no checkpoint exists")
                raise NonFiniteLossError(
                    f"loss became {loss.item()} in epoch {epoch + 1}; training stopped and "
                    f"{kept}. Lower lr (now {config.lr}) or check the inputs."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            values = {name: float(value.detach()) for name, value in losses.items()}
            history.add_step(values)
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix(loss=f"{values['loss']:.3f}")
        scheduler.step()
        for name, total in sums.items():
            history.epoch_losses.setdefault(name, []).append(total / len(loader))
        history.epoch_seconds.append(time.perf_counter() - started)

        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.val_metrics.append(dict(evaluate(model)))
        if on_epoch_end is not None:
            on_epoch_end(model, epoch)
        if config.select.startswith("val:"):
            score = history.val_metrics[-1][config.select[4:]]
            if score > best[0]:
                best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
                history.selected_epoch = epoch
        else:
            history.selected_epoch = epoch
        atomic_write_bytes(checkpoint, _state_bytes({
            "config_hash": identity, "epoch": epoch, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "history": asdict(history),
            "best_score": best[0], "best_model": best[1],
        }))

    if config.select.startswith("val:") and best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return history
