"""WeightMap through the shared runner: f first (the CAM baseline for Method I), g over
it frozen, S recorded on val every epoch and selecting the epoch; the paper profile's
wiring on a miniature tree (no downloads)."""

import pytest
import torch

from coloc import cam, runs
from coloc import weightmap as wm
from coloc.data import DatasetNotFoundError, collate_samples
from coloc.runs import dataset_split
from tests.test_data_real import make_flowers

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=2,
            batch_size=4, f_epochs=1, f_batch_size=4, f_pretrained=False,
            f_train_samples=8)


def test_the_cpu_profiles_f_is_the_shared_cam_baseline():
    config = wm.profile("synthetic")
    assert config.f_config().hash() == cam.profile("synthetic", context_bias=0.5).hash()
    assert config.corloc_threshold == 0.1  # Eq. 5: tau = max/10
    assert config.select == "val:stopping_score"
    two = wm.profile("synthetic", method="II")
    assert isinstance(two.f_config(), wm.SiameseConfig) and two.name == "method2"
    assert two.replace(use_reg=False).name == "method2-noreg"
    with pytest.raises(ValueError, match="Method II's terms"):
        wm.profile("synthetic", use_inner=False)


def test_method1_trains_g_over_the_frozen_cam_run_and_selects_by_s(tmp_path):
    config = wm.profile("synthetic", **TINY)
    result = wm.run(config, tmp_path)
    f_run = runs.find_run(cam.METHOD, config.f_config(), tmp_path)  # trained first
    assert f_run is not None and f_run.directory.parent == tmp_path / "cam" / "synthetic"
    assert result.directory.parent == tmp_path / "weightmap" / "synthetic"
    model = result.model()
    for name, value in f_run.model().state_dict().items():  # f unchanged by g's training
        assert torch.equal(model.f.state_dict()[name], value), name
    val = result.curves["val"]
    assert len(val) == 2 and all(0 <= m["stopping_score"] <= 1 for m in val)
    scores = [m["stopping_score"] for m in val]
    assert result.record["metrics"]["selected_epoch"] == scores.index(max(scores))
    assert set(result.curves["probe_maps"]) == {"-1", "0", "1"}
    batch = collate_samples([dataset_split(config, "test")[i] for i in range(2)])
    maps = wm.score_maps(model, batch)
    assert maps.shape == (2, 32, 32) and 0 < float(maps.min()) and float(maps.max()) < 1
    assert {"ce", "reg", "coverage"} <= set(result.curves["epoch_losses"])


def test_method2_trains_its_siamese_f_first_and_logs_its_terms(tmp_path):
    config = wm.profile("synthetic", method="II", use_outer=False, **TINY)
    result = wm.run(config, tmp_path)
    siamese = list((tmp_path / "weightmap" / "synthetic").glob("siamese-bias0.5-*"))
    assert len(siamese) == 1 and result.directory.name.startswith("method2-noouter-")
    assert {"inner", "reg"} <= set(result.curves["epoch_losses"])
    assert "outer" not in result.curves["epoch_losses"]
    assert result.model().frozen(torch.randn(1, 3, 32, 32)).shape == (1, 200)


def test_paper_profile_settings_and_missing_data(tmp_path):
    config = wm.profile("flowers", require_data=False)
    assert (config.image_size, config.batch_size, config.lr, config.epochs) == (224, 128, 1e-4, 100)
    assert (config.f_batch_size, config.f_lr, config.f_epochs, config.f_milestones) == (
        16, 1e-3, 200, (80, 160))
    assert (config.encoder, config.backbone, config.augment) == ("resnet18", "resnet18", "wsol")
    tiny = wm.profile("tinyimagenet", require_data=False, select="last")
    assert (tiny.epochs, tiny.weight_decay, tiny.backbone) == (1000, 5e-5, "resnet50")
    for dataset in ("cars", "tinyimagenet"):  # no val split to select the epoch on
        with pytest.raises(ValueError, match="no val split"):
            wm.profile(dataset, require_data=False)
    with pytest.raises(DatasetNotFoundError, match="flowers|Flowers"):
        wm.profile("flowers", data_root=str(tmp_path / "nowhere"))


def test_paper_profile_wiring_on_a_miniature_flowers_tree(tmp_path):
    (tmp_path / "data").mkdir()
    make_flowers(tmp_path / "data")
    config = wm.profile("flowers", data_root=str(tmp_path / "data"), image_size=64,
                        epochs=1, batch_size=2, f_epochs=1, f_batch_size=2,
                        f_pretrained=False, encoder="small", device="cpu")
    result = wm.run(config, tmp_path / "results")
    assert result.config.f_config().backbone == "resnet18"  # the paper's f (Sec. 4)
    assert len(result.curves["val"]) == 1 and "stopping_score" in result.curves["val"][0]
