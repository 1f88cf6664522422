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


def reversed_columns(x: torch.Tensor) -> torch.Tensor:
    """Columns in reverse order, by index (independent of ``Tensor.flip``)."""
    return x[..., list(range(x.shape[-1] - 1, -1, -1))]


def test_hflip_mirrors_image_boxes_and_masks_exactly():
    s = scene()
    s = s._replace(boxes=torch.tensor([[20.0, 10, 69, 44], [0, 0, 9, 4]]))
    out = hflip(s)
    # width 100: x -> 99 - x, so x0 and x1 swap: 20..69 -> 30..79 and 0..9 -> 90..99
    assert out.boxes.tolist() == [[30.0, 10.0, 79.0, 44.0], [90.0, 0.0, 99.0, 4.0]]
    mirrored = scene(box=(30, 10, 79, 44))  # the object drawn at its mirrored place
    assert torch.equal(out.mask, mirrored.mask)
    part = torch.zeros(75, 100, dtype=torch.bool)
    part[10:15, 95 - 20:100 - 20] = True  # columns 20..24 -> 75..79
    assert torch.equal(out.part_mask, part)
    assert torch.equal(out.image[0], mirrored.mask.float())  # red channel = the mask
    assert torch.equal(out.image, reversed_columns(s.image))
    assert out.image[1, 0, 0] == 1 and out.image[1, 0, -1] == 0  # the green ramp reversed


def test_hflip_of_an_image_without_boxes_keeps_none():
    s = scene()._replace(boxes=torch.zeros(0, 4))
    assert hflip(s).boxes.shape == (0, 4)


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
            # the image's red channel is the object: flipped and cropped with the mask
            red = (out.image[0] > 0.5).to(torch.uint8)
            assert torch.allclose(tight_box(red), tight_box(out.mask), atol=1.0)
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


def test_clip_boxes_at_the_edges_of_a_non_square_image():
    # 6 rows x 10 columns: corners clamp to x <= 9 and y <= 5; touching an edge keeps a box
    boxes = torch.tensor([[-5.0, -5, 0, 0], [9, 5, 20, 30], [3, 1, 3, 1], [-3, 2, 15, 4],
                          [10, 0, 12, 2], [0, 6, 2, 8]])
    assert clip_boxes(boxes, 6, 10).tolist() == [
        [0.0, 0.0, 0.0, 0.0], [9.0, 5.0, 9.0, 5.0], [3.0, 1.0, 3.0, 1.0], [0.0, 2.0, 9.0, 4.0]]
    assert clip_boxes(torch.tensor([1.0, 1, 2, 2]), 6, 10).tolist() == [[1.0, 1.0, 2.0, 2.0]]


def test_resize_interpolates_between_pixel_centres_and_antialiases_when_shrinking():
    # up: [0, 1] -> centres at -0.25, 0.25, 0.75, 1.25 of the input: 0, 0.25, 0.75, 1
    two = Annotated(torch.tensor([[[0.0, 1.0]]]), torch.zeros(0, 4),
                    torch.zeros(1, 2, dtype=torch.uint8), torch.zeros(1, 2, dtype=torch.bool))
    assert resize(two, 1, 4).image[0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    # down by 3: columns 1, 0, 0 repeated average to 1/3; without antialiasing the
    # sample at each output centre would read the zero column only
    stripes = torch.tensor([1.0, 0.0, 0.0]).repeat(8).expand(1, 6, 24)
    s = Annotated(stripes, torch.zeros(0, 4), torch.zeros(6, 24, dtype=torch.uint8),
                  torch.zeros(6, 24, dtype=torch.bool))
    shrunk = resize(s, 2, 8).image
    assert shrunk[0, :, 1:-1].min() > 0.25 and shrunk[0, :, 1:-1].max() < 0.45
    assert resize(s, 6, 24) is s  # the size already: nothing to do


def coordinates(side: int) -> Annotated:
    """A ``side x side`` image whose channels hold each pixel's row and column."""
    rows = torch.arange(side, dtype=torch.float32).view(side, 1).expand(side, side)
    image = torch.stack([rows, rows.T, torch.zeros(side, side)])
    mask = torch.zeros(side, side, dtype=torch.uint8)
    return Annotated(image, torch.tensor([[0.0, 0, side - 1, side - 1]]), mask,
                     torch.zeros(side, side, dtype=torch.bool))


@pytest.mark.parametrize("augment", ["wsol", "psynet"])
def test_random_crops_cover_every_offset_and_no_other(augment):
    # image_size 7 resizes to round(256 / 224 * 7) = 8. wsol crops 7 of 8 (offsets 0-1) and
    # may flip; psynet reflect-pads 4 pixels (rows 4 3 2 1 | 0 .. 7 | 6 5 4 3) and crops 7
    # of 16 (offsets 0-9), never flipping. The pixel values give each crop's offsets.
    transform = ProtocolTransform(7, augment)
    assert transform.resize_size == 8
    line = list(range(8)) if augment == "wsol" else [4, 3, 2, 1, *range(8), 6, 5, 4, 3]
    windows = {tuple(line[t : t + 7]): t for t in range(len(line) - 6)}
    generator = torch.Generator().manual_seed(0)
    tops, lefts, flips, ignored = set(), set(), set(), False
    for _ in range(80):
        out = transform(coordinates(8), generator)
        assert out.image.shape == (3, 7, 7) and out.mask.shape == (7, 7)
        rows, cols = out.image[0, :, 0].tolist(), out.image[1, 0, :].tolist()
        flipped = tuple(cols) not in windows
        flips.add(flipped)
        tops.add(windows[tuple(rows)])
        lefts.add(windows[tuple(cols[::-1] if flipped else cols)])
        ignored |= bool((out.mask == IGNORE).any())
    offsets = set(range(len(line) - 6))
    assert tops == lefts == offsets
    assert flips == ({False, True} if augment == "wsol" else {False})
    assert ignored == (augment == "psynet")  # the padded border is not ground truth


def test_invalid_image_sizes_fail_and_one_pixel_works():
    assert ProtocolTransform(1).resize_size == 1
    with pytest.raises(ValueError, match="image_size must be positive"):
        ProtocolTransform(0)


class Samples(list):
    """A dataset of two Sample dicts, with an attribute the wrapper must expose."""

    classes = ["a", "b"]


def test_transformed_dataset_moves_each_sample_and_exposes_the_dataset():
    import pickle

    from coloc.data.transforms import TransformedDataset

    s = scene()
    base = Samples({"image": s.image, "label": i, "family": "bird", "boxes": s.boxes,
                    "mask": s.mask, "part_mask": s.part_mask, "index": 10 + i} for i in range(2))
    dataset = TransformedDataset(base, ProtocolTransform(64))
    assert len(dataset) == 2 and dataset.classes == ["a", "b"]
    sample = dataset[1]
    expected = resize(s, 64, 64)
    assert (sample["label"], sample["family"], sample["index"]) == (1, "bird", 1)
    for name, value in zip(("image", "boxes", "mask", "part_mask"), expected, strict=True):
        assert torch.equal(sample[name], value), name
    copy = pickle.loads(pickle.dumps(dataset))  # DataLoader workers pickle it
    assert copy.classes == ["a", "b"] and torch.equal(copy[0]["image"], dataset[0]["image"])
    with pytest.raises(AttributeError):
        dataset.not_an_attribute  # noqa: B018
    bare = TransformedDataset.__new__(TransformedDataset)  # as unpickling meets it
    for name in ("dataset", "transform"):  # no recursion through the wrapped dataset
        with pytest.raises(AttributeError, match=f"^{name}$"):
            getattr(bare, name)
