"""ContraCAM's maps (coloc/contracam/maps.py): score, Grad-CAM weights, iterations, boxes."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coloc.contracam.maps import (
    contracam,
    contrastive_score,
    dense_crf,
    expand_resolution,
    gradcam,
    gradcam_weights,
    object_boxes,
    object_masks,
)
from coloc.contracam.model import MoCo
from coloc.models import build_backbone


def tiny_moco(backbone: str = "small_cnn") -> MoCo:
    torch.manual_seed(0)
    return MoCo(build_backbone(backbone), hidden=16, dim=8, queue_size=8).eval()


def images(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_contrastive_score_by_hand_leaves_each_image_out_of_its_negatives():
    q = F.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    k = F.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(1)), dim=1)
    masked = F.normalize(torch.randn(3, 5, generator=torch.Generator().manual_seed(2)), dim=1)
    score = contrastive_score(q, k, [q, masked])
    for i in range(3):
        negatives = [q[j] for j in range(3) if j != i] + [masked[j] for j in range(3) if j != i]
        expected = math.log(math.exp(q[i] @ k[i]) / sum(math.exp(q[i] @ n) for n in negatives))
        assert score[i].item() == pytest.approx(expected, rel=1e-5)  # no temperature


def test_the_scores_gradient_reaches_the_features():
    model = tiny_moco()
    with torch.no_grad():
        features = model.features(images())
    features.requires_grad_(True)
    output = model.project(features)
    score = contrastive_score(output, output.detach(), [output.detach()])
    (grad,) = torch.autograd.grad(score.sum(), features)
    assert grad.shape == features.shape and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    assert (gradcam(features, contrastive_score(model.project(features), output.detach(),
                                                [output.detach()])) > 0).any()


def test_negative_signal_removal_zeroes_exactly_the_negative_weights():
    features = torch.rand(2, 6, 3, 3, requires_grad=True)
    coefficients = torch.tensor([[1.0, -2.0, 0.5, -0.1, 0.0, 3.0], [-1.0, 2.0, -0.5, 0.1, 1.0,
                                                                     -3.0]])
    def score():
        return (coefficients * features.mean(dim=(2, 3))).sum(dim=1)

    raw = gradcam_weights(features, score(), clamp_weights=False)
    clamped = gradcam_weights(features, score(), clamp_weights=True)
    assert torch.allclose(raw, coefficients / 9)  # spatial mean of dS/dA
    assert torch.equal(clamped[raw < 0], torch.zeros(int((raw < 0).sum())))
    assert torch.equal(clamped[raw >= 0], raw[raw >= 0])
    cam = gradcam(features, score(), clamp_weights=True)
    expected = torch.relu(torch.einsum("bk,bkhw->bhw", raw.clamp(min=0), features.detach()))
    assert torch.allclose(cam, expected)


def test_iterative_masks_are_monotone_and_mask_with_the_batch_mean_colour():
    model = tiny_moco()
    x = images()
    final, steps = contracam(model, x, iterations=4, intermediate=True)
    masks, cams = steps["masks"], steps["cams"]
    assert len(masks) == len(cams) == 4 and torch.equal(masks[-1], final)
    for before, after in zip(masks, masks[1:], strict=False):
        assert (after >= before).all()  # the union never shrinks
    assert torch.equal(final, torch.stack(cams).amax(dim=0))
    colour = x.mean(dim=(0, 2, 3), keepdim=True)
    m = masks[1][:, None]
    assert torch.allclose(steps["masked"][1], x * (1 - m) + colour * m)
    assert final.shape == (4, 32, 32) and final.min() >= 0 and final.max() <= 1
    assert torch.equal(contracam(model, x), cams[0])  # one iteration = the first CAM


def test_negatives_after_the_first_iteration_change_the_second_map():
    model = tiny_moco()
    _, steps = contracam(model, images(), iterations=2, intermediate=True)
    assert not torch.allclose(steps["cams"][0], steps["cams"][1])


def test_one_image_has_no_negatives_and_gives_zeros():
    assert torch.equal(contracam(tiny_moco(), images(1)), torch.zeros(1, 32, 32))


def test_expansion_trick_doubles_the_map_and_restores_the_stride():
    model = tiny_moco("resnet18")
    x = images(3, 64)
    assert contracam(model, x, raw=True).shape == (3, 2, 2)
    assert contracam(model, x, raw=True, expand=True).shape == (3, 4, 4)
    assert contracam(model, x, expand=True).shape == (3, 64, 64)
    assert model.encoder.backbone.layer4[0].conv1.stride == (2, 2)  # restored
    with expand_resolution(model.encoder.backbone) as backbone:
        assert backbone.layer4[0].downsample[0].stride == (1, 1)
    with pytest.raises(ValueError, match="ResNet"), expand_resolution(tiny_moco().encoder.backbone):
        pass


def test_masks_and_boxes_as_the_paper():
    score_map = np.zeros((100, 100), dtype=np.float32)
    score_map[10:30, 10:40] = 1.0  # 600 px: kept, grown by 20 %
    score_map[60:90, 50:70] = 0.8  # 600 px: kept
    score_map[95:97, 0:3] = 1.0  # 6 px < 1 % of the image: dropped
    boxes = object_boxes(score_map)
    # protocol boxes (x, y, x + w, y + h): [10, 10, 40, 30] and [50, 60, 70, 90], grown
    assert sorted(boxes.tolist()) == [[4, 6, 46, 34], [46, 54, 74, 96]]
    assert object_boxes(np.zeros((10, 10))).shape == (0, 4)
    masks = object_masks(torch.tensor([[[0.2, 0.5, 0.51]]]))
    assert masks.tolist() == [[[False, False, True]]]


def test_dense_crf_is_optional_with_a_clear_message():
    image = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    soft = np.full((1, 8, 8), 0.5)
    try:
        import pydensecrf  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pydensecrf2"):
            dense_crf(image, soft)
        pytest.skip("pydensecrf2 is not installed: the optional CRF path was checked to "
                    "fail with its message")
    image[:, 2:6, 2:6] = 255
    soft[:, 2:6, 2:6] = 0.9
    refined = dense_crf(image, soft)
    assert refined.shape == (1, 8, 8) and refined[0, 3, 3] > refined[0, 0, 0]
