import copy

import pytest
import torch

from coloc.inca.model import (
    POSITIONS,
    AttentionBlock,
    INCANet,
    NonLocalAttention,
    adl_drop_mask,
    dropped_foreground_mask,
    normalize_map,
)
from coloc.models import build_backbone


def test_dfg_mask_of_a_constant_map_is_empty():
    # A == max and A == mean everywhere: nothing is below gamma_fg * max (< 1) nor above
    # gamma_bg * mean (> 1)
    mask = dropped_foreground_mask(torch.full((1, 3, 3), 2.0), 0.9, 1.2)
    assert mask.dtype == torch.bool and mask.shape == (1, 3, 3) and not mask.any()


def test_dfg_mask_drops_a_single_peak_and_the_background():
    a = torch.zeros(1, 4, 4)
    a[0, 1, 1] = 10.0  # the peak
    a[0, 1, 2] = 6.0  # object, below 0.9 * max, above 1.2 * mean (1.2 * 1.0)
    mask = dropped_foreground_mask(a, 0.9, 1.2)
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, 1, 2] = True
    assert torch.equal(mask, expected)
    # ADL's mask keeps the background (everything below the peak threshold)
    assert adl_drop_mask(a, 0.9).sum() == 15


def test_dfg_mask_when_all_but_one_pixel_is_below_the_mean():
    a = torch.ones(2, 3, 3)
    a[:, 0, 0] = 100.0  # mean = (8 + 100) / 9 = 12; only the peak is above it
    mask = dropped_foreground_mask(a, 0.9, 1.0)
    assert not mask.any()  # the peak is dropped by theta_fg, the rest is background
    mask = dropped_foreground_mask(a, 1.0 + 1e-6, 1.0)  # gamma_fg above 1 keeps the peak
    assert mask.sum() == 2 and mask[:, 0, 0].all()


def test_masks_are_per_image():
    a = torch.stack([torch.arange(9.0).view(3, 3), 10 * torch.arange(9.0).view(3, 3)])
    assert torch.equal(dropped_foreground_mask(a, 0.9, 1.0)[0],
                       dropped_foreground_mask(a, 0.9, 1.0)[1])


def test_normalize_map():
    a = torch.tensor([[[1.0, 3.0], [2.0, 4.0]]])
    assert torch.allclose(normalize_map(a, "max"), a / 4)
    assert torch.allclose(normalize_map(a, "minmax"), (a - 1) / 3)
    assert torch.equal(normalize_map(a, "none"), a)
    with pytest.raises(ValueError, match="unknown map normalization"):
        normalize_map(a, "l2")


def test_nonlocal_attention_shape_and_residual_start():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 7)
    block = NonLocalAttention(16, reduction=4, residual=True)
    out = block(x)
    assert out.shape == (2, 5, 7)
    assert torch.allclose(out, x.mean(1))  # z starts at zero: ADL's map
    plain = NonLocalAttention(16, reduction=4, residual=False)
    assert plain(x).shape == (2, 5, 7)
    # every output position mixes all positions (softmax over j): a change at one input
    # position moves the attention elsewhere too
    y = x.clone()
    y[:, :, 0, 0] += 5
    assert not torch.allclose(plain(y)[:, 4, 6], plain(x)[:, 4, 6])


def test_block_is_identity_at_eval_and_records_only_in_training():
    torch.manual_seed(0)
    x = torch.rand(2, 8, 4, 4)
    for attention in ("channel", "nonlocal"):
        block = AttentionBlock(8, attention=attention, drop_mask="dfg").eval()
        assert torch.equal(block(x), x) and block.record is None
        block.train()
        y = block(x)
        assert not torch.equal(y, x) and block.record["attention"].shape == (2, 4, 4)


def test_block_draws_the_drop_mask_at_the_stated_rate():
    torch.manual_seed(0)
    x = torch.rand(1, 4, 6, 6) + 0.1
    block = AttentionBlock(4, drop_rate=0.3).train()
    draws = []
    for _ in range(2000):
        y = block(x)
        draws.append(block.record["dropped"])
        attention = x.mean(1)
        expected = adl_drop_mask(normalize_map(attention, "max"), 0.9).float() \
            if draws[-1] else torch.sigmoid(attention)
        assert torch.allclose(y, x * expected[:, None])
    assert abs(sum(draws) / len(draws) - 0.3) < 0.03


def test_net_inserts_blocks_at_the_last_positions_and_is_vanilla_at_eval():
    torch.manual_seed(0)
    backbone = build_backbone("small_cnn")
    net = INCANet(backbone, 5, "small_cnn", 3, embed_dim=16, attention="nonlocal",
                  drop_mask="dfg")
    assert net.position_labels == [label for label, _ in POSITIONS["small_cnn"][-3:]]
    images = torch.randn(2, 3, 32, 32)
    net.eval()
    out = net(images)
    assert "attended" not in out
    assert torch.allclose(out["features"], backbone(images))  # blocks off: vanilla
    net.train()
    out = net(images)
    shapes = [r["attention"].shape for r in out["attended"]]
    assert shapes == [(2, 8, 8), (2, 4, 4), (2, 4, 4)]
    assert [r["features"].shape[1] for r in out["attended"]] == [64, 128, 256]
    with pytest.raises(ValueError, match="positions must be in 1..4"):
        INCANet(build_backbone("small_cnn"), 5, "small_cnn", 5)


def test_a_deep_copy_hooks_its_own_blocks():
    net = INCANet(build_backbone("small_cnn"), 5, "small_cnn", 2).train()
    twin = copy.deepcopy(net)
    twin(torch.randn(1, 3, 32, 32))
    assert all(b.record is not None for b in twin.blocks)
    assert all(b.record is None for b in net.blocks)


def test_nonlocal_attention_is_eq_5_computed_in_full():
    # A = E_C[Softmax(f^T g) z], written out with the C x hw x hw product
    torch.manual_seed(0)
    block = NonLocalAttention(16, reduction=4, residual=False)
    x = torch.randn(2, 16, 5, 6)
    f, g, z = block.f(x).flatten(2), block.g(x).flatten(2), block.z(x).flatten(2)
    similarity = torch.softmax(f.transpose(1, 2) @ g, dim=-1)
    full = (z @ similarity.transpose(1, 2)).mean(1).view(2, 5, 6)
    assert torch.allclose(block(x), full, atol=1e-5)
