"""WeightMap's networks: the weight-map generator g, the Siamese f, and g over a frozen f.

- :class:`WeightGenerator` (g, Sec. 3 "Architecture"): an encoder that halves the
  resolution five times, and a decoder of five up-sampling blocks, each of two 3x3 convs
  (zero padding 1), batch norm after the last conv before the activation (ReLU in the
  first four blocks, sigmoid in the last), each block receiving a skip connection from
  the encoder stage of its resolution (U-Net style). Output ``[B, 1, H, W]`` in (0, 1).
  Encoders: ``"resnet18"`` (the paper's: ImageNet ResNet18, stem + four residual
  stages) or ``"small"`` (the CPU profile: five conv-BN-ReLU stages 16-32-64-128-128,
  each a stride-2 conv and a 3x3 conv; 1.2 M parameters with the decoder).
- :class:`SiameseNet`: Method II's f, backbone -> GAP -> linear projection (Sec. 3: 512
  -> 200 for ResNet18; the CPU backbone's 256 -> 200).
- :class:`WeightMapNet`: g and the frozen f in one module (what the runner trains and
  checkpoints); f stays in eval mode and without gradients whatever ``train()`` says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, resnet18

from coloc.models.backbones import WeightsUnavailableError

SMALL_WIDTHS = (16, 32, 64, 128, 128)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class StagedEncoder(nn.Module):
    """An encoder as a list of ``stages``; ``forward`` returns every stage's output, the
    skips of g's decoder (finest first)."""

    stages: nn.ModuleList

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class SmallEncoder(StagedEncoder):
    """Five stages, each halving the resolution: features at 1/2 ... 1/32 of the input."""

    def __init__(self, widths: tuple[int, ...] = SMALL_WIDTHS) -> None:
        super().__init__()
        channels = (3, *widths)
        self.stages = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(cin, cout, 2), *_conv_bn_relu(cout, cout))
            for cin, cout in zip(channels[:-1], channels[1:], strict=True)
        )
        self.widths = tuple(widths)


class ResNet18Encoder(StagedEncoder):
    """torchvision's ResNet18 as five stages (stem at 1/2, layer1 at 1/4 ... layer4 at
    1/32; 64-64-128-256-512 channels), with ImageNet weights if ``pretrained``."""

    widths = (64, 64, 128, 256, 512)

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        try:
            net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
        except OSError as err:
            raise WeightsUnavailableError(
                f"could not download the ImageNet weights of g's ResNet18 encoder "
                f"({ResNet18_Weights.IMAGENET1K_V1.url}): {err}") from err
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.stages = nn.ModuleList([
            self.stem, nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3,
            net.layer4,
        ])


class UpBlock(nn.Module):
    """Up-sample x2, concatenate the skip (if any), two 3x3 convs; BN after the second
    conv, then ReLU, or sigmoid in g's last block (Sec. 3 "Architecture")."""

    def __init__(self, cin: int, skip: int, cout: int, last: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin + skip, cout if not last else cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cout if not last else cin, 1 if last else cout, 3, padding=1,
                               bias=False)
        self.bn = nn.BatchNorm2d(1 if last else cout)
        self.last = last

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        x = self.bn(self.conv2(F.relu(self.conv1(x))))
        return torch.sigmoid(x) if self.last else F.relu(x)


class WeightGenerator(nn.Module):
    """g: ``images [B, 3, H, W] -> M [B, 1, H, W]`` in (0, 1) (H, W multiples of 32)."""

    def __init__(self, encoder: str = "small", pretrained: bool = False) -> None:
        super().__init__()
        self.encoder = ResNet18Encoder(pretrained) if encoder == "resnet18" else SmallEncoder()
        widths = self.encoder.widths
        # Block k up-samples from 1/2^(5-k) to 1/2^(4-k); its skip is the encoder stage
        # of that resolution (none at full resolution: the encoder starts at 1/2).
        skips = (widths[3], widths[2], widths[1], widths[0], 0)
        outs = (widths[3], widths[2], widths[1], widths[0], widths[0])
        ins = (widths[4], *outs[:-1])
        self.decoder = nn.ModuleList(
            UpBlock(cin, skip, cout, last=k == 4)
            for k, (cin, skip, cout) in enumerate(zip(ins, skips, outs, strict=True))
        )

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] % 32 or images.shape[-2] % 32:
            raise ValueError(f"g needs H and W multiples of 32 (five halvings), got "
                             f"{tuple(images.shape[-2:])}")
        features = self.encoder(images)
        x = features[-1]
        for k, block in enumerate(self.decoder):
            x = block(x, features[3 - k] if k < 4 else None)
        return x


class SiameseNet(nn.Module):
    """Method II's f: ``forward`` returns ``{"embedding" [B, D], "features"}`` (Sec. 3)."""

    def __init__(self, backbone: nn.Module, embedding_dim: int = 200) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Linear(backbone.out_channels, embedding_dim)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.backbone(images)
        return {"features": features, "embedding": self.projection(features.mean(dim=(2, 3)))}


class WeightMapNet(nn.Module):
    """g and a frozen f: ``forward(images)`` is ``M = g(I)`` ``[B, H, W]``; ``f(x)`` the
    frozen network's output (logits for Method I, the embedding for Method II)."""

    def __init__(self, g: WeightGenerator, f: nn.Module) -> None:
        super().__init__()
        self.g = g
        self.f = f
        for parameter in self.f.parameters():
            parameter.requires_grad_(False)
        self.f.eval()

    def train(self, mode: bool = True) -> WeightMapNet:
        """Train g only; f keeps its batch-norm statistics (eval mode) always."""
        super().train(mode)
        self.f.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        return self.g(images)[:, 0]

    def frozen(self, images: Tensor) -> Tensor:
        """f's output vector: class logits (Method I) or the embedding (Method II)."""
        output = self.f(images)
        return output["logits"] if "logits" in output else output["embedding"]
