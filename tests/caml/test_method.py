"""CAML wiring: profiles, steps, maps and run reuse (coloc/caml/config.py, method.py)."""

import pytest
import torch

import coloc.caml as caml
from coloc import runs
from coloc.caml import (
    CPU_PROFILE,
    CAMLConfig,
    attention_maps,
    make_step,
    profile,
    run,
)
from coloc.data import DatasetNotFoundError

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=1,
            batch_size=4, pretrained=False)


def tiny(**changes) -> CAMLConfig:
    return profile("synthetic", **{**TINY, **changes})


# ----------------------------------------------------------------------------- profiles


def test_synthetic_gets_the_cpu_profile():
    config = profile("synthetic")
    assert (config.backbone, config.image_size, config.device) == ("small_cnn", 64, "cpu")
    assert config.pretrained and config.synthetic_pretraining.families == ("car", "aircraft", "dog")
    assert profile("synthetic-car").synthetic_pretraining.families == ("bird", "aircraft", "dog")


def test_real_dataset_gets_the_paper_profile(tmp_path):
    from tests.test_data_real import make_cars_devkit

    make_cars_devkit(tmp_path)
    config = profile("cars", data_root=str(tmp_path), device="cpu")
    assert (config.backbone, config.pretrained, config.image_size) == ("vgg16_psynet", True, 224)
    assert (config.batch_size, config.lr, config.momentum) == (64, 1e-3, 0.9)
    assert config.augment == "psynet" and config.synthetic_pretraining is None


def test_a_missing_real_dataset_fails_at_once_with_the_loaders_message(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="stanford_cars"):
        profile("cars", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="data_root"):
        profile("cub")


def test_a_run_can_be_named_without_its_data(tmp_path):
    """The summary chapter looks up recorded real-data runs on machines without the data."""
    from tests.test_data_real import make_cars_devkit

    config = profile("cars", data_root=str(tmp_path), device="cpu", require_data=False)
    make_cars_devkit(tmp_path)
    assert config.hash() == profile("cars", data_root=str(tmp_path), device="cpu").hash()


def test_unknown_values_are_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match="'ptap', 'caam'"):
        profile("synthetic", pooling="gem")
    with pytest.raises(ValueError, match="'cub', 'cars'"):
        profile("imagenet")
    with pytest.raises(ValueError, match="'rotation'"):
        profile("synthetic", pretext="jigsaw")
    with pytest.raises(TypeError, match="theta_bg"):
        profile("synthetic", theta=2.0)


def test_overrides_win_and_none_keeps_the_profile():
    config = profile("synthetic", lr=0.5, epochs=None, theta_bg=1.5)
    assert (config.lr, config.epochs, config.theta_bg) == (0.5, CPU_PROFILE["epochs"], 1.5)


def test_identity_ignores_paths_and_devices_and_names_the_method():
    config = tiny()
    assert config.replace(device="cpu", num_workers=3).hash() == config.hash()
    assert config.replace(theta_bg=2.0).hash() != config.hash()
    assert config.name == "caml-rotation"
    assert config.replace(use_caml=False, pooling="caam").name == "baseline-rotation"
    assert config.replace(use_cls=False).name == "variant-rotation-nocls"


# ----------------------------------------------------------------------------- steps


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return {"image": torch.randn(4, 3, 32, 32)}


@pytest.mark.parametrize(("changes", "keys"), [
    (dict(use_caml=False, pooling="caam"), {"loss", "cls"}),
    (dict(), {"loss", "cls", "caml", "hinge_active", "d_pos", "d_neg"}),
    (dict(use_cls=False), {"loss", "caml", "hinge_active", "d_pos", "d_neg"}),
])
def test_steps_return_the_expected_losses_and_reach_the_backbone(batch, changes, keys):
    config = tiny(**changes)
    torch.manual_seed(0)
    model = caml.build_model(config)
    losses = make_step(config)(model, batch)
    assert set(losses) == keys and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    first = model.backbone.features[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_caml_step_forwards_both_views_and_rms_keeps_the_hinge_open(batch):
    config = tiny(distance="rms")
    calls = []
    model = caml.build_model(config)
    model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    losses = make_step(config)(model, batch)
    assert calls == [8]  # original and transformed view in one batch
    assert losses["hinge_active"] == 1.0  # rms distances stay below the margin of 1


def rotation_labels(images: torch.Tensor, views: torch.Tensor) -> list[int]:
    """For each image, the quarter turn ``k`` with ``views[i] == rot90(images[i], k)``
    (exactly one for random images), found with torch.rot90, not coloc's transform."""
    labels = []
    for image, view in zip(images, views, strict=True):
        turns = [k for k in range(4) if torch.equal(view, torch.rot90(image, k, dims=(1, 2)))]
        assert len(turns) == 1, turns
        labels.append(turns[0])
    return labels


@pytest.mark.parametrize("use_caml", [True, False])
def test_step_forwards_the_rotated_images_and_classifies_their_labels(batch, use_caml):
    config = tiny() if use_caml else tiny(use_caml=False, pooling="caam")
    torch.manual_seed(0)
    model = caml.build_model(config)
    seen = {}

    def record(module, inputs, output):
        seen["input"] = inputs[0].detach().clone()
        seen["logits"] = output["logits"]["rotation"].detach()

    model.register_forward_hook(record)
    torch.manual_seed(3)  # the step draws the labels from the global generator
    losses = make_step(config)(model, batch)
    images = batch["image"]
    if use_caml:  # one forward of [originals, transformed views]
        assert torch.equal(seen["input"][:4], images)
        views, logits = seen["input"][4:], seen["logits"][4:]
    else:  # the baseline forwards the transformed views only
        views, logits = seen["input"], seen["logits"]
    labels = rotation_labels(images, views)
    assert len(set(labels)) > 1  # this seed draws several labels, not just the identity
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    assert torch.isclose(losses["cls"], expected)  # L_cls reads the transformed view


# ----------------------------------------------------------------------------- maps


def test_attention_maps_are_upsampled_and_min_max_normalized():
    model = caml.build_model(tiny())
    images = torch.randn(2, 3, 32, 32)
    maps = attention_maps(model, images)
    assert maps.shape == (2, 32, 32)
    assert torch.allclose(maps.amin(dim=(1, 2)), torch.zeros(2))
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(2))
    assert attention_maps(model, images, raw=True).shape == (2, 4, 4)  # stride 8


# ----------------------------------------------------------------------------- figures


def test_explain_returns_the_views_and_maps_the_loss_compares():
    config = tiny()
    torch.manual_seed(0)
    model = caml.build_model(config)
    images = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([1, 3])
    views = caml.explain(model, images, labels, config)
    with torch.no_grad():  # raw maps straight from the model, normalized by hand
        raw = [model(x)["attention"] for x in (images, views["transformed"])]
    a_ori, a_trans = (a / (a.amax(dim=(1, 2), keepdim=True) * 1.05) for a in raw)
    assert torch.allclose(views["A_ori"], a_ori) and torch.allclose(views["A_trans"], a_trans)
    for i, k in enumerate(labels.tolist()):
        assert torch.equal(views["transformed"][i], torch.rot90(images[i], k, dims=(1, 2)))
        assert torch.equal(views["A_trans2ori"][i], torch.rot90(views["A_trans"][i], -k))
        assert torch.equal(views["A_ori2trans"][i], torch.rot90(views["A_ori"][i], k))
    for name in ("ori", "trans"):  # Eq. 3 at theta 2.3, headroom 0.05: below 93.5 % of the peak
        a = views[f"A_{name}"]
        assert torch.equal(views[f"M_bg_{name}"], a < 0.935 * a.amax(dim=(1, 2), keepdim=True))
        assert torch.equal(views[f"A_{name}2bg"], a * views[f"M_bg_{name}"])
    assert views["valid"].all() and views["valid"].shape == (2, 4, 4)  # rotation loses nothing
    assert torch.equal(views["image"], images)


def test_triplet_distances_by_hand():
    def grid(*entries):
        a = torch.zeros(1, 4, 4)
        for row, col, value in entries:
            a[0, row, col] = value
        return a

    valid = torch.ones(1, 4, 4, dtype=torch.bool)
    valid[0, :, 3] = False  # the last column is not recovered: ignored in the ori triplet
    views = {
        "valid": valid,
        "A_trans2ori": grid((0, 0, 3.0), (0, 3, 5.0)),
        "A_ori": grid((1, 1, 4.0), (2, 3, 7.0)),
        "A_ori2bg": grid((2, 3, 7.0)),
        "A_ori2trans": grid((0, 0, 6.0)),
        "A_trans": grid((0, 0, 6.0), (3, 3, 8.0)),
        "A_trans2bg": grid((1, 0, 8.0)),
    }
    # ori: anchor (0,0)=3 vs positive (1,1)=4: 5; vs an empty negative: 3.
    # trans (no mask): anchor (0,0)=6 vs positive (0,0)=6, (3,3)=8: 8; vs (1,0)=8: 10.
    l2 = caml.triplet_distances(views, tiny())
    expected = {"ori": {"d_pos": 5.0, "d_neg": 3.0}, "trans": {"d_pos": 8.0, "d_neg": 10.0}}
    assert {k: {d: v.tolist() for d, v in pair.items()} for k, pair in l2.items()} == {
        k: {d: [v] for d, v in pair.items()} for k, pair in expected.items()}
    rms = caml.triplet_distances(views, tiny(distance="rms"))  # over sqrt(16) entries
    for frame, pair in expected.items():
        for name, value in pair.items():
            assert rms[frame][name].item() == pytest.approx(value / 4)


# ----------------------------------------------------------------------------- run reuse


def test_a_recorded_run_loads_force_retrains_and_other_configs_differ(tmp_path, monkeypatch):
    config = tiny()
    first = run(config, tmp_path)
    assert (first.directory / "results.json").is_file()
    assert first.directory.parent == tmp_path / "caml" / "synthetic"
    trained_maps = attention_maps(first.model(), torch.zeros(1, 3, 32, 32) + 0.5)

    calls = []
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    again = run(config, tmp_path)
    assert calls == [] and again.record == first.record
    assert torch.equal(attention_maps(again.model(), torch.zeros(1, 3, 32, 32) + 0.5),
                       trained_maps)  # the loaded checkpoint is the trained model

    forced = run(config, tmp_path, force=True)
    assert calls == [1] and forced.test.corloc == first.test.corloc  # deterministic
    other = run(config.replace(theta_bg=2.0), tmp_path)
    assert calls == [1, 1] and other.directory != first.directory


def test_paper_backbone_wiring_runs_on_cpu_at_tiny_size(tmp_path):
    config = tiny(backbone="vgg16_psynet", pooling="ptap", train_samples=4, test_samples=2)
    result = run(config, tmp_path)
    assert set(result.test.corloc) == {"0.3", "0.5", "0.7", "mean"}
    assert len(result.curves["step_losses"]["caml"]) == 1
    assert len(result.curves["probe_maps"]) == 2  # before training and after epoch 1


def test_baseline_is_caam_with_the_classification_loss_only():
    config = profile("synthetic", pretext="hflip", theta_bg=2.0)
    baseline = config.baseline()
    assert (baseline.use_caml, baseline.use_cls, baseline.pooling) == (False, True, "caam")
    assert baseline.method == "baseline" and baseline.pretext == "hflip"
    assert baseline.replace(use_caml=True, pooling="ptap") == config
