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
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from coloc import distributed
from coloc.data.common import collate_samples
from coloc.distributed import ShardedBatches
from coloc.runtime import (
    atomic_save_torch,
    base_seed_draw,
    config_hash,
    load_torch,
    progress,
)

StepFn = Callable[[nn.Module, dict], Mapping[str, torch.Tensor]]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
EpochHook = Callable[[nn.Module, int], None]
SCHEDULES = ("step", "cosine")


class NonFiniteLossError(RuntimeError):
    """The loss (or a validation metric) became NaN or infinite; the last good checkpoint
    is kept on disk."""


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
    images_per_second: list[float] = field(default_factory=list)
    selected_epoch: int = -1

    def add_step(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.step_losses.setdefault(name, []).append(value)


def _seed_epoch(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """Reseed every random stream for one epoch; return the shuffling generator.

    The shuffling generator is the same on every rank (one permutation, sharded); the
    global streams (augmentations, a step's random draws) get a rank offset, so ranks do
    not draw the same numbers. Rank 0 (and a single process) draws what it always did.
    """
    epoch_seed = seed * 100_003 + epoch
    stream_seed = epoch_seed + rank * 1_000_000_007
    random.seed(stream_seed)
    np.random.seed(stream_seed % 2**32)  # noqa: NPY002 - datasets may draw from the global
    torch.manual_seed(stream_seed)
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


@dataclass(frozen=True)
class Parallel:
    """How a run is spread over processes; none of it is the run's identity.

    ``accumulate``: micro-batches per optimizer step and process, so that
    ``batch_size`` stays the paper's global batch on fewer GPUs (each process forwards
    ``batch_size / (processes * accumulate)`` images at a time). ``sync_bn``: BatchNorm
    statistics over the global batch (SyncBatchNorm) instead of each process's share;
    used only with more than one process.
    """

    accumulate: int = 1
    sync_bn: bool = False

    def __post_init__(self) -> None:
        if self.accumulate < 1:
            raise ValueError(f"accumulate must be >= 1, got {self.accumulate}")


class _EpochSeeded(Dataset):
    """A dataset read with ``(epoch_seed, index)`` keys: a DataLoader worker reseeds its
    random streams at its first sample of each epoch, from the epoch, its rank and its
    worker id.

    Persistent workers live across epochs, so without this their augmentations in
    epoch e would depend on the epochs before (and a resumed run would differ from an
    uninterrupted one). Batches go to workers round-robin, so it is deterministic.
    """

    def __init__(self, dataset: Dataset, rank: int, workers: int) -> None:
        self.dataset, self.rank, self.workers = dataset, rank, workers
        self.seed: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        seed, index = key
        if seed != self.seed:
            worker = torch.utils.data.get_worker_info()
            _seed_epoch(seed, self.rank * self.workers + (worker.id if worker else 0))
            self.seed = seed
        return self.dataset[index]


class _Keyed(Sampler[list[tuple[int, int]]]):
    """Batches of ``(seed, index)`` keys for :class:`_EpochSeeded`; ``seed`` set per epoch."""

    def __init__(self, batches: Sampler[list[int]]) -> None:
        self.batches = batches
        self.seed = 0

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.batches:
            yield [(self.seed, index) for index in batch]


class _Loader:
    """The training DataLoader of one run: this rank's micro-batches of each epoch.

    Every rank draws the same per-epoch permutation and takes its share of each global
    batch (:class:`coloc.distributed.ShardedBatches`). Without workers a fresh loader
    per epoch draws from the epoch's generator exactly as a plain ``DataLoader(shuffle=
    True, generator=...)`` does (single-process results are those of the plain loader).
    With workers one loader lives for the run: persistent workers, pinned memory on
    CUDA, decoding off the main process, reseeded per epoch by :class:`_EpochSeeded`.
    """

    def __init__(self, dataset: Dataset, config: TrainConfig, parallel: Parallel,
                 device: torch.device) -> None:
        self.dataset, self.config, self.device = dataset, config, device
        self.accumulate = parallel.accumulate
        self.global_batch = min(config.batch_size, len(dataset))  # type: ignore[arg-type]
        self.persistent: DataLoader | None = None
        if config.num_workers > 0:
            self.generator = torch.Generator()
            self.keyed = _Keyed(self._batches(self.generator))
            self.persistent = DataLoader(
                _EpochSeeded(dataset, distributed.rank(), config.num_workers),
                batch_sampler=self.keyed, collate_fn=collate_samples,
                num_workers=config.num_workers, pin_memory=device.type == "cuda",
                persistent_workers=True, generator=torch.Generator(),  # not the global RNG
            )

    def _batches(self, generator: torch.Generator) -> ShardedBatches:
        drop_last = len(self.dataset) > self.config.batch_size  # type: ignore[arg-type]
        return ShardedBatches(BatchSampler(RandomSampler(self.dataset, generator=generator),
                                           self.config.batch_size, drop_last), self.accumulate)

    def epoch(self, shuffle: torch.Generator) -> DataLoader:
        """The loader of an epoch whose permutation ``shuffle`` (freshly seeded) draws."""
        # Until the progress bar stopped wrapping the loader, tqdm.auto opened a second
        # iterator of it per epoch (its constructor calls iter()), one more base-seed
        # draw before the shuffle; the draw is kept, so recorded runs keep their numbers.
        base_seed_draw(shuffle)
        if self.persistent is None:
            return DataLoader(self.dataset, batch_sampler=self._batches(shuffle),
                              generator=shuffle, collate_fn=collate_samples,
                              pin_memory=self.device.type == "cuda")
        self.generator.set_state(shuffle.get_state())
        # The draw a fresh DataLoader makes for its workers' base seed before it shuffles:
        # the permutation is then the one without workers (num_workers is no identity).
        base_seed_draw(self.generator)
        self.keyed.seed = int(shuffle.initial_seed())
        return self.persistent


class _Step(nn.Module):
    """A method's whole step as one module's forward: ``forward(batch) = step(model,
    batch)``, what DistributedDataParallel wraps.

    DDP all-reduces the gradients of the parameters its forward used; a step that also
    reads the model outside ``model(...)`` (ContraCAM's ``model.loss``, InCA's
    ``model.embeddings``, WeightMap's ``model.frozen``) would leave those out or fail on
    the wrapper's missing attributes. Inside this forward every such use is DDP's, and
    the step keeps receiving the bare model, as in a single process.
    """

    def __init__(self, model: nn.Module, step: StepFn) -> None:
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, batch: dict) -> Mapping[str, torch.Tensor]:
        return self.step(self.model, batch)


def _wrap(model: nn.Module, step: StepFn, parallel: Parallel, device: torch.device
          ) -> nn.parallel.DistributedDataParallel | None:
    """Under a process group, ``step`` over ``model`` as the forward of
    DistributedDataParallel (:class:`_Step`; SyncBatchNorm first if asked); None
    without one. Parameters stay the same objects, so an optimizer built on them (or on
    ``params``) trains the wrapped model."""
    if not distributed.active():
        return None
    if parallel.sync_bn and device.type != "cuda":
        raise ValueError("sync_bn needs CUDA: torch's SyncBatchNorm has no CPU kernel; "
                         f"train on {device.type} without it")
    if parallel.sync_bn:
        for name, child in list(model.named_children()):
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    # find_unused_parameters: a method may leave heads or a branch out of a step (e.g.
    # CAML's "- L_caml" rows); DDP would otherwise wait for their gradients forever.
    # device_ids=None: the batch is on the device already (to_device), and DDP would
    # otherwise also move what a step expects on the CPU (the per-image box lists).
    return nn.parallel.DistributedDataParallel(_Step(model, step), device_ids=None,
                                               find_unused_parameters=True)


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
    parallel: Parallel = Parallel(),  # noqa: B008 - frozen dataclass, never mutated
) -> History:
    """Train ``model`` on ``train_set`` with ``step``; checkpoint to ``run_dir``; resume.

    ``params`` (default: all model parameters) are what SGD updates. Returns the
    :class:`History`; the model ends holding the selected epoch's weights.

    Under a process group (``torchrun``, :mod:`coloc.distributed`) the model trains in
    DistributedDataParallel: ``config.batch_size`` is the global batch, split over the
    processes and ``parallel.accumulate`` micro-batches; each micro-batch's loss is
    weighted by its share of the global batch, so the summed gradient is the global
    batch's mean gradient, and the logged losses are the global batch's. The whole
    ``step`` runs as DDP's forward (:class:`_Step`) and receives the bare model, so
    whatever it uses of the model (``model(images)``, ``model.loss``, a submodule) has
    its gradients all-reduced; ``evaluate`` and ``on_epoch_end`` receive the bare model
    and run on every rank. Rank 0 alone writes the checkpoint; every rank reads it to resume,
    with the same or another number of processes (the global batches are the same).
    """
    if config.select.startswith("val:") and evaluate is None:
        raise ValueError(f"select={config.select!r} needs an evaluate function")
    run_dir = Path(run_dir)
    device = torch.device(config.device)
    use_amp = config.amp and device.type == "cuda"
    model.to(device)
    if config.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    net = _wrap(model, step, parallel, device)
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
        state = load_torch(checkpoint, device, remedy=f"delete {checkpoint} to train from "
                           "the start (or pass force=True to the run)")
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

    loaders = _Loader(train_set, config, parallel, device)
    world = distributed.world_size()
    for epoch in range(start_epoch, config.epochs):
        loader = loaders.epoch(_seed_epoch(config.seed, epoch, distributed.rank()))
        model.train()
        sums: dict[str, float] = {}
        started = time.perf_counter()
        images, pending = 0, torch.zeros(0, dtype=torch.float64)
        bar = progress(total=len(loader) // loaders.accumulate, leave=False,
                       desc=f"epoch {epoch + 1}/{config.epochs}")
        for micro, batch in enumerate(loader):
            batch = to_device(batch, device, config.channels_last and device.type == "cuda")
            last = (micro + 1) % loaders.accumulate == 0
            # The micro-batch's share of the global batch, times the processes DDP
            # averages over: 1.0 (exactly) for one process without accumulation.
            weight = len(batch["image"]) * world / loaders.global_batch
            images += len(batch["image"])
            autocast = (torch.autocast("cuda", dtype=amp_dtype) if use_amp
                        else contextlib.nullcontext())
            sync = contextlib.nullcontext() if last or net is None else net.no_sync()
            with sync:
                with autocast:
                    losses = step(model, batch) if net is None else net(batch)
                names = list(losses)
                shares = distributed.all_sum(torch.tensor(
                    [float(losses[name].detach()) * weight / world for name in names],
                    dtype=torch.float64))
                pending = shares if micro % loaders.accumulate == 0 else pending + shares
                if not torch.isfinite(shares[names.index("loss")]):
                    kept = (f"the checkpoint after epoch {epoch} is kept at {checkpoint}"
                            if epoch else "no epoch had completed, so no checkpoint exists")
                    raise NonFiniteLossError(
                        f"loss became {float(shares[names.index('loss')])} in epoch "
                        f"{epoch + 1}; training stopped and {kept}. Lower lr (now "
                        f"{config.lr}) or check the inputs."
                    )
                if micro % loaders.accumulate == 0:
                    optimizer.zero_grad(set_to_none=True)
                scaler.scale(losses["loss"] * weight).backward()
            if not last:
                continue
            scaler.step(optimizer)
            scaler.update()
            values = dict(zip(names, pending.tolist(), strict=True))
            history.add_step(values)
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
            bar.update()
        bar.close()
        scheduler.step()
        for name, total in sums.items():
            history.epoch_losses.setdefault(name, []).append(
                total / (len(loader) // loaders.accumulate))
        seconds = time.perf_counter() - started
        history.epoch_seconds.append(seconds)
        images = int(distributed.all_sum(torch.tensor(images)))
        history.images_per_second.append(images / seconds)

        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.val_metrics.append(dict(evaluate(model)))
            bad = {k: v for k, v in history.val_metrics[-1].items() if not math.isfinite(v)}
            if bad:
                raise NonFiniteLossError(
                    f"validation metrics {bad} after epoch {epoch + 1} are not finite; "
                    f"training stopped. Lower lr (now {config.lr}) or check the inputs.")
        if on_epoch_end is not None:
            on_epoch_end(model, epoch)
        if config.select.startswith("val:"):
            score = history.val_metrics[-1][config.select[4:]]
            if score > best[0]:
                best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
                history.selected_epoch = epoch
        else:
            history.selected_epoch = epoch
        if distributed.is_main():
            atomic_save_torch(checkpoint, {
                "config_hash": identity, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "history": asdict(history),
                "best_score": best[0], "best_model": best[1],
            })
        distributed.barrier()

    if config.select.startswith("val:") and best[1] is not None:
        model.load_state_dict(best[1])
    model.eval()
    return history
