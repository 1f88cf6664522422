"""The shared run configuration (coloc/runs.py): one profile mechanism for every paper,
a chapter's parameters cell passed as it is, optimization fields validated once."""

import dataclasses
import json
import shutil
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from coloc import cam, caml, contracam, runs, runtime
from coloc.cam import CAMConfig
from coloc.runs import Range, RunConfig, RunFailedError
from coloc.runtime import RunFileError
from coloc.train import TrainConfig


def test_from_parameters_takes_the_fields_of_a_parameters_cell_and_ignores_the_rest():
    cell = {"dataset": "synthetic", "epochs": 2, "theta_bg": None, "output_dir": "x",
            "force": True, "ablations": False, "plt": object()}
    config = caml.from_parameters(cell)
    assert config == caml.profile("synthetic", epochs=2)  # None keeps the profile's value
    assert caml.from_parameters(cell, seed=3).seed == 3


def test_every_training_field_reaches_the_train_config():
    config = caml.profile("synthetic", epochs=3, lr=0.5, milestones=[2], gamma=0.3, seed=4)
    train = config.train_config("cpu")
    for f in dataclasses.fields(TrainConfig):
        if f.name not in ("device", "extra", "schedule"):
            assert getattr(train, f.name) == getattr(config, f.name), f.name
    assert train.milestones == (2,) and train.extra == {"run": config.hash()}
    # a field the paper's config does not define keeps TrainConfig's default (and the
    # config's identity), one it defines reaches the loop
    assert not hasattr(config, "schedule") and train.schedule == "step"
    assert contracam.profile("synthetic", schedule="step").train_config("cpu").schedule == "step"
    assert contracam.profile("synthetic").train_config("cpu").schedule == "cosine"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("lr", 0.0, "lr must be > 0, got 0.0"),
    ("select", "best", "select must be 'last' or 'val:<metric>', got 'best'"),
    ("image_size", 0, "image_size must be >= 1, got 0"),
    ("backbone", "vgg19", "unknown backbone 'vgg19'; allowed: 'small_cnn'"),
])
def test_bad_values_are_refused_with_the_allowed_ones_for_every_paper(field, value, message):
    for config_class in (caml.CAMLConfig, CAMConfig):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            config_class.profile("synthetic", **{field: value})


def test_each_paper_keeps_its_runs_in_its_own_folder():
    assert (caml.CAMLConfig.PAPER, CAMConfig.PAPER) == ("caml", "cam")
    shared = {f.name for f in dataclasses.fields(RunConfig)}
    assert shared <= {f.name for f in dataclasses.fields(caml.CAMLConfig)}
    assert shared <= {f.name for f in dataclasses.fields(CAMConfig)}


# ----------------------------------------------------------------------------- hardening (#16)


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 2.5}, "epochs: expected an integer, got 2.5"),
    ({"corloc_threshold": 1.5}, "corloc_threshold must be in [0, 1), got 1.5"),
    ({"select": "val:nosuch"}, "select must be 'last' or 'val:<metric>', got 'val:nosuch'"),
    ({"theta_bg": float("nan")}, "theta_bg: expected a finite number, got nan"),
    ({"momentum": -1}, "momentum must be in [0, 1), got -1"),
    ({"milestones": "60"}, "milestones: expected a tuple (or list) of int, got '60'"),
    ({"pretrained": "False"}, "pretrained: expected True or False, got 'False'"),
    ({"lr": float("inf")}, "lr: expected a finite number, got inf"),
    ({"batch_size": True}, "batch_size: expected an integer, got True"),
    ({"seed": -1}, "seed must be >= 0, got -1"),
    ({"image_size": "64"}, "image_size: expected an integer, got '64'"),
    ({"weight_decay": -1e-4}, "weight_decay must be >= 0, got -0.0001"),
    ({"gamma": 0.0}, "gamma must be > 0, got 0.0"),
    ({"milestones": [0]}, "milestones must be >= 1, got (0,) (epochs)"),
    ({"milestones": [60.5]}, "milestones: element 0: expected an integer, got 60.5"),
    ({"train_samples": 0}, "train_samples must be >= 1, got 0 (images)"),
    ({"topk_ratio": 0.0}, "topk_ratio must be in (0, 1], got 0.0"),
    ({"theta_bg": 0.5}, "theta_bg must be >= 1, got 0.5"),
    ({"headroom": 0.0}, "headroom must be > 0, got 0.0"),
    ({"data_root": 3}, "data_root: expected str | None, got 3"),
    ({"select": "val:corloc@0.55"}, "did you mean 'val:corloc@0.5'?"),
])
def test_bad_configuration_is_refused_at_the_door_naming_field_and_allowed(changes, message):
    with pytest.raises(ValueError) as error:
        caml.profile("synthetic", **changes)
    assert message in str(error.value)


def test_a_misspelt_parameter_names_the_nearest_field():
    with pytest.raises(TypeError, match="unknown parameters \\['epoch'\\]; did you mean 'epochs'"):
        caml.profile("synthetic", epoch=1)


@dataclasses.dataclass(frozen=True)
class ToyConfig(RunConfig):
    """A paper config as a new chapter would write it: fields, CHOICES and RANGES."""

    alpha: float = 0.5
    steps: int = 3
    mode: str = "a"
    kernel: int | None = None
    size: tuple[int, float] = (1, 0.5)
    norm: Literal["l1", "l2"] = "l2"

    PAPER: ClassVar[str] = "toy"
    CHOICES: ClassVar[dict] = {**RunConfig.CHOICES, "mode": ("a", "b")}
    RANGES: ClassVar[dict] = {**RunConfig.RANGES, "alpha": Range(0, 1), "kernel": Range(1)}

    def __post_init__(self) -> None:
        super().__post_init__()


@pytest.mark.parametrize(("changes", "message"), [
    ({"alpha": "0.5"}, "alpha: expected a number, got '0.5'"),
    ({"alpha": 2.0}, "alpha must be in [0, 1], got 2.0"),
    ({"steps": 1.5}, "steps: expected an integer, got 1.5"),
    ({"mode": "c"}, "unknown mode 'c'; allowed: 'a', 'b'"),
    ({"kernel": 0}, "kernel must be >= 1, got 0"),
    ({"size": (1,)}, "size: expected 2 elements, got (1,)"),
    ({"size": (1, "x")}, "size: element 1: expected a number, got 'x'"),
    ({"norm": "l3"}, "norm: expected one of 'l1', 'l2', got 'l3'"),
    ({"epochs": 0}, "epochs must be >= 1, got 0"),
])
def test_every_subclass_is_validated_from_its_annotations(changes, message):
    assert ToyConfig.profile("synthetic", steps=4, kernel=3).steps == 4
    assert ToyConfig.from_parameters({"dataset": "synthetic", "mode": "b"}).mode == "b"
    with pytest.raises(ValueError) as error:
        ToyConfig.profile("synthetic", **changes)
    assert message in str(error.value)


# Run folders: one tiny recorded CAML run, copied into each test's folder.

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=1,
            batch_size=4, pretrained=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("recorded")
    return root, caml.run(caml.profile("synthetic", **TINY), root)


@pytest.fixture
def copy(recorded, tmp_path):
    root, result = recorded
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return result.config, tmp_path / result.directory.relative_to(root)


def never_trains(monkeypatch):
    monkeypatch.setattr(runs, "fit", lambda *a, **k: pytest.fail("retrained"))


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda text: text[: len(text) // 2], "is not valid JSON"),
    (lambda text: "", "is not valid JSON"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "metrics"}),
     "lacks the entries ['metrics']"),
    (lambda text: json.dumps({**json.loads(text), "metrics": {}}),
     "lacks the test metrics"),
])
def test_a_damaged_results_file_is_named_with_the_remedy(copy, monkeypatch, damage, problem):
    config, directory = copy
    path = directory / runs.RESULTS_FILE
    path.write_text(damage(path.read_text()))
    never_trains(monkeypatch)
    for attempt in (caml.find_run, caml.run):
        with pytest.raises(RunFileError) as error:
            attempt(config, directory.parents[2])
        assert str(path) in str(error.value) and problem in str(error.value)
        assert "force=True" in str(error.value)


def test_a_run_whose_checkpoint_was_deleted_is_not_silently_retrained(copy, monkeypatch):
    config, directory = copy
    (directory / "checkpoint.pt").unlink()
    recorded = json.loads((directory / runs.RESULTS_FILE).read_text())
    never_trains(monkeypatch)
    with pytest.raises(RunFileError, match="checkpoint.pt: is missing, but the run's results"):
        caml.run(config, directory.parents[2])
    assert json.loads((directory / runs.RESULTS_FILE).read_text()) == recorded  # kept
    monkeypatch.undo()
    assert caml.run(config, directory.parents[2], force=True).record["status"] == "complete"


def test_a_truncated_checkpoint_names_its_path_on_load_and_on_resume(copy):
    config, directory = copy
    checkpoint = directory / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    found = caml.find_run(config, directory.parents[2])
    with pytest.raises(RunFileError, match="checkpoint.pt: is not a readable torch file"):
        found.model()
    (directory / runs.RESULTS_FILE).unlink()  # an interrupted run: resumes from the checkpoint
    with pytest.raises(RunFileError, match=f"delete {checkpoint} to train from the start"):
        caml.run(config, directory.parents[2])


def test_a_truncated_probe_maps_file_names_its_path(copy):
    config, directory = copy
    (directory / runs.RESULTS_FILE).unlink()
    probes = directory / "probes.json"
    probes.write_text(probes.read_text()[:50])
    with pytest.raises(RunFileError, match="probes.json: is not valid JSON"):
        caml.run(config, directory.parents[2])


def test_the_run_store_writes_every_file_atomically(tmp_path, monkeypatch):
    written = []
    real = runtime.atomic_write_bytes
    monkeypatch.setattr(runtime, "atomic_write_bytes",
                        lambda path, data: written.append(Path(path).name) or real(path, data))
    result = caml.run(caml.profile("synthetic", **TINY), tmp_path)
    assert {p.name for p in result.directory.iterdir()} == set(written)
    assert {"results.json", "probes.json", "checkpoint.pt"} <= set(written)


def test_a_diverged_run_is_recorded_as_failed_and_not_retrained(tmp_path, monkeypatch):
    config = caml.profile("synthetic", **{**TINY, "epochs": 2, "lr": 1e9})
    with pytest.raises(RunFailedError, match="diverged: .* not finite"):
        caml.run(config, tmp_path)
    path = runs.run_directory(config, tmp_path) / runs.RESULTS_FILE
    record = json.loads(path.read_text(),
                        parse_constant=lambda token: pytest.fail(f"bare {token}"))
    assert record["status"] == "failed" and "not finite" in record["error"]
    never_trains(monkeypatch)
    with pytest.raises(RunFailedError, match="recorded as failed: .* force=True"):
        caml.run(config, tmp_path)


def test_a_non_finite_loss_is_recorded_as_failed(tmp_path):
    def nan_step(config):
        def step(model, batch):
            return {"loss": sum(p.sum() for p in model.parameters()) * float("nan")}
        return step

    method = dataclasses.replace(caml.METHOD, make_step=nan_step)
    config = caml.profile("synthetic", **TINY)
    with pytest.raises(RunFailedError, match="loss became nan in epoch 1"):
        runs.run(method, config, tmp_path)
    record = runtime.read_results(runs.run_directory(config, tmp_path) / runs.RESULTS_FILE)
    assert record["status"] == "failed" and record["metrics"] == {}
def test_a_methods_map_scores_are_recorded_on_val_and_can_select_the_epoch(tmp_path):
    seen_epochs = []

    def peak(maps):  # a label-free score of the maps
        seen_epochs.append(1)
        return maps.flatten(1).mean(dim=1)

    method = dataclasses.replace(cam.METHOD, map_scores={"peak": peak})
    class PeakConfig(CAMConfig):  # a config that declares the score selectable
        SELECTS = (*CAMConfig.SELECTS, "val:peak")

    config = PeakConfig.profile("synthetic", image_size=32, train_samples=8, val_samples=4,
                                test_samples=4, epochs=2, batch_size=4, pretrained=False,
                                select="val:peak")
    result = runs.run(method, config, tmp_path)
    val = result.curves["val"]
    assert [set(m) >= {"peak", "corloc@0.5"} for m in val] == [True, True] and seen_epochs
    best = max(range(2), key=lambda e: val[e]["peak"])
    assert result.record["metrics"]["selected_epoch"] == best
