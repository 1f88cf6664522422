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
