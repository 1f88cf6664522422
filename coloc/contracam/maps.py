"""ContraCAM: class activation maps of a contrastive score (ContraCAM Sec. 2.2).

For a batch ``B`` and a self-supervised model with ``features`` (the last spatial map
``A [B, K, h, w]``) and ``project`` (unit-norm projection ``z``), the map of image ``x``:

- Eq. 1 score, without temperature (official code, PROTOCOL.md):
  ``S(x) = log( exp(z(x).z_key(x)) / sum_{n in negatives} exp(z(x).z(n)) )``, negatives
  the other images of the batch (and, after iteration 0, their masked versions);
- Eq. 2 Grad-CAM: ``alpha_k = ReLU(mean_ij dS/dA^k_ij)`` (the ReLU is the negative-signal
  removal, switchable: ``clamp_weights``), ``CAM = Normalize(ReLU(sum_k alpha_k A^k))``,
  bicubic to the input size and min-max normalized (:func:`coloc.maps.upsample_maps`);
- Eq. 3 / Algorithm 1, iterative refinement: ``x^t = x * (1 - M) + colour * M`` with the
  batch-mean colour and ``M = max(M, CAM^t)`` the union of the iterations' maps; the
  positive is the original image's projection.

The expansion trick (Sec. 3, Appendix B.1): at inference only, the first block of a
ResNet's last stage runs at stride 1 (7x7 -> 14x14 at 224 px) without retraining.
:func:`contracam` returns maps in the shared score-map contract of :mod:`coloc.maps`;
:func:`object_masks` and :func:`object_boxes` binarize them as the paper does, and
:func:`dense_crf` is the optional CRF post-processing (the ``pydensecrf2`` package).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from coloc.boxes import contour_boxes, expand_boxes, foreground_mask, large_boxes
from coloc.maps import upsample_maps

CRF_SETTINGS = dict(iterations=5, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80,
                    bilateral_srgb=13, bilateral_compat=10)
"""pydensecrf's defaults as the official code uses them (PROTOCOL.md)."""


def contrastive_score(query: Tensor, key: Tensor, negatives: Sequence[Tensor]) -> Tensor:
    """ContraCAM Eq. 1 (and Eq. 3) without temperature, one score per image ``[B]``.

    ``query`` ``[B, d]`` (with gradient), ``key`` ``[B, d]`` (the positive, the original
    images' projections), ``negatives``: batches ``[B, d]`` (the original batch, then
    each iteration's masked batch); entry ``i`` of every negative batch is image ``i``
    itself (or its masked version) and is left out. Projections are unit-norm.
    """
    positive = (query * key).sum(dim=1)
    similarities = torch.cat([query @ batch.T for batch in negatives], dim=1)  # [B, T*B]
    n = len(query)
    own = torch.eye(n, dtype=torch.bool, device=query.device).repeat(1, len(negatives))
    return positive - torch.logsumexp(similarities.masked_fill(own, float("-inf")), dim=1)


def gradcam_weights(features: Tensor, score: Tensor, clamp_weights: bool = True) -> Tensor:
    """Eq. 2's channel weights ``[B, K]``: the spatial mean of ``dS/dA^k`` for ``features``
    ``[B, K, h, w]`` (a tensor with gradient) and ``score`` ``[B]``; negative weights set
    to 0 when ``clamp_weights`` (the negative-signal removal of Table 1)."""
    (grad,) = torch.autograd.grad(score.sum(), features)
    weights = grad.mean(dim=(2, 3))
    return weights.clamp(min=0) if clamp_weights else weights


def gradcam(features: Tensor, score: Tensor, clamp_weights: bool = True) -> Tensor:
    """Eq. 2: raw CAMs ``[B, h, w]`` >= 0, ``ReLU(sum_k w_k A^k)`` with the weights of
    :func:`gradcam_weights`."""
    weights = gradcam_weights(features, score, clamp_weights)
    return torch.relu(torch.einsum("bk,bkhw->bhw", weights, features)).detach()


@contextlib.contextmanager
def expand_resolution(backbone: nn.Module) -> Iterator[nn.Module]:
    """The expansion trick: inside the ``with`` block every convolution of the first
    block of ``backbone.layer4`` has stride 1 (twice the map side); restored on exit."""
    if not hasattr(backbone, "layer4"):
        raise ValueError(f"the expansion trick needs a ResNet (layer4); "
                         f"{type(backbone).__name__} has none")
    convs = [m for m in backbone.layer4[0].modules() if isinstance(m, nn.Conv2d)]
    strides = [m.stride for m in convs]
    try:
        for m in convs:
            m.stride = (1, 1)
        yield backbone
    finally:
        for m, stride in zip(convs, strides, strict=True):
            m.stride = stride


def contracam(model: nn.Module, images: Tensor, *, clamp_weights: bool = True,
              iterations: int = 1, expand: bool = False, raw: bool = False,
              intermediate: bool = False) -> Tensor | tuple[Tensor, dict[str, list[Tensor]]]:
    """Iterative ContraCAM (Algorithm 1) of ``images`` ``[B, 3, H, W]`` against each other.

    ``model``: :class:`coloc.contracam.model.MoCo` or ``BYOL`` (``features``, ``project``;
    put in eval mode). Returns the aggregated maps ``[B, H, W]`` in [0, 1]; with ``raw``
    the first iteration's CAM at feature resolution ``[B, h, w]`` (probes). With
    ``intermediate`` also ``{"cams": [...], "masks": [...], "masked": [...]}``: each
    iteration's CAM, the union so far and the masked image it produced (Figure 2). A
    batch of one image has no negatives and gives zeros (an evaluation split whose last
    batch holds one image scores that image as all zeros).
    """
    model.eval()
    size = images.shape[-2:]
    colour = images.mean(dim=(0, 2, 3), keepdim=True)  # batch-mean colour (Algorithm 1)
    backbone = model.encoder.backbone
    expansion = expand_resolution(backbone) if expand else contextlib.nullcontext()
    key, negatives, mask, masked = None, [], None, images
    cams, masks, masked_images = [], [], []
    with expansion, torch.enable_grad():
        for step in range(iterations):
            with torch.no_grad():
                features = model.features(masked)
            features.requires_grad_(True)
            output = model.project(features)
            if step == 0:
                key = output.detach()
            negatives.append(output.detach())
            if len(images) < 2:
                cam = torch.zeros(features.shape[0], *features.shape[2:], device=images.device)
            else:
                cam = gradcam(features, contrastive_score(output, key, negatives), clamp_weights)
            if raw:
                return cam.float()
            cam = upsample_maps(cam, size)
            mask = cam if mask is None else torch.maximum(mask, cam)  # union
            masked = images * (1 - mask[:, None]) + colour * mask[:, None]
            cams.append(cam)
            masks.append(mask)
            masked_images.append(masked)
    if intermediate:
        return mask, {"cams": cams, "masks": masks, "masked": masked_images}
    return mask


def object_masks(maps: Tensor, threshold: float = 0.5) -> Tensor:
    """Bool masks ``[B, H, W]``: ``map > threshold`` (the official mIoU code's rule; maps
    are min-max normalized, so this is ``threshold`` of the max)."""
    return maps > threshold


def object_boxes(score_map: Tensor | np.ndarray, threshold: float = 0.5,
                 min_area: float = 0.01, margin: float = 0.2) -> np.ndarray:
    """Boxes of one ``[H, W]`` map for OA-Crop (Appendix B.2): every contour of the map
    above ``threshold`` of its max (:func:`coloc.boxes.foreground_mask`), boxes of area
    above ``min_area`` of the image kept, each grown by ``margin`` of its width
    (left/right) and height (up/down), clipped. ``[K, 4]`` int64, ``K = 0`` possible."""
    height, width = score_map.shape[-2:]
    boxes = contour_boxes(foreground_mask(score_map, threshold), multi_contour=True)
    return expand_boxes(large_boxes(boxes, min_area, (height, width)), margin,
                        (height, width))


def dense_crf(images: np.ndarray, maps: np.ndarray, settings: dict | None = None
              ) -> np.ndarray:
    """Dense-CRF refinement of soft foreground maps (Sec. 3; the official code's settings,
    :data:`CRF_SETTINGS`). ``images`` uint8 ``[B, H, W, 3]``, ``maps`` ``[B, H, W]`` in
    [0, 1]; returns the CRF's foreground probability ``[B, H, W]``. Needs the optional
    ``pydensecrf2`` package (imported as ``pydensecrf``); without it ImportError says so."""
    try:
        import pydensecrf.densecrf as dcrf  # optional extra: coloc[crf]
    except ImportError as err:
        raise ImportError("the dense CRF needs the optional package pydensecrf2 "
                          "(pip install 'coloc[crf]' or pip install pydensecrf2); "
                          "ContraCAM's masks and boxes work without it") from err
    s = {**CRF_SETTINGS, **(settings or {})}
    out = []
    for image, soft in zip(images, maps, strict=True):  # the CRF library is per image
        height, width = soft.shape
        probabilities = np.stack([soft, 1 - soft]).reshape(2, -1).astype(np.float32)
        crf = dcrf.DenseCRF2D(width, height, 2)
        crf.setUnaryEnergy(np.ascontiguousarray(-np.log(probabilities + 1e-20)))
        crf.addPairwiseGaussian(sxy=s["gaussian_sxy"], compat=s["gaussian_compat"])
        crf.addPairwiseBilateral(sxy=s["bilateral_sxy"], srgb=s["bilateral_srgb"],
                                 rgbim=np.ascontiguousarray(image),
                                 compat=s["bilateral_compat"])
        q = np.array(crf.inference(s["iterations"])).reshape(2, height, width)
        out.append(q[0])
    return np.stack(out)
