"""The shared run configuration (coloc/runs.py): one profile mechanism for every paper,
a chapter's parameters cell passed as it is, optimization fields validated once."""

import dataclasses

import pytest

from coloc import cam, caml, runs
from coloc.cam import CAMConfig
from coloc.runs import RunConfig
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
        if f.name not in ("device", "extra"):
            assert getattr(train, f.name) == getattr(config, f.name), f.name
    assert train.milestones == (2,) and train.extra == {"run": config.hash()}


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


def test_a_methods_map_scores_are_recorded_on_val_and_can_select_the_epoch(tmp_path):
    seen_epochs = []

    def peak(maps):  # a label-free score of the maps
        seen_epochs.append(1)
        return maps.flatten(1).mean(dim=1)

    method = dataclasses.replace(cam.METHOD, map_scores={"peak": peak})
    config = cam.profile("synthetic", image_size=32, train_samples=8, val_samples=4,
                         test_samples=4, epochs=2, batch_size=4, pretrained=False,
                         select="val:peak")
    result = runs.run(method, config, tmp_path)
    val = result.curves["val"]
    assert [set(m) >= {"peak", "corloc@0.5"} for m in val] == [True, True] and seen_epochs
    best = max(range(2), key=lambda e: val[e]["peak"])
    assert result.record["metrics"]["selected_epoch"] == best
