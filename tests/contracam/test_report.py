"""The ContraCAM chapter's measurements (coloc/contracam/report.py) on tiny cases."""

import numpy as np
import pytest
import torch

from coloc import cam, contracam
from coloc.contracam import report
from coloc.contracam.linear import fit_probe, linear_evaluation
from coloc.data.synthetic import VARIANTS

TINY = dict(image_size=32, train_samples=16, val_samples=8, test_samples=8, epochs=1,
            batch_size=8, queue_size=16, proj_hidden=16, proj_dim=8, blur_kernel=3)
SAMPLES = {"train": 24, "val": 12, "test": 12}


def tiny_model():
    config = contracam.profile("synthetic", **TINY)
    torch.manual_seed(0)
    return contracam.build_model(config).eval(), config


def test_background_share_counts_maps_that_leave_a_background_strip():
    maps = torch.zeros(4, 16, 16)
    maps[0] = 1.0  # the whole image is foreground: no strip
    maps[1, 4:8, 4:8] = 1.0  # a blob: strips around it
    maps[2, :, :] = 0.1  # below the threshold everywhere: no foreground, its own background
    maps[3, 0:16, 0:15] = 0.5  # leaves one column
    assert report.has_background(maps, 0.2).tolist() == [False, True, True, True]
    assert report.background_share(maps, 0.2) == pytest.approx(0.75)
    assert report.background_share(maps[:1], 0.2) == 0.0


def test_background_challenge_scores_every_variant_and_the_gap():
    model, config = tiny_model()
    scores = report.background_challenge(model, config, SAMPLES)
    assert set(scores) == {*VARIANTS, "bg_gap"}
    assert scores["bg_gap"] == pytest.approx(scores["mixed_same"] - scores["mixed_rand"])
    assert all(0.0 <= scores[v] <= 100.0 for v in VARIANTS)


def test_family_linear_gives_one_accuracy_per_family():
    model, config = tiny_model()
    scores = report.family_linear(model, config, ("bird", "dog"), SAMPLES)
    assert set(scores) == {"bird", "dog"} and all(0 <= v <= 100 for v in scores.values())


def test_a_probe_scores_like_the_linear_evaluation_it_is_part_of():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.eye(3, 5)[labels] * 2 + torch.randn(60, 5, generator=g) + 7.0
    train, val, test = (features[:30], labels[:30]), (features[30:45], labels[30:45]), \
        (features[45:], labels[45:])
    probe = fit_probe(train, val, grid=(1e-3, 1.0))
    result = linear_evaluation(train, val, test, grid=(1e-3, 1.0))
    assert probe.l2 == result.l2 and probe.accuracy(*test) == result.accuracy
    # raw features go in (offset by 7): the probe applies the training statistics itself
    assert probe.accuracy(*train) > 90


def test_the_classifier_map_of_an_unseen_family_is_that_of_its_top1_class():
    config = cam.profile("synthetic", image_size=32, pretrained=False)
    torch.manual_seed(0)
    model = cam.build_model(config).eval()
    batch = {"image": torch.randn(3, 3, 32, 32), "label": torch.tensor([5, 5, 5])}
    top1 = model(batch["image"])["logits"].argmax(1)
    expected = cam.score_maps(model, {**batch, "label": top1})
    assert torch.equal(report.predicted_class_cam(model, batch), expected)


def test_seed_cells_print_mean_and_sample_sd_or_the_single_value():
    cells = report.seeds_frame({"a": [{"x": 1.0}, {"x": 3.0}], "b": [{"x": 2.5}]}, ["x"])
    assert cells == {"a": {"x": f"2.00 ± {np.std([1.0, 3.0], ddof=1):.2f}"}, "b": {"x": "2.50"}}


def test_object_crops_are_every_object_of_the_scenes_with_its_class():
    from coloc.data import load
    from coloc.data.synthetic import FAMILIES
    crops = report.object_crops("test", 32, 5)
    scenes = load("synthetic", split="test", image_size=32, num_samples=5, families=FAMILIES,
                  num_objects=(1, 3))
    labels = [label for i in range(5) for label in scenes.render(i).labels]
    assert [c["label"] for c in crops] == labels
    assert all(c["image"].shape == (3, 32, 32) for c in crops)
    assert [c["index"] for c in crops] == list(range(len(crops)))


def test_crop_linear_is_an_accuracy():
    model, config = tiny_model()
    assert 0.0 <= report.crop_linear(model, config, {"train": 6, "val": 4, "test": 4}) <= 100.0
