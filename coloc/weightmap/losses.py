"""WeightMap's losses (Sec. 3): Method I (Eq. 1), Method II (Eq. 2-4), the regularizer R.

Images are the loader's ImageNet-normalized tensors; ``I ⊙ M`` multiplies them, so a
weight of 0 turns a pixel into the dataset's mean colour (zero input), which is what f
sees as "nothing" (the paper is silent on the space of the product).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def regularizer(maps: Tensor) -> Tensor:
    """R(M), the L1 norm of the weight map (Sec. 3, Eq. 1), as the mean weight per pixel
    averaged over the batch: ``[B, H, W]`` in [0, 1] -> scalar in [0, 1].

    Mean, not sum, per image: the sum over 64x64 pixels would be about 4,000 times the
    cross-entropy (order ln K) with lambda = 1 and g would output zeros at once; the
    mean keeps lambda = 1 meaningful at any resolution (our choice; the paper is silent).
    """
    return maps.abs().flatten(1).mean(dim=1).mean()


def soft_cross_entropy(target_logits: Tensor, logits: Tensor) -> Tensor:
    """D of Eq. 1: cross-entropy between f(I)'s pseudo-probabilities (softmax of
    ``target_logits``, no gradient) and f(I ⊙ g(I)) (``logits``), mean over the batch."""
    target = target_logits.detach().softmax(dim=1)
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


def method1_loss(original_logits: Tensor, masked_logits: Tensor, maps: Tensor,
                 reg_weight: float = 1.0) -> dict[str, Tensor]:
    """Eq. 1: ``CE(f(I), f(I ⊙ g(I))) + lambda R(g(I))``; returns ``loss``, ``ce``, ``reg``."""
    ce = soft_cross_entropy(original_logits, masked_logits)
    reg = regularizer(maps)
    return {"loss": ce + reg_weight * reg, "ce": ce, "reg": reg}


def triplet(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0) -> Tensor:
    """``max(||a - p|| - ||a - n|| + margin, 0)`` per row (Eq. 2-4), mean over rows
    (zero for no rows)."""
    if len(anchor) == 0:
        return anchor.sum() * 0.0
    hinge = (anchor - positive).norm(dim=1) - (anchor - negative).norm(dim=1) + margin
    return F.relu(hinge).mean()


def sample_triplets(labels: Tensor, generator: torch.Generator | None = None
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """In-batch triplets by class: for every image with another image of its class and
    one of another class in the batch, a random positive (same class, never itself) and
    a random negative. Returns index tensors ``(anchor, positive, negative)`` ``[T]``."""
    labels = labels.cpu()
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    different = labels[:, None] != labels[None, :]
    keep = same.any(dim=1) & different.any(dim=1)
    anchors = keep.nonzero()[:, 0]
    if len(anchors) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, empty
    noise = torch.rand(len(labels), len(labels), generator=generator)
    positives = torch.where(same, noise, -1.0)[anchors].argmax(dim=1)
    negatives = torch.where(different, noise, -1.0)[anchors].argmax(dim=1)
    return anchors, positives, negatives


def inner_loss(whole: Tensor, foreground: Tensor, background: Tensor, margin: float = 1.0
               ) -> Tensor:
    """Eq. 3: f(I_a) close to f(J_a^f) = f(g(I_a) ⊙ I_a), far from f(J_a^b) =
    f((1 - g(I_a)) ⊙ I_a); embeddings ``[B, D]``."""
    return triplet(whole, foreground, background, margin)


def outer_loss(foreground: Tensor, labels: Tensor, margin: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
    """Eq. 4: foreground embeddings ``[B, D]`` of same-class images close, of different
    classes far, over the in-batch triplets of :func:`sample_triplets`."""
    a, p, n = (i.to(foreground.device) for i in sample_triplets(labels, generator))
    return triplet(foreground[a], foreground[p], foreground[n], margin)
