"""ADL and InCA's attention blocks, and the classifier they are inserted into.

- :func:`dropped_foreground_mask` (InCA Eq. 1) and :func:`adl_drop_mask` (ADL);
- :class:`NonLocalAttention` (InCA Eq. 5): the enhanced attention map ``A``;
- :class:`AttentionBlock`: at one position of the backbone, attention map -> importance map
  ``sigmoid(A)`` or drop mask, one draw per forward pass (``drop_rate``), multiplied into
  the feature; the identity at eval (ADL; InCA Sec. 3.5);
- :class:`INCANet`: the CAM classifier (:class:`coloc.cam.CAMClassifier`) with blocks at
  :data:`POSITIONS` of its backbone (forward hooks, so the backbone is unchanged and the
  test-time network is the vanilla one); in training ``forward`` also returns what the
  losses read (:class:`Attended`).
"""

from __future__ import annotations

from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc.cam import CAMClassifier

POSITIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "small_cnn": (("block1", "features.2"), ("block2", "features.5"),
                  ("block3", "features.8"), ("block4", "features.11")),
    "vgg16_psynet": (("pool1", "features.6"), ("pool2", "features.13"),
                     ("pool3", "features.23"), ("conv4_3", "features.32"),
                     ("conv5_3", "features.42")),
    "resnet50": (("layer2", "layer2"), ("layer3.0", "layer3.0"), ("layer4.0", "layer4.0"),
                 ("layer4.2", "layer4.2")),
}
"""Candidate positions per backbone, earliest first, as ``(label, module name)``: the
block acts on that module's output. The last three are ADL's (PROTOCOL.md: VGG16 after
pool3, conv4_3, conv5_3; ResNet50 layer3 block 0, layer4 blocks 0 and 2); the small CNN's
are its last three conv blocks. Earlier ones serve InCA Table 3."""


def normalize_map(attention: Tensor, mode: str) -> Tensor:
    """``[B, h, w]`` -> ``[B, h, w]`` per image: ``"none"``, ``"max"`` (divide by the max,
    clamped at 1e-6) or ``"minmax"`` (into [0, 1]). The paper is silent (see the config)."""
    if mode == "none":
        return attention
    flat = attention.flatten(1)
    if mode == "max":
        return attention / flat.amax(1).clamp(min=1e-6)[:, None, None]
    if mode == "minmax":
        low = flat.amin(1)[:, None, None]
        return (attention - low) / (flat.amax(1)[:, None, None] - low).clamp(min=1e-6)
    raise ValueError(f"unknown map normalization {mode!r}; allowed: 'none', 'max', 'minmax'")


def _per_image(stat: Tensor) -> Tensor:
    return stat[:, None, None]


def adl_drop_mask(attention: Tensor, gamma_fg: float) -> Tensor:
    """ADL's drop mask ``1[A < gamma_fg * max(A)]`` per image, ``[B, h, w]`` bool."""
    return attention < gamma_fg * _per_image(attention.flatten(1).amax(1))


def dropped_foreground_mask(attention: Tensor, gamma_fg: float, gamma_bg: float) -> Tensor:
    """InCA Eq. 1: ``M_dfg = 1[A < theta_fg] and 1[A > theta_bg]`` with ``theta_fg =
    gamma_fg * max(A)`` and ``theta_bg = gamma_bg * mean(A)`` per image (Sec. 4.1).
    ``attention`` ``[B, h, w]`` -> bool ``[B, h, w]``: the object without its most
    discriminative part and without the background."""
    flat = attention.flatten(1)
    below_peak = attention < gamma_fg * _per_image(flat.amax(1))
    above_background = attention > gamma_bg * _per_image(flat.mean(1))
    return below_peak & above_background


class NonLocalAttention(nn.Module):
    """InCA Eq. 5: ``A = E_C[Softmax(f(x)^T g(x)) z(x)]`` for ``x`` ``[B, C, h, w]``.

    ``f``, ``g``: 1x1 convs to ``C / reduction`` channels; ``z``: 1x1 conv to ``C``;
    the softmax over positions ``j`` of ``f_i . g_j``. With ``residual=True`` (Wang et
    al.'s non-local block, which adds its input and starts as the identity with the
    output layer at zero) ``A`` is the channel mean of ``x`` plus that term, ``z``
    zero-initialized: at initialization ``A`` is ADL's map, not the nearly flat map of a
    random block. Returns ``A`` ``[B, h, w]``.
    """

    def __init__(self, channels: int, reduction: int = 8, residual: bool = True) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.f = nn.Conv2d(channels, hidden, 1)
        self.g = nn.Conv2d(channels, hidden, 1)
        self.z = nn.Conv2d(channels, channels, 1)
        self.residual = residual
        if residual:
            nn.init.zeros_(self.z.weight)
            nn.init.zeros_(self.z.bias)

    def forward(self, x: Tensor) -> Tensor:
        f, g = self.f(x).flatten(2), self.g(x).flatten(2)
        similarity = torch.softmax(f.transpose(1, 2) @ g, dim=-1)  # [B, hw_i, hw_j]
        # E_C[sum_j S_ij z_j] = sum_j S_ij E_C[z_j], and E_C[z(x)] is the 1x1 conv with
        # z's weights and bias averaged over its output channels: the same A (and the
        # same gradients into z) without the C x hw x hw product.
        z_mean = F.conv2d(x, self.z.weight.mean(0, keepdim=True),
                          self.z.bias.mean().view(1)).flatten(2)  # [B, 1, hw_j]
        attended = z_mean @ similarity.transpose(1, 2)  # [B, 1, hw_i]
        attention = attended.view(x.shape[0], *x.shape[2:])
        return attention + x.mean(dim=1) if self.residual else attention


class AttentionRecord(TypedDict):
    """What one block saw in a training forward pass (what InCA's losses read):
    ``features`` F ``[B, C, h, w]`` (the block's input), ``attention`` A ``[B, h, w]``,
    ``dropped`` (whether this pass applied the drop mask)."""

    features: Tensor
    attention: Tensor
    dropped: bool


class AttentionBlock(nn.Module):
    """ADL's layer, or InCA's block (InCA Sec. 3.1, Fig. 2), at one position.

    Training: attention ``A`` (channel mean, ADL; or :class:`NonLocalAttention`); with
    probability ``drop_rate`` (one draw per forward pass, from torch's global generator)
    the feature is multiplied by the drop mask (ADL's, or M_dfg of Eq. 1 on A normalized
    by ``map_norm``), otherwise by the importance map ``sigmoid(A)``. Eval: the identity.
    """

    def __init__(self, channels: int, attention: str = "channel", drop_mask: str = "adl",
                 drop_rate: float = 0.75, gamma_fg: float = 0.9, gamma_bg: float = 1.2,
                 map_norm: str = "max", reduction: int = 8, residual: bool = True) -> None:
        super().__init__()
        if attention not in ("channel", "nonlocal"):
            raise ValueError(f"unknown attention {attention!r}; allowed: 'channel', 'nonlocal'")
        if drop_mask not in ("adl", "dfg"):
            raise ValueError(f"unknown drop_mask {drop_mask!r}; allowed: 'adl', 'dfg'")
        self.nonlocal_block = NonLocalAttention(channels, reduction, residual) \
            if attention == "nonlocal" else None
        self.drop_mask, self.drop_rate = drop_mask, drop_rate
        self.gamma_fg, self.gamma_bg, self.map_norm = gamma_fg, gamma_bg, map_norm
        self.record: AttentionRecord | None = None

    def attention(self, x: Tensor) -> Tensor:
        """The block's attention map ``A`` ``[B, h, w]`` of ``x`` ``[B, C, h, w]``."""
        return x.mean(dim=1) if self.nonlocal_block is None else self.nonlocal_block(x)

    def mask(self, attention: Tensor) -> Tensor:
        """The drop mask of ``attention`` (ADL's or M_dfg), float ``[B, h, w]``."""
        norm = normalize_map(attention, self.map_norm)
        if self.drop_mask == "adl":
            return adl_drop_mask(norm, self.gamma_fg).float()
        return dropped_foreground_mask(norm, self.gamma_fg, self.gamma_bg).float()

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            self.record = None
            return x
        attention = self.attention(x)
        dropped = bool(torch.rand(()) < self.drop_rate)
        selected = self.mask(attention) if dropped else torch.sigmoid(attention)
        self.record = AttentionRecord(features=x, attention=attention, dropped=dropped)
        return x * selected[:, None]

    def hook(self, module: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
        """Forward hook on the backbone module this block follows: the block applied to
        that module's output (a bound method, so a deep copy of the network hooks the
        copied block)."""
        return self(output)


class INCANet(CAMClassifier):
    """The CAM classifier with :class:`AttentionBlock` s after the last ``positions`` of
    :data:`POSITIONS` of its backbone (ADL and InCA insert them the same way).

    ``forward`` returns ``features`` and ``logits`` (as :class:`CAMClassifier`) and, in
    training, ``attended``: one :class:`AttentionRecord` per position, earliest first.
    ``embeddings``: per position the 1x1 conv to ``embed_dim`` of L_ca (Sec. 3.2).
    At eval the blocks are the identity and the network is the vanilla classifier, so
    its maps are CAMs (InCA Sec. 3.5).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, backbone_name: str,
                 positions: int, embed_dim: int = 128, **block: object) -> None:
        super().__init__(backbone, num_classes)
        if backbone_name not in POSITIONS:
            raise ValueError(f"no attention positions for backbone {backbone_name!r}; "
                             f"known: {', '.join(POSITIONS)}")
        candidates = POSITIONS[backbone_name]
        if not 1 <= positions <= len(candidates):
            raise ValueError(f"positions must be in 1..{len(candidates)} for "
                             f"{backbone_name}, got {positions}")
        self.position_labels = [label for label, _ in candidates[-positions:]]
        modules = dict(backbone.named_modules())
        channels = _channels_at(backbone, [name for _, name in candidates[-positions:]])
        self.blocks = nn.ModuleList(AttentionBlock(c, **block) for c in channels)
        self.embeddings = nn.ModuleList(nn.Conv2d(c, embed_dim, 1) for c in channels)
        for (_, name), attention_block in zip(candidates[-positions:], self.blocks,
                                              strict=True):
            modules[name].register_forward_hook(attention_block.hook)

    def forward(self, images: Tensor) -> dict:
        output = super().forward(images)
        if self.training:
            output["attended"] = [block.record for block in self.blocks]
        return output


@torch.no_grad()
def _channels_at(backbone: nn.Module, names: list[str]) -> list[int]:
    """Channel counts of the named modules' outputs (one tiny forward pass)."""
    modules, channels = dict(backbone.named_modules()), {}
    handles = [modules[n].register_forward_hook(
        lambda m, i, o, n=n: channels.__setitem__(n, o.shape[1])) for n in names]
    training = backbone.training
    backbone.eval()
    backbone(torch.zeros(1, 3, 32, 32))
    backbone.train(training)
    for handle in handles:
        handle.remove()
    return [channels[n] for n in names]
