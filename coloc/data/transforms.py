"""Protocol transforms that move boxes and masks together with the image.

The evaluation protocol (PROTOCOL.md, "Score maps"), for a network input of side ``S``
(224 in the paper profile):

- test (``augment=None``): resize to ``S x S`` without cropping; boxes are scaled by
  new/original size per axis and truncated to int, as the reference evaluator of Choe et
  al. (CVPR 2020) does;
- WSOL training (``augment="wsol"``): resize to ``R x R`` with ``R = round(256 / 224 * S)``
  (256 at S = 224), random crop ``S``, random horizontal flip;
- PsyNet co-localization training (``augment="psynet"``): resize to ``R x R``, 4-pixel
  reflect padding, random crop ``S``, no flip.

Conventions: images are float ``[C, H, W]`` (any range: every step is linear, so they
work before or after ImageNet normalization); boxes are float ``[K, 4]``
``(x0, y0, x1, y1)`` inclusive pixel corners; masks are uint8 ``[H, W]`` (1 fg, 0 bg,
255 ignore) and part masks bool ``[H, W]``. Masks are resized with nearest neighbour
(torch's ``nearest``, the same rule as OpenCV's ``INTER_NEAREST`` used by the reference);
the reflect-padded border is marked 255 (ignore) in the mask and False in the part mask,
since it is mirrored content, not annotated ground truth. Boxes are clipped to a crop; a
box that leaves the crop entirely is dropped. Randomness comes from an optional
``torch.Generator`` (default: torch's global generator, which DataLoader workers seed).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from coloc.data.common import IGNORE, Sample

AUGMENTS = (None, "wsol", "psynet")
RESIZE_RATIO = 256 / 224
PSYNET_PADDING = 4


class Annotated(NamedTuple):
    """An image with the annotations that must follow it through a transform."""

    image: torch.Tensor  # float [C, H, W]
    boxes: torch.Tensor  # float [K, 4], (x0, y0, x1, y1) inclusive
    mask: torch.Tensor  # uint8 [H, W]
    part_mask: torch.Tensor  # bool [H, W]


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Clip inclusive boxes to a ``height x width`` image; drop those entirely outside it.

    A box is kept when it overlaps the image (``x1 >= 0``, ``x0 <= width - 1``, same for y)
    and is not inverted; its corners are then clamped to ``[0, width - 1]`` x
    ``[0, height - 1]``.
    """
    boxes = boxes.reshape(-1, 4)
    x0, y0, x1, y1 = boxes.unbind(1)
    keep = (x1 >= 0) & (y1 >= 0) & (x0 <= width - 1) & (y0 <= height - 1) & (x0 <= x1) & (y0 <= y1)
    boxes = boxes[keep]
    upper = boxes.new_tensor([width - 1, height - 1, width - 1, height - 1])
    return torch.minimum(boxes.clamp(min=0), upper)


def resize(sample: Annotated, height: int, width: int) -> Annotated:
    """Resize to ``height x width``: image bilinear (antialiased), masks nearest neighbour,
    boxes scaled by new/original size per axis and truncated to int (the protocol's rule)."""
    old_h, old_w = sample.image.shape[-2:]
    if (old_h, old_w) == (height, width):
        return sample
    image = F.interpolate(
        sample.image[None], size=(height, width), mode="bilinear", align_corners=False,
        antialias=True,
    )[0]
    masks = torch.stack([sample.mask, sample.part_mask.to(torch.uint8)])[None]
    mask, part_mask = F.interpolate(masks, size=(height, width), mode="nearest")[0]
    scale = sample.boxes.new_tensor([width / old_w, height / old_h, width / old_w, height / old_h])
    boxes = torch.trunc(sample.boxes * scale)
    return Annotated(image, boxes, mask, part_mask.bool())


def crop(sample: Annotated, top: int, left: int, height: int, width: int) -> Annotated:
    """Crop the window ``[top, top + height) x [left, left + width)`` (inside the image).

    Boxes move with the window, are clipped to it, and are dropped when outside it.
    """
    rows, cols = slice(top, top + height), slice(left, left + width)
    shift = sample.boxes.new_tensor([left, top, left, top])
    return Annotated(
        sample.image[:, rows, cols],
        clip_boxes(sample.boxes - shift, height, width),
        sample.mask[rows, cols],
        sample.part_mask[rows, cols],
    )


def pad(sample: Annotated, padding: int) -> Annotated:
    """Reflect-pad the image by ``padding`` pixels per side; the new border is 255
    (ignore) in the mask and False in the part mask; boxes shift by ``padding``."""
    sides = (padding,) * 4
    image = F.pad(sample.image[None], sides, mode="reflect")[0]
    return Annotated(
        image,
        sample.boxes + padding,
        F.pad(sample.mask, sides, value=IGNORE),
        F.pad(sample.part_mask, sides, value=False),
    )


def hflip(sample: Annotated) -> Annotated:
    """Mirror left-right: inclusive corners map as ``x -> W - 1 - x`` (x0 and x1 swap)."""
    width = sample.image.shape[-1]
    x0, y0, x1, y1 = sample.boxes.unbind(1)
    boxes = torch.stack([width - 1 - x1, y0, width - 1 - x0, y1], dim=1)
    return Annotated(
        sample.image.flip(-1), boxes, sample.mask.flip(-1), sample.part_mask.flip(-1)
    )


class ProtocolTransform:
    """The protocol's test transform (``augment=None``) or a training transform
    (``"wsol"`` or ``"psynet"``) for a network input of side ``image_size``.

    ``resize_size`` is the side of the first resize: ``image_size`` for test,
    ``round(256 / 224 * image_size)`` for training.
    """

    def __init__(self, image_size: int, augment: str | None = None) -> None:
        if augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size
        self.augment = augment
        self.resize_size = image_size if augment is None else round(RESIZE_RATIO * image_size)

    def __call__(self, sample: Annotated, generator: torch.Generator | None = None) -> Annotated:
        """Transform one annotated image; ``generator`` seeds the random crop and flip."""
        sample = resize(sample, self.resize_size, self.resize_size)
        if self.augment is None:
            return sample
        if self.augment == "psynet":
            sample = pad(sample, PSYNET_PADDING)
        height, width = sample.image.shape[-2:]
        side = self.image_size
        top = int(torch.randint(height - side + 1, (1,), generator=generator))
        left = int(torch.randint(width - side + 1, (1,), generator=generator))
        sample = crop(sample, top, left, side, side)
        if self.augment == "wsol" and float(torch.rand(1, generator=generator)) < 0.5:
            sample = hflip(sample)
        return sample

    def __repr__(self) -> str:
        return f"ProtocolTransform(image_size={self.image_size}, augment={self.augment!r})"


class TransformedDataset(Dataset):
    """Apply a :class:`ProtocolTransform` to the samples of a dataset that already
    returns :class:`~coloc.data.common.Sample` dicts (used for the synthetic set)."""

    def __init__(self, dataset: Dataset, transform: ProtocolTransform) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Sample:
        sample = self.dataset[index]
        moved = self.transform(
            Annotated(sample["image"], sample["boxes"], sample["mask"], sample["part_mask"])
        )
        return Sample(
            image=moved.image, label=sample["label"], family=sample["family"],
            boxes=moved.boxes, mask=moved.mask, part_mask=moved.part_mask, index=index,
        )

    def __getattr__(self, name: str):
        # Expose the wrapped dataset's attributes (classes, split, ...) unchanged.
        if name in {"dataset", "transform"}:
            raise AttributeError(name)
        return getattr(self.dataset, name)
