"""Linear evaluation of a frozen self-supervised backbone (ContraCAM Tables 4, 6-8).

Appendix B.2 follows Chen et al. (SimCLR) / Kornblith et al.: an L2-regularized
multinomial logistic regression on precomputed features (GAP of the last feature map,
centre images), solved with L-BFGS, its regularization chosen on a validation split
from a log-spaced grid (the paper: 45 values in [1e-6, 1e5]). Why L-BFGS: the problem
is convex and small (features x classes), so a full-batch quasi-Newton solver reaches
the optimum deterministically in a few hundred iterations, with no learning rate or
epochs to tune, which SGD on a linear head would add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from coloc.data import collate_samples
from coloc.train import to_device

PAPER_GRID = tuple(np.logspace(-6, 5, 45).tolist())
"""Appendix B.2's regularization grid: 45 values, log-spaced over [1e-6, 1e5]."""
CPU_GRID = tuple(np.logspace(-4, 2, 7).tolist())
"""A coarser grid for the CPU profile, one value per decade over [1e-4, 1e2]: on the
synthetic benchmark's val probes the optimum lies near 0.1, and the weakest penalties
of the paper's range (below 1e-4) only cost L-BFGS iterations (ill-conditioned)."""


@torch.no_grad()
def extract_features(model: nn.Module, dataset: Dataset, batch_size: int = 256,
                     device: str | torch.device = "cpu", label_key: str = "label"
                     ) -> tuple[Tensor, Tensor]:
    """GAP features ``[N, C]`` of the frozen query backbone (``model.features``) and the
    labels ``[N]`` (``batch[label_key]``), on the CPU, in dataset order."""
    model.to(device).eval()
    feats, labels = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_samples):
        batch = to_device(batch, torch.device(device))
        feats.append(model.features(batch["image"]).mean(dim=(2, 3)).float().cpu())
        labels.append(batch[label_key].cpu())
    return torch.cat(feats), torch.cat(labels)


def fit_logistic(features: Tensor, labels: Tensor, num_classes: int, l2: float,
                 max_iter: int = 500) -> nn.Linear:
    """Multinomial logistic regression, loss ``CE + l2 / 2 * ||W||^2`` (bias free of the
    penalty), full-batch L-BFGS with strong-Wolfe line search, from zeros."""
    head = nn.Linear(features.shape[1], num_classes).double()
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    x, y = features.double(), labels.long()
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=max_iter,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(x), y) + 0.5 * l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def accuracy(head: nn.Linear, features: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in percent."""
    with torch.no_grad():
        return float((head(features.double()).argmax(1) == labels).double().mean() * 100)


@dataclass
class LinearProbe:
    """A logistic-regression head fitted on standardized training features, its L2
    weight chosen on val (:func:`fit_probe`); it scores any further split of the same
    features (the Background Challenge's variants, Table 7)."""

    head: nn.Linear
    mean: Tensor
    std: Tensor
    l2: float
    val_accuracy: dict[float, float]

    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        """Top-1 accuracy (%) of ``features`` ``[N, C]`` (raw, standardized here)."""
        return accuracy(self.head, (features - self.mean) / self.std, labels)


@dataclass
class LinearEvaluation:
    """What :func:`linear_evaluation` measured: test accuracy (%), the chosen L2 weight
    and the validation accuracy of every grid value."""

    accuracy: float
    l2: float
    val_accuracy: dict[float, float]


def fit_probe(train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
              grid: Sequence[float] = CPU_GRID, num_classes: int | None = None
              ) -> LinearProbe:
    """Fit on ``train`` for each L2 weight of ``grid`` and keep the best on ``val``.

    Each argument is ``(features [N, C], labels [N])`` from :func:`extract_features`.
    Features are standardized with the training split's mean and std. Ties in validation
    accuracy go to the stronger regularization.
    """
    (x_train, y_train), (x_val, y_val) = train, val
    mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=1e-8)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    classes = num_classes or int(max(y_train.max(), y_val.max())) + 1
    heads = {float(l2): fit_logistic(x_train, y_train, classes, l2) for l2 in grid}
    scores = {l2: accuracy(head, x_val, y_val) for l2, head in heads.items()}
    best = max(sorted(scores, reverse=True), key=lambda l2: scores[l2])
    return LinearProbe(heads[best], mean, std, best, scores)


def linear_evaluation(train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
                      test: tuple[Tensor, Tensor], grid: Sequence[float] = CPU_GRID,
                      num_classes: int | None = None) -> LinearEvaluation:
    """:func:`fit_probe` on ``train`` and ``val``, then ``test`` scored once."""
    classes = num_classes or int(max(train[1].max(), val[1].max(), test[1].max())) + 1
    probe = fit_probe(train, val, grid, classes)
    return LinearEvaluation(probe.accuracy(*test), probe.l2, probe.val_accuracy)
