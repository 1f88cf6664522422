"""The pretext-task network of PsyNet and CAML: backbone, pooling, one head per transform."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from torch import Tensor, nn


class PretextOutput(TypedDict):
    """What :class:`PretextNet` returns; exactly what the CAML losses read.

    - ``features``: the backbone's last feature map ``F_x`` ``[B, C, h, w]``;
    - ``weighted``: the map the heads read, ``F_w`` for PTAP (CAML Eq. 1), ``F_x`` for
      CAAM ``[B, C, h, w]``;
    - ``attention``: the pooled attention map ``A`` ``[B, h, w]`` (CAML Eq. 2), >= 0,
      not normalized;
    - ``logits``: ``{transform name: [B, num_classes]}``, one entry per head.
    """

    features: Tensor
    weighted: Tensor
    attention: Tensor
    logits: dict[str, Tensor]


class PretextNet(nn.Module):
    """Backbone -> attention pooling -> one 1x1-conv + GAP classifier per pretext transform.

    Args:
        backbone: from :func:`coloc.models.build_backbone` (needs ``out_channels``).
        heads: ``{transform name: num_classes}``, e.g. ``transform.heads`` of a
            :mod:`coloc.caml.pretext` transform (a combined transform gives one head per
            component, as in PsyNet).
        pooling: :class:`coloc.caml.ptap.PTAP` (CAML) or :class:`coloc.caml.ptap.CAAM` (PsyNet).

    The heads read ``weighted``: with PTAP the ECA channel weights sit in the feature
    path ("inserted at the last convolution layer", CAML Sec. 4), so ECA is trained by
    the classification loss too and not only by L_caml (the paper does not say; this
    keeps ECA trained in the "- L_caml" ablation of CAML Table 3). A 1x1 conv followed
    by GAP equals GAP followed by a linear layer (CAML Eq. 6's classifier) and is
    PsyNet's head.
    """

    def __init__(self, backbone: nn.Module, heads: Mapping[str, int], pooling: nn.Module):
        super().__init__()
        if not heads:
            raise ValueError("PretextNet needs at least one head, e.g. {'rotation': 4}")
        self.backbone = backbone
        self.pooling = pooling
        channels = backbone.out_channels
        self.heads = nn.ModuleDict({name: nn.Conv2d(channels, n, 1) for name, n in heads.items()})

    def forward(self, images: Tensor) -> PretextOutput:
        features = self.backbone(images)
        attention, weighted = self.pooling(features)
        logits = {name: head(weighted).mean(dim=(2, 3)) for name, head in self.heads.items()}
        return PretextOutput(
            features=features, weighted=weighted, attention=attention, logits=logits
        )
