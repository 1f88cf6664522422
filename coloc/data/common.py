"""The sample contract shared by every dataset in :mod:`coloc.data`.

Every dataset (synthetic or real) returns a :class:`Sample` dict:

- ``image``: float32 tensor ``[3, H, W]``, ImageNet-normalized (``IMAGENET_MEAN/STD``).
- ``label``: int, the fine-grained class (0-based); -1 when the dataset has none.
- ``family``: str, the superclass ("bird", "car", ...; the dataset name for real data).
- ``boxes``: float32 tensor ``[K, 4]``, ``(x0, y0, x1, y1)`` in pixels of the network
  input, inclusive corners (the protocol's convention); ``K >= 0``.
- ``mask``: uint8 tensor ``[H, W]``: 1 foreground, 0 background, 255 ignore/unknown.
  Datasets without masks return all 255, so PxAP simply skips them.
- ``part_mask``: bool tensor ``[H, W]``: the discriminative part (synthetic only;
  all False elsewhere).
- ``index``: int, the position in the dataset.

Batches come from :func:`collate_samples`: images, labels, masks and part masks are
stacked; boxes stay a list (their count varies per image).
"""

from __future__ import annotations

from typing import TypedDict

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE = 255


class Sample(TypedDict):
    """One item of any coloc dataset (see the module docstring for shapes)."""

    image: torch.Tensor
    label: int
    family: str
    boxes: torch.Tensor
    mask: torch.Tensor
    part_mask: torch.Tensor
    index: int


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalize a float ``[3, H, W]`` (or ``[N, 3, H, W]``) image in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


def denormalize_image(image: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize_image`, clamped to [0, 1] (for plotting)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0, 1)


def collate_samples(samples: list[Sample]) -> dict:
    """Batch samples: stack fixed-size fields, keep ``boxes`` and ``family`` as lists."""
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
        "family": [s["family"] for s in samples],
        "boxes": [s["boxes"] for s in samples],
        "mask": torch.stack([s["mask"] for s in samples]),
        "part_mask": torch.stack([s["part_mask"] for s in samples]),
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
    }
