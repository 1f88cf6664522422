import pytest
import torch

from coloc.data import collate_samples
from coloc.inca import INCAConfig
from coloc.inca.config import TABLE1
from coloc.inca.method import build_model, explain, make_step, run, split_metrics
from coloc.runs import dataset_split
from tests.test_data_real import make_wsol_cub

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=1,
            batch_size=4, pretrained=False)


def test_adl_and_inca_are_switches_of_one_config():
    base = INCAConfig.profile("synthetic", context_bias=0.5)
    assert (base.epochs, base.train_samples, base.image_size) == (10, 2000, 64)
    adl, inca = base.adl(), base.inca()
    assert (adl.method, inca.method) == ("adl", "inca")
    assert inca.replace(ca_weight=0.0).method == "variant"
    assert len({adl.hash(), inca.hash(), inca.replace(attention="channel").hash()}) == 3
    assert inca.name.startswith("inca-bias0.5")
    with pytest.raises(ValueError, match="unknown attention"):
        base.replace(attention="conv")
    with pytest.raises(ValueError, match="drop_rate must be in"):
        base.replace(drop_rate=1.5)


def test_paper_profile_takes_table1(tmp_path):
    make_wsol_cub(tmp_path)
    resnet = INCAConfig.profile("wsol-cub", data_root=str(tmp_path))
    assert (resnet.backbone, resnet.image_size, resnet.batch_size, resnet.lr) == (
        "resnet50", 224, 32, 1e-3)
    assert (resnet.drop_rate, resnet.gamma_fg, resnet.gamma_bg) == tuple(
        TABLE1["resnet50"].values())
    vgg = INCAConfig.profile("wsol-cub", data_root=str(tmp_path), backbone="vgg16_psynet")
    assert vgg.drop_rate == 0.33 and vgg.gamma_fg == 0.72
    assert INCAConfig.profile("wsol-cub", data_root=str(tmp_path), backbone="vgg16_psynet",
                              drop_rate=0.5).drop_rate == 0.5


def test_missing_wsol_data_fails_before_training(tmp_path):
    with pytest.raises(Exception, match="wsolevaluation"):
        INCAConfig.profile("wsol-cub", data_root=str(tmp_path / "nothing"))


def test_inca_step_sends_every_loss_and_adl_only_cls():
    torch.manual_seed(0)
    config = INCAConfig.profile("synthetic", **TINY).inca()
    model = build_model(config).train()
    batch = {"image": torch.randn(4, 3, 32, 32), "label": torch.tensor([0, 1, 2, 3])}
    out = make_step(config)(model, batch)
    assert set(out) == {"loss", "cls", "ca", "fc"}
    assert torch.isclose(out["loss"], out["cls"] + out["ca"] + out["fc"])
    out["loss"].backward()
    assert model.embeddings[0].weight.grad.abs().sum() > 0
    # z starts at zero (so f, g get no gradient at step 0); z learns from L_fc and L_cls
    assert model.blocks[0].nonlocal_block.z.weight.grad.abs().sum() > 0
    adl = make_step(config.adl())(build_model(config.adl()).train(), batch)
    assert set(adl) == {"loss", "cls"}


def test_a_tiny_inca_run_scores_cams_and_explains(tmp_path):
    config = INCAConfig.profile("synthetic", context_bias=0.5, **TINY).inca()
    result = run(config, tmp_path)
    assert result.directory.parent == tmp_path / "inca" / "synthetic"
    metrics = split_metrics(result, "val")
    assert set(metrics) == {"maxboxacc@0.3", "maxboxacc@0.5", "maxboxacc@0.7", "maxboxacc",
                            "gt_known", "top1_loc", "top1_cls"}
    assert metrics["top1_loc"] <= min(metrics["gt_known"], metrics["top1_cls"])
    assert (result.directory / "metrics-val.json").is_file()
    assert split_metrics(result, "val") == metrics  # cached
    batch = collate_samples([dataset_split(config, "val")[i] for i in range(2)])
    views = explain(result.model(), batch, config)
    assert [p["label"] for p in views["positions"]] == ["block2", "block3", "block4"]
    first = views["positions"][0]
    assert first["A"].shape == first["dfg"].shape == (2, 8, 8)
    assert torch.equal(first["fg"] + first["bg"] <= 1, torch.ones_like(first["fg"], dtype=bool))


def test_paper_profile_trains_on_a_miniature_wsol_tree(tmp_path):
    make_wsol_cub(tmp_path)
    config = INCAConfig.profile(
        "wsol-cub", data_root=str(tmp_path), image_size=32, epochs=1, batch_size=2,
        pretrained=False, device="cpu").inca()
    result = run(config, tmp_path / "results")
    assert result.config.backbone == "resnet50"
    assert set(result.test.max_box_acc_v2) == {"0.3", "0.5", "0.7", "mean"}
