"""Many processes, one run: torch.distributed as launched by ``torchrun``.

``torchrun --nproc_per_node N -m coloc train caml ...`` starts N processes with the
usual environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` ...);
:func:`setup` joins them into one process group (NCCL on CUDA, gloo on the CPU).
Without that environment every function here is the single-process identity, so the
same code runs in a notebook kernel, a script or under torchrun.

What the rest of the package builds on it:

- :class:`ShardedBatches`: every rank draws the same seeded permutation and takes its
  slice of each *global* batch, so N processes x ``B / N`` see exactly the batches of
  one process x ``B`` (:func:`coloc.train.fit`);
- :func:`shard`, :func:`gather` and :func:`merged`: a contiguous shard of an evaluation
  split per rank, and the per-rank results and evaluator states (counts per threshold,
  pixel histograms, per-image IoUs) combined in rank order, so the metrics are exactly
  the single-process ones (:func:`coloc.evaluate.evaluate`);
- :func:`is_main`, :func:`barrier`, :func:`main_first`: rank 0 alone writes files;
  the others wait for it;
- :func:`gather_rows`, :func:`broadcast`: MoCo v2's key all-gather and shuffled BN
  (:class:`coloc.contracam.model.MoCo`).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that sets
    ``WORLD_SIZE``) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one process is initialized."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group of a ``torchrun`` launch, if any; return this rank's device.

    On CUDA each process takes the GPU of its ``LOCAL_RANK`` and the NCCL backend; on
    the CPU the gloo backend. Without a launch (or already joined), returns ``device``
    unchanged (on CUDA: the local rank's GPU when joined).
    """
    if launched() and not (dist.is_available() and dist.is_initialized()):
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    if active() and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def teardown() -> None:
    """Leave the process group (at the end of a torchrun program)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank arrives here (nothing without a process group)."""
    if active():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. trains and caches a shared artefact), then the
    others run it and find the cached result."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def gather(value: T) -> list[T]:
    """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
    if not active():
        return [value]
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


class Mergeable(Protocol):
    """A streaming evaluator (:mod:`coloc.metrics`): ``merge`` adds another's state."""

    def merge(self, other: Any) -> Any: ...


M = TypeVar("M", bound=Mergeable)


def merged(evaluator: M) -> M:
    """Every rank's ``evaluator`` merged in rank order (the whole split's state), on
    every rank; the evaluator itself without a process group."""
    parts = gather(evaluator)
    return functools.reduce(lambda total, part: total.merge(part), parts[1:], parts[0])


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over ranks (the tensor itself without a process group)."""
    if active():
        values = values.clone()
        dist.all_reduce(values)
    return values


def gather_rows(values: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Every rank's ``values`` ``[n_r, ...]`` concatenated in rank order, on every rank,
    and the row counts ``n_r`` (ranks may hold different counts); ``values`` and
    ``[len(values)]`` without a process group. No gradient flows back through it."""
    if not active():
        return values, [len(values)]
    count = torch.tensor([len(values)], device=values.device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    padded = values.new_zeros((max(sizes), *values.shape[1:]))
    padded[:len(values)] = values
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)]), sizes


def broadcast(values: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``values`` on every rank (in place; the tensor itself without a group)."""
    if active():
        dist.broadcast(values, src=0)
    return values


def shard(length: int) -> range:
    """This rank's contiguous part of ``range(length)``: sizes differ by at most one, and
    the parts in rank order are ``range(length)`` again (so gathered per-image results
    come back in dataset order)."""
    bounds = _bounds(length, world_size())
    return range(bounds[rank()], bounds[rank() + 1])


class ShardedBatches(Sampler[list[int]]):
    """This rank's micro-batches of each global batch of ``batches``.

    ``batches`` yields global batches of dataset indices (e.g. a seeded
    ``BatchSampler(RandomSampler(...))``, identical on every rank). Each is split into
    ``world_size * accumulate`` near-equal consecutive parts; rank ``r`` yields parts
    ``r * accumulate ... (r + 1) * accumulate - 1``. With one process and
    ``accumulate=1`` the batches pass unchanged, and the draws from the shuffling
    generator are the plain DataLoader's (the wrapper iterates lazily, like it).
    """

    def __init__(self, batches: Sampler[list[int]], accumulate: int = 1,
                 world: int | None = None, this_rank: int | None = None) -> None:
        self.batches = batches
        self.accumulate = accumulate
        self.world = world_size() if world is None else world
        self.rank = rank() if this_rank is None else this_rank

    def __len__(self) -> int:
        return len(self.batches) * self.accumulate  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        parts = self.world * self.accumulate
        for batch in self.batches:
            if len(batch) < parts:
                raise ValueError(
                    f"a global batch of {len(batch)} cannot be split over {self.world} "
                    f"processes x {self.accumulate} accumulation steps; use a smaller "
                    "accumulate or fewer processes")
            yield from split(batch, parts)[self.rank * self.accumulate:
                                           (self.rank + 1) * self.accumulate]


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """``items`` in ``parts`` consecutive pieces whose sizes differ by at most one."""
    bounds = _bounds(len(items), parts)
    return [list(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _bounds(length: int, parts: int) -> list[int]:
    """Start of each of ``parts`` consecutive pieces of ``length`` items, then the end."""
    size, extra = divmod(length, parts)
    return [i * size + min(i, extra) for i in range(parts + 1)]
