"""Backbones that return the last convolutional feature map ``[B, C, h, w]``.

Every backbone exposes ``out_channels`` (``C``) and ``stride`` (input side / ``h``):

=================  =====  ======  ==========================================================
name               C      stride  what
=================  =====  ======  ==========================================================
``small_cnn``      256    8       CPU profile: 4 conv-BN-ReLU blocks 32-64-128-256, strides
                                  2-2-2-1 (8x8 at 64 px); no ImageNet weights
``vgg16_psynet``   512    8       PsyNet's VGG16-BN: pool4 and pool5 are 3x3 stride-1 max
                                  pools (28x28 at 224 px); torchvision ImageNet weights
``resnet50``       2048   16      torchvision ResNet50, layer4 stride 1 (14x14 at 224 px)
``seresnet50``     2048   16      SE-ResNet50 (CAML's second backbone), timm layout and
                                  weights, layer4 stride 1 (14x14 at 224 px)
``resnet18``       512    32      torchvision ResNet18 at its standard stride (7x7 at
                                  224 px): ContraCAM's MoCo v2 / BYOL backbone
``resnet50_s32``   2048   32      torchvision ResNet50 at its standard stride (ContraCAM)
=================  =====  ======  ==========================================================

Layer4 stride 1 (without dilation) follows PsyNet's ResNet and SE-ResNet code, the
baselines CAML compares with on SE-ResNet50 (CAML Table 2). SE-ResNet50 is torchvision's
ResNet50 with a squeeze-excitation module after ``bn3`` of each bottleneck, named so
that a timm ``seresnet50`` state dict loads as is (``layerX.Y.se.fc1/fc2``); we write the
16 lines rather than depend on timm.

Weights: ``pretrained=True`` downloads the ImageNet weights (torchvision's weights
API, or timm's release file for SE-ResNet50) through ``torch.hub``; offline this raises
:class:`WeightsUnavailableError` naming the file and how to pass it. ``weights_path``
loads a local file with ``torch.load(..., weights_only=True)``: either a full
classification model's state dict in the torchvision/timm layout (its classifier is
dropped) or a backbone's own ``state_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, VGG16_BN_Weights
from torchvision.models import resnet as tv_resnet

from coloc.runtime import load_torch


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be downloaded (e.g. no network access)."""


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, bias: bool = False) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def _init_from_scratch(module: nn.Module) -> None:
    """He init for convs, BN at identity (torchvision's VGG/ResNet init)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SmallCNN(nn.Module):
    """The CPU profile's backbone: 4 conv-BN-ReLU blocks, 32-64-128-256, stride 8.

    Strides 2-2-2-1: downsampling first keeps it fast (about 600 img/s one-view training
    at 64 px on 2 CPU cores) and gives a 31 px receptive field, half a 64 px image.
    """

    out_channels = 256
    stride = 8

    def __init__(self) -> None:
        super().__init__()
        widths, strides = (3, 32, 64, 128, 256), (2, 2, 2, 1)
        layers = [
            m
            for cin, cout, s in zip(widths[:-1], widths[1:], strides, strict=True)
            for m in _conv_bn_relu(cin, cout, s)
        ]
        self.features = nn.Sequential(*layers)
        _init_from_scratch(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


# torchvision's VGG16 ("D") layout; "N" marks PsyNet's 3x3 stride-1 pools (pool4, pool5).
_VGG16_PSYNET = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "N", 512, 512, 512, "N",
)  # fmt: skip


class PsyNetVGG16(nn.Module):
    """PsyNet's VGG16-BN: torchvision's ``vgg16_bn`` features, pool4/pool5 3x3 stride 1.

    Total stride 8 (28x28 at 224 px). The output is taken after pool5, as in PsyNet,
    where the stride-1 pool5 ends the feature extractor. Module indices match
    torchvision's ``features.N`` so its ImageNet weights load directly.
    """

    out_channels = 512
    stride = 8

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_PSYNET:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif v == "N":
                layers.append(nn.MaxPool2d(3, stride=1, padding=1))
            else:
                layers += _conv_bn_relu(cin, int(v), bias=True)  # as torchvision's vgg16_bn
                cin = int(v)
        self.features = nn.Sequential(*layers)
        _init_from_scratch(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class SqueezeExcite(nn.Module):
    """SE module in timm's layout: GAP, 1x1 conv to C/16, ReLU, 1x1 conv to C, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class SEBottleneck(tv_resnet.Bottleneck):
    """torchvision's bottleneck with SE on the residual branch after ``bn3`` (timm order)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.se = SqueezeExcite(self.bn3.num_features)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet50 or SE-ResNet50 trunk (no pooling or fc), layer4 stride 1: stride 16.

    Attribute names match torchvision/timm (``conv1``, ``bn1``, ``layer1``..``layer4``),
    so their state dicts load after dropping ``fc``.
    """

    out_channels = 2048
    stride = 16

    def __init__(self, se: bool = False) -> None:
        super().__init__()
        block = SEBottleneck if se else tv_resnet.Bottleneck
        net = tv_resnet.ResNet(block, [3, 4, 6, 3])
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        first = self.layer4[0]  # stride 1 without dilation, as in PsyNet's (SE-)ResNet
        first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetS32(nn.Module):
    """torchvision ResNet18 or ResNet50 trunk (no pooling or fc) at its standard stride 32.

    ContraCAM trains its self-supervised ResNets unmodified (7x7 at 224 px) and halves the
    stride of ``layer4``'s first block only at inference (its "expansion trick",
    :func:`coloc.contracam.maps.expand_resolution`). Attribute names match torchvision.
    """

    stride = 32

    def __init__(self, depth: int = 18) -> None:
        super().__init__()
        net = {18: tv_resnet.resnet18, 50: tv_resnet.resnet50}[depth]()
        self.out_channels = net.fc.in_features
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


@dataclass(frozen=True)
class _Spec:
    build: Callable[[], nn.Module]
    weights: str | None = None  # what the ImageNet weights are, for messages
    url: str | None = None
    head: str = ""  # key prefix of the classifier in full-model files, dropped on load


_SPECS = {
    "small_cnn": _Spec(SmallCNN),
    "vgg16_psynet": _Spec(
        PsyNetVGG16,
        f"torchvision {VGG16_BN_Weights.IMAGENET1K_V1}",
        VGG16_BN_Weights.IMAGENET1K_V1.url,
        "classifier.",
    ),
    "resnet50": _Spec(
        ResNet50,
        f"torchvision {ResNet50_Weights.IMAGENET1K_V1}",
        ResNet50_Weights.IMAGENET1K_V1.url,
        "fc.",
    ),
    "seresnet50": _Spec(
        lambda: ResNet50(se=True),
        "timm seresnet50.ra_in1k",
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
        "seresnet50_ra_224-8efdb4bb.pth",
        "fc.",
    ),
    "resnet18": _Spec(
        lambda: ResNetS32(18),
        f"torchvision {ResNet18_Weights.IMAGENET1K_V1}",
        ResNet18_Weights.IMAGENET1K_V1.url,
        "fc.",
    ),
    "resnet50_s32": _Spec(
        lambda: ResNetS32(50),
        f"torchvision {ResNet50_Weights.IMAGENET1K_V1}",
        ResNet50_Weights.IMAGENET1K_V1.url,
        "fc.",
    ),
}

BACKBONES = tuple(_SPECS)


def _download(name: str, spec: _Spec) -> dict[str, Tensor]:
    if spec.url is None:
        raise ValueError(
            f"backbone {name!r} has no ImageNet weights; use pretrained=False, or "
            f"weights_path= for a file of your own"
        )
    try:
        # check_hash=False: timm's release names do not promise torch.hub's hash prefix;
        # weights_only=True already refuses anything but tensors.
        return torch.hub.load_state_dict_from_url(
            spec.url, map_location="cpu", progress=True, check_hash=False, weights_only=True
        )
    except OSError as err:
        filename = spec.url.rsplit("/", 1)[-1]
        raise WeightsUnavailableError(
            f"could not download the ImageNet weights of {name!r} ({spec.weights}) from "
            f"{spec.url}: {err}. Without network access, fetch that file elsewhere and pass "
            f"build_backbone({name!r}, weights_path='/path/to/{filename}'), or copy it to "
            f"{Path(torch.hub.get_dir()) / 'checkpoints' / filename}."
        ) from err


def _load(model: nn.Module, state: dict[str, Tensor], name: str, spec: _Spec, source: str) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"{source} holds a {type(state).__name__}, expected a state dict")
    if spec.head:
        state = {k: v for k, v in state.items() if not k.startswith(spec.head)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{source} does not fit backbone {name!r}: {err}") from err
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit backbone {name!r}: {len(missing)} missing keys "
            f"{missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
        )


def build_backbone(
    name: str, pretrained: bool = False, weights_path: str | Path | None = None
) -> nn.Module:
    """A backbone by name (see :data:`BACKBONES`); ``forward(x [B, 3, H, W]) -> [B, C, h, w]``.

    Args:
        name: one of :data:`BACKBONES` (module table).
        pretrained: download the ImageNet weights (see the module docstring). Raises
            :class:`WeightsUnavailableError` offline.
        weights_path: a local state dict to load instead (takes precedence over
            ``pretrained``); loaded with ``weights_only=True``.

    The returned module has ``out_channels`` and ``stride`` attributes.
    """
    if name not in _SPECS:
        raise ValueError(f"unknown backbone {name!r}; valid: {BACKBONES}")
    spec = _SPECS[name]
    if weights_path is not None:
        source = f"weights file {str(weights_path)!r}"
        state = load_torch(weights_path, remedy="pass a complete state dict saved with "
                           "torch.save as weights_path")
    elif pretrained:
        source = spec.weights or name
        state = _download(name, spec)  # before building: offline fails fast
    else:
        return spec.build()
    model = spec.build()
    _load(model, state, name, spec, source)
    return model
