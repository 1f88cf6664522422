"""CAML loss (Eq. 3-6): background mask, triplets, ablation variants, gradients."""

import pytest
import torch
import torch.nn.functional as F

from coloc.caml.losses import CAMLLoss, background_mask, caml_loss, pretext_cls_loss
from coloc.caml.model import PretextNet
from coloc.caml.pretext import Rotation, build_transform
from coloc.caml.ptap import PTAP, normalize_attention
from coloc.models import build_backbone

PEAK = 1 / 1.05  # a map's maximum after normalize_attention (headroom 0.05)


def square(n: int, side: int, at: tuple[int, int] = (4, 4)) -> torch.Tensor:
    """A ``[1, n, n]`` map: ones on a ``side x side`` square at ``at``, zeros elsewhere."""
    a = torch.zeros(1, n, n)
    a[0, at[0] : at[0] + side, at[1] : at[1] + side] = 1.0
    return a


def gaussian(n: int) -> torch.Tensor:
    c = torch.linspace(-1, 1, n)
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-(xs**2 + ys**2) / 0.3).unsqueeze(0)


def views(a_ori: torch.Tensor, a_trans: torch.Tensor):
    return {"attention": a_ori}, {"attention": a_trans}


def test_lower_theta_bg_keeps_more_foreground_in_the_background_mask():
    a = normalize_attention(gaussian(32))
    foreground = a > 0.5 * a.max()
    masks = {theta: background_mask(a, theta) for theta in (1.5, 2.0, 2.3, 2.6)}
    in_mask = [int((m & foreground).sum()) for m in masks.values()]
    sizes = [int(m.sum()) for m in masks.values()]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
    assert in_mask[0] > 0 and in_mask == sorted(in_mask, reverse=True)
    assert (masks[2.6] <= masks[1.5]).all()  # nested
    # with headroom 0.05, theta 2.3 puts the background below 93.5 % of the peak
    assert torch.equal(masks[2.3], a < 0.935 * a.max())


def test_min_max_normalized_maps_would_make_theta_meaningless():
    a = gaussian(16) / gaussian(16).max()  # max exactly 1: min(1 - A) = 0
    assert torch.equal(background_mask(a, 1.5), background_mask(a, 2.6))


def test_caml_is_zero_when_views_agree_and_the_negative_is_beyond_the_margin():
    a_ori = square(16, 8)
    labels = torch.tensor([1])
    a_trans = torch.rot90(a_ori, 1, dims=(-2, -1))  # exactly what rotating the image shows
    # anchor == positive; negative = the (empty) background part: d = ||A|| = 8 * PEAK > 1
    assert caml_loss(*views(a_ori, a_trans), Rotation(), labels) == 0


def test_caml_is_positive_when_views_disagree():
    a_ori, a_trans = square(16, 8), square(16, 8, at=(0, 8))
    identity = torch.tensor([0])
    assert caml_loss(*views(a_ori, a_trans), Rotation(), identity) > 0


def test_caml_is_positive_when_the_negative_is_within_the_margin():
    a = square(16, 1)  # one pixel at PEAK: d(anchor, negative) = PEAK < 1
    loss = caml_loss(*views(a, a), Rotation(), torch.tensor([0]))
    assert torch.isclose(loss, torch.tensor(2 * (1 - PEAK)))  # two triplets


def test_ablation_pairs():
    a, other = square(16, 8), square(16, 8, at=(0, 8))
    identity = torch.tensor([0])
    pos_only = caml_loss(*views(a, other), Rotation(), identity, pairs="positive")
    d = torch.linalg.vector_norm(normalize_attention(a) - normalize_attention(other))
    assert torch.isclose(pos_only, 2 * d)  # Table 5 "w/o neg pairs": L2 of both positive pairs
    assert caml_loss(*views(a, a), Rotation(), identity, pairs="positive") == 0
    neg_only = caml_loss(*views(a, other), Rotation(), identity, pairs="negative")
    assert neg_only == 0  # negatives already farther than the margin
    one = square(16, 1)
    assert torch.isclose(
        caml_loss(*views(one, one), Rotation(), identity, pairs="negative"),
        torch.tensor(2 * (1 - PEAK)),
    )


def test_feature_embedding_compares_attended_features():
    a = square(16, 1)  # attention-map loss is 2 * (1 - PEAK) (see above)
    ori = {"attention": a, "weighted": torch.ones(1, 4, 16, 16)}
    identity = torch.tensor([0])
    # attended features repeat the map over 4 channels: d(anchor, negative) = 2 * PEAK > 1
    assert caml_loss(ori, ori, Rotation(), identity, embedding="features") == 0
    assert caml_loss(ori, ori, Rotation(), identity) > 0


def test_degenerate_constant_maps_give_a_finite_loss():
    zero = torch.zeros(2, 8, 8, requires_grad=True)
    loss = caml_loss(*views(zero, zero), build_transform("scale"), torch.tensor([0, 2]))
    loss.backward()
    assert torch.isclose(loss, torch.tensor(2.0)) and torch.isfinite(zero.grad).all()


@pytest.fixture
def net_and_batch():
    torch.manual_seed(0)
    rot = Rotation()
    net = PretextNet(build_backbone("small_cnn"), rot.heads, PTAP(256))
    x = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3])
    return net, rot, x, labels


def test_caml_gradient_reaches_the_first_conv(net_and_batch):
    net, rot, x, labels = net_and_batch
    # a wide margin keeps the hinge active at random init, so Eq. 4 sends gradients
    caml_only = CAMLLoss(rot, cls_weight=0.0, margin=100.0)
    terms = caml_only(net(x), net(rot.apply(x, labels)), labels)
    assert set(terms) == {"loss", "caml"} and terms["loss"] > 0
    terms["loss"].backward()
    first = net.backbone.features[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    assert net.pooling.eca.conv.weight.grad.abs().sum() > 0


def test_total_is_classification_plus_caml(net_and_batch):
    net, rot, x, labels = net_and_batch
    ori, trans = net(x), net(rot.apply(x, labels))
    terms = CAMLLoss(rot)(ori, trans, labels)
    assert torch.isclose(terms["cls"], F.cross_entropy(trans["logits"]["rotation"], labels))
    assert torch.isclose(terms["loss"], terms["cls"] + terms["caml"])
    assert set(CAMLLoss(rot, caml_weight=0.0)(ori, trans, labels)) == {"loss", "cls"}


def test_classification_sums_the_heads_of_a_combined_transform():
    rs = build_transform("rotation+scale")
    labels = torch.tensor([0, 5, 11])
    logits = {name: torch.randn(3, n) for name, n in rs.heads.items()}
    targets = rs.head_labels(labels)
    expected = sum(F.cross_entropy(logits[k], targets[k]) for k in logits)
    assert torch.isclose(pretext_cls_loss(logits, targets), expected)
    with pytest.raises(ValueError, match="heads"):
        pretext_cls_loss(logits, {"rotation": targets["rotation"]})


def test_unknown_options_are_rejected_with_the_allowed_values():
    a = square(8, 2)
    with pytest.raises(ValueError, match="positive"):
        caml_loss(*views(a, a), Rotation(), torch.tensor([0]), pairs="neg")
    with pytest.raises(ValueError, match="features"):
        CAMLLoss(Rotation(), embedding="maps")
    with pytest.raises(ValueError, match="not both 0"):
        CAMLLoss(Rotation(), cls_weight=0.0, caml_weight=0.0)


def test_rms_distance_is_l2_over_the_root_of_the_pixel_count():
    a, other = square(16, 8), square(16, 8, at=(0, 8))
    identity = torch.tensor([0])
    l2 = caml_loss(*views(a, other), Rotation(), identity, pairs="positive")
    rms = caml_loss(*views(a, other), Rotation(), identity, pairs="positive", distance="rms")
    assert torch.isclose(rms, l2 / 16)  # sqrt(16 * 16) pixels
    with pytest.raises(ValueError, match="rms"):
        caml_loss(*views(a, a), Rotation(), identity, distance="l1")


def test_stats_report_how_many_hinges_are_open():
    a_ori = square(16, 8)
    a_trans = torch.rot90(a_ori, 1, dims=(-2, -1))
    stats = {}
    caml_loss(*views(a_ori, a_trans), Rotation(), torch.tensor([1]), stats=stats)
    assert set(stats) == {"hinge_active", "d_pos", "d_neg"}
    assert stats["hinge_active"] == 0 and stats["d_pos"] == 0  # far beyond the margin
    caml_loss(*views(a_ori, a_trans), Rotation(), torch.tensor([1]), distance="rms",
              stats=stats)
    assert stats["hinge_active"] == 1  # rms distances stay below the margin of 1
    terms = CAMLLoss(Rotation(), stats=True, distance="rms")(
        {"attention": a_ori, "logits": {"rotation": torch.zeros(1, 4)}},
        {"attention": a_trans, "logits": {"rotation": torch.zeros(1, 4)}}, torch.tensor([1]))
    assert {"hinge_active", "d_pos", "d_neg"} <= set(terms)


# ------------------------------------------------- off-centre maps, a known loss per label
#
# Binary maps (every object pixel at the peak) and the exact view the transformed image
# shows, written by hand below (torch.rot90 / flip / slicing), not by coloc's transforms.
# With a margin of 10 every hinge stays open, so the loss is linear in the distances:
# each triplet has anchor == positive (d_pos = 0), an empty negative (all pixels are at
# the peak, so outside M_bg), hence d_neg = PEAK * sqrt(#pixels of the anchor) and
# L = 2 * 10 - PEAK * (sqrt(n_ori) + sqrt(n_trans)), with n_ori the object pixels of the
# original that the inverse recovers (the valid region) and n_trans those of the view.
# Dropping T, T^-1 or the valid mask from caml_loss makes d_pos > 0 and changes L.

N = 20  # translation's default shift of 0.1 half-sides is exactly one pixel on 20 x 20
PIXELS = ((3, 5), (0, 14), (15, 12), (19, 2))  # one per quadrant, two on the border rows


def off_centre() -> torch.Tensor:
    a = torch.zeros(1, N, N)
    for row, col in PIXELS:
        a[0, row, col] = 1.0
    return a


def shifted(a: torch.Tensor, step: int) -> torch.Tensor:
    """Translation by hand: the view reads the input ``step`` pixels down-right, zero fill."""
    out = torch.zeros_like(a)
    if step > 0:
        out[:, :-step, :-step] = a[:, step:, step:]
    elif step < 0:
        out[:, -step:, -step:] = a[:, :step, :step]
    else:
        out = a.clone()
    return out


def point_symmetric(a: torch.Tensor, sx: int, sy: int) -> torch.Tensor:
    """PST by hand: keep one half per axis (left if sx = +1, top if sy = +1), put it
    unmirrored on the far side and mirrored on the near side."""
    h = a.shape[-1] // 2
    kept = a[..., :h] if sx > 0 else a[..., h:]
    a = torch.cat([kept.flip(-1), kept] if sx > 0 else [kept, kept.flip(-1)], dim=-1)
    kept = a[..., :h, :] if sy > 0 else a[..., h:, :]
    return torch.cat([kept.flip(-2), kept] if sy > 0 else [kept, kept.flip(-2)], dim=-2)


def by_hand(name: str, label: int, a: torch.Tensor) -> torch.Tensor:
    if name == "rotation":
        return torch.rot90(a, label, dims=(-2, -1))
    if name in ("hflip", "vflip"):
        return a.flip(-1 if name == "hflip" else -2) if label else a.clone()
    if name == "translation":
        return shifted(a, label - 1)
    if name == "pst":
        return a.clone() if label == 2 else point_symmetric(a, *PST_SIGNS[label])
    raise AssertionError(name)


PST_SIGNS = {0: (-1, 1), 1: (-1, -1), 3: (1, 1), 4: (1, -1)}
ROOT3 = 3**0.5
# (name, label) -> sqrt(n_ori) + sqrt(n_trans), counted by hand from PIXELS:
KNOWN = {
    **{("rotation", k): 2 + 2 for k in range(4)},  # 4 pixels stay 4 pixels
    **{(flip, k): 2 + 2 for flip in ("hflip", "vflip") for k in range(2)},
    ("translation", 0): ROOT3 + ROOT3,  # (19, 2) leaves the frame, row 19 is not recovered
    ("translation", 1): 2 + 2,
    ("translation", 2): ROOT3 + ROOT3,  # (0, 14) leaves the frame, row 0 is not recovered
    **{("pst", k): 1 + 2 for k in (0, 1, 3, 4)},  # one quadrant's pixel, shown 4 times
    ("pst", 2): 2 + 2,
}


@pytest.mark.parametrize(("name", "label"), sorted(KNOWN))
def test_caml_loss_of_the_exact_view_of_an_off_centre_map(name, label):
    a_ori = off_centre()
    a_trans = by_hand(name, label, a_ori)
    loss = caml_loss(*views(a_ori, a_trans), build_transform(name), torch.tensor([label]),
                     margin=10.0)
    assert loss.item() == pytest.approx(20 - PEAK * KNOWN[name, label], abs=1e-4)


def test_caml_loss_counts_only_what_the_inverse_recovers():
    # Scale label 2 enlarges the content by 1 / 0.7: a corner pixel leaves the frame (the
    # view is empty) and is outside the valid region, so every map of both triplets is
    # zero: L = 2 * margin. Without the valid mask, the positive would keep the corner.
    corner = torch.zeros(1, N, N)
    corner[0, 0, 0] = 1.0
    empty = torch.zeros(1, N, N)
    scale = build_transform("scale")
    assert caml_loss(*views(corner, empty), scale, torch.tensor([2]), margin=10.0) == 20
    # label 1 is the identity: one pixel in each triplet, 2 * (10 - PEAK)
    identity = caml_loss(*views(corner, corner), scale, torch.tensor([1]), margin=10.0)
    assert identity.item() == pytest.approx(20 - 2 * PEAK, abs=1e-5)


def test_caml_loss_of_a_batch_is_the_mean_of_its_images():
    a_ori = off_centre().expand(3, N, N)
    labels = torch.tensor([1, 0, 3])
    a_trans = torch.stack([torch.rot90(a_ori[i], int(k), dims=(-2, -1))
                           for i, k in enumerate(labels)])
    wrong = a_trans.clone()
    wrong[2] = a_ori[2]  # the third view is not the rotation its label says
    loss = caml_loss(*views(a_ori, wrong), Rotation(), labels, margin=10.0)
    # images 1-2: 20 - 4 PEAK; image 3: A_trans2ori = rot90(A, -3) shares no pixel with A,
    # nor A_ori2trans = rot90(A, 3) with A_trans = A: d_pos = sqrt(8) PEAK per triplet
    # (8 pixels differ), d_neg = 2 PEAK as before, so 20 + 2 (sqrt(8) - 2) PEAK
    third = 20 + 2 * (8**0.5 - 2) * PEAK
    assert loss.item() == pytest.approx((2 * (20 - 4 * PEAK) + third) / 3, abs=1e-4)


def test_feature_embedding_uses_the_valid_region_on_every_channel():
    corner = torch.zeros(1, N, N)
    corner[0, 0, 0] = 1.0
    ori = {"attention": corner, "weighted": torch.full((1, 3, N, N), 2.0)}
    trans = {"attention": torch.zeros(1, N, N), "weighted": torch.full((1, 3, N, N), 2.0)}
    # as the scale case above, on attended features: every compared map is zero
    loss = caml_loss(ori, trans, build_transform("scale"), torch.tensor([2]), margin=10.0,
                     embedding="features")
    assert loss == 20


def test_stats_of_the_ablations_count_their_own_hinges():
    a = square(16, 8)
    identity = torch.tensor([0])
    for pairs, active in (("positive", 0.0), ("negative", 0.0), ("both", 0.0)):
        stats = {}  # identical views: d_pos = 0 (a hinge at exactly 0 sends no gradient),
        # d_neg = ||A|| = 8 PEAK beyond the margin of 1
        caml_loss(*views(a, a), Rotation(), identity, pairs=pairs, stats=stats)
        assert stats["hinge_active"] == active, pairs
        assert stats["d_neg"].item() == pytest.approx(8 * PEAK)
    stats = {}
    caml_loss(*views(a, a), Rotation(), identity, pairs="negative", margin=10.0, stats=stats)
    assert stats["hinge_active"] == 1  # 10 - 8 PEAK > 0
    stats = {}
    other = square(16, 8, at=(0, 8))
    caml_loss(*views(a, other), Rotation(), identity, pairs="positive", stats=stats)
    assert stats["hinge_active"] == 1 and stats["d_pos"] > 0


def test_loss_weights_scale_their_terms(net_and_batch):
    net, rot, x, labels = net_and_batch
    ori, trans = net(x), net(rot.apply(x, labels))
    plain = CAMLLoss(rot)(ori, trans, labels)
    weighted = CAMLLoss(rot, cls_weight=0.5, caml_weight=2.0)(ori, trans, labels)
    assert torch.isclose(weighted["loss"], 0.5 * plain["cls"] + 2.0 * plain["caml"])
    for bad in (dict(cls_weight=-1.0), dict(caml_weight=-0.5)):
        with pytest.raises(ValueError, match="weights must be >= 0"):
            CAMLLoss(rot, **bad)


def test_peak_gradient_option_reaches_the_normalization():
    a = (off_centre() * 0.5 + 0.1).requires_grad_(True)  # the peak is shared by 4 pixels
    grads = {}
    for peak_gradient in (False, True):
        a.grad = None
        caml_loss(*views(a, torch.rot90(a, 1, dims=(-2, -1))), Rotation(), torch.tensor([1]),
                  margin=10.0, peak_gradient=peak_gradient).backward()
        grads[peak_gradient] = a.grad.clone()
    assert not torch.allclose(grads[False], grads[True])


def test_defaults_are_the_papers_settings():
    # theta_bg 2.3, margin 1, headroom 0.05, L2, no gradient through the peak; random maps
    # whose background mask, hinge and distances all depend on each of them
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 8, 8, generator=generator).requires_grad_(True)
    b = torch.rand(2, 8, 8, generator=generator)
    labels = torch.tensor([1, 2])
    paper = dict(theta_bg=2.3, margin=1.0, pairs="both", embedding="attention", headroom=0.05,
                 distance="l2", peak_gradient=False)
    default = caml_loss(*views(a, b), Rotation(), labels)
    grad_default = torch.autograd.grad(default, a)[0]
    explicit = caml_loss(*views(a, b), Rotation(), labels, **paper)
    assert torch.equal(default, explicit)
    assert torch.equal(grad_default, torch.autograd.grad(explicit, a)[0])
    logits = {"logits": {"rotation": torch.zeros(2, 4)}}
    through_camlloss = CAMLLoss(Rotation())({"attention": a}, {"attention": b, **logits},
                                            labels)["caml"]
    assert torch.equal(through_camlloss, default)
    assert torch.equal(torch.autograd.grad(through_camlloss, a)[0], grad_default)
    assert torch.equal(background_mask(a), background_mask(a, 2.3))


OPTIONS = {"theta_bg": 1.5, "margin": 3.0, "pairs": "negative", "embedding": "features",
           "headroom": 0.2, "distance": "rms"}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_camlloss_passes_each_option_to_caml_loss(option):
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(2, 8, 8, generator=generator)
    b = torch.rand(2, 8, 8, generator=generator)
    weighted = torch.rand(2, 3, 8, 8, generator=generator)
    labels = torch.tensor([1, 3])
    ori = {"attention": a, "weighted": weighted}
    trans = {"attention": b, "weighted": weighted, "logits": {"rotation": torch.zeros(2, 4)}}
    changed = {option: OPTIONS[option]}
    expected = caml_loss(ori, trans, Rotation(), labels, **changed)
    assert expected != caml_loss(ori, trans, Rotation(), labels)  # the option matters here
    assert torch.equal(CAMLLoss(Rotation(), **changed)(ori, trans, labels)["caml"], expected)


def test_peak_gradient_flows_through_both_maps_peaks():
    # peak_gradient=True equals dividing by the peak by hand (with its gradient) and then
    # normalizing again (a constant division by PEAK * 1.05 = 1)
    generator = torch.Generator().manual_seed(2)
    a = torch.rand(1, 8, 8, generator=generator).requires_grad_(True)
    b = torch.rand(1, 8, 8, generator=generator).requires_grad_(True)
    labels = torch.tensor([1])
    loss = caml_loss(*views(a, b), Rotation(), labels, margin=10.0, peak_gradient=True)
    grads = torch.autograd.grad(loss, (a, b))
    by_hand = caml_loss(*views(a / (a.amax() * 1.05), b / (b.amax() * 1.05)), Rotation(),
                        labels, margin=10.0)
    for grad, expected in zip(grads, torch.autograd.grad(by_hand, (a, b)), strict=True):
        assert torch.allclose(grad, expected, atol=1e-6)
    logits = {"logits": {"rotation": torch.zeros(1, 4)}}
    through_camlloss = CAMLLoss(Rotation(), cls_weight=0.0, margin=10.0, peak_gradient=True)(
        {"attention": a}, {"attention": b, **logits}, labels)["loss"]
    for grad, expected in zip(grads, torch.autograd.grad(through_camlloss, (a, b)), strict=True):
        assert torch.allclose(grad, expected, atol=1e-6)


def test_feature_embedding_of_an_exact_view():
    # attended features of 3 channels at 2 everywhere: each map is 2 A on every channel, so
    # d_neg = 2 PEAK sqrt(3 channels x 4 pixels) per triplet (margin 10 keeps hinges open)
    a = off_centre()
    weighted = torch.full((1, 3, N, N), 2.0)
    ori = {"attention": a, "weighted": weighted}
    trans = {"attention": torch.rot90(a, 1, dims=(-2, -1)), "weighted": weighted}
    loss = caml_loss(ori, trans, Rotation(), torch.tensor([1]), margin=10.0,
                     embedding="features")
    assert loss.item() == pytest.approx(20 - 4 * 12**0.5 * PEAK, abs=1e-4)


def test_stats_average_over_both_triplets():
    # PST label 3 keeps the top-left pixel: the original-frame anchor has 1 pixel, the
    # transformed-frame anchor 4: d_neg = PEAK and 2 PEAK; only the first hinge is open
    a_ori = off_centre()
    stats = {}
    caml_loss(*views(a_ori, by_hand("pst", 3, a_ori)), build_transform("pst"),
              torch.tensor([3]), stats=stats)
    assert stats["d_neg"].item() == pytest.approx(1.5 * PEAK, abs=1e-5)
    assert stats["d_pos"].item() == pytest.approx(0.0, abs=1e-5)
    assert stats["hinge_active"] == 0.5


def test_background_mask_is_per_image_and_strict():
    a = normalize_attention(gaussian(16))
    masks = background_mask(torch.cat([torch.zeros(1, 16, 16), a]))
    assert not masks[0].any()  # an empty map has no background: 1 > 2.3 * 1 is false
    assert torch.equal(masks[1], background_mask(a)[0])
    # theta_bg = 1: background is below the peak, the peak pixel itself is not
    assert torch.equal(background_mask(a, 1.0), a < a.amax())
    with pytest.raises(ValueError, match="rms"):
        CAMLLoss(Rotation(), distance="l1")


@pytest.mark.parametrize(("theta_bg", "expected"), [
    (1.5, 20 - 2 * PEAK),  # 0.95 < 0.975: the weaker pixel is background in both triplets
    (2.3, 20 - 2 * PEAK * (1 + 0.95**2) ** 0.5),  # 0.95 > 0.935: the negatives are empty
])
def test_theta_bg_decides_what_the_negatives_keep_in_both_triplets(theta_bg, expected):
    # two object pixels, at the peak and at 0.95 of it, and the exact rotated view (margin
    # 10 keeps the hinges open): each triplet has d_pos = 0 and d_neg = the norm of the
    # anchor outside the background mask, A < (1 - (theta_bg - 1) * 0.05) * max A
    a = torch.zeros(1, N, N)
    a[0, 3, 5], a[0, 15, 12] = 1.0, 0.95
    loss = caml_loss(*views(a, torch.rot90(a, 1, dims=(-2, -1))), Rotation(),
                     torch.tensor([1]), margin=10.0, theta_bg=theta_bg)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
