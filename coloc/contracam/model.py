"""MoCo v2 and BYOL as single modules whose forward returns what their loss needs.

ContraCAM Sec. 2.1: contrastive learning maximizes the contrastive score of Eq. 1 between
an output ``z(x)`` and a target ``z-bar(x+)``. MoCo v2 (Chen et al. 2020, after He et al.
2020): ``z = g(f(x))`` and ``z-bar = g_m(f_m(x+))`` with momentum copies ``f_m, g_m`` and a
FIFO queue of past keys as negatives, InfoNCE at temperature 0.2. BYOL (Grill et al.
2020): ``z = h(g(f(x)))`` with a predictor ``h``, target ``g_m(f_m(x+))``, no negatives,
loss ``2 - 2 cos``. Both keep their momentum encoder (and MoCo its queue) inside, as the
MoCo reference builder does. Under torchrun MoCo follows the reference's many-GPU code
(all-gathered keys, shuffled BN; :class:`MoCo`); on one device there is nothing to
shuffle across, and the single-process computation is the one it always was.

Both expose ``features(x) -> [B, C, h, w]`` (the backbone's last map) and
``project(features) -> [B, d]`` (GAP, the projector ``g``, L2-normalized), the two halves
ContraCAM differentiates between (:mod:`coloc.contracam.maps`).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coloc import distributed


class Mix(NamedTuple):
    """How a query batch was mixed (Mixup / CutMix, Table 8): image ``i`` holds a share
    ``lam[i]`` of itself and ``1 - lam[i]`` of image ``partner[i]`` (i-Mix-style targets)."""

    partner: Tensor  # long [B]
    lam: Tensor  # float [B]


def mlp(in_dim: int, hidden: int, out_dim: int, batch_norm: bool) -> nn.Sequential:
    """Two-layer MLP head: MoCo v2's projector (no BN) or BYOL's projector/predictor (BN)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Backbone ``f`` and projector ``g``: ``forward(x) = normalize(g(GAP(f(x))))``."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def project(self, features: Tensor) -> Tensor:
        """``[B, C, h, w]`` features -> ``[B, d]`` unit-norm projections."""
        return F.normalize(self.projector(features.mean(dim=(2, 3))), dim=1)

    def forward(self, images: Tensor) -> Tensor:
        return self.project(self.backbone(images))


def _momentum_copy(encoder: nn.Module) -> nn.Module:
    target = copy.deepcopy(encoder)
    for parameter in target.parameters():
        parameter.requires_grad = False
    return target


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """``theta_m <- m * theta_m + (1 - m) * theta`` (MoCo Eq. 2, BYOL's tau); buffers
    (BN statistics) are the target's own, as in the reference code."""
    for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
        p_target.mul_(momentum).add_(p_online.detach(), alpha=1.0 - momentum)


class SSLModel(nn.Module):
    """What MoCo v2 and BYOL share: the query encoder's ``features`` and ``project``."""

    encoder: Encoder

    def features(self, images: Tensor) -> Tensor:
        return self.encoder.backbone(images)

    def project(self, features: Tensor) -> Tensor:
        return self.encoder.project(features)


class MoCo(SSLModel):
    """MoCo v2: query encoder, momentum key encoder (no gradient), FIFO queue ``[K, d]``.

    ``forward(query, key)`` (two views ``[B, 3, H, W]``) returns ``q``, ``k`` ``[B, d]``
    and ``queue`` ``[K, d]``, the negatives as they were before this batch's keys were
    enqueued; in training mode it first moves the key encoder by ``momentum`` and after
    the keys are computed enqueues them, oldest out first.

    Under a process group (training mode), as the reference code (facebookresearch/moco,
    ``builder.py``): the key views of all ranks are all-gathered, shuffled by rank
    0's permutation (drawn from torch's global generator, reseeded per epoch, and
    broadcast), each rank encodes its slice of the shuffled batch, and the keys are
    gathered and unshuffled; the queue receives every rank's keys in rank order (the
    order of one process's global batch), ``k`` is this rank's. Shuffle BN, not SyncBN:
    the reference's choice against the leak of MoCo Sec. 3.3 (per-GPU BatchNorm
    statistics of the key encoder would be those of the very images whose queries
    match; SyncBN statistics over the global batch still contain them), and it runs on
    any backend, where torch's SyncBatchNorm needs CUDA. With ``sync_bn=True`` the whole
    model's BN is synchronized, the key encoder's included, and shuffling changes
    nothing there. One process draws nothing extra and computes exactly as before.
    """

    def __init__(self, backbone: nn.Module, hidden: int = 2048, dim: int = 128,
                 queue_size: int = 65536, momentum: float = 0.999,
                 temperature: float = 0.2) -> None:
        super().__init__()
        self.encoder = Encoder(backbone, mlp(backbone.out_channels, hidden, dim, False))
        self.key_encoder = _momentum_copy(self.encoder)
        self.momentum, self.temperature = momentum, temperature
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` ``[B, d]`` over the oldest entries (the queue is a ring)."""
        size, ptr = len(self.queue), int(self.queue_ptr)
        rows = (ptr + torch.arange(len(keys), device=keys.device)) % size
        self.queue[rows] = keys.detach().to(self.queue.dtype)
        self.queue_ptr.fill_((ptr + len(keys)) % size)

    @torch.no_grad()
    def shuffled_keys(self, key: Tensor) -> tuple[Tensor, Tensor]:
        """Shuffle BN over the process group: this rank's keys ``[b, d]`` and every
        rank's ``[B, d]`` (rank order) of the key views ``key`` ``[b, 3, H, W]``."""
        views, sizes = distributed.gather_rows(key)
        order = distributed.broadcast(torch.randperm(len(views), device=views.device))
        bounds = [sum(sizes[:r]) for r in range(len(sizes) + 1)]
        mine = slice(bounds[distributed.rank()], bounds[distributed.rank() + 1])
        shuffled, _ = distributed.gather_rows(self.key_encoder(views[order[mine]]))
        keys = torch.empty_like(shuffled)
        keys[order] = shuffled  # unshuffle: row order[i] of the batch was encoded i-th
        return keys[mine], keys

    def forward(self, query: Tensor, key: Tensor) -> dict[str, Tensor]:
        q = self.encoder(query)
        with torch.no_grad():
            if self.training:
                momentum_update(self.encoder, self.key_encoder, self.momentum)
            if self.training and distributed.active():
                k, keys = self.shuffled_keys(key)
            else:
                k = keys = self.key_encoder(key)
        queue = self.queue.clone().detach()
        if self.training:
            self.enqueue(keys)
        return {"q": q, "k": k, "queue": queue}

    def loss(self, output: dict[str, Tensor], mix: Mix | None = None) -> Tensor:
        """InfoNCE at ``temperature`` (MoCo Eq. 1): positive ``q.k``, negatives the queue.

        With ``mix`` (Mixup/CutMix, Table 8, after i-Mix): logits over this batch's keys
        and the queue; image ``i``'s target is its own key with weight ``lam[i]`` and its
        partner's key with ``1 - lam[i]``.
        """
        q, k, queue = output["q"], output["k"], output["queue"]
        if mix is None:
            positive = (q * k).sum(dim=1, keepdim=True)
            logits = torch.cat([positive, q @ queue.T], dim=1) / self.temperature
            return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long,
                                                       device=q.device))
        logits = torch.cat([q @ k.T, q @ queue.T], dim=1) / self.temperature
        own = F.cross_entropy(logits, torch.arange(len(q), device=q.device), reduction="none")
        other = F.cross_entropy(logits, mix.partner, reduction="none")
        return (mix.lam * own + (1 - mix.lam) * other).mean()


class BYOL(SSLModel):
    """BYOL: online encoder and predictor, momentum target encoder (no gradient).

    ``forward(query, key)`` returns ``p`` (the online prediction of ``query``,
    unit-norm) and ``z`` (the target projection of ``key``, unit-norm), ``[B, d]``; the
    method's step passes both view orders in one batch for BYOL's symmetric loss.
    """

    def __init__(self, backbone: nn.Module, hidden: int = 4096, dim: int = 256,
                 momentum: float = 0.996) -> None:
        super().__init__()
        self.encoder = Encoder(backbone, mlp(backbone.out_channels, hidden, dim, True))
        self.predictor = mlp(dim, hidden, dim, True)
        self.target_encoder = _momentum_copy(self.encoder)
        self.momentum = momentum

    def forward(self, query: Tensor, key: Tensor) -> dict[str, Tensor]:
        # the predictor reads the projection before normalization, as in BYOL
        online = self.encoder.projector(self.encoder.backbone(query).mean(dim=(2, 3)))
        p = F.normalize(self.predictor(online), dim=1)
        with torch.no_grad():
            if self.training:
                momentum_update(self.encoder, self.target_encoder, self.momentum)
            z = self.target_encoder(key)
        return {"p": p, "z": z}

    def loss(self, output: dict[str, Tensor], mix: Mix | None = None) -> Tensor:
        """``2 - 2 cos(p, z)`` averaged (BYOL Eq. 2); with ``mix`` the target of image
        ``i`` is ``lam[i]`` its own and ``1 - lam[i]`` its partner's projection."""
        p, z = output["p"], output["z"]
        own = 2 - 2 * (p * z).sum(dim=1)
        if mix is None:
            return own.mean()
        other = 2 - 2 * (p * z[mix.partner]).sum(dim=1)
        return (mix.lam * own + (1 - mix.lam) * other).mean()
