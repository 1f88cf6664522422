"""ContraCAM wiring: profiles, steps, run reuse, debiasing priors, paper-profile wiring."""

import numpy as np
import pytest
import torch

from coloc import contracam
from coloc.contracam import ContraCAMConfig, make_step, mask_miou, profile, run, score_maps
from coloc.data import DatasetNotFoundError, collate_samples
from coloc.metrics import mask_miou as miou_of_maps
from coloc.runs import dataset_split

TINY = dict(image_size=32, train_samples=16, val_samples=8, test_samples=8, epochs=1,
            batch_size=8, queue_size=16, proj_hidden=16, proj_dim=8, byol_hidden=16,
            byol_dim=8, blur_kernel=3)


def tiny(**changes) -> ContraCAMConfig:
    return profile("synthetic", **{**TINY, **changes})


def tiny_batch(config: ContraCAMConfig) -> dict:
    data = dataset_split(config, "train", train=True)
    return collate_samples([data[i] for i in range(config.batch_size)])


def test_synthetic_gets_the_cpu_profile_from_scratch():
    config = profile("synthetic")
    assert (config.backbone, config.image_size, config.pretrained) == ("small_cnn", 64, False)
    assert (config.lr, config.schedule, config.crop_min_scale) == (0.03, "cosine", 0.08)
    assert config.synthetic_pretraining is None and config.name == "moco-none"
    assert config.p_mix == 0.4 and config.replace(ssl="byol").p_mix == 0.3
    assert config.train_config("cpu").schedule == "cosine"
    assert contracam.build_model(config).encoder.projector[0].out_features == 256


def test_multi_object_scenes_draw_one_to_three_objects_of_every_family():
    config = tiny(scene="multi", train_samples=24)
    assert config.name == "moco-none-multi"
    data = dataset_split(config, "train", train=True)
    counts = {len(data[i]["boxes"]) for i in range(len(data))}
    families = {data[i]["family"] for i in range(len(data))}
    assert counts <= {1, 2, 3} and len(counts) > 1 and len(families) > 1


def test_paper_profile_on_miniature_trees(tmp_path):
    from tests.test_data_real import make_coco, make_cub

    make_cub(tmp_path)
    make_coco(tmp_path)
    cub = profile("cub", data_root=str(tmp_path), device="cpu")
    assert (cub.backbone, cub.image_size, cub.batch_size, cub.epochs) == (
        "resnet18", 224, 256, 2000)
    assert (cub.queue_size, cub.moco_momentum, cub.temperature) == (65536, 0.999, 0.2)
    assert profile("coco", data_root=str(tmp_path), device="cpu").epochs == 800
    assert profile("coco", data_root=str(tmp_path), device="cpu", epochs=3).epochs == 3
    with pytest.raises(DatasetNotFoundError, match="flowers|102"):
        profile("flowers", data_root=str(tmp_path))


def test_paper_wiring_runs_on_cpu_at_tiny_size(tmp_path):
    """COCO through pycocotools, ResNet18, the expansion trick and iterations, BYOL."""
    from tests.test_data_real import make_coco

    make_coco(tmp_path / "data")
    config = profile("coco", data_root=str(tmp_path / "data"), device="cpu", image_size=64,
                     epochs=1, batch_size=2, queue_size=4, proj_hidden=8, byol_hidden=8,
                     byol_dim=8, blur_kernel=3, ssl="byol", expand=True, iterations=2)
    result = run(config, tmp_path / "results")
    assert set(result.test.max_box_acc_v2) == {"0.3", "0.5", "0.7", "mean"}
    assert len(result.curves["step_losses"]["loss"]) == 1
    assert np.asarray(result.curves["probe_maps"]["0"]).shape[1:] == (2, 2)  # 64 px / 32


def test_unknown_and_inconsistent_values_are_rejected():
    for name, bad in (("ssl", "simclr"), ("debias", "crop"), ("scene", "many"),
                      ("schedule", "linear")):
        with pytest.raises(ValueError, match=name):
            profile("synthetic", **{name: bad})
    with pytest.raises(ValueError, match="ResNet"):
        profile("synthetic", expand=True)
    with pytest.raises(ValueError, match="queue_size"):
        profile("synthetic", queue_size=8)
    with pytest.raises(ValueError, match="iterations"):
        profile("synthetic", iterations=0)
    with pytest.raises(ValueError, match="multi"):
        profile("synthetic-car", scene="multi")


@pytest.mark.parametrize("ssl", ["moco", "byol"])
@pytest.mark.parametrize("debias", ["none", "oa-crop-gt", "bg-hardmix", "mixup", "cutmix"])
def test_every_step_trains_the_query_encoder(ssl, debias):
    config = tiny(ssl=ssl, debias=debias)
    torch.manual_seed(0)
    model = contracam.build_model(config).train()
    losses = make_step(config)(model, tiny_batch(config))
    assert set(losses) == {"loss"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert model.encoder.backbone.features[0].weight.grad.abs().sum() > 0


def test_oa_crop_gt_boxes_get_the_papers_margin():
    config = tiny(debias="oa-crop-gt")
    batch = {"image": torch.zeros(2, 3, 32, 32), "index": torch.arange(2),
             "boxes": [torch.tensor([[10.0, 10.0, 20.0, 15.0]]), torch.zeros(0, 4)]}
    boxes = contracam.method.crop_boxes(config, batch, None)
    assert boxes[0].tolist() == [[8.0, 9.0, 22.0, 16.0]] and boxes[1].shape == (0, 4)
    priors = contracam.Priors(torch.zeros(2, 32, 32, dtype=torch.uint8),
                              [torch.ones(1, 4), torch.zeros(0, 4)])
    cam_boxes = contracam.method.crop_boxes(config.replace(debias="oa-crop-contracam"),
                                            {**batch, "index": torch.tensor([1, 0])}, priors)
    assert cam_boxes[0].shape == (0, 4) and cam_boxes[1].tolist() == [[1.0] * 4]


def test_steps_that_need_contracam_maps_refuse_to_start_without_them():
    with pytest.raises(ValueError, match="contracam.run"):
        make_step(tiny(debias="bg-mixup"))


def test_a_recorded_run_loads_with_its_map_switches(tmp_path, monkeypatch):
    from coloc import runs

    config = tiny(clamp_weights=False)
    first = run(config, tmp_path)
    assert first.directory.parent == tmp_path / "contracam" / "synthetic"
    calls = []
    real_fit = runs.fit
    monkeypatch.setattr(runs, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    again = run(config, tmp_path)
    assert calls == [] and again.record == first.record
    model = again.model()
    assert model.map_options == {"clamp_weights": False, "iterations": 1, "expand": False}
    batch = tiny_batch(config)
    assert torch.equal(score_maps(model, batch), score_maps(model, batch, clamp_weights=False))
    assert not torch.equal(score_maps(model, batch), score_maps(model, batch,
                                                                clamp_weights=True))


def test_mask_miou_scores_the_models_maps_against_the_gt_masks(tmp_path):
    config = tiny()
    model = run(config, tmp_path).model()
    val = dataset_split(config, "val")
    batch = collate_samples([val[i] for i in range(len(val))])
    expected = miou_of_maps(score_maps(model, batch).numpy(), batch["mask"].numpy())
    assert mask_miou(model, val, batch_size=len(val)) == pytest.approx(expected)


def test_bg_mixup_run_trains_the_vanilla_model_first_and_uses_its_maps(tmp_path):
    config = tiny(debias="bg-mixup", mix_prob=1.0)
    result = run(config, tmp_path)
    vanilla = contracam.find_run(config.vanilla(), tmp_path)
    assert vanilla is not None and vanilla.directory != result.directory
    priors = contracam.precompute_priors(vanilla.model(),
                                         dataset_split(config, "train", train=True), config)
    assert priors.maps.shape == (16, 32, 32) and priors.maps.dtype == torch.uint8
    assert len(priors.boxes) == 16 and all(b.shape[1] == 4 for b in priors.boxes)
