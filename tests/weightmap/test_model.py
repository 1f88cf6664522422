"""g's shape and range, the Siamese f, and f frozen inside WeightMapNet."""

import pytest
import torch

from coloc.cam import CAMClassifier
from coloc.models import build_backbone
from coloc.weightmap.model import SiameseNet, WeightGenerator, WeightMapNet


@pytest.mark.parametrize("encoder", ["small", "resnet18"])
def test_g_outputs_one_weight_per_pixel_in_zero_one(encoder):
    torch.manual_seed(0)
    g = WeightGenerator(encoder)
    maps = g(torch.randn(2, 3, 64, 96))
    assert maps.shape == (2, 1, 64, 96)
    maps = maps.detach()
    assert float(maps.min()) > 0 and float(maps.max()) < 1
    assert len(g.decoder) == 5  # five up-sampling blocks (Sec. 3)


def test_g_refuses_sizes_it_cannot_halve_five_times():
    with pytest.raises(ValueError, match="multiples of 32"):
        WeightGenerator()(torch.randn(1, 3, 48, 64))


def test_the_frozen_f_receives_no_gradient_and_stays_in_eval_mode():
    f = CAMClassifier(build_backbone("small_cnn"), num_classes=3)
    net = WeightMapNet(WeightGenerator(), f).train()
    assert not f.training and net.g.training
    images = torch.randn(2, 3, 32, 32)
    running = f.backbone.features[1].running_mean.clone()
    net.frozen(images * net(images)[:, None]).sum().backward()
    assert all(p.grad is None for p in f.parameters())
    assert all(p.grad is not None for p in net.g.parameters() if p.requires_grad)
    assert torch.equal(f.backbone.features[1].running_mean, running)  # BN not updated


def test_siamese_f_embeds_into_its_dimension():
    net = SiameseNet(build_backbone("small_cnn"), embedding_dim=7)
    out = net(torch.randn(3, 3, 32, 32))
    assert out["embedding"].shape == (3, 7) and out["features"].shape[:2] == (3, 256)
    frozen = WeightMapNet(WeightGenerator(), net)
    assert frozen.frozen(torch.randn(2, 3, 32, 32)).shape == (2, 7)
