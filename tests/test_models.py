"""Backbones (shapes, weights files, offline errors)."""

from urllib.error import URLError

import pytest
import torch

from coloc.models import (
    BACKBONES,
    PsyNetVGG16,
    WeightsUnavailableError,
    build_backbone,
)
from coloc.runtime import RunFileError


@pytest.mark.parametrize(
    ("name", "channels", "side"),
    [
        ("small_cnn", 256, 8),
        ("vgg16_psynet", 512, 8),
        ("resnet50", 2048, 4),
        ("seresnet50", 2048, 4),
        ("resnet18", 512, 2),
        ("resnet50_s32", 2048, 2),
    ],
)
def test_backbones_return_the_last_feature_map(name, channels, side):
    net = build_backbone(name).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, channels, side, side)
    assert net.out_channels == channels and net.stride == 64 // side


def test_psynet_vgg16_keeps_stride_8_through_pool4_and_pool5():
    pools = [m for m in PsyNetVGG16().features if isinstance(m, torch.nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1]
    assert [p.kernel_size for p in pools[3:]] == [3, 3]  # so 224 px -> 28x28


def test_layouts_match_torchvision_so_its_imagenet_weights_load():
    from torchvision.models import resnet18, resnet50
    from torchvision.models.vgg import cfgs, make_layers

    def shapes(module):
        return {k: v.shape for k, v in module.state_dict().items() if not k.startswith("fc.")}

    vgg = torch.nn.ModuleDict({"features": make_layers(cfgs["D"], batch_norm=True)})
    assert shapes(build_backbone("vgg16_psynet")) == shapes(vgg)
    assert shapes(build_backbone("resnet50")) == shapes(resnet50())
    assert shapes(build_backbone("resnet50_s32")) == shapes(resnet50())
    assert shapes(build_backbone("resnet18")) == shapes(resnet18())


def test_seresnet50_has_timm_state_dict_layout():
    state = build_backbone("seresnet50").state_dict()
    assert state["layer1.0.se.fc1.weight"].shape == (16, 256, 1, 1)
    assert state["layer4.2.se.fc2.bias"].shape == (2048,)
    assert "fc.weight" not in state


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(ValueError, match="small_cnn.*vgg16_psynet.*resnet50.*seresnet50"):
        build_backbone("vgg19")
    assert set(BACKBONES) == {"small_cnn", "vgg16_psynet", "resnet50", "seresnet50",
                              "resnet18", "resnet50_s32"}


@pytest.mark.parametrize(
    ("name", "weights"),
    [("vgg16_psynet", "VGG16_BN_Weights.IMAGENET1K_V1"), ("seresnet50", "timm seresnet50")],
)
def test_pretrained_offline_names_the_weights_and_the_way_out(monkeypatch, name, weights):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_backbone(name, pretrained=True)
    message = str(info.value)
    assert weights in message and "weights_path=" in message and ".pth" in message


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_backbone("small_cnn", pretrained=True)


def test_weights_file_round_trip(tmp_path):
    net = build_backbone("small_cnn")
    for p in net.parameters():
        p.data.normal_()
    path = tmp_path / "small.pth"
    torch.save(net.state_dict(), path)
    loaded = build_backbone("small_cnn", weights_path=path)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_full_classifier_checkpoints_load_without_their_head(monkeypatch):
    reference = PsyNetVGG16()
    full = {**reference.state_dict(), "classifier.6.weight": torch.zeros(1000, 4096)}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: full)
    loaded = build_backbone("vgg16_psynet", pretrained=True)
    assert torch.equal(loaded.features[0].weight, reference.features[0].weight)


def test_a_file_of_another_network_is_rejected(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(build_backbone("small_cnn").state_dict(), path)
    with pytest.raises(ValueError, match="does not fit backbone 'vgg16_psynet'"):
        build_backbone("vgg16_psynet", weights_path=path)
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="missing keys"):
        build_backbone("small_cnn", weights_path=path)


def test_a_truncated_weights_file_is_named(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(build_backbone("small_cnn").state_dict(), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(RunFileError, match="small.pth: is not a readable torch file"):
        build_backbone("small_cnn", weights_path=path)
