"""Attention pooling: CAML's pixel-wise top-k attention pooling (PTAP) and the CAAM baseline.

PTAP (CAML Sec. 3.1) turns the last feature map ``F_x`` ``[B, C, h, w]`` into an
attention map ``A`` ``[B, h, w]`` in two steps:

1. CAML Eq. 1: ECA channel weights ``w = sigmoid(Conv1D(GAP(F_x)))`` ``[B, C]`` in (0, 1)
   and the weighted map ``F_w = F_x * w`` (broadcast over space);
2. CAML Eq. 2: at every pixel, the mean of the ``k`` largest entries of ``F_w`` across
   channels. ``k = 1`` is max pooling, ``k = C`` average pooling (the paper's special
   cases); ``largest=False`` gives the bottom-k pooling of CAML Table 6.

The channel-wise variant (CAML supplement C) instead keeps, for the whole image, the
``k`` channels with the largest spatial mean of ``F_w`` and averages those. CAAM
(PsyNet's class-agnostic activation map, the baseline) is the plain channel mean of
``F_x``, without ECA.

Every pooling module returns ``(attention, weighted)``: the map ``[B, h, w]`` and the
feature map the classification heads read (``F_w`` for PTAP, ``F_x`` for CAAM).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SELECTIONS = ("pixel", "channel")


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA-Net's adaptive 1-D kernel size: the odd number nearest ``|log2(C) + b| / gamma``.

    As in ECA-Net's code: ``t = int(|log2(C) + b| / gamma)``, then ``t`` if odd else
    ``t + 1``. Gives 5 for 256 and 512 channels, 7 for 2048.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


def num_selected(channels: int, ratio: float) -> int:
    """Number of channels PTAP keeps for a ratio of ``C``: ``max(1, floor(ratio * C))``.

    Floor, as CAML supplement A counts it (0.7 of 2048 channels is k = 1433).
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"k_ratio must be in (0, 1], got {ratio}")
    # The tiny offset keeps products such as 0.29 * 100 = 28.999999999999996 at 29.
    return max(1, math.floor(ratio * channels + 1e-9))


def pixelwise_topk_mean(features: Tensor, k: int, largest: bool = True) -> Tensor:
    """CAML Eq. 2: per pixel, the mean of the ``k`` largest (or smallest) channel values.

    ``features`` ``[B, C, h, w]`` -> ``[B, h, w]``. ``k = 1`` is the channel max,
    ``k = C`` the channel mean.
    """
    return features.topk(k, dim=1, largest=largest, sorted=False).values.mean(dim=1)


def channelwise_topk_mean(features: Tensor, k: int, largest: bool = True) -> Tensor:
    """CAML supplement C: mean over the ``k`` channels with the largest (smallest) GAP.

    The channels are chosen once per image by their spatial mean, not per pixel.
    ``features`` ``[B, C, h, w]`` -> ``[B, h, w]``.
    """
    priority = features.mean(dim=(2, 3))
    index = priority.topk(k, dim=1, largest=largest, sorted=False).indices
    chosen = features.gather(1, index[:, :, None, None].expand(-1, -1, *features.shape[2:]))
    return chosen.mean(dim=1)


def channel_average(features: Tensor) -> Tensor:
    """PsyNet's CAAM: the channel mean of the feature map, ``[B, C, h, w]`` -> ``[B, h, w]``."""
    return features.mean(dim=1)


def normalize_attention(attention: Tensor, headroom: float = 0.05, peak_gradient: bool = False
                        ) -> Tensor:
    """Divide each map by its maximum times ``1 + headroom`` (for CAML Eq. 3).

    ``A / (max A * (1 + headroom))`` per image, ``attention`` ``[B, ...]`` non-negative
    (pooled ReLU features): values in ``[0, 1 / (1 + headroom)]``, a map of zeros stays
    zeros.

    Why the headroom: CAML Eq. 3 thresholds the reverse map ``1 - A`` at
    ``theta_bg * min(1 - A) = theta_bg * (1 - max A)``. A map scaled into [0, 1] has
    ``max A = 1``, so that threshold is 0 for every ``theta_bg``. With
    ``max A = 1 / (1 + h)`` the background test is ``A < (1 - (theta_bg - 1) * h) * max A``:
    a fixed fraction of the peak, and a lower ``theta_bg`` puts more of the foreground
    into the background mask, as CAML Sec. 4.2 / Fig. 6 describe. ``h = 0.05`` (the paper
    is silent) puts the background below 93.5 % of the peak at the paper's 2.3, and the
    paper's robust range 1.5-2.6 at 97.5 %-92 %: the negative is the map without its
    peak region.

    The peak is a constant for the gradient (``peak_gradient=False``, the paper is
    silent): the division only sets the scale ``theta_bg`` works on. With the gradient
    through the peak, Eq. 4 can raise the anchor's mass outside ``M_bg`` (the anchor
    minus the negative is exactly that part) by lowering the peak relative to the rest,
    i.e. by flattening the map; on the synthetic benchmark that costs most of CAML's
    gain (the ablations chapter measures it). No minimum is subtracted: the background
    keeps its level relative to the peak, which a min-max normalization would stretch
    to 0.
    """
    if headroom <= 0:
        raise ValueError(f"headroom must be > 0, got {headroom}")
    shape = (-1, *[1] * (attention.dim() - 1))
    peak = attention.flatten(1).amax(dim=1).view(shape)
    if not peak_gradient:
        peak = peak.detach()
    return attention / (peak.clamp_min(torch.finfo(attention.dtype).tiny) * (1.0 + headroom))


class ECA(nn.Module):
    """ECA channel attention (CAML Eq. 1): GAP, 1-D conv across channels, sigmoid.

    ``forward(features [B, C, h, w]) -> weights [B, C]`` in (0, 1). ``kernel_size=None``
    uses ECA-Net's adaptive rule (:func:`eca_kernel_size`); pass 3 to match third-party
    PTAP code.
    """

    def __init__(self, channels: int, kernel_size: int | None = None) -> None:
        super().__init__()
        k = eca_kernel_size(channels) if kernel_size is None else kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"ECA kernel_size must be a positive odd integer, got {k}")
        self.kernel_size = k
        # No bias, as in ECA-Net: the 1-D conv only mixes neighbouring channels.
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, features: Tensor) -> Tensor:
        pooled = features.mean(dim=(2, 3)).unsqueeze(1)
        return torch.sigmoid(self.conv(pooled).squeeze(1))


class PTAP(nn.Module):
    """Pixel-wise top-k attention pooling (CAML Sec. 3.1, Eq. 1-2).

    Args:
        channels: ``C`` of the feature map.
        k_ratio: share of channels kept, in (0, 1] (``k = floor(k_ratio * C)``, at least
            1); CAML uses 0.7. ``1 / C`` gives max pooling, 1.0 average pooling.
        largest: keep the largest values (top-k); False keeps the smallest (bottom-k).
        selection: ``"pixel"`` (CAML, Eq. 2) or ``"channel"`` (supplement C).
        eca_kernel_size: ECA's 1-D kernel size; None for ECA-Net's adaptive rule.

    ``forward(features [B, C, h, w]) -> (attention [B, h, w], weighted F_w [B, C, h, w])``.
    """

    def __init__(
        self,
        channels: int,
        k_ratio: float = 0.7,
        *,
        largest: bool = True,
        selection: str = "pixel",
        eca_kernel_size: int | None = None,
    ) -> None:
        super().__init__()
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        self.k = num_selected(channels, k_ratio)
        self.largest = largest
        self.selection = selection
        self.eca = ECA(channels, eca_kernel_size)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        weighted = features * self.eca(features)[:, :, None, None]
        select = pixelwise_topk_mean if self.selection == "pixel" else channelwise_topk_mean
        return select(weighted, self.k, self.largest), weighted

    def extra_repr(self) -> str:
        return f"k={self.k}, largest={self.largest}, selection={self.selection!r}"


class CAAM(nn.Module):
    """PsyNet's class-agnostic activation map: the channel mean, no channel weights.

    ``forward(features [B, C, h, w]) -> (attention [B, h, w], features)``; the heads
    then read the unweighted features (the PsyNet baseline and CAML's "- A_PTAP").
    """

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        return channel_average(features), features
