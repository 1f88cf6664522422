"""Tests for coloc.cam: CAM equals the classifier's evidence; mass shares by hand; the
CAM baseline's profile and runs."""

import math

import pytest
import torch

from coloc import cam
from coloc.cam import CAMClassifier, cam_step, mass_inside
from coloc.data import collate_samples
from coloc.models import build_backbone
from coloc.runs import dataset_split


def test_cam_mean_equals_the_class_logit_minus_bias():
    torch.manual_seed(0)
    model = CAMClassifier(build_backbone("small_cnn"), num_classes=5).eval()
    images = torch.randn(2, 3, 32, 32)
    labels = torch.tensor([1, 4])
    output = model(images)
    cams = model.cam(output["features"], labels)
    logits = output["logits"][torch.arange(2), labels] - model.classifier.bias[labels]
    assert torch.allclose(cams.mean(dim=(1, 2)), logits, atol=1e-5)


def test_cam_step_loss_reaches_the_backbone():
    model = CAMClassifier(build_backbone("small_cnn"), num_classes=3)
    batch = {"image": torch.randn(2, 3, 32, 32), "label": torch.tensor([0, 2])}
    cam_step(model, batch)["loss"].backward()
    first_conv = next(p for p in model.backbone.parameters() if p.dim() == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_mass_inside_by_hand():
    maps = torch.tensor([[[1.0, 3.0], [-2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    regions = torch.tensor([[[True, False], [True, True]]] * 2)
    shares = mass_inside(maps, regions)
    assert shares[0].item() == pytest.approx(1 / 4)  # mass 1 of 1 + 3 (the -2 is clamped)
    assert math.isnan(shares[1].item())  # no positive mass at all


def test_mass_inside_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        mass_inside(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3, dtype=torch.bool))


# ----------------------------------------------------------------------------- runs

TINY = dict(image_size=32, train_samples=8, val_samples=4, test_samples=4, epochs=1,
            batch_size=4, pretrained=False)


def test_cam_profile_is_the_datasets_chapters_classifier():
    config = cam.profile("synthetic", context_bias=1.0)
    assert (config.epochs, config.batch_size, config.lr, config.milestones) == (10, 16, 0.02, (7,))
    assert config.synthetic_options() == {"context_bias": 1.0}
    assert cam.profile("synthetic").synthetic_options() == {}  # the default data, shared
    with pytest.raises(ValueError, match="context_bias must be in"):
        cam.profile("synthetic", context_bias=1.5)
    with pytest.raises(ValueError, match="unknown dataset 'coco'"):
        cam.profile("coco")


def test_a_cam_run_trains_on_biased_data_and_scores_the_gt_class(tmp_path):
    config = cam.profile("synthetic", context_bias=1.0, **TINY)
    result = cam.run(config, tmp_path)
    assert result.directory.parent == tmp_path / "cam" / "synthetic"
    assert result.directory.name.startswith("cam-bias1-")
    # the run's data is the biased benchmark, not the default one
    biased, plain = dataset_split(config, "train"), dataset_split(config.replace(
        context_bias=0.0), "train")
    assert not torch.equal(biased[0]["image"], plain[0]["image"])

    model = result.model()
    batch = collate_samples([dataset_split(config, "test")[i] for i in range(2)])
    maps = cam.score_maps(model, batch)
    assert maps.shape == (2, 32, 32) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    other = cam.score_maps(model, {**batch, "label": (batch["label"] + 1) % 12})
    assert not torch.equal(maps, other)  # the map is the CAM of the class it is given
    assert set(result.test.corloc) == {"0.3", "0.5", "0.7", "mean"}
