import torch
from torch import nn

from coloc.inca.losses import (
    contrastive_attention_loss,
    embedded_gap,
    foreground_consistency_loss,
    inca_losses,
    masked_gap,
    region_masks,
)


def test_region_masks_follow_eq_2():
    a = torch.tensor([[[0.0, 1.0], [2.0, 5.0]]])  # mean 2
    masks = region_masks(a, gamma_fg=0.9, gamma_bg=1.0)
    assert masks["fg"].tolist() == [[[0.0, 0.0], [0.0, 1.0]]]
    assert masks["bg"].tolist() == [[[1.0, 1.0], [0.0, 0.0]]]
    assert masks["dfg"].sum() == 0  # the only pixel above the mean is the peak


def test_masked_gap_and_empty_mask():
    f = torch.arange(8.0).view(1, 2, 2, 2)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert masked_gap(f, mask).tolist() == [[1.5, 5.5]]
    assert masked_gap(f, torch.zeros(1, 2, 2)).tolist() == [[0.0, 0.0]]


def test_contrastive_loss_is_zero_when_dfg_equals_fg_and_bg_is_far():
    # Attention: peak at (0, 0), object at (0, 1), background elsewhere. Features: equal
    # on the peak and the object (z_dfg = z_fg), far on the background.
    a = torch.tensor([[[1.0, 0.8, 0.0], [0.0, 0.0, 0.0]]])
    f = torch.zeros(1, 1, 2, 3)
    f[0, 0, 0, :2] = 1.0
    f[0, 0, 1, :] = -5.0
    f[0, 0, 0, 2] = -5.0
    identity = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.ones_(identity.weight)
    assert contrastive_attention_loss(f, a, identity, 0.9, 1.2, margin=1.0).item() == 0.0
    # with the background as close as the foreground, the hinge is the margin
    same = torch.ones(1, 1, 2, 3)
    assert abs(contrastive_attention_loss(same, a, identity, 0.9, 1.2, 1.0).item() - 1.0) \
        < 1e-6


def test_contrastive_loss_trains_features_and_embedding_not_the_masks():
    torch.manual_seed(0)
    f = torch.randn(2, 4, 3, 3, requires_grad=True)
    a = torch.rand(2, 3, 3, requires_grad=True)
    embedding = nn.Conv2d(4, 8, 1)
    loss = contrastive_attention_loss(f, a, embedding, 0.9, 1.0, margin=10.0)
    loss.backward()
    assert f.grad.abs().sum() > 0 and embedding.weight.grad.abs().sum() > 0
    assert a.grad is None


def test_consistency_loss_sends_no_gradient_into_the_reference():
    early = torch.rand(2, 8, 8, requires_grad=True)
    reference = torch.rand(2, 4, 4, requires_grad=True)
    loss = foreground_consistency_loss(early, reference, "sum")
    loss.backward()
    assert early.grad.abs().sum() > 0
    assert reference.grad is None
    # equal maps (after resizing a constant reference) cost nothing
    flat = torch.full((1, 8, 8), 0.5)
    assert foreground_consistency_loss(flat, torch.full((1, 4, 4), 0.5)).item() == 0.0
    # sum = mean * pixels
    assert torch.isclose(foreground_consistency_loss(early, reference, "sum"),
                         64 * foreground_consistency_loss(early, reference, "mean"))


def test_inca_losses_sum_positions_and_skip_the_reference():
    torch.manual_seed(0)
    records = [{"features": torch.randn(2, 4, s, s), "attention": torch.rand(2, s, s),
                "dropped": False} for s in (8, 4)]
    embeddings = [nn.Conv2d(4, 8, 1), nn.Conv2d(4, 8, 1)]
    losses = inca_losses(records, embeddings, gamma_fg=0.9, gamma_bg=1.0, margin=1.0,
                         map_norm="max", fc_reduction="mean")
    ca = sum(contrastive_attention_loss(r["features"], r["attention"] / r["attention"]
             .flatten(1).amax(1)[:, None, None], e, 0.9, 1.0, 1.0)
             for r, e in zip(records, embeddings, strict=True))
    assert torch.isclose(losses["ca"], ca)
    one = inca_losses(records[:1], embeddings[:1], gamma_fg=0.9, gamma_bg=1.0, margin=1.0,
                      map_norm="max", fc_reduction="mean")
    assert one["fc"].item() == 0.0 and losses["fc"].item() > 0


def test_embedded_gap_equals_the_masked_gap_of_the_embedded_map():
    torch.manual_seed(0)
    f = torch.randn(3, 5, 4, 4)
    mask = (torch.rand(3, 4, 4) > 0.5).float()
    mask[2] = 0.0  # an empty mask pools to zeros either way
    embedding = nn.Conv2d(5, 7, 1)
    assert torch.allclose(embedded_gap(f, mask, embedding),
                          masked_gap(embedding(f), mask), atol=1e-6)
    assert embedded_gap(f, mask, embedding)[2].abs().sum().item() == 0.0
