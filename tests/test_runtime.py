"""Tests for coloc.runtime: seeding, device selection, atomic results writer."""

import json
import os

import numpy as np
import pytest
import torch

from coloc import __version__
from coloc.runtime import (
    RunFileError,
    Timer,
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    check_parameters,
    config_hash,
    load_torch,
    progress,
    read_json,
    read_results,
    seed_everything,
    select_device,
    unknown_parameters,
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


# ----------------------------------------------------------------------------- hardening (#16)


def strict_loads(text: str):
    """json.loads that refuses the NaN/Infinity tokens strict JSON parsers reject."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"bare {token} token"))


def test_non_finite_metrics_are_recorded_as_failed_in_strict_json(tmp_path):
    path = tmp_path / "results.json"
    record = write_results(path, {"lr": 1e9}, {"test": {"corloc": {"0.5": float("nan")}}},
                           curves={"loss": [1.0, float("inf")]})
    loaded = strict_loads(path.read_text())
    assert loaded == record and loaded["status"] == "failed"
    assert loaded["metrics"]["test"]["corloc"]["0.5"] is None
    assert loaded["curves"]["loss"] == [1.0, None]
    assert "metrics.test.corloc.0.5 = nan" in loaded["error"]
    assert "curves.loss[1] = inf" in loaded["error"]
    ok = write_results(path, {"lr": 0.1}, {"test": {"corloc": {"0.5": 50.0}}})
    assert ok["status"] == "complete" and "error" not in ok


@pytest.mark.parametrize(("content", "problem"), [
    (b'{"config": {}, "metr', "is not valid JSON"),  # truncated
    (b"\x00\x00\x00", "is not valid JSON"),  # a disk block of zeros
    (b"<html>not json</html>", "is not valid JSON"),
    (b'{"config": {}}', "lacks the entries ['metrics']"),
    (b'[1, 2]', "lacks the entries ['config', 'metrics']"),
    (b"\xff\xfe{}", "cannot be read"),  # not UTF-8
])
def test_a_damaged_results_file_names_its_path_and_the_remedy(tmp_path, content, problem):
    path = tmp_path / "run" / "results.json"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(RunFileError) as error:
        read_results(path)
    message = str(error.value)
    assert str(path) in message and problem in message
    assert "force=True" in message and f"delete {path.parent}" in message
    assert error.value.path == path


def test_a_truncated_torch_file_names_its_path(tmp_path):
    path = tmp_path / "checkpoint.pt"
    atomic_save_torch(path, {"w": torch.ones(64)})
    assert torch.equal(load_torch(path)["w"], torch.ones(64))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RunFileError, match="checkpoint.pt: is not a readable torch file"):
        load_torch(path)
    with pytest.raises(RunFileError, match="nowhere.pt: is missing"):
        load_torch(tmp_path / "nowhere.pt")


def test_the_json_writer_refuses_nan_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "probes.json"
    atomic_write_json(path, {"0": [0.5]})
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(path, {"0": [float("nan")]})
    assert read_json(path) == {"0": [0.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["probes.json"]


PARAMETERS_CELL = 'dataset = "synthetic"  # a comment\nepochs = None\nseed: int = 0\n'


@pytest.mark.parametrize(("injected", "unknown"), [
    ("# Parameters\nepoch = 1\n", "'epoch' (did you mean 'epochs'?)"),
    ("# Parameters\nseeds = 2\nepochs = 1\n", "'seeds' (did you mean 'seed'?)"),
    ('# Parameters\ndataset = "cub"\nzzz = 3\n', "'zzz':"),
])
def test_a_papermill_parameter_the_parameters_cell_lacks_stops_the_chapter(injected, unknown):
    cells = ["", PARAMETERS_CELL, injected, "import warnings"]
    with pytest.raises(TypeError) as error:
        check_parameters(cells)
    assert f"unknown parameter {unknown}" in str(error.value)
    assert "Known parameters: dataset, epochs, seed" in str(error.value)


def test_known_papermill_parameters_and_plain_kernels_pass():
    check_parameters(["", PARAMETERS_CELL, "# Parameters\nepochs = 1\nseed = 2\n", "x = 1"])
    check_parameters(["", PARAMETERS_CELL, "x = 1"])  # no papermill: nothing to check
    check_parameters()  # outside IPython
    assert unknown_parameters(["", PARAMETERS_CELL, "# Parameters\nepochs = 1\n"]) == []
