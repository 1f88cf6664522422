"""Linear evaluation (coloc/contracam/linear.py): L-BFGS logistic regression, L2 on val."""

import pytest
import torch
import torch.nn.functional as F

from coloc.contracam.linear import fit_logistic, linear_evaluation


def blobs(n: int, seed: int, shift: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.eye(3, 5) * shift
    return centres[labels] + torch.randn(n, 5, generator=g), labels


def test_the_solution_is_the_penalized_optimum():
    x, y = blobs(60, 0)
    head = fit_logistic(x, y, 3, l2=0.1)
    head.zero_grad()
    loss = F.cross_entropy(head(x.double()), y) + 0.05 * head.weight.pow(2).sum()
    loss.backward()
    assert head.weight.grad.abs().max() < 1e-5 and head.bias.grad.abs().max() < 1e-5


def test_separable_classes_are_learned_and_l2_is_chosen_on_val():
    result = linear_evaluation(blobs(90, 0), blobs(60, 1), blobs(60, 2), grid=(1e-4, 10.0, 1e4))
    assert result.accuracy > 90
    assert set(result.val_accuracy) == {1e-4, 10.0, 1e4}
    assert result.val_accuracy[result.l2] == max(result.val_accuracy.values())
    assert result.val_accuracy[1e4] < result.val_accuracy[1e-4]  # over-regularized


def test_ties_go_to_the_stronger_regularization():
    result = linear_evaluation(blobs(90, 0, 20.0), blobs(60, 1, 20.0), blobs(60, 2, 20.0),
                               grid=(1e-4, 1e-3))
    assert result.val_accuracy == {1e-4: 100.0, 1e-3: 100.0}
    assert result.l2 == pytest.approx(1e-3)
