"""The fine-grained co-localization benchmarks, read from their official on-disk formats.

CUB-200-2011, Stanford Cars, FGVC-Aircraft, Stanford Dogs and Oxford Flowers 102. Each
class takes the dataset's own directory (``data_root / INFO.subdir``), a split, the
network input size and the training transform (see :mod:`coloc.data.transforms`), and
returns :class:`~coloc.data.common.Sample` dicts with ``family`` = the dataset name.

Format choices (verified against the datasets' READMEs and public loaders):

- CUB: ``bounding_boxes.txt`` holds ``x y w h`` floats; corners are ``(x, y, x+w, y+h)``,
  exactly what wsolevaluation's CUB metadata contains, so ``cub`` and ``wsol-cub`` give
  the same boxes. Masks (for PxAP) come from the separately published ``segmentations/``
  (grayscale, the fraction of annotators marking a pixel): foreground = value > 127 (a
  majority), no ignore region. ``val`` is wsolevaluation's CUBV2 (``load("cub", ...,
  "val")`` reads it through :class:`coloc.data.wsol.WSOLDataset`).
- Cars: the devkit (``devkit/cars_train_annos.mat`` + ``cars_test_annos_withlabels.mat``
  at the top, as torchvision expects) or the all-in-one ``cars_annos.mat``; ``bbox_*`` and
  ``class`` are 1-based.
- Aircraft: ``train`` = the official trainval list, ``test`` = test; labels index
  ``variants.txt``; boxes are 1-based ``xmin ymin xmax ymax``; the 20-pixel copyright
  banner at the bottom of each image is cut off (boxes are clipped to what remains).
- Dogs: ``train_list.mat``/``test_list.mat`` (``file_list``, ``annotation_list``,
  ``labels`` 1-based); every ``<object><bndbox>`` of the XML is a box, taken as the
  0-based pixel indices ImageNet writes.
- Flowers: ``setid.mat`` (``trnid``, ``valid``, ``tstid``) and ``imagelabels.mat``
  (1-based). In ``segmim/`` the background is painted blue (0, 0, 254); JPEG noise moves
  it slightly, so a pixel is background when every channel is within 40 of that colour.
  The box is the tight box of the foreground (the dataset has no box annotations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coloc.data.errors import DatasetFormatError
from coloc.data.real import (
    DatasetInfo,
    RealDataset,
    Record,
    finite,
    flag,
    mask_box,
    mat_rows,
    mat_struct,
    mat_vector,
    one_based,
    one_based_pixel,
    read_mask_image,
    read_mat,
    read_table,
    read_xml,
    require,
    xywh_to_corners,
)

CUB_INFO = DatasetInfo(
    name="cub",
    title="CUB-200-2011",
    description="200 bird species, 5,994 train / 5,794 test images, one box per image; "
                "segmentation masks published separately (PxAP).",
    url="https://www.vision.caltech.edu/datasets/cub_200_2011/ (images: "
        "https://data.caltech.edu/records/65de6-vp158, segmentations: "
        "https://data.caltech.edu/records/w9d68-gec53)",
    subdir="CUB_200_2011",
    num_classes=200,
    splits=("train", "val", "test"),
    layouts=(("images.txt", "image_class_labels.txt", "train_test_split.txt",
              "bounding_boxes.txt", "images/"),),
    tree="""\
CUB_200_2011/
├── images.txt               <image_id> <image_name>
├── image_class_labels.txt   <image_id> <class_id>  (1-based)
├── train_test_split.txt     <image_id> <is_training_image>
├── bounding_boxes.txt       <image_id> <x> <y> <width> <height>
├── images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg ...
└── segmentations/           optional (PxAP masks), here or beside CUB_200_2011/
    └── 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.png ...
split "val" = wsolevaluation's CUBV2: see wsol-cub (wsolevaluation/ under data_root)
""",
)

CARS_INFO = DatasetInfo(
    name="cars",
    title="Stanford Cars",
    description="196 car models, 8,144 train / 8,041 test images, one box per image.",
    url="https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
    subdir="stanford_cars",
    num_classes=196,
    splits=("train", "test"),
    layouts=(
        ("devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat", "cars_train/",
         "cars_test/"),
        ("cars_annos.mat", "car_ims/"),
    ),
    tree="""\
stanford_cars/
├── devkit/cars_train_annos.mat      annotations: bbox_x1 bbox_y1 bbox_x2 bbox_y2 class fname
├── cars_test_annos_withlabels.mat   same fields for the test images (1-based boxes, class)
├── cars_train/00001.jpg ...
└── cars_test/00001.jpg ...
or, the all-in-one release:
stanford_cars/
├── cars_annos.mat                   annotations: relative_im_path bbox_x1 bbox_y1 bbox_x2
│                                    bbox_y2 class test
└── car_ims/000001.jpg ...
""",
)

AIRCRAFT_INFO = DatasetInfo(
    name="aircraft",
    title="FGVC-Aircraft (2013b)",
    description="100 aircraft variants, 6,667 trainval / 3,333 test images, one box per "
                "image; a 20-pixel copyright banner at the bottom is removed.",
    url="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
    subdir="fgvc-aircraft-2013b",
    num_classes=100,
    splits=("train", "test"),
    layouts=(("data/variants.txt", "data/images_variant_trainval.txt",
              "data/images_variant_test.txt", "data/images_box.txt", "data/images/"),),
    tree="""\
fgvc-aircraft-2013b/
└── data/
    ├── variants.txt                  one variant name per line (the class order)
    ├── images_variant_trainval.txt   <image_id> <variant name>  (split "train")
    ├── images_variant_test.txt       <image_id> <variant name>  (split "test")
    ├── images_box.txt                <image_id> <xmin> <ymin> <xmax> <ymax>  (1-based)
    └── images/0034309.jpg ...
""",
)

DOGS_INFO = DatasetInfo(
    name="dogs",
    title="Stanford Dogs",
    description="120 dog breeds, 12,000 train / 8,580 test images, boxes in PASCAL-VOC XML.",
    url="http://vision.stanford.edu/aditya86/ImageNetDogs/",
    subdir="stanford_dogs",
    num_classes=120,
    splits=("train", "test"),
    layouts=(("train_list.mat", "test_list.mat", "Images/", "Annotation/"),),
    tree="""\
stanford_dogs/
├── train_list.mat    file_list, annotation_list, labels (1-based)
├── test_list.mat
├── Images/n02085620-Chihuahua/n02085620_7.jpg ...
└── Annotation/n02085620-Chihuahua/n02085620_7   XML, <object><bndbox> per dog
""",
)

FLOWERS_INFO = DatasetInfo(
    name="flowers",
    title="Oxford Flowers 102",
    description="102 flower species, 1,020 train / 1,020 val / 6,149 test images, "
                "foreground segmentations (boxes derived from them).",
    url="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
    subdir="flowers-102",
    num_classes=102,
    splits=("train", "val", "test"),
    layouts=(("imagelabels.mat", "setid.mat", "jpg/"),),
    tree="""\
flowers-102/
├── imagelabels.mat   labels: class of image i (1-based)
├── setid.mat         trnid, valid, tstid: 1-based image numbers per split
├── jpg/image_00001.jpg ...
└── segmim/segmim_00001.jpg ...   optional: background painted blue (0, 0, 254)
""",
)


class CUB(RealDataset):
    """CUB-200-2011 (``train``/``test``), with PxAP masks when ``segmentations/`` exists."""

    info = CUB_INFO

    def _records(self) -> list[Record]:
        def table(name, *columns):  # {image_id: (line, the other fields)}
            path, rows = self.root / name, {}
            for line, (image_id, *fields) in read_table(
                    path, self.info, (("image_id", int), *columns), on_error=self.bad):
                if image_id in rows:
                    self.bad(self.info.error(
                        DatasetFormatError, f"duplicate image_id {image_id} (first on line "
                        f"{rows[image_id][0]}); this line is ignored", path=path, line=line))
                    continue
                rows[image_id] = (line, tuple(fields))
            return rows

        names = table("images.txt", ("image_name", str))
        labels = table("image_class_labels.txt", ("class_id", one_based))
        is_train = table("train_test_split.txt", ("is_training_image", flag))
        boxes = table("bounding_boxes.txt", ("x", finite), ("y", finite), ("width", finite),
                      ("height", finite))
        require(self.root / "images", self.info, "image directory")
        self.segmentations = next(
            (d for d in (self.root / "segmentations", self.root.parent / "segmentations")
             if d.is_dir()), None)
        records = []
        for image_id, (_, (name,)) in names.items():
            absent = [file for file, lookup in (("image_class_labels.txt", labels),
                                                ("train_test_split.txt", is_train),
                                                ("bounding_boxes.txt", boxes))
                      if image_id not in lookup]
            if absent:
                if self.root / absent[0] not in {e.path for e in self.skipped}:
                    self.bad(self.info.error(  # else its skipped bad line is the report
                        DatasetFormatError, f"image_id {image_id} (images.txt) has no line "
                        f"in {absent[0]}", path=self.root / absent[0]))
                continue
            line, (label,) = labels[image_id]
            if label >= self.num_classes:
                self.bad(self.info.error(
                    DatasetFormatError, f"class_id {label + 1} is beyond the dataset's "
                    f"{self.num_classes} classes", path=self.root / "image_class_labels.txt",
                    line=line))
                continue
            if (is_train[image_id][1][0] == 1) == (self.split == "train"):
                line, box = boxes[image_id]
                records.append(Record(self.root / "images" / name, label,
                                      (xywh_to_corners(*box),), name,
                                      (self.root / "bounding_boxes.txt", line)))
        return records

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes, mask = super()._read(record)
        if self.segmentations is not None:
            path = (self.segmentations / record.source).with_suffix(".png")
            gray = read_mask_image(path, self.info, image.shape[:2], "L")
            mask = (gray > 127).astype(np.uint8)
        return image, boxes, mask


class StanfordCars(RealDataset):
    """Stanford Cars (``train``/``test``) from the devkit or from ``cars_annos.mat``."""

    info = CARS_INFO
    _BOX = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")

    def _records(self) -> list[Record]:
        box_columns = tuple((name, one_based_pixel) for name in self._BOX)
        all_in_one = self.root / "cars_annos.mat"
        if all_in_one.is_file():
            columns = (("relative_im_path", str), *box_columns, ("class", one_based),
                       ("test", int))
            rows = self._rows(all_in_one, columns)
            wanted = int(self.split == "test")
            return [Record(self.root / path, label, (tuple(box),))
                    for path, *box, label, test in rows if test == wanted]
        if self.split == "train":
            annotations, images = self.root / "devkit" / "cars_train_annos.mat", "cars_train"
        else:
            annotations, images = self.root / "cars_test_annos_withlabels.mat", "cars_test"
        rows = self._rows(annotations, (("fname", str), *box_columns, ("class", one_based)))
        require(self.root / images, self.info, "image directory")
        return [Record(self.root / images / fname, label, (tuple(box),))
                for fname, *box, label in rows]

    def _rows(self, path: Path, columns) -> list[tuple]:
        mat = read_mat(path, self.info, ("annotations",))
        fields = mat_struct(mat, "annotations", [name for name, _ in columns], path, self.info)
        return mat_rows(fields, columns, path, self.info)


class FGVCAircraft(RealDataset):
    """FGVC-Aircraft variants (``train`` = trainval, ``test``), banner removed."""

    info = AIRCRAFT_INFO
    BANNER = 20

    def _records(self) -> list[Record]:
        data = self.root / "data"
        variants = [v for _, (v,) in read_table(data / "variants.txt", self.info,
                                                (("variant", str),))]
        index = {variant: i for i, variant in enumerate(variants)}
        box_file = data / "images_box.txt"
        boxes = {image_id: (line, box) for line, (image_id, *box) in read_table(
            box_file, self.info,
            (("image_id", str), *((k, one_based_pixel) for k in ("xmin", "ymin", "xmax", "ymax"))),
            on_error=self.bad)}
        listing = data / f"images_variant_{'trainval' if self.split == 'train' else 'test'}.txt"
        records = []
        for number, (image_id, variant) in read_table(
                listing, self.info, (("image_id", str), ("variant", str)), on_error=self.bad):
            if variant not in index:
                self.bad(self.info.error(DatasetFormatError,
                                         f"variant {variant!r} is not in data/variants.txt",
                                         path=listing, line=number))
            elif image_id not in boxes:
                self.bad(self.info.error(DatasetFormatError,
                                         f"image {image_id} has no line in data/images_box.txt",
                                         path=listing, line=number))
            else:
                line, box = boxes[image_id]
                records.append(Record(data / "images" / f"{image_id}.jpg", index[variant],
                                      (tuple(box),), where=(box_file, line)))
        return records

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes, mask = super()._read(record)
        if image.shape[0] <= self.BANNER:
            raise self.info.error(
                DatasetFormatError,
                f"image is {image.shape[0]} pixels high, not taller than the "
                f"{self.BANNER}-pixel copyright banner", path=record.image)
        return image[:-self.BANNER], boxes, mask[:-self.BANNER]


class StanfordDogs(RealDataset):
    """Stanford Dogs (``train``/``test``); boxes from the per-image XML, read lazily."""

    info = DOGS_INFO

    def _records(self) -> list[Record]:
        path = self.root / f"{self.split}_list.mat"
        keys = ("file_list", "annotation_list", "labels")
        mat = read_mat(path, self.info, keys)
        rows = mat_rows({key: mat_vector(mat, key) for key in keys},
                        (("file_list", str), ("annotation_list", str), ("labels", one_based)),
                        path, self.info)
        require(self.root / "Images", self.info, "image directory")
        require(self.root / "Annotation", self.info, "annotation directory")
        return [Record(self.root / "Images" / file, label, source=self.root / "Annotation" / ann)
                for file, ann, label in rows]

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, _, mask = super()._read(record)
        boxes = []
        for bndbox in read_xml(record.source, self.info).iter("bndbox"):
            try:
                boxes.append([float(bndbox.findtext(k, "")) for k in
                              ("xmin", "ymin", "xmax", "ymax")])
            except ValueError as exc:
                raise self.info.error(
                    DatasetFormatError,
                    f"<bndbox> needs numeric <xmin> <ymin> <xmax> <ymax> ({exc})",
                    path=record.source) from exc
        return image, np.asarray(boxes, np.float32).reshape(-1, 4), mask


class Flowers102(RealDataset):
    """Oxford Flowers 102 (``train``/``val``/``test``), masks and boxes from ``segmim/``."""

    info = FLOWERS_INFO
    split_names = ("train", "val", "test")
    BACKGROUND = np.array([0, 0, 254])
    TOLERANCE = 40

    def _records(self) -> list[Record]:
        labels_path, setid_path = self.root / "imagelabels.mat", self.root / "setid.mat"
        labels = [label for (label,) in mat_rows(
            {"labels": mat_vector(read_mat(labels_path, self.info, ("labels",)), "labels")},
            (("labels", one_based),), labels_path, self.info)]
        key = {"train": "trnid", "val": "valid", "test": "tstid"}[self.split]
        ids = [i for (i,) in mat_rows(
            {key: mat_vector(read_mat(setid_path, self.info, (key,)), key)},
            ((key, one_based),), setid_path, self.info)]
        require(self.root / "jpg", self.info, "image directory")
        self.segmim = self.root / "segmim" if (self.root / "segmim").is_dir() else None
        records = []
        for i in ids:
            if i >= len(labels):
                raise self.info.error(
                    DatasetFormatError,
                    f"{key} lists image {i + 1}, but imagelabels.mat has {len(labels)} labels",
                    path=setid_path)
            records.append(Record(self.root / "jpg" / f"image_{i + 1:05d}.jpg", labels[i],
                                  source=i + 1))
        return records

    def _read(self, record: Record) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image, boxes, mask = super()._read(record)
        if self.segmim is not None:
            path = self.segmim / f"segmim_{record.source:05d}.jpg"
            painted = read_mask_image(path, self.info, image.shape[:2], "RGB").astype(int)
            background = (np.abs(painted - self.BACKGROUND) <= self.TOLERANCE).all(axis=-1)
            mask = (~background).astype(np.uint8)
            boxes = mask_box(mask)
        return image, boxes, mask
