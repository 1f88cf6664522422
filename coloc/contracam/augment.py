"""Batch transforms of ContraCAM's training: the SSL two-view augmentation and debiasing.

All operate on a whole batch of ImageNet-normalized images ``[B, 3, H, W]`` at once (no
per-image Python loop) and draw from torch's global generator, which the training loop
reseeds every epoch (:func:`coloc.train.fit`), so a run is deterministic.

- :class:`TwoViews`: MoCo v2's augmentation (ContraCAM Appendix B.1) with the paper's
  minimum crop scale 0.08: random resized crop (scale (0.08, 1), ratio (3/4, 4/3)),
  colour jitter (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale 0.2, Gaussian blur
  (sigma in (0.1, 2.0), probability 0.5), horizontal flip 0.5.
- Debiasing (Sec. 2.3, selected by ``ContraCAMConfig.debias``, never by subclassing):
  :func:`oa_crop_regions` + :func:`crop_resize` (object-aware random crop), :func:`bg_mix`
  with :func:`background_only` (BG-Mixup, Eq. 4, soft CAM; BG-HardMix, binary GT mask),
  :func:`mixup` and :func:`cutmix` (Table 8's baselines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from coloc.contracam.model import Mix
from coloc.data.common import IMAGENET_MEAN, IMAGENET_STD
from coloc.data.transforms import clip_boxes


def _stats(images: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device)
    return mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(n, device=device)


def crop_resize(images: Tensor, regions: Tensor, flip: Tensor | None = None) -> Tensor:
    """Crop each image to ``regions`` ``[B, 4]`` (``x0, y0, x1, y1`` in pixels, inclusive
    corners, may be fractional) and resize it to the input size, bilinearly; ``flip``
    (bool ``[B]``) mirrors the crop left-right. One ``grid_sample`` for the batch."""
    n, _, height, width = images.shape
    x0, y0, x1, y1 = regions.to(images.dtype).unbind(1)
    # pixel centres x in [x0, x1] map to normalized [-1, 1] (align_corners=True frame)
    sx = (x1 - x0) / max(width - 1, 1)
    sy = (y1 - y0) / max(height - 1, 1)
    cx = (x0 + x1) / max(width - 1, 1) - 1
    cy = (y0 + y1) / max(height - 1, 1) - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, sy, cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def random_resized_regions(n: int, height: int, width: int, scale: tuple[float, float],
                           ratio: tuple[float, float] = (3 / 4, 4 / 3),
                           device: torch.device | None = None) -> Tensor:
    """``[n, 4]`` crop regions of area share in ``scale`` and aspect ratio (w/h) log-uniform
    in ``ratio`` (torchvision's RandomResizedCrop); a side that would exceed the image is
    clamped to it (instead of torchvision's ten retries and centre-crop fallback)."""
    area = _uniform(n, *scale, device)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), device)
    w = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0) * (width - 1)
    h = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0) * (height - 1)
    x0 = torch.rand(n, device=device) * (width - 1 - w)
    y0 = torch.rand(n, device=device) * (height - 1 - h)
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


def _gray(images: Tensor) -> Tensor:
    r, g, b = images.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b)[:, None]  # ITU-R 601, as torchvision


def color_jitter(images: Tensor, strength: Sequence[float] = (0.4, 0.4, 0.4, 0.1)) -> Tensor:
    """Brightness, contrast, saturation, hue jitter of images in [0, 1], one factor per
    image (torchvision's ColorJitter in a fixed order; hue as a rotation in YIQ)."""
    n, device = len(images), images.device
    brightness, contrast, saturation, hue = strength
    shape = (n, 1, 1, 1)
    images = images * _uniform(n, 1 - brightness, 1 + brightness, device).view(shape)
    images = images.clamp(0, 1)
    mean = _gray(images).mean(dim=(1, 2, 3), keepdim=True)
    images = (mean + (images - mean) * _uniform(n, 1 - contrast, 1 + contrast, device
                                                 ).view(shape)).clamp(0, 1)
    gray = _gray(images)
    images = (gray + (images - gray) * _uniform(n, 1 - saturation, 1 + saturation, device
                                                ).view(shape)).clamp(0, 1)
    angle = _uniform(n, -hue, hue, device) * 2 * math.pi
    to_yiq = images.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                                [0.211, -0.523, 0.312]])
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.zeros(n, 3, 3, dtype=images.dtype, device=device)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = (
        cos, -sin, sin, cos)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # [n, 3, 3]
    return torch.einsum("nij,njhw->nihw", matrix, images).clamp(0, 1)


def gaussian_blur(images: Tensor, kernel: int, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur, ``sigma`` ``[B]`` per image, reflect padding."""
    n, c, height, width = images.shape
    half = kernel // 2
    x = torch.arange(-half, half + 1, dtype=images.dtype, device=images.device)
    weights = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None] ** 2))
    weights = (weights / weights.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
    flat = images.reshape(1, n * c, height, width)
    flat = F.conv2d(F.pad(flat, (half, half, 0, 0), mode="reflect"),
                    weights[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, half, half), mode="reflect"),
                    weights[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, height, width)


class TwoViews:
    """MoCo v2's view augmentation with ContraCAM's minimum crop scale (Appendix B.1).

    ``view(images)`` returns one augmented view of each image (normalized in and out);
    call it twice for the two views. ``blur_kernel`` 23 is the paper's at 224 px; sigma's
    range (0.1, 2.0) is scaled by ``blur_kernel / 23`` for smaller inputs.
    """

    def __init__(self, min_scale: float = 0.08, blur_kernel: int = 23) -> None:
        self.min_scale = min_scale
        self.blur_kernel = blur_kernel | 1  # odd
        self.sigma_scale = blur_kernel / 23

    def view(self, images: Tensor) -> Tensor:
        n, _, height, width = images.shape
        device = images.device
        mean, std = _stats(images)
        regions = random_resized_regions(n, height, width, (self.min_scale, 1.0),
                                         device=device)
        flip = torch.rand(n, device=device) < 0.5
        out = (crop_resize(images, regions, flip) * std + mean).clamp(0, 1)
        jitter = (torch.rand(n, device=device) < 0.8).view(n, 1, 1, 1)
        out = torch.where(jitter, color_jitter(out), out)
        gray = (torch.rand(n, device=device) < 0.2).view(n, 1, 1, 1)
        out = torch.where(gray, _gray(out).expand_as(out), out)
        blur = (torch.rand(n, device=device) < 0.5).view(n, 1, 1, 1)
        sigma = _uniform(n, 0.1, 2.0, device) * self.sigma_scale
        out = torch.where(blur, gaussian_blur(out, self.blur_kernel, sigma), out)
        return (out - mean) / std


# ----------------------------------------------------------------------------- debiasing


def oa_crop_regions(boxes: Sequence[Tensor], height: int, width: int) -> Tensor:
    """Object-aware random crop (Sec. 2.3): per image one box drawn uniformly from its
    boxes ``[K, 4]`` (pixels, inclusive), or the whole image when it has none ("can be
    empty"); ``[B, 4]`` regions for :func:`crop_resize`. Boxes are first clipped to the
    image and those entirely outside dropped (:func:`coloc.data.transforms.clip_boxes`);
    each region is its box, so it contains all of it; the two views are cropped inside.
    The 20 % margin is part of the boxes (:func:`coloc.boxes.expand_boxes`)."""
    regions = []
    whole = torch.tensor([0.0, 0.0, width - 1.0, height - 1.0])
    for image_boxes in boxes:  # ragged box lists; one index draw per image
        image_boxes = clip_boxes(image_boxes.float().cpu(), height, width)
        if len(image_boxes) == 0:
            regions.append(whole)
            continue
        regions.append(image_boxes[torch.randint(len(image_boxes), ())])
    return torch.stack(regions)


def background_only(images: Tensor, foreground: Tensor) -> tuple[Tensor, Tensor]:
    """Background-only images (Sec. 2.3, Fig. 3) and whether each image has background.

    ``foreground`` bool ``[B, H, W]`` (the CAM binarized at 0.2, or a GT mask). Inside
    the bounding rectangle of the foreground the image is replaced by tiles of the
    largest of the four background strips around it (above, left, right, below), as the
    official implementation does; outside it the image is kept. An image whose
    foreground rectangle is the whole image has no background strip (``False``) and is
    returned unchanged; an image without foreground is its own background.
    """
    n, _, height, width = images.shape
    device = images.device
    rows = foreground.any(dim=2)  # [B, H]
    cols = foreground.any(dim=1)  # [B, W]
    has_fg = rows.any(dim=1)
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    top = torch.where(rows, ys, height).amin(dim=1).clamp(max=height - 1)
    bottom = torch.where(rows, ys, -1).amax(dim=1).clamp(min=0)
    left = torch.where(cols, xs, width).amin(dim=1).clamp(max=width - 1)
    right = torch.where(cols, xs, -1).amax(dim=1).clamp(min=0)
    strips = torch.stack([top * width, left * height, (width - 1 - right) * height,
                          (height - 1 - bottom) * width], dim=1)  # areas
    side = strips.argmax(dim=1)
    has_bg = (strips.amax(dim=1) > 0) | ~has_fg
    # source pixel of every output pixel when the rectangle is filled with tiles
    yy, xx = ys.view(1, height, 1), xs.view(1, 1, width)
    t, b, l_, r = (v.view(n, 1, 1) for v in (top, bottom, left, right))
    s = side.view(n, 1, 1)
    src_y = torch.where(s == 0, yy % t.clamp(min=1),
                        torch.where(s == 3, b + 1 + yy % (height - 1 - b).clamp(min=1), yy))
    src_x = torch.where(s == 1, xx % l_.clamp(min=1),
                        torch.where(s == 2, r + 1 + xx % (width - 1 - r).clamp(min=1), xx))
    src_y, src_x = src_y.expand(n, height, width), src_x.expand(n, height, width)
    flat = (src_y * width + src_x).view(n, 1, -1).expand(-1, images.shape[1], -1)
    tiled = images.flatten(2).gather(2, flat).view_as(images)
    inside = ((yy >= t) & (yy <= b) & (xx >= l_) & (xx <= r) & has_fg.view(n, 1, 1)
              & has_bg.view(n, 1, 1))
    return torch.where(inside[:, None], tiled, images), has_bg


def bg_mix(images: Tensor, weights: Tensor, backgrounds: Tensor) -> Tensor:
    """BG-Mixup, ContraCAM Eq. 4: ``w * x + (1 - w) * x_bg`` with ``weights`` ``[B, H, W]``
    in [0, 1] (the soft ContraCAM of ``x``; a binary GT mask for BG-HardMix)."""
    w = weights[:, None].to(images.dtype)
    return w * images + (1 - w) * backgrounds


def bg_mix_batch(images: Tensor, weights: Tensor, foreground: Tensor, prob: float
                 ) -> Tensor:
    """Each image, with probability ``prob`` (p_mix, Sec. 3.3), mixed by :func:`bg_mix`
    onto the background-only image of a random other image of the batch; images whose
    partner has no background strip are kept (the official code draws from a queue of
    past backgrounds instead)."""
    n = len(images)
    backgrounds, has_bg = background_only(images, foreground)
    partner = torch.randperm(n, device=images.device)
    apply = (torch.rand(n, device=images.device) < prob) & has_bg[partner]
    mixed = bg_mix(images, weights, backgrounds[partner])
    return torch.where(apply.view(n, 1, 1, 1), mixed, images)


def _beta_lam(n: int, alpha: float, device: torch.device) -> Tensor:
    lam = torch.distributions.Beta(alpha, alpha).sample((n,)).to(device)
    return torch.maximum(lam, 1 - lam)


def mixup(images: Tensor, alpha: float = 1.0) -> tuple[Tensor, Mix]:
    """Mixup of the query view with a permuted batch (Table 8; lam ~ Beta(alpha, alpha),
    folded to >= 0.5 as the official code): ``lam * x + (1 - lam) * x[partner]``."""
    n = len(images)
    partner = torch.randperm(n, device=images.device)
    lam = _beta_lam(n, alpha, images.device)
    w = lam.view(n, 1, 1, 1)
    return w * images + (1 - w) * images[partner], Mix(partner, lam)


def cutmix(images: Tensor, alpha: float = 1.0) -> tuple[Tensor, Mix]:
    """CutMix of the query view (Table 8): a box of area share ``1 - lam`` from the
    partner pasted into each image (box centre uniform, clipped; ``lam`` is then the
    share actually kept)."""
    n, _, height, width = images.shape
    device = images.device
    partner = torch.randperm(n, device=device)
    cut = torch.sqrt(1 - _beta_lam(n, alpha, device))
    cy, cx = torch.rand(n, device=device) * height, torch.rand(n, device=device) * width
    y0 = (cy - cut * height / 2).clamp(0, height).long().view(n, 1, 1)
    y1 = (cy + cut * height / 2).clamp(0, height).long().view(n, 1, 1)
    x0 = (cx - cut * width / 2).clamp(0, width).long().view(n, 1, 1)
    x1 = (cx + cut * width / 2).clamp(0, width).long().view(n, 1, 1)
    yy = torch.arange(height, device=device).view(1, height, 1)
    xx = torch.arange(width, device=device).view(1, 1, width)
    box = (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
    mixed = torch.where(box[:, None], images[partner], images)
    lam = 1 - box.flatten(1).float().mean(dim=1)
    return mixed, Mix(partner, lam)
