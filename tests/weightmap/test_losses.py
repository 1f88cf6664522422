"""Eq. 1-4 and R by hand; triplet sampling by class."""

import math

import pytest
import torch

from coloc.weightmap.losses import (
    inner_loss,
    method1_loss,
    outer_loss,
    regularizer,
    sample_triplets,
    soft_cross_entropy,
    triplet,
)


def test_regularizer_is_the_mean_weight():
    maps = torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])
    assert regularizer(maps).item() == pytest.approx(0.5)


def test_soft_cross_entropy_by_hand_and_only_the_masked_branch_gets_gradient():
    target = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)  # p = (1/4, 3/4)
    logits = torch.zeros(1, 2, requires_grad=True)  # log q = log 1/2
    loss = soft_cross_entropy(target, logits)
    assert loss.item() == pytest.approx(math.log(2.0))
    loss.backward()
    assert target.grad is None and logits.grad is not None


def test_method1_loss_adds_lambda_times_r():
    logits = torch.zeros(2, 3)
    maps = torch.full((2, 4, 4), 0.25)
    out = method1_loss(logits, logits, maps, reg_weight=2.0)
    assert out["loss"].item() == pytest.approx(math.log(3.0) + 0.5)
    assert out["reg"].item() == pytest.approx(0.25)


def test_triplet_hinge_by_hand():
    a, p, n = torch.zeros(2, 2), torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor(
        [[0.0, 1.0], [6.0, 8.0]])
    # rows: 5 - 1 + 1 = 5; 1 - 10 + 1 < 0 -> 0
    assert triplet(a, p, n).item() == pytest.approx(2.5)
    assert triplet(a[:0], p[:0], n[:0]).item() == 0.0


def test_sampling_never_pairs_an_image_with_itself_and_respects_classes():
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    for seed in range(20):
        a, p, n = sample_triplets(labels, torch.Generator().manual_seed(seed))
        assert 3 not in a.tolist() and 6 not in a.tolist()  # no other image of their class
        assert torch.all(a != p) and torch.all(labels[a] == labels[p])
        assert torch.all(labels[a] != labels[n])
    a, _, _ = sample_triplets(torch.tensor([1, 1, 1]))  # no negative in the batch
    assert len(a) == 0


def test_inner_and_outer_losses_are_zero_when_the_foreground_separates():
    whole = torch.zeros(4, 2)
    foreground = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 0.0]])
    background = torch.full((4, 2), 5.0)
    assert inner_loss(whole, whole, background).item() == 0.0
    assert outer_loss(foreground, torch.tensor([0, 0, 1, 1])).item() == 0.0
    assert outer_loss(foreground, torch.tensor([0, 1, 0, 1])).item() > 0
