"""Pretext transforms: labels, fills, and inverses that undo the transform where valid."""

import pytest
import torch

from coloc.caml.pretext import (
    PST,
    TRANSFORMS,
    AffineTransform,
    Compose,
    Rotation,
    Scale,
    Translation,
    build_transform,
)

ALL = (*TRANSFORMS, "rotation+scale", "scale+translation")
EXACT = ("rotation", "hflip", "vflip", "pst")  # no interpolation on even sizes
IDENTITY = {"rotation": 0, "hflip": 0, "vflip": 0, "scale": 1, "translation": 1, "pst": 2}


def blob(n: int, batch: int) -> torch.Tensor:
    """A smooth attention-like map ``[batch, n, n]``: a Gaussian at the centre."""
    c = torch.linspace(-1 + 1 / n, 1 - 1 / n, n)
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-(xs**2 + ys**2) / (2 * 0.35**2)).expand(batch, n, n).clone()


@pytest.mark.parametrize("name", ALL)
def test_invert_undoes_apply_where_valid(name):
    t = build_transform(name)
    labels = torch.arange(t.num_classes)
    maps = blob(64, t.num_classes)
    restored = t.invert(t.apply(maps, labels), labels)
    valid = t.valid_mask(labels, (64, 64))
    tol = 1e-5 if name in EXACT else 0.01  # two bilinear resamplings of a smooth map
    assert ((restored - maps).abs() * valid).amax() < tol
    assert (restored[~valid] == 0).all()
    assert valid.any(dim=(1, 2)).all()


@pytest.mark.parametrize("name", TRANSFORMS)
def test_identity_label_changes_nothing(name):
    t = build_transform(name)
    x = torch.randn(1, 3, 16, 16)
    label = torch.tensor([IDENTITY[name]])
    assert torch.allclose(t.apply(x, label), x, atol=1e-5)
    assert t.valid_mask(label, (16, 16)).all()


@pytest.mark.parametrize("name", ALL)
def test_images_and_maps_keep_their_shape(name):
    t = build_transform(name)
    labels = torch.tensor([0, t.num_classes - 1])
    for shape in [(2, 3, 16, 16), (2, 16, 16), (2, 1, 16, 16)]:
        x = torch.rand(shape)
        assert t.apply(x, labels).shape == shape
        assert t.invert(x, labels).shape == shape


def test_rotation_labels_turn_counterclockwise_by_quarters():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 0, 0] = 1.0  # marker at the top-left corner
    rot = Rotation()
    turned = [rot.apply(image, torch.tensor([k]))[0, 0] for k in range(4)]
    corners = [tuple(map(int, (t == 1).nonzero()[0])) for t in turned]
    assert corners == [(0, 0), (3, 0), (3, 3), (0, 3)]  # top-left -> bottom-left -> ...
    x = torch.randn(4, 3, 8, 8)
    by_label = rot.apply(x, torch.arange(4))
    for k in range(4):
        assert torch.equal(by_label[k], torch.rot90(x[k], k, dims=(-2, -1)))


def test_flips_mirror_the_right_axis():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    one = torch.tensor([1])
    assert torch.equal(build_transform("hflip").apply(x, one), x.flip(-1))
    assert torch.equal(build_transform("vflip").apply(x, one), x.flip(-2))


def test_scale_shrink_fills_by_reflection_and_enlarge_loses_the_border():
    scale = build_transform("scale")
    ones = torch.ones(1, 1, 16, 16)
    shrunk = scale.apply(ones, torch.tensor([0]))
    assert torch.allclose(shrunk, ones)  # reflection fill: no empty border
    assert scale.valid_mask(torch.tensor([0]), (16, 16)).all()
    valid = scale.valid_mask(torch.tensor([2]), (16, 16))[0]
    assert valid[8, 8] and not valid[0, 0] and not valid[8, 0]


def test_translation_fills_zeros_and_loses_what_leaves_the_frame():
    shift = Translation(shift=0.5)  # a quarter of the side on an 8x8 map: 2 pixels
    moved = shift.apply(torch.ones(1, 1, 8, 8), torch.tensor([2]))[0, 0]
    assert (moved[:6, :6] == 1).all()
    assert (moved[6:] == 0).all() and (moved[:, 6:] == 0).all()
    valid = shift.valid_mask(torch.tensor([2]), (8, 8))[0]
    assert not valid[:2].any() and not valid[:, :2].any() and valid[2:, 2:].all()


def test_pst_is_point_symmetric_and_keeps_one_quadrant():
    pst = PST()
    x = torch.arange(64.0).view(1, 1, 8, 8)
    outputs = pst.apply(x.expand(5, 1, 8, 8), torch.arange(5))
    for label in (0, 1, 3, 4):
        assert torch.equal(outputs[label], outputs[label].flip(-1).flip(-2))
    assert len({tuple(o.flatten().tolist()) for o in outputs}) == 5  # five distinct classes
    # (+1, +1): the top-left quadrant, unmirrored, in the bottom-right of the output
    assert torch.equal(outputs[3, :, 4:, 4:], x[0, :, :4, :4])
    valid = pst.valid_mask(torch.tensor([3]), (8, 8))[0]
    assert valid[:4, :4].all() and valid.sum() == 16


def test_compose_has_a_combined_label_space_with_one_head_per_component():
    rs = build_transform("rotation+scale")
    assert isinstance(rs, Compose) and rs.num_classes == 12
    assert rs.heads == {"rotation": 4, "scale": 3}
    r, s = torch.tensor([0, 1, 3, 2]), torch.tensor([2, 0, 1, 1])
    labels = r * 3 + s
    assert all(torch.equal(a, b) for a, b in zip(rs.split(labels), (r, s), strict=True))
    assert rs.head_labels(labels).keys() == {"rotation", "scale"}
    x = torch.randn(4, 3, 16, 16)
    expected = build_transform("scale").apply(build_transform("rotation").apply(x, r), s)
    assert torch.allclose(rs.apply(x, labels), expected)


def test_sample_labels_cover_the_classes_reproducibly():
    pst = PST()
    a = pst.sample_labels(200, torch.Generator().manual_seed(0))
    b = pst.sample_labels(200, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and set(a.tolist()) == set(range(5))


def test_bad_inputs_are_rejected_with_the_allowed_values():
    rot = Rotation()
    x = torch.rand(2, 8, 8)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        rot.apply(x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="integer tensor"):
        rot.apply(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="B = 2"):
        rot.apply(x, torch.tensor([0]))
    with pytest.raises(ValueError, match="square"):
        rot.apply(torch.rand(1, 8, 6), torch.tensor([1]))
    with pytest.raises(ValueError, match="pst"):
        build_transform("shear")
    with pytest.raises(ValueError, match="distinct"):
        Compose([Rotation(), Rotation()])


def test_translation_on_a_non_square_map_shifts_each_axis_by_its_own_half_side():
    # shift 0.5 half-sides: 2 of 8 columns, 1 of 4 rows; label 2 reads down-right
    shift = Translation(shift=0.5)
    x = torch.arange(32.0).view(1, 1, 4, 8) + 1
    moved = shift.apply(x, torch.tensor([2]))[0, 0]
    expected = torch.zeros(4, 8)
    expected[:3, :6] = x[0, 0, 1:, 2:]
    assert torch.allclose(moved, expected, atol=1e-5)
    valid = shift.valid_mask(torch.tensor([2]), (4, 8))[0]
    expected_valid = torch.zeros(4, 8, dtype=torch.bool)
    expected_valid[1:, 2:] = True
    assert torch.equal(valid, expected_valid)
    back = shift.invert(moved[None, None], torch.tensor([2]))[0, 0]
    assert torch.allclose(back, x[0, 0] * expected_valid, atol=1e-5)


def test_one_pixel_translation_loses_exactly_the_first_row_and_column():
    # 0.1 half-sides on 20 x 20 is one pixel: the inverse reads pixel 0 from outside the
    # frame (lost), pixel 1 from the first pixel centre (kept)
    valid = Translation().valid_mask(torch.tensor([2, 0]), (20, 20))
    assert not valid[0, 0].any() and not valid[0, :, 0].any() and valid[0, 1:, 1:].all()
    assert not valid[1, -1].any() and not valid[1, :, -1].any() and valid[1, :-1, :-1].all()


def test_pst_labels_keep_the_quadrant_their_signs_name():
    pst = PST()
    x = torch.arange(64.0).view(1, 1, 8, 8)
    outputs = pst.apply(x.expand(5, 1, 8, 8), torch.arange(5))
    quadrants = {0: (slice(0, 4), slice(4, 8)), 1: (slice(4, 8), slice(4, 8)),
                 3: (slice(0, 4), slice(0, 4)), 4: (slice(4, 8), slice(0, 4))}
    for label, (rows, cols) in quadrants.items():  # (sx, sy): +1 keeps left / top
        kept = x[0, 0, rows, cols]
        assert set(outputs[label].flatten().tolist()) == set(kept.flatten().tolist()), label
        valid = pst.valid_mask(torch.tensor([label]), (8, 8))[0]
        assert valid[rows, cols].all() and valid.sum() == 16, label
    assert torch.equal(outputs[2], x[0])


def test_names_heads_and_invalid_constructions():
    rs = build_transform("rotation+scale")
    assert rs.name == "rotation+scale" and repr(rs) == "Compose('rotation+scale', num_classes=12)"
    assert build_transform("hflip").heads == {"hflip": 2}
    assert build_transform("vflip").heads == {"vflip": 2}
    assert Translation().num_classes == 3 and PST().num_classes == 5
    with pytest.raises(ValueError, match="two or more"):
        Compose([Rotation()])
    with pytest.raises(ValueError, match="grid_scales"):
        Scale(grid_scales=(0.0, 1.0))
    with pytest.raises(ValueError, match="padding"):
        AffineTransform("shear", [[[1, 0, 0], [0, 1, 0]]], "border")
    with pytest.raises(ValueError, match="unknown transform ''"):
        build_transform("")
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        Rotation().apply(torch.zeros(8, 8), torch.tensor([0]))


def test_tensors_stay_on_the_device_of_their_inputs():
    # the meta device: shapes and devices only, no data (catches a default CPU device)
    labels = torch.tensor([1, 0], device="meta")
    for name in TRANSFORMS:  # (Compose checks its labels' values, which meta has not)
        t = build_transform(name)
        assert t.valid_mask(labels, (8, 8)).device.type == "meta", name
    assert PST().sample_labels(3).device.type == "cpu"


def test_every_transform_is_named_as_it_is_built():
    for name in TRANSFORMS:
        t = build_transform(name)
        assert t.name == name and t.heads == {name: t.num_classes}
        assert t.head_labels(torch.tensor([0])) == {name: torch.tensor([0])}


@pytest.mark.parametrize("name", ALL)
def test_transforms_raise_no_warnings(name):
    # torch warns when grid_sample / affine_grid get no align_corners: the geometry above
    # is defined for align_corners=False and must not rest on a default
    import warnings

    t = build_transform(name)
    labels = torch.arange(t.num_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.invert(t.apply(torch.rand(t.num_classes, 8, 8), labels), labels)
        t.valid_mask(labels, (8, 8))


def test_rotation_names_the_shape_it_got():
    with pytest.raises(ValueError, match=r"rotation needs square inputs, got \(8, 6\)$"):
        Rotation().apply(torch.rand(2, 3, 8, 6), torch.tensor([1, 0]))
