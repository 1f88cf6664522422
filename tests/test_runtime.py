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


def test_select_device_auto_and_cpu():
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert select_device("auto").type == expected
    else:
        assert select_device("auto").type in {"cpu", "mps"}


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


def test_timer_accumulates_named_sections():
    timer = Timer()
    for _ in range(2):
        with timer("work"):
            pass
    assert set(timer.seconds) == {"work"}
    assert timer.seconds["work"] >= 0.0


def test_progress_can_be_switched_off_by_environment(monkeypatch):
    monkeypatch.setenv("COLOC_PROGRESS", "0")
    assert progress(range(3)).disable
    monkeypatch.setenv("COLOC_PROGRESS", "1")
    assert list(progress(range(3), file=open(os.devnull, "w"))) == [0, 1, 2]
