"""Data-parallel training and sharded evaluation (coloc.distributed) on the CPU.

Two gloo processes are started once per module (torch.multiprocessing, the
``two_ranks`` fixture) and run every multi-process scenario; the tests compare what
they saved with one process in this one. ``test_a_killed_torchrun_run_resumes`` starts
the real launcher: ``torchrun --standalone --nproc_per_node 2 tests/torchrun_fit.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from coloc import cam, distributed, runs
from coloc.data.memory import synthetic_split
from coloc.distributed import ShardedBatches, shard, split
from coloc.evaluate import evaluate
from coloc.maps import upsample_maps
from coloc.metrics import MaskIoUEvaluator, PxAPEvaluator
from coloc.train import Parallel, TrainConfig, fit
from tests import torchrun_fit
from tests.test_train import TinySet

ROOT = Path(__file__).resolve().parents[1]
EVAL_IMAGES = 13  # odd: shards of 7 and 6 images
TRAIN = TrainConfig(epochs=2, batch_size=8, lr=0.1, seed=5)  # global batch 8 = 2 x 4
TOLERANCE = dict(rtol=1e-5, atol=1e-6)
"""2 x b against 1 x 2b: the same gradient, summed in another order (float32)."""


# ----------------------------------------------------------------------------- scenarios


def map_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Conv2d(3, 1, 5, padding=2)


def net_maps(model: nn.Module, batch: dict) -> torch.Tensor:
    """Score maps of a fixed random conv: arbitrary but deterministic maps to score."""
    return upsample_maps(model(batch["image"])[:, 0], batch["image"].shape[-2:])


def eval_split():
    return synthetic_split("synthetic", "test", 32, EVAL_IMAGES, 0)


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def cross_entropy(model: nn.Module, batch: dict) -> dict:
    return {"loss": nn.functional.cross_entropy(model(batch["image"]), batch["label"])}


def pixel_states(model: nn.Module, dataset) -> tuple[float, float]:
    """PxAP and mask mIoU of this rank's shard, merged over ranks."""
    pxap, miou = PxAPEvaluator(), MaskIoUEvaluator()
    with torch.no_grad():
        for index in shard(len(dataset)):
            sample = dataset[index]
            maps = net_maps(model, {"image": sample["image"][None]}).numpy()
            pxap.update(maps, [sample["mask"].numpy()])
            miou.update(maps, [sample["mask"].numpy()])
    return distributed.merged(pxap).compute(), distributed.merged(miou).compute()


def cam_config(**changes) -> cam.CAMConfig:
    return cam.profile("synthetic", pretrained=False, image_size=32, train_samples=16,
                       val_samples=4, test_samples=7, epochs=1, batch_size=8, **changes)


def _joined(rank: int, scenario: Callable[[int, Path], None], world: int, port: int,
            out: Path) -> None:
    """One spawned process: join the gloo group as ``rank`` of ``world``, run ``scenario``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    scenario(rank, out)


def spawn_two(scenario: Callable[[int, Path], None], out: Path) -> None:
    """Run ``scenario(rank, out)`` (a module-level function) on two gloo processes."""
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_joined, args=(scenario, 2, port, out), nprocs=2, join=True)


def _scenarios(rank: int, out: Path) -> None:
    """What each of the two processes runs; rank 0 saves the results under ``out``."""
    saved: dict = {}
    result = evaluate(net_maps, map_net(), eval_split(), batch_size=4)
    saved["eval"] = result.to_dict()
    saved["pixels"] = pixel_states(map_net(), eval_split())

    model = torchrun_fit.plain_model()
    history = fit(model, TinySet(20), cross_entropy, TRAIN, out / "plain")
    saved["plain"] = (model.state_dict(), history.step_losses)
    try:  # torch's SyncBatchNorm runs on CUDA only
        fit(bn_model(), TinySet(20), cross_entropy, TRAIN, out / "syncbn",
            parallel=Parallel(sync_bn=True))
    except ValueError as err:
        saved["syncbn_cpu"] = str(err)
    torchrun_fit.train(out / "uninterrupted")  # the reference of the torchrun test

    writes: list[str] = []
    if rank:  # the writers record instead of writing on rank 1
        def record(path, data):
            writes.append(str(path))
        runs.atomic_write_bytes = record  # coloc.runs and coloc.train import it by name
        import coloc.train
        coloc.train.atomic_write_bytes = record
        import coloc.runtime
        coloc.runtime.atomic_write_bytes = record
    recorded = cam.run(cam_config(), out / "store")
    saved["run"] = (recorded.record["metrics"]["test"], recorded.record["timings"]["processes"])
    gathered = distributed.gather(writes)
    if rank == 0:
        saved["rank1_writes"] = gathered[1]
        torch.save(saved, out / "two_ranks.pt")
    distributed.barrier()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("two_ranks")
    spawn_two(_scenarios, out)
    saved = torch.load(out / "two_ranks.pt", weights_only=False)
    saved["out"] = out
    return saved


# ----------------------------------------------------------------------------- one process


def test_shards_cover_the_split_in_order():
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1, 2], 2) == [[1], [2]]
    assert shard(5) == range(5)  # one process: everything


def test_sharded_batches_are_the_global_batches():
    def batches(world, rank, accumulate=1):
        sampler = BatchSampler(RandomSampler(range(20), generator=torch.Generator()
                                             .manual_seed(4)), 8, True)
        return list(ShardedBatches(sampler, accumulate, world, rank))

    whole = batches(1, 0)
    assert len(whole) == 2 and all(len(b) == 8 for b in whole)
    two = [batches(2, 0), batches(2, 1)]
    assert [two[0][i] + two[1][i] for i in range(2)] == whole
    accumulated = batches(2, 1, accumulate=2)  # rank 1's two micro-batches per step
    assert accumulated[:2] == [whole[0][4:6], whole[0][6:8]]
    with pytest.raises(ValueError, match="cannot be split over 2 processes x 8"):
        batches(2, 0, accumulate=8)


def test_one_process_draws_the_plain_loaders_batches():
    """Without torchrun the loader is a plain shuffled DataLoader: same generator
    draws, same batches (single-process results did not change)."""
    plain = DataLoader(range(23), batch_size=5, shuffle=True, drop_last=True,
                       generator=torch.Generator().manual_seed(9))
    shuffle = torch.Generator().manual_seed(9)
    sharded = DataLoader(range(23), generator=shuffle, batch_sampler=ShardedBatches(
        BatchSampler(RandomSampler(range(23), generator=shuffle), 5, True)))
    assert [b.tolist() for b in plain] == [b.tolist() for b in sharded]


def test_accumulation_equals_the_whole_batch(tmp_path):
    whole, accumulated = torchrun_fit.plain_model(), torchrun_fit.plain_model()
    h1 = fit(whole, TinySet(20), cross_entropy, TRAIN, tmp_path / "a")
    h2 = fit(accumulated, TinySet(20), cross_entropy, TRAIN, tmp_path / "b",
             parallel=Parallel(accumulate=2))
    np.testing.assert_allclose(h1.step_losses["loss"], h2.step_losses["loss"], **TOLERANCE)
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(accumulated.state_dict()[name], value, **TOLERANCE)


# ----------------------------------------------------------------------------- two processes


def test_sharded_evaluation_equals_one_process_exactly(two_ranks):
    single = evaluate(net_maps, map_net(), eval_split(), batch_size=4).to_dict()
    assert two_ranks["eval"] == single  # CorLoc, MaxBoxAccV2, per-image IoUs and boxes
    assert len(single["per_image"]["index"]) == EVAL_IMAGES
    pxap, miou = PxAPEvaluator(), MaskIoUEvaluator()
    with torch.no_grad():
        for sample in eval_split():
            maps = net_maps(map_net(), {"image": sample["image"][None]}).numpy()
            pxap.update(maps, [sample["mask"].numpy()])
            miou.update(maps, [sample["mask"].numpy()])
    assert two_ranks["pixels"] == (pxap.compute(), miou.compute())


def test_two_processes_x_b_equal_one_process_x_2b(two_ranks, tmp_path):
    """On a model without BatchNorm (and without dropout): SyncBatchNorm, which would
    make BN statistics global, has no CPU kernel in torch, so gloo cannot test it."""
    model = torchrun_fit.plain_model()
    history = fit(model, TinySet(20), cross_entropy, TRAIN, tmp_path)
    state, losses = two_ranks["plain"]
    assert len(losses["loss"]) == len(history.step_losses["loss"]) == 4
    np.testing.assert_allclose(losses["loss"], history.step_losses["loss"], **TOLERANCE)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(state[name], value, **TOLERANCE)


def test_sync_bn_on_the_cpu_fails_with_a_reason(two_ranks):
    assert "sync_bn needs CUDA" in two_ranks["syncbn_cpu"]


def test_only_rank_zero_writes_and_the_run_is_recorded(two_ranks):
    assert two_ranks["rank1_writes"] == []
    metrics, processes = two_ranks["run"]
    assert processes == 2
    found = runs.find_run(cam.METHOD, cam_config(), two_ranks["out"] / "store")
    assert found is not None and found.record["metrics"]["test"] == metrics


def _torchrun(out: Path, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "tests" / "torchrun_fit.py"), str(out)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **env,
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(command, env=environment, capture_output=True, text=True,
                          timeout=300)


def test_a_killed_torchrun_run_resumes(two_ranks, tmp_path):
    killed = _torchrun(tmp_path, COLOC_TEST_KILL_AT="5")  # epoch 2, after checkpoint 1
    assert killed.returncode != 0 and not (tmp_path / "final.pt").exists()
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 0
    shutil.copytree(tmp_path / "run", tmp_path / "one" / "run")

    resumed = _torchrun(tmp_path)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    reference = torch.load(two_ranks["out"] / "uninterrupted" / "final.pt", weights_only=True)
    assert final["losses"] == reference["losses"]  # same process count: exactly
    for name, value in reference["state"].items():
        assert torch.equal(final["state"][name], value)

    # The same checkpoint resumed by one process: the same global batches.
    model, history = torchrun_fit.train(tmp_path / "one")
    np.testing.assert_allclose(history.step_losses["loss"], reference["losses"]["loss"],
                               **TOLERANCE)
    for name, value in reference["state"].items():
        torch.testing.assert_close(model.state_dict()[name], value, **TOLERANCE)


def test_images_per_second_are_recorded(two_ranks):
    record = json.loads((next((two_ranks["out"] / "store").glob("cam/*/*/results.json"))
                         ).read_text())
    assert len(record["timings"]["images_per_second"]) == 1
    assert record["timings"]["images_per_second"][0] > 0
