"""CAML's objective: contrastive attention map loss plus pretext classification (CAML Sec. 3.2-3.3).

With ``A_ori`` and ``A_trans`` the attention maps of an image and of its transformed view
(``T``, a :mod:`coloc.caml.pretext` transform with one label per image):

- CAML Eq. 3: background mask ``M_bg = 1[(1 - A) > theta_bg * min(1 - A)]`` and
  background maps ``A_ori2bg = A_ori * M_bg(A_ori)``, ``A_trans2bg = A_trans * M_bg(A_trans)``;
- CAML Eq. 4: two triplets (anchor, positive, negative) with L2 distance ``d`` (or its
  per-entry root mean square, ``distance="rms"``, which does not grow with the map's
  resolution; the CAML chapter trains both and keeps the L2 of the paper) and margin
  ``m``: ``(T^-1(A_trans), A_ori, A_ori2bg)`` in the original frame and
  ``(T(A_ori), A_trans, A_trans2bg)`` in the transformed frame,
  ``L_caml = E_x [d(a, p) - d(a, n) + m]_+ summed over the two triplets``;
- CAML Eq. 5-6: ``L_total = L_cls + L_caml`` (no weight in the paper, so lambda = 1),
  ``L_cls`` the cross-entropy of the pretext labels.

Maps are first divided by their maximum times 1.05 (:func:`coloc.caml.ptap.normalize_attention`,
``headroom = 0.05``): a map scaled into [0, 1] has ``max A = 1``, so ``min(1 - A) = 0``
and Eq. 3 would ignore ``theta_bg``; with the headroom ``M_bg`` is
``A < (1 - (theta_bg - 1) * 0.05) * max A`` (93.5 % of the peak at 2.3), and a lower
``theta_bg`` leaves more foreground in ``M_bg`` (CAML Fig. 6). The maximum is a constant
for the gradient (``peak_gradient=False``): the loss cannot flatten a map by lowering its
peak. Other choices where the paper is silent are stated where they are made: the valid
region of the original-frame triplet (:func:`caml_loss`), the view the classification
loss reads and the ablation variants of CAML Tables 3-5 (:class:`CAMLLoss`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from coloc.caml.pretext import PretextTransform
from coloc.caml.ptap import normalize_attention

PAIRS = ("both", "positive", "negative")
EMBEDDINGS = ("attention", "features")
DISTANCES = ("l2", "rms")


def _check_options(pairs: str, embedding: str, distance: str = "l2") -> None:
    if pairs not in PAIRS:
        raise ValueError(f"pairs must be one of {PAIRS}, got {pairs!r}")
    if embedding not in EMBEDDINGS:
        raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def background_mask(attention: Tensor, theta_bg: float = 2.3) -> Tensor:
    """CAML Eq. 3: ``M_bg = 1[(1 - A) > theta_bg * min(1 - A)]``, the minimum per image.

    ``attention`` ``[B, h, w]`` normalized by :func:`coloc.caml.ptap.normalize_attention`
    (values in ``[0, 1/(1 + headroom)]``); returns bool ``[B, h, w]``. With that
    normalization the mask is ``A < (1 - (theta_bg - 1) * headroom) * max(A)``: lower
    ``theta_bg`` puts more of the object into the mask (CAML Fig. 6); 2.3 is the paper's
    value for every dataset.
    """
    reverse = 1.0 - attention
    floor = reverse.flatten(1).amin(dim=1).view(-1, *[1] * (attention.dim() - 1))
    return reverse > theta_bg * floor


def map_distance(a: Tensor, b: Tensor, distance: str = "l2") -> Tensor:
    """``d`` of CAML Eq. 4 per image over all remaining dimensions, ``[B, ...] -> [B]``.

    ``"l2"``: the L2 norm of the difference (CAML Eq. 4 read literally); ``"rms"``: the
    same divided by the square root of the number of entries (root mean square), so it
    does not grow with the map's resolution.
    """
    norm = torch.linalg.vector_norm((a - b).flatten(1), dim=1)
    return norm / a[0].numel() ** 0.5 if distance == "rms" else norm


def _triplet(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float,
    pairs: str,
    distance: str = "l2",
    stats: dict[str, list[Tensor]] | None = None,
) -> Tensor:
    """Per-image loss ``[B]`` of one triplet of CAML Eq. 4, or of an ablation of Table 5."""
    d_pos = map_distance(anchor, positive, distance)
    d_neg = map_distance(anchor, negative, distance)
    if stats is not None:
        argument = {"both": d_pos - d_neg + margin, "positive": d_pos, "negative": margin - d_neg}
        stats.setdefault("hinge_active", []).append((argument[pairs] > 0).float().detach())
        stats.setdefault("d_pos", []).append(d_pos.detach())
        stats.setdefault("d_neg", []).append(d_neg.detach())
    if pairs == "positive":  # CAML Table 5 "w/o neg pairs": L2 between the positive pair
        return d_pos
    if pairs == "negative":  # Table 5 "w/o pos pairs": negatives pushed beyond the margin
        return F.relu(margin - d_neg)
    return F.relu(d_pos - d_neg + margin)


def caml_loss(
    ori: Mapping[str, Tensor],
    trans: Mapping[str, Tensor],
    transform: PretextTransform,
    labels: Tensor,
    *,
    theta_bg: float = 2.3,
    margin: float = 1.0,
    pairs: str = "both",
    embedding: str = "attention",
    headroom: float = 0.05,
    distance: str = "l2",
    peak_gradient: bool = False,
    stats: dict[str, Tensor] | None = None,
) -> Tensor:
    """Contrastive attention map loss, CAML Eq. 3-4 (a scalar, mean over the batch).

    Args:
        ori, trans: :class:`coloc.models.PretextOutput` of the original images and of
            ``transform.apply(images, labels)``; ``"attention"`` ``[B, h, w]`` is needed,
            and ``"weighted"`` ``[B, C, h, w]`` for ``embedding="features"``.
        transform, labels: the pretext transform and its labels ``[B]``.
        theta_bg: background ratio of Eq. 3 (CAML: 2.3).
        margin: ``m`` of Eq. 4 (CAML: 1).
        pairs: ``"both"`` (Eq. 4), ``"positive"`` (Table 5 without negative pairs: the sum
            of the two positive distances) or ``"negative"`` (Table 5 without positive
            pairs: ``[m - d(anchor, negative)]_+`` per triplet).
        embedding: ``"attention"`` (Eq. 4) or ``"features"`` (Table 4: every map ``X`` is
            replaced by the attended features ``X * F_w`` and compared over ``C x h x w``).
        headroom, peak_gradient: attention normalization, see
            :func:`coloc.caml.ptap.normalize_attention`.
        distance: ``d`` of Eq. 4, ``"l2"`` (the literal reading) or ``"rms"`` (L2 over the
            square root of the number of entries; see :func:`map_distance`).
        stats: if a dict is given, it receives detached diagnostics over both triplets
            and the batch: ``hinge_active`` (share of triplets whose hinge argument is
            positive, i.e. that send a gradient), ``d_pos`` and ``d_neg`` (mean distances).

    Both maps are normalized per image before anything else. In the original-frame
    triplet, distances are taken only where ``transform.valid_mask`` is True: outside,
    ``T^-1(A_trans)`` holds no content (e.g. the border lost by zooming in) and comparing
    it with ``A_ori`` would teach the model to switch attention off there. The
    transformed-frame triplet needs no mask: ``T(A_ori)`` is filled like the image was
    (reflection or zeros), so it says what the transformed view shows everywhere.
    Gradients flow through all three maps of each triplet; the masks are constants.
    """
    _check_options(pairs, embedding, distance)
    a_ori = normalize_attention(ori["attention"], headroom, peak_gradient)
    a_trans = normalize_attention(trans["attention"], headroom, peak_gradient)
    bg_ori = background_mask(a_ori, theta_bg).unsqueeze(1)
    bg_trans = background_mask(a_trans, theta_bg).unsqueeze(1)
    if embedding == "features":
        e_ori = a_ori.unsqueeze(1) * ori["weighted"]
        e_trans = a_trans.unsqueeze(1) * trans["weighted"]
    else:
        e_ori, e_trans = a_ori.unsqueeze(1), a_trans.unsqueeze(1)
    labels = labels.to(a_ori.device)
    valid = transform.valid_mask(labels, tuple(a_ori.shape[-2:])).unsqueeze(1)

    collected: dict[str, list[Tensor]] | None = {} if stats is not None else None
    ori_frame = _triplet(  # (A_trans2ori, A_ori, A_ori2bg)
        transform.invert(e_trans, labels) * valid,
        e_ori * valid,
        e_ori * bg_ori * valid,
        margin,
        pairs,
        distance,
        collected,
    )
    trans_frame = _triplet(  # (A_ori2trans, A_trans, A_trans2bg)
        transform.apply(e_ori, labels), e_trans, e_trans * bg_trans, margin, pairs, distance,
        collected,
    )
    if stats is not None:
        stats.update({k: torch.cat(v).mean() for k, v in collected.items()})
    return (ori_frame + trans_frame).mean()


def pretext_cls_loss(logits: Mapping[str, Tensor], labels: Mapping[str, Tensor]) -> Tensor:
    """CAML Eq. 6: cross-entropy of the pretext labels, summed over heads (PsyNet).

    ``logits`` ``{head: [B, n]}`` and ``labels`` ``{head: [B]}`` with the same heads
    (``transform.heads`` / ``transform.head_labels(labels)``).
    """
    if set(logits) != set(labels):
        raise ValueError(f"logits heads {sorted(logits)} differ from label heads {sorted(labels)}")
    return sum(F.cross_entropy(logits[name], labels[name]) for name in logits)


class CAMLLoss:
    """CAML Eq. 5: ``cls_weight * L_cls + caml_weight * L_caml`` (both 1 in the paper).

    ``CAMLLoss(transform)(ori, trans, labels) -> {"loss", "cls", "caml"}`` with ``ori``
    and ``trans`` the :class:`coloc.models.PretextOutput` of the original and the
    transformed images. ``L_cls`` is taken on the transformed view only: it carries the
    label (the identity label included, as PsyNet samples it); the original view is
    just the identity class again. A weight of 0 drops that term (CAML Table 3's
    "- L_cls" and "- L_caml" rows); it is then neither computed nor reported. The
    keyword arguments of :func:`caml_loss` select the ablations of Tables 4-5 and the
    distance. ``stats=True`` adds the detached diagnostics of :func:`caml_loss`
    (``hinge_active``, ``d_pos``, ``d_neg``) to the returned dict when L_caml is on.
    """

    def __init__(
        self,
        transform: PretextTransform,
        *,
        cls_weight: float = 1.0,
        caml_weight: float = 1.0,
        theta_bg: float = 2.3,
        margin: float = 1.0,
        pairs: str = "both",
        embedding: str = "attention",
        headroom: float = 0.05,
        distance: str = "l2",
        peak_gradient: bool = False,
        stats: bool = False,
    ) -> None:
        _check_options(pairs, embedding, distance)
        if cls_weight < 0 or caml_weight < 0 or cls_weight == caml_weight == 0:
            raise ValueError(
                f"weights must be >= 0 and not both 0, got cls_weight={cls_weight}, "
                f"caml_weight={caml_weight}"
            )
        self.transform = transform
        self.cls_weight = cls_weight
        self.caml_weight = caml_weight
        self.stats = stats
        self.caml_options = dict(
            theta_bg=theta_bg, margin=margin, pairs=pairs, embedding=embedding, headroom=headroom,
            distance=distance, peak_gradient=peak_gradient,
        )

    def __call__(
        self, ori: Mapping[str, Tensor], trans: Mapping[str, Tensor], labels: Tensor
    ) -> dict[str, Tensor]:
        terms, stats = {}, ({} if self.stats else None)
        if self.cls_weight:
            targets = {
                k: v.to(trans["attention"].device)
                for k, v in self.transform.head_labels(labels).items()
            }
            terms["cls"] = pretext_cls_loss(trans["logits"], targets)
        if self.caml_weight:
            terms["caml"] = caml_loss(
                ori, trans, self.transform, labels, stats=stats, **self.caml_options
            )
        weights = {"cls": self.cls_weight, "caml": self.caml_weight}
        return {"loss": sum(weights[k] * v for k, v in terms.items()), **terms, **(stats or {})}
