"""MoCo v2 and BYOL modules (coloc/contracam/model.py): queue, momentum, losses."""

import copy

import pytest
import torch
import torch.nn.functional as F

from coloc.contracam.model import BYOL, Mix, MoCo, momentum_update
from coloc.models import build_backbone


def moco(queue_size: int = 8, momentum: float = 0.9) -> MoCo:
    torch.manual_seed(0)
    return MoCo(build_backbone("small_cnn"), hidden=16, dim=4, queue_size=queue_size,
                momentum=momentum, temperature=0.5)


def views(n: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randn(n, 3, 16, 16, generator=g)


def test_the_queue_is_fifo_and_wraps_around():
    model = moco(queue_size=5)
    first, second = torch.full((3, 4), 1.0), torch.full((3, 4), 2.0)
    model.enqueue(first)
    assert int(model.queue_ptr) == 3 and torch.equal(model.queue[:3], first)
    model.enqueue(second)  # rows 3, 4, then 0: the oldest entry goes first
    assert int(model.queue_ptr) == 1
    assert model.queue[:, 0].tolist() == [2.0, 1.0, 1.0, 2.0, 2.0]


def test_forward_returns_the_queue_before_this_batchs_keys_then_enqueues_them():
    model = moco().train()
    before = model.queue.clone()
    out = model(*views())
    assert torch.equal(out["queue"], before)
    assert torch.equal(model.queue[:3], out["k"]) and torch.equal(model.queue[3:], before[3:])
    assert torch.allclose(out["q"].norm(dim=1), torch.ones(3))
    model.eval()
    kept = model.queue.clone()
    model(*views())
    assert torch.equal(model.queue, kept)  # evaluation neither enqueues nor moves keys


def test_the_key_encoder_gets_no_gradient_and_moves_by_momentum():
    model = moco(momentum=0.9).train()
    old_keys = copy.deepcopy(model.key_encoder.state_dict())
    query_params = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}
    out = model(*views())
    model.loss(out).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.key_encoder.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())
    for name, p in model.key_encoder.named_parameters():
        assert torch.allclose(p, 0.9 * old_keys[name] + 0.1 * query_params[name], atol=1e-6)


def test_moco_loss_is_infonce_at_its_temperature():
    model = moco()
    g = torch.Generator().manual_seed(3)
    q, k = (F.normalize(torch.randn(2, 4, generator=g), dim=1) for _ in range(2))
    queue = F.normalize(torch.randn(5, 4, generator=g), dim=1)
    loss = model.loss({"q": q, "k": k, "queue": queue})
    by_hand = torch.stack([
        -torch.log(torch.exp(q[i] @ k[i] / 0.5)
                   / (torch.exp(q[i] @ k[i] / 0.5) + torch.exp(queue @ q[i] / 0.5).sum()))
        for i in range(2)]).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    mix = Mix(torch.tensor([1, 0]), torch.tensor([0.7, 1.0]))
    logits = torch.cat([q @ k.T, q @ queue.T], dim=1) / 0.5
    mixed = (0.7 * F.cross_entropy(logits[:1], torch.tensor([0]))
             + 0.3 * F.cross_entropy(logits[:1], torch.tensor([1]))
             + F.cross_entropy(logits[1:], torch.tensor([1]))) / 2
    assert model.loss({"q": q, "k": k, "queue": queue}, mix).item() == pytest.approx(
        mixed.item(), rel=1e-5)


def test_byol_target_gets_no_gradient_and_its_loss_is_2_minus_2_cos():
    torch.manual_seed(0)
    model = BYOL(build_backbone("small_cnn"), hidden=16, dim=4, momentum=0.5).train()
    out = model(*views(4))
    model.loss(out).backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert model.predictor[0].weight.grad is not None
    p, z = out["p"].detach(), out["z"]
    assert model.loss({"p": p, "z": z}).item() == pytest.approx(
        (2 - 2 * (p * z).sum(1)).mean().item(), rel=1e-6)
    partner = torch.tensor([1, 0, 3, 2])
    lam = torch.tensor([0.5, 1.0, 0.75, 0.6])
    expected = (lam * (2 - 2 * (p * z).sum(1))
                + (1 - lam) * (2 - 2 * (p * z[partner]).sum(1))).mean()
    assert model.loss({"p": p, "z": z}, Mix(partner, lam)).item() == pytest.approx(
        expected.item(), rel=1e-6)


def test_momentum_update_by_hand():
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.75 * target.weight.detach() + 0.25 * online.weight.detach()
    momentum_update(online, target, 0.75)
    assert torch.allclose(target.weight, expected)
