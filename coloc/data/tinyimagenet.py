"""Tiny-ImageNet (CS231n): 200 classes, 64x64 images, one box per image.

Splits: ``train`` (500 images per class) and ``test`` = the official ``val/`` folder (50
per class), since the official ``test/`` has no labels or boxes. Labels index the sorted
wnids of ``wnids.txt`` (the order of torchvision's ImageFolder). Boxes are tab-separated
``x0 y0 x1 y1`` 0-based inclusive pixels (``n01443537_0.JPEG 0 10 63 58``).
"""

from __future__ import annotations

from coloc.data.errors import DatasetFormatError
from coloc.data.real import DatasetInfo, RealDataset, Record, read_table, require

TINYIMAGENET_INFO = DatasetInfo(
    name="tinyimagenet",
    title="Tiny-ImageNet",
    description="200 ImageNet classes at 64x64, 500 train / 50 val images per class, "
                "one box per image; the val folder is used as the test split.",
    url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    subdir="tiny-imagenet-200",
    num_classes=200,
    splits=("train", "test"),
    layouts=(("wnids.txt", "train/", "val/val_annotations.txt", "val/images/"),),
    tree="""\
tiny-imagenet-200/
├── wnids.txt                        one wnid per line
├── train/n01443537/
│   ├── n01443537_boxes.txt          <file> <x0> <y0> <x1> <y1>  (tab-separated, 0-based)
│   └── images/n01443537_0.JPEG ...
└── val/                             (split "test")
    ├── val_annotations.txt          <file> <wnid> <x0> <y0> <x1> <y1>
    └── images/val_0.JPEG ...
""",
)

_BOX = tuple((name, int) for name in ("x0", "y0", "x1", "y1"))


class TinyImageNet(RealDataset):
    """Tiny-ImageNet ``train`` or ``test`` (= the official val folder)."""

    info = TINYIMAGENET_INFO

    def _records(self) -> list[Record]:
        wnids_path = self.root / "wnids.txt"
        wnids = sorted(w for _, (w,) in read_table(wnids_path, self.info, (("wnid", str),)))
        label = {wnid: i for i, wnid in enumerate(wnids)}
        if self.split == "train":
            records = []
            for wnid in wnids:
                folder = require(self.root / "train" / wnid, self.info, "class directory")
                path = folder / f"{wnid}_boxes.txt"
                rows = read_table(path, self.info, (("file", str), *_BOX), on_error=self.bad)
                records += [Record(folder / "images" / file, label[wnid], (tuple(box),),
                                   where=(path, line))
                            for line, (file, *box) in rows]
            return records
        listing = self.root / "val" / "val_annotations.txt"
        records = []
        for number, (file, wnid, *box) in read_table(
                listing, self.info, (("file", str), ("wnid", str), *_BOX), on_error=self.bad):
            if wnid not in label:
                self.bad(self.info.error(DatasetFormatError, f"wnid {wnid} is not in "
                                         "wnids.txt", path=listing, line=number))
                continue
            records.append(Record(self.root / "val" / "images" / file, label[wnid],
                                  (tuple(box),), where=(listing, number)))
        return records
