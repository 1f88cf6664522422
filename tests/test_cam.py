"""Tests for coloc.cam: CAM equals the classifier's evidence; mass shares by hand."""

import math

import pytest
import torch

from coloc.cam import CAMClassifier, cam_step, mass_inside
from coloc.models import build_backbone


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
