"""The wsolevaluation metadata format (Choe et al., CVPR 2020) for CUB, ImageNet, OpenImages.

Layout, as in the clovaai/wsolevaluation repository: ``metadata/<DS>/<split>/`` holds
comma-separated files without header, ``dataset/<DS>/`` the images (and OpenImages
masks) at the paths the metadata names; ``<DS>`` is ``CUB``, ``ILSVRC`` (ImageNet) or
``OpenImages``. Splits: ``train`` (train-weaksup), ``val`` (train-fullsup: CUBV2,
ImageNetV2, OpenImages val; for threshold and hyper-parameter search) and ``test``.

- ``image_ids.txt``: ``<path>``; ``class_labels.txt``: ``<path>,<label>`` (0-based);
- ``localization.txt``: boxes ``<path>,<x0>,<y0>,<x1>,<y1>`` (CUB, ILSVRC; one line per
  box, pixels of the original image) or masks ``<path>,<mask_path>,<ignore_path>``
  (OpenImages; one line per instance mask, the ignore path only on an image's first
  line). Required for val and test, read for train when present.
- ``image_sizes.txt`` (``<path>,<w>,<h>``) is not needed: sizes come from the images.

OpenImages masks follow the reference evaluator: foreground = any instance mask > 0.5
(PNG values 0/255), ignore (255) = the ignore mask minus the foreground. Boxes are not
part of OpenImages' metadata; each instance mask gives its tight box, so box metrics
are defined there too.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from coloc.data.common import IGNORE
from coloc.data.errors import DatasetFormatError
from coloc.data.real import (
    DatasetInfo,
    RealDataset,
    Record,
    finite,
    mask_box,
    read_mask_image,
    read_table,
    require,
)

_URL = "https://github.com/clovaai/wsolevaluation (metadata; images via its dataset/prepare_*.sh)"


def _info(name: str, folder: str, title: str, num_classes: int, description: str,
          images: str) -> DatasetInfo:
    files = ("image_ids.txt", "class_labels.txt")
    required = tuple(f"metadata/{folder}/{split}/{file}" for split in ("train", "val", "test")
                     for file in files)
    required += tuple(f"metadata/{folder}/{split}/localization.txt" for split in ("val", "test"))
    return DatasetInfo(
        name=name, title=title, description=description, url=_URL, subdir="wsolevaluation",
        num_classes=num_classes,
        splits=("train", "val", "test"), layouts=((*required, f"dataset/{folder}/"),),
        tree=f"""\
wsolevaluation/
├── metadata/{folder}/
│   ├── train/  image_ids.txt  <path>
│   │           class_labels.txt  <path>,<label>  (0-based)
│   │           localization.txt  optional for train
│   ├── val/    image_ids.txt, class_labels.txt, localization.txt  (train-fullsup)
│   └── test/   image_ids.txt, class_labels.txt, localization.txt
└── dataset/{folder}/{images}
""",
    )


WSOL_CUB_INFO = _info(
    "wsol-cub", "CUB", "CUB (wsolevaluation)", 200,
    "CUB-200-2011 train/test plus CUBV2 (1,000 images, 5 per class) as the val split; boxes.",
    "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...  <x0>,<y0>,<x1>,<y1>",
)
WSOL_IMAGENET_INFO = _info(
    "wsol-imagenet", "ILSVRC", "ImageNet (wsolevaluation)", 1000,
    "ImageNet-1k train / val (test), ImageNetV2 with boxes as the val split (10 per class).",
    "train/n01440764/... val2/0/0.jpeg ... val/ILSVRC2012_val_00000001.JPEG ...",
)
WSOL_OPENIMAGES_INFO = _info(
    "wsol-openimages", "OpenImages", "OpenImages30k (wsolevaluation)", 100,
    "100 classes, 29,819 train / 2,500 val / 5,000 test images; instance masks with "
    "ignore regions (PxAP).",
    "test/01226z/7af766bd43da900b.jpg, ..._m01226z_6554d965.png, ..._ignore.png ...",
)
FOLDERS = {"CUB": WSOL_CUB_INFO, "ILSVRC": WSOL_IMAGENET_INFO, "OpenImages": WSOL_OPENIMAGES_INFO}


class WSOLDataset(RealDataset):
    """One wsolevaluation dataset (``folder`` = "CUB", "ILSVRC" or "OpenImages")."""

    split_names = ("train", "val", "test")

    def __init__(self, root, folder: str, split: str = "train", image_size: int = 224, *,
                 augment: str | None = None, strict: bool = True) -> None:
        if folder not in FOLDERS:
            raise ValueError(f"folder must be one of {sorted(FOLDERS)}, got {folder!r}")
        self.info = FOLDERS[folder]
        self.folder = folder
        super().__init__(root, split, image_size, augment=augment, strict=strict)

    def _records(self) -> list[Record]:
        meta = self.root / "metadata" / self.folder / self.split
        images = require(self.root / "dataset" / self.folder, self.info, "image directory")
        ids = [path for _, (path,) in read_table(meta / "image_ids.txt", self.info,
                                                 (("path", str),))]
        labels = dict(row for _, row in read_table(meta / "class_labels.txt", self.info,
                                                   (("path", str), ("label", int)), sep=",",
                                                   on_error=self.bad))
        localization = meta / "localization.txt"
        annotations: dict[str, list] = defaultdict(list)
        lines: dict[str, int] = {}  # an image's first line in localization.txt
        if self.split != "train" or localization.is_file():
            if self.folder == "OpenImages":
                columns = (("path", str), ("mask_path", str), ("ignore_path", str))
            else:
                columns = (("path", str), ("x0", finite), ("y0", finite), ("x1", finite),
                           ("y1", finite))
            for line, (path, *rest) in read_table(localization, self.info, columns, sep=",",
                                                  on_error=self.bad):
                annotations[path].append(tuple(rest))
                lines.setdefault(path, line)
        records = []
        for path in ids:
            if path not in labels:
                self.bad(self.info.error(
                    DatasetFormatError, f"{path} (image_ids.txt) has no line in "
                    "class_labels.txt", path=meta / "class_labels.txt"))
                continue
            if self.folder == "OpenImages":
                masks = annotations.get(path)
                source = masks and ([images / m for m, _ in masks],
                                    [images / i for _, i in masks if i])
                records.append(Record(images / path, labels[path], source=source or None))
            elif not annotations[path] and self.split != "train":
                self.bad(self.info.error(
                    DatasetFormatError, f"{path} (image_ids.txt) has no box in "
                    "localization.txt", path=localization))
            else:
                records.append(Record(images / path, labels[path], tuple(annotations[path]),
                                      where=(localization, lines.get(path))))
        return records

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes, mask = super()._read(record)
        if record.source is None:  # boxes only, or an OpenImages image without masks
            return image, boxes, mask
        mask_paths, ignore_paths = record.source
        shape = image.shape[:2]
        instances = [read_mask_image(p, self.info, shape, "L") > 0.5 for p in mask_paths]
        foreground = np.any(instances, axis=0)
        mask = foreground.astype(np.uint8)
        for path in ignore_paths:
            ignore = read_mask_image(path, self.info, shape, "L") > 0.5
            mask[ignore & ~foreground] = IGNORE
        boxes = np.concatenate([mask_box(m.astype(np.uint8)) for m in instances])
        return image, boxes, mask
