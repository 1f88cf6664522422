"""ContraCAM's batch transforms (coloc/contracam/augment.py)."""

import pytest
import torch

from coloc.contracam.augment import (
    TwoViews,
    background_only,
    bg_mix,
    bg_mix_batch,
    crop_resize,
    cutmix,
    mixup,
    oa_crop_regions,
    random_resized_regions,
)


def batch(n: int = 4, size: int = 16) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_oa_crop_regions_always_contain_the_whole_chosen_box():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        boxes = []
        for _ in range(6):
            k = int(torch.randint(0, 4, (), generator=g))
            xy = torch.rand(k, 2, generator=g) * 40 - 5  # some start outside the image
            wh = torch.rand(k, 2, generator=g) * 30 + 1
            boxes.append(torch.cat([xy, xy + wh], dim=1))
        regions = oa_crop_regions(boxes, 30, 40)
        for image_boxes, region in zip(boxes, regions, strict=True):
            if len(image_boxes) == 0:
                assert region.tolist() == [0, 0, 39, 29]  # no box: the whole image
                continue
            clipped = torch.minimum(image_boxes.clamp(min=0),
                                    torch.tensor([39.0, 29.0, 39.0, 29.0]))
            visible = [c for b, c in zip(image_boxes, clipped, strict=True)
                       if (b[2:] >= 0).all() and (b[:2] <= torch.tensor([39.0, 29.0])).all()]
            # the share (inclusive pixels) of the drawn box inside its crop is 1
            shares = [(torch.minimum(b[2:], region[2:]) - torch.maximum(b[:2], region[:2])
                       + 1).clamp(min=0).prod() / (b[2:] - b[:2] + 1).prod() for b in visible]
            assert max(shares, default=1.0) == pytest.approx(1.0)
            assert (region[2:] >= region[:2]).all()


def test_crop_resize_of_the_whole_image_is_the_image_and_flip_mirrors():
    x = batch()
    whole = torch.tensor([[0.0, 0.0, 15.0, 15.0]]).repeat(4, 1)
    assert torch.allclose(crop_resize(x, whole), x, atol=1e-5)
    flip = torch.tensor([True, False, True, False])
    assert torch.allclose(crop_resize(x, whole, flip)[0], x[0].flip(-1), atol=1e-5)
    left_half = torch.tensor([[0.0, 0.0, 7.0, 15.0]]).repeat(4, 1)
    out = crop_resize(x, left_half)
    assert torch.allclose(out[..., 0], x[..., 0], atol=1e-5)  # left edge stays
    assert torch.allclose(out[..., -1], x[..., 7], atol=1e-5)  # x = 7 stretched to the right


def test_random_resized_regions_stay_inside_with_the_area_share():
    torch.manual_seed(0)
    regions = random_resized_regions(500, 64, 64, (0.08, 1.0))
    assert (regions >= 0).all() and (regions[:, 2:] <= 63 + 1e-4).all()
    area = (regions[:, 2] - regions[:, 0]) * (regions[:, 3] - regions[:, 1]) / 63**2
    assert area.min() >= 0.08 - 1e-4 and area.max() <= 1 + 1e-4


def test_two_views_are_deterministic_per_seed_and_differ_between_calls():
    views = TwoViews(0.08, blur_kernel=7)
    x = batch(8, 32)
    torch.manual_seed(0)
    first, second = views.view(x), views.view(x)
    torch.manual_seed(0)
    assert torch.equal(views.view(x), first)
    assert first.shape == x.shape and torch.isfinite(first).all()
    assert not torch.allclose(first, second)


def test_bg_mixup_with_a_zero_mask_returns_the_background_image():
    x, background = batch(), batch().flip(0)
    assert torch.equal(bg_mix(x, torch.zeros(4, 16, 16), background), background)
    assert torch.equal(bg_mix(x, torch.ones(4, 16, 16), background), x)
    half = bg_mix(x, torch.full((4, 16, 16), 0.25), background)
    assert torch.allclose(half, 0.25 * x + 0.75 * background)


def test_background_only_tiles_the_largest_strip_over_the_objects_rectangle():
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).view(2, 3, 10, 10)
    foreground = torch.zeros(2, 10, 10, dtype=torch.bool)
    foreground[0, 4:8, 1:9] = True  # rows 0-3 above the object: the largest strip
    foreground[1] = True  # the object fills the image: no background
    out, has_bg = background_only(x, foreground)
    assert has_bg.tolist() == [True, False]
    assert torch.equal(out[1], x[1])
    assert torch.equal(out[0, :, :4], x[0, :, :4]) and torch.equal(out[0, :, 8:], x[0, :, 8:])
    assert torch.equal(out[0, :, 4:8, 1:9], x[0, :, 0:4, 1:9])  # rows tiled from the top
    assert torch.equal(out[0, :, 4:8, 0], x[0, :, 4:8, 0])  # outside the rectangle: kept


def test_bg_mix_batch_keeps_images_at_probability_zero_and_mixes_at_one():
    torch.manual_seed(0)
    x = batch()
    weights = torch.zeros(4, 16, 16)
    weights[:, 6:10, 6:10] = 1.0
    foreground = weights > 0.2
    assert torch.equal(bg_mix_batch(x, weights, foreground, 0.0), x)
    mixed = bg_mix_batch(x, weights, foreground, 1.0)
    assert torch.equal(mixed[:, :, 6:10, 6:10], x[:, :, 6:10, 6:10])  # the object stays
    assert not torch.equal(mixed, x)


def test_mixup_and_cutmix_report_the_share_they_mixed():
    torch.manual_seed(0)
    x = batch(6)
    mixed, mix = mixup(x)
    w = mix.lam.view(-1, 1, 1, 1)
    assert torch.allclose(mixed, w * x + (1 - w) * x[mix.partner])
    assert (mix.lam >= 0.5).all() and (mix.lam <= 1).all()
    cut, mix = cutmix(x)
    from_self = (cut == x).all(dim=1).flatten(1).float().mean(1)
    from_partner = (cut == x[mix.partner]).all(dim=1).flatten(1).float().mean(1)
    own = mix.partner == torch.arange(6)
    assert torch.allclose(mix.lam[~own], from_self[~own])
    assert torch.allclose(1 - mix.lam[~own], from_partner[~own])
