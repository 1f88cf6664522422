"""Protocol transforms move boxes and masks exactly like the image (coloc/data/transforms.py)."""

import math

import pytest
import torch

from coloc.data.common import IGNORE
from coloc.data.transforms import (
    Annotated,
    ProtocolTransform,
    clip_boxes,
    crop,
    hflip,
    pad,
    resize,
)


def tight_box(mask: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(mask == 1, as_tuple=True)
    return torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()


def scene(height=75, width=100, box=(20, 10, 69, 44)) -> Annotated:
    """An image whose red channel is the object mask, green a horizontal ramp."""
    x0, y0, x1, y1 = box
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[y0:y1 + 1, x0:x1 + 1] = 1
    part = torch.zeros(height, width, dtype=torch.bool)
    part[y0:y0 + 5, x0:x0 + 5] = True
    ramp = torch.linspace(0, 1, width).expand(height, width)
    image = torch.stack([mask.float(), ramp, torch.rand(height, width,
                                                        generator=torch.Generator().manual_seed(0))])
    return Annotated(image, torch.tensor([box], dtype=torch.float32), mask, part)


def test_hflip_twice_is_identity():
    s = scene()
    back = hflip(hflip(s))
    for a, b in zip(s, back, strict=True):
        assert torch.equal(a, b)


def test_hflip_moves_boxes_with_the_mask():
    flipped = hflip(scene())
    assert torch.equal(flipped.boxes[0], tight_box(flipped.mask))


def test_resize_follows_the_protocol_rule():
    # CUB image 1 (500 x 375) with box 60,27,385,331 at 224 x 224: scaled, truncated.
    s = Annotated(torch.zeros(3, 375, 500), torch.tensor([[60.0, 27, 385, 331]]),
                  torch.zeros(375, 500, dtype=torch.uint8), torch.zeros(375, 500, dtype=torch.bool))
    out = resize(s, 224, 224)
    assert out.image.shape == (3, 224, 224) and out.mask.shape == (224, 224)
    assert out.boxes.tolist() == [[26.0, 16.0, 172.0, 197.0]]


@pytest.mark.parametrize("size", [(64, 64), (224, 224), (50, 80)])
def test_resized_boxes_match_the_resized_mask_up_to_truncation(size):
    s = scene()
    out = resize(s, *size)
    assert set(out.mask.unique().tolist()) <= {0, 1}  # nearest neighbour: no new values
    assert out.part_mask.dtype == torch.bool
    # Truncated corners vs. the nearest-neighbour mask: one pixel apart when shrinking;
    # when enlarging, an input pixel spans ceil(new/old) output pixels, and the protocol
    # scales the inclusive x1 (not x1 + 1), so the far corner may lag by that much.
    tolerance = max(1, math.ceil(size[1] / 100), math.ceil(size[0] / 75))
    assert torch.allclose(out.boxes[0], tight_box(out.mask), atol=tolerance)


def test_crop_clips_and_drops_boxes():
    s = scene()
    inside = crop(s, 0, 0, 40, 40)
    assert inside.boxes.tolist() == [[20.0, 10.0, 39.0, 39.0]]
    assert torch.equal(inside.boxes[0], tight_box(inside.mask))
    outside = crop(s, 50, 75, 25, 25)
    assert outside.boxes.shape == (0, 4) and not (outside.mask == 1).any()


def test_clip_boxes_keeps_overlapping_and_drops_disjoint_or_inverted():
    boxes = torch.tensor([[-5.0, -5, 3, 3], [10, 10, 20, 20], [2, 2, 1, 5], [5, 5, 50, 50]])
    assert clip_boxes(boxes, 8, 8).tolist() == [[0.0, 0.0, 3.0, 3.0], [5.0, 5.0, 7.0, 7.0]]


def test_pad_marks_the_border_ignore_and_shifts_boxes():
    out = pad(scene(), 4)
    assert out.image.shape == (3, 83, 108)
    assert (out.mask[:4] == IGNORE).all() and (out.mask[:, -4:] == IGNORE).all()
    assert not out.part_mask[:4].any()
    assert torch.equal(out.boxes[0], tight_box(out.mask))
    assert torch.allclose(out.image[:, 4:-4, 4:-4], scene().image)


@pytest.mark.parametrize("augment", ["wsol", "psynet"])
def test_training_crops_keep_boxes_inside_and_consistent(augment):
    transform = ProtocolTransform(64, augment)
    assert transform.resize_size == 73
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        out = transform(scene(), generator)
        assert out.image.shape == (3, 64, 64) and out.mask.shape == (64, 64)
        boxes = out.boxes
        assert ((boxes >= 0) & (boxes <= 63)).all()
        if (out.mask == 1).any():
            assert torch.allclose(boxes[0], tight_box(out.mask), atol=1.0)
        else:
            assert boxes.shape == (0, 4)


def test_training_transform_is_seeded():
    transform = ProtocolTransform(64, "wsol")

    def draws(seed):
        generator = torch.Generator().manual_seed(seed)
        return [tuple(transform(scene(), generator).boxes[0].tolist()) for _ in range(10)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert len(set(draws(3))) > 1  # crops and flips vary from draw to draw


def test_wsol_flips_and_psynet_never_does():
    def flips(augment):
        generator = torch.Generator().manual_seed(1)
        transform = ProtocolTransform(64, augment)
        # The green channel ramps left to right; a flip reverses it.
        return {bool(transform(scene(), generator).image[1, 32, -1] < 0.5) for _ in range(20)}

    assert flips("wsol") == {False, True}
    assert flips("psynet") == {False}


def test_test_transform_is_deterministic_resize():
    transform = ProtocolTransform(64)
    a, b = transform(scene()), transform(scene(), torch.Generator().manual_seed(5))
    assert torch.equal(a.image, b.image) and torch.equal(a.boxes, b.boxes)
    assert a.image.shape == (3, 64, 64)


def test_unknown_augment_fails():
    with pytest.raises(ValueError, match="augment"):
        ProtocolTransform(64, "random")
