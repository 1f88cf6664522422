"""MS-COCO 2017 instances via pycocotools (multi-object scenes, ContraCAM).

Splits: ``train`` (train2017) and ``test`` = val2017 (test2017 has no annotations).
Per image: every non-crowd instance gives a box, ``[x, y, w, h]`` -> ``(x, y, x + w,
y + h)`` (the same rule as CUB); the mask is the union of the non-crowd instance masks
(``annToMask``), and crowd regions outside it are 255 (ignore). ``label`` is the category
of the largest non-crowd instance (by ``area``), as a 0-based index over the sorted
category ids (0-79). Images without a non-crowd instance are left out: there is nothing
to localize in them. Needs the optional ``pycocotools`` (``pip install coloc[coco]``).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from coloc.data.common import IGNORE
from coloc.data.errors import DatasetFormatError
from coloc.data.real import DatasetInfo, RealDataset, Record, read_json, require, xywh_to_corners

COCO_INFO = DatasetInfo(
    name="coco",
    title="MS-COCO 2017",
    description="80 categories, 118k train / 5k val images with instance masks; several "
                "objects per image (val2017 is the test split).",
    url="https://cocodataset.org/#download",
    subdir="coco",
    num_classes=80,
    splits=("train", "test"),
    layouts=(("annotations/instances_train2017.json", "annotations/instances_val2017.json",
              "train2017/", "val2017/"),),
    tree="""\
coco/
├── annotations/
│   ├── instances_train2017.json
│   └── instances_val2017.json      (split "test")
├── train2017/000000000009.jpg ...
└── val2017/000000000139.jpg ...
""",
)


class COCODataset(RealDataset):
    """COCO 2017 instances, ``train`` or ``test`` (= val2017)."""

    info = COCO_INFO

    def _records(self) -> list[Record]:
        try:
            from pycocotools.coco import COCO
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the COCO loader needs pycocotools: pip install 'coloc[coco]'") from exc
        year = "train2017" if self.split == "train" else "val2017"
        path = self.root / "annotations" / f"instances_{year}.json"
        data = read_json(path, self.info, ("images", "annotations", "categories"))
        images = require(self.root / year, self.info, "image directory")
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco.createIndex()
        category = {cat: i for i, cat in enumerate(sorted(self.coco.getCatIds()))}
        records = []
        for image_id in sorted(self.coco.getImgIds()):
            objects = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
            if not objects:
                continue
            largest = max(objects, key=lambda a: a["area"])
            records.append(Record(
                images / self.coco.imgs[image_id]["file_name"],
                category[largest["category_id"]],
                tuple(xywh_to_corners(*a["bbox"]) for a in objects),
                image_id,
            ))
        return records

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes, _ = super()._read(record)
        mask = np.zeros(image.shape[:2], np.uint8)
        crowd = np.zeros(image.shape[:2], bool)
        for ann in self.coco.imgToAnns[record.source]:
            with warnings.catch_warnings():  # pycocotools' own NumPy 2 deprecation notice
                warnings.simplefilter("ignore", DeprecationWarning)
                region = self.coco.annToMask(ann).astype(bool)
            if region.shape != mask.shape:
                raise self.info.error(
                    DatasetFormatError,
                    f"annotation {ann.get('id')} has size {region.shape} (H, W) in the JSON, "
                    f"but the image is {mask.shape}", path=record.image)
            if ann.get("iscrowd", 0):
                crowd |= region
            else:
                mask[region] = 1
        mask[crowd & (mask == 0)] = IGNORE
        return image, boxes, mask
