"""PTAP (CAML Eq. 1-2), its special cases and variants, CAAM, and the map normalization."""

import math

import pytest
import torch

from coloc.caml.ptap import (
    CAAM,
    ECA,
    PTAP,
    channelwise_topk_mean,
    eca_kernel_size,
    normalize_attention,
    num_selected,
    pixelwise_topk_mean,
)


@pytest.fixture
def features():
    return torch.rand(2, 16, 5, 5, generator=torch.Generator().manual_seed(0))


def test_eca_kernel_size_follows_the_adaptive_rule():
    assert [eca_kernel_size(c) for c in (64, 256, 512, 2048)] == [3, 5, 5, 7]


def test_eca_weights_are_per_channel_in_the_open_unit_interval(features):
    weights = ECA(16)(features * 100 - 50)
    assert weights.shape == (2, 16)
    assert (weights > 0).all() and (weights < 1).all()
    assert ECA(16, kernel_size=3).conv.kernel_size == (3,)
    with pytest.raises(ValueError, match="odd"):
        ECA(16, kernel_size=4)


def test_eca_is_a_sigmoid_of_a_1d_conv_over_the_channel_means():
    # CAML Eq. 1 written out: y_c = sum_j w_j * mean(F_{c + j - 1}), zero outside the
    # channels, weight_c = 1 / (1 + exp(-y_c)). Features whose max differs from the mean.
    features = torch.rand(2, 6, 3, 4, generator=torch.Generator().manual_seed(1)) * 4 - 2
    kernel = [0.5, -1.0, 2.0]
    eca = ECA(6, kernel_size=3)
    with torch.no_grad():
        eca.conv.weight.copy_(torch.tensor([[kernel]]))
    expected = []
    for image in features.tolist():
        means = [sum(sum(row) for row in channel) / 12 for channel in image]
        padded = [0.0, *means, 0.0]
        conv = [sum(w * padded[c + j] for j, w in enumerate(kernel)) for c in range(6)]
        expected.append([1 / (1 + math.exp(-y)) for y in conv])
    assert torch.allclose(eca(features), torch.tensor(expected), atol=1e-6)
    assert eca.conv.bias is None


def test_k_is_the_floor_of_the_ratio_at_least_one():
    assert num_selected(2048, 0.7) == 1433  # CAML supplement A
    assert num_selected(512, 0.7) == 358
    assert num_selected(100, 0.29) == 29
    assert num_selected(10, 0.01) == 1
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            num_selected(16, bad)


def test_topk_is_max_at_one_and_mean_at_all_channels(features):
    assert torch.allclose(pixelwise_topk_mean(features, 1), features.amax(dim=1))
    assert torch.allclose(pixelwise_topk_mean(features, 16), features.mean(dim=1))


def test_top_and_bottom_k_average_the_largest_and_smallest_values(features):
    ascending = features.sort(dim=1).values
    assert torch.allclose(pixelwise_topk_mean(features, 4, largest=False), ascending[:, :4].mean(1))
    assert torch.allclose(pixelwise_topk_mean(features, 11), ascending[:, -11:].mean(1))


def test_channelwise_selection_differs_from_pixelwise():
    # channel 0: one strong pixel (largest mean); channel 1: moderate everywhere
    f = torch.tensor([[[[10.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    assert torch.equal(pixelwise_topk_mean(f, 1), torch.tensor([[[10.0, 1.0], [1.0, 1.0]]]))
    assert torch.equal(channelwise_topk_mean(f, 1), torch.tensor([[[10.0, 0.0], [0.0, 0.0]]]))
    assert torch.equal(channelwise_topk_mean(f, 1, largest=False), f[:, 1])


def test_ptap_pools_the_eca_weighted_features(features):
    ptap = PTAP(16, k_ratio=1.0)
    attention, weighted = ptap(features)
    assert torch.allclose(weighted, features * ptap.eca(features)[:, :, None, None])
    assert torch.allclose(attention, weighted.mean(dim=1))
    max_map, max_weighted = PTAP(16, k_ratio=1 / 16)(features)
    assert torch.allclose(max_map, max_weighted.amax(dim=1))
    assert PTAP(16).k == 11 and PTAP(16, selection="channel").selection == "channel"
    with pytest.raises(ValueError, match="pixel"):
        PTAP(16, selection="global")


def test_caam_is_the_plain_channel_mean(features):
    attention, weighted = CAAM()(features)
    assert torch.equal(weighted, features)
    assert torch.allclose(attention, features.mean(dim=1))


def test_normalize_attention_divides_by_the_peak_with_headroom(features):
    a = features.mean(dim=1)
    normed = normalize_attention(a, headroom=0.5)
    assert torch.allclose(normed.flatten(1).amax(1), torch.full((2,), 2 / 3))
    assert torch.allclose(normed * a.flatten(1).amax(1)[:, None, None] * 1.5, a)  # no offset
    assert torch.allclose(normalize_attention(7 * a, 0.5), normed, atol=1e-6)  # scale-free
    assert torch.equal(normalize_attention(torch.zeros(1, 3, 3)), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="headroom"):
        normalize_attention(a, headroom=0.0)


def test_normalize_attention_treats_the_peak_as_a_constant_unless_asked():
    # A = [1, 3], h = 0.05: sum(A / (1.05 * max A)) has gradient 1 / 3.15 per entry with
    # the peak constant; with the peak's gradient, d/dA_1 (A_0 / (1.05 A_1) + 1 / 1.05)
    # = -A_0 / (1.05 A_1^2) = -1 / 9.45 and d/dA_0 stays 1 / 3.15.
    expected = {False: [1 / 3.15, 1 / 3.15], True: [1 / 3.15, -1 / 9.45]}
    for peak_gradient, grads in expected.items():
        a = torch.tensor([[1.0, 3.0]], requires_grad=True)
        normalize_attention(a, 0.05, peak_gradient).sum().backward()
        assert torch.allclose(a.grad, torch.tensor([grads]))
