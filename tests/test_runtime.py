"""Tests for coloc.runtime: seeding, device selection, atomic results writer."""

import json
import os

import numpy as np
import pytest
import torch

from coloc import __version__
from coloc.runtime import (
    Timer,
    atomic_write_bytes,
    config_hash,
    progress,
    read_results,
    seed_everything,
    select_device,
    write_results,
)


def test_seed_everything_repeats_random_streams():
    draws = []
    for _ in range(2):
        seed_everything(3, deterministic=False)
        draws.append((np.random.rand(3), torch.rand(3)))  # noqa: NPY002 - the legacy global
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    assert torch.equal(draws[0][1], draws[1][1])


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_select_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert select_device("auto") == torch.device(expected)
    assert select_device("cpu") == torch.device("cpu")
    if cuda:
        assert select_device("cuda") == torch.device("cuda")
    if not mps:
        with pytest.raises(ValueError, match="mps"):
            select_device("mps")


def test_select_device_rejects_unknown_names_with_the_allowed_ones():
    with pytest.raises(ValueError, match="auto"):
        select_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_select_device_refuses_missing_cuda():
    with pytest.raises(ValueError, match="cuda"):
        select_device("cuda")


def test_write_results_records_config_metrics_version_and_roundtrips(tmp_path):
    path = tmp_path / "results" / "caml" / "synthetic" / "run.json"
    config = {"lr": 0.01, "epochs": 2}
    metrics = {"corloc": {0.5: np.float64(56.0)}, "curve": torch.tensor([1.0, 2.0])}
    record = write_results(path, config, metrics, curves={"loss": [1.0, 0.5]},
                           timings={"train": 1.5})
    loaded = read_results(path)
    assert loaded == record
    assert loaded["metrics"]["corloc"] == {"0.5": 56.0}
    assert loaded["metrics"]["curve"] == [1.0, 2.0]
    assert loaded["version"] == __version__
    assert loaded["config_hash"] == config_hash(config)
    assert json.loads(path.read_text())["timings"]["train"] == 1.5


def test_config_hash_depends_on_every_value():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_bytes(path, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, object())  # not bytes: the write fails midway
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary left behind


class FakeClock:
    """Stands in for the ``time`` module of the code under test: ``perf_counter`` returns
    the given readings in turn."""

    def __init__(self, readings):
        self.readings = iter(readings)

    def perf_counter(self) -> float:
        return next(self.readings)


def test_timer_accumulates_named_sections(monkeypatch):
    clock = iter([10.0, 10.5, 20.0, 20.25, 30.0, 31.0])  # start, end of each section
    monkeypatch.setattr("coloc.runtime.time", FakeClock(clock))
    timer = Timer()
    for _ in range(2):
        with timer("work"):
            pass
    with pytest.raises(KeyError), timer("failing"):  # a section that raises still counts
        raise KeyError("x")
    assert timer.seconds == {"work": 0.75, "failing": 1.0}


def test_progress_can_be_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("COLOC_PROGRESS", "0")
    assert progress(range(3)).disable
    monkeypatch.setenv("COLOC_PROGRESS", "1")
    assert list(progress(range(3), file=open(os.devnull, "w"))) == [0, 1, 2]
