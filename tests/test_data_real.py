"""Real dataset loaders read miniature trees written here in each dataset's on-disk format.

Every tree uses the real file names, columns, index bases and .mat/.xml/.json structures
(see the module docstrings of coloc/data/finegrained.py, wsol.py, tinyimagenet.py,
coco.py), with a few tiny images.
"""

import json

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from coloc.data import DATASETS, DatasetError, DatasetFormatError, DatasetNotFoundError, load
from coloc.data.common import IGNORE, collate_samples, denormalize_image

SIZE = 32


# ----------------------------------------------------------------------------- helpers


def write_image(path, width, height, box=None, color=(200, 30, 30), background=(20, 120, 20)):
    """An RGB image (JPEG or PNG by suffix), ``box`` = inclusive (x0, y0, x1, y1) painted."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:] = background
    if box is not None:
        x0, y0, x1, y1 = box
        pixels[y0:y1 + 1, x0:x1 + 1] = color
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def write_gray(path, width, height, box, inside=255, outside=0):
    pixels = np.full((height, width), outside, np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1 + 1, x0:x1 + 1] = inside
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_text(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def struct_array(rows, fields):
    """A MATLAB 1 x N struct array, as scipy.io.savemat writes it."""
    array = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        array[0, i] = tuple(row)
    return array


def cell_column(values):
    return np.array([[v] for v in values], dtype=object)


def tight_box(mask):
    ys, xs = torch.nonzero(mask == 1, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()]


def scaled(box, width, height, size=SIZE):
    """The protocol's test-time box: corners * new/old per axis, truncated."""
    x0, y0, x1, y1 = box
    return [float(int(x0 * size / width)), float(int(y0 * size / height)),
            float(int(x1 * size / width)), float(int(y1 * size / height))]


def assert_sample(sample, index, family, size=SIZE):
    """The contract of coloc/data/common.py, as the synthetic set returns it."""
    assert set(sample) == {"image", "label", "family", "boxes", "mask", "part_mask", "index"}
    assert sample["image"].shape == (3, size, size) and sample["image"].dtype == torch.float32
    assert isinstance(sample["label"], int) and sample["label"] >= 0
    assert sample["family"] == family and sample["index"] == index
    assert sample["boxes"].dtype == torch.float32 and sample["boxes"].shape[1:] == (4,)
    assert ((sample["boxes"] >= 0) & (sample["boxes"] <= size - 1)).all()
    assert sample["mask"].shape == (size, size) and sample["mask"].dtype == torch.uint8
    assert set(sample["mask"].unique().tolist()) <= {0, 1, IGNORE}
    assert sample["part_mask"].shape == (size, size) and not sample["part_mask"].any()


# ----------------------------------------------------------------------------- CUB

CUB_IMAGES = {  # id: (name, class_id, is_train, (x, y, w, h)), images 40 x 30
    1: ("001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg", 1, 1, (5, 4, 20, 15)),
    2: ("001.Black_footed_Albatross/Black_Footed_Albatross_0002_55.jpg", 1, 0, (0, 0, 40, 30)),
    3: ("002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg", 2, 1, (10, 8, 12, 10)),
}


def make_cub(data_root, segmentations=True):
    cub = data_root / "CUB_200_2011"
    write_text(cub / "images.txt", [f"{i} {n}" for i, (n, *_) in CUB_IMAGES.items()])
    write_text(cub / "image_class_labels.txt", [f"{i} {c}" for i, (_, c, *_) in CUB_IMAGES.items()])
    write_text(cub / "train_test_split.txt", [f"{i} {t}" for i, (_, _, t, _) in CUB_IMAGES.items()])
    write_text(cub / "bounding_boxes.txt",
               [f"{i} {x:.1f} {y:.1f} {w:.1f} {h:.1f}"
                for i, (*_, (x, y, w, h)) in CUB_IMAGES.items()])
    for name, _, _, (x, y, w, h) in CUB_IMAGES.values():
        write_image(cub / "images" / name, 40, 30, (x, y, x + w, y + h))
        if segmentations:  # beside CUB_200_2011/, where segmentations.tgz unpacks
            seg = (data_root / "segmentations" / name).with_suffix(".png")
            # 5 annotators: 255 where all agree, 102 (2 of 5) on a margin -> background.
            write_gray(seg, 40, 30, (x, y, x + w, y + h), inside=255, outside=102 if x else 0)
    return cub


def test_cub_reads_splits_labels_boxes_and_masks(tmp_path):
    make_cub(tmp_path)
    train = load("cub", tmp_path, "train", SIZE)
    test = load("cub", tmp_path, "test", SIZE)
    assert len(train) == 2 and len(test) == 1 and train.num_classes == 200
    assert [train[i]["label"] for i in range(2)] == [0, 1]
    sample = train[0]
    assert_sample(sample, 0, "cub")
    # x y w h -> (x, y, x + w, y + h), then the protocol's resize rule.
    assert sample["boxes"].tolist() == [scaled((5, 4, 25, 19), 40, 30)]
    # The segmentation is a majority vote (> 127): the 102-valued margin is background.
    assert abs(np.array(tight_box(sample["mask"])) - sample["boxes"][0].numpy()).max() <= 1
    assert set(sample["mask"].unique().tolist()) == {0, 1}


def test_cub_without_segmentations_has_unknown_masks(tmp_path):
    make_cub(tmp_path, segmentations=False)
    sample = load("cub", tmp_path, "test", SIZE)[0]
    assert (sample["mask"] == IGNORE).all()
    # (0, 0, 40, 30) reaches past the 40 x 30 image: clipped to (0, 0, 39, 29), then scaled.
    assert sample["boxes"].tolist() == [scaled((0, 0, 39, 29), 40, 30)] == [[0, 0, 31, 30]]


def test_cub_training_transforms_and_batches(tmp_path):
    make_cub(tmp_path)
    for augment in ("wsol", "psynet"):
        dataset = load("cub", tmp_path, "train", SIZE, augment=augment)
        torch.manual_seed(0)
        batch = collate_samples([dataset[i] for i in range(len(dataset))])
        assert batch["image"].shape == (2, 3, SIZE, SIZE)
        assert batch["label"].tolist() == [0, 1] and len(batch["boxes"]) == 2


def test_missing_root_names_the_path_layout_and_url(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        load("cub", tmp_path / "nowhere", "train", SIZE)
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "CUB_200_2011") in message
    assert "bounding_boxes.txt" in message and "data.caltech.edu" in message
    assert isinstance(error.value, FileNotFoundError)


def test_missing_annotation_file(tmp_path):
    cub = make_cub(tmp_path)
    (cub / "bounding_boxes.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="bounding_boxes.txt"):
        load("cub", tmp_path, "train", SIZE)


def test_malformed_line_names_file_and_line(tmp_path):
    cub = make_cub(tmp_path)
    write_text(cub / "bounding_boxes.txt", ["1 5.0 4.0 20.0 15.0", "2 0.0 zero 39.0 29.0",
                                            "3 10.0 8.0 12.0 10.0"])
    with pytest.raises(DatasetFormatError) as error:
        load("cub", tmp_path, "train", SIZE)
    message = str(error.value)
    assert "bounding_boxes.txt, line 2" in message and "<y>" in message
    assert error.value.line == 2 and isinstance(error.value, ValueError)


def test_too_few_fields_and_dangling_ids(tmp_path):
    cub = make_cub(tmp_path)
    write_text(cub / "train_test_split.txt", ["1 1", "2", "3 1"])
    with pytest.raises(DatasetFormatError, match=r"train_test_split.txt, line 2"):
        load("cub", tmp_path, "train", SIZE)
    write_text(cub / "train_test_split.txt", ["1 1", "3 1"])
    with pytest.raises(DatasetFormatError, match="image_id 2"):
        load("cub", tmp_path, "train", SIZE)


def test_corrupt_and_truncated_images(tmp_path):
    cub = make_cub(tmp_path)
    image = cub / "images" / CUB_IMAGES[1][0]
    dataset = load("cub", tmp_path, "train", SIZE)
    image.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetFormatError, match="cannot decode image") as error:
        dataset[0]
    assert str(image) in str(error.value)
    write_image(image, 40, 30)
    image.write_bytes(image.read_bytes()[:200])
    with pytest.raises(DatasetFormatError, match="Black_Footed_Albatross_0046_18.jpg"):
        dataset[0]
    image.unlink()
    with pytest.raises(DatasetNotFoundError, match="image file not found"):
        dataset[0]


# ----------------------------------------------------------------------------- Cars

CARS_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


def make_cars_devkit(data_root):
    cars = data_root / "stanford_cars"
    train = [(np.uint8(6), np.uint8(5), np.uint8(35), np.uint8(25), np.uint8(3), "00001.jpg"),
             (np.uint8(1), np.uint8(1), np.uint8(40), np.uint8(30), np.uint8(1), "00002.jpg")]
    test = [(np.uint8(2), np.uint8(3), np.uint8(20), np.uint8(21), np.uint8(196), "00001.jpg")]
    (cars / "devkit").mkdir(parents=True)
    scipy.io.savemat(cars / "devkit" / "cars_train_annos.mat",
                     {"annotations": struct_array(train, CARS_FIELDS)})
    scipy.io.savemat(cars / "cars_test_annos_withlabels.mat",
                     {"annotations": struct_array(test, CARS_FIELDS)})
    for folder, rows in (("cars_train", train), ("cars_test", test)):
        for x1, y1, x2, y2, _, fname in rows:
            write_image(cars / folder / fname, 40, 30, (x1 - 1, y1 - 1, x2 - 1, y2 - 1))
    return cars


def test_cars_devkit(tmp_path):
    make_cars_devkit(tmp_path)
    train, test = load("cars", tmp_path, "train", SIZE), load("cars", tmp_path, "test", SIZE)
    assert len(train) == 2 and len(test) == 1
    assert [train[0]["label"], train[1]["label"], test[0]["label"]] == [2, 0, 195]
    assert_sample(train[0], 0, "cars")
    assert train[0]["boxes"].tolist() == [scaled((5, 4, 34, 24), 40, 30)]  # 1-based -> 0-based
    assert (train[0]["mask"] == IGNORE).all()


def test_cars_all_in_one_annotations(tmp_path):
    cars = tmp_path / "stanford_cars"
    fields = ("relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test")
    rows = [("car_ims/000001.jpg", 6, 5, 35, 25, 1, 0), ("car_ims/000002.jpg", 2, 2, 9, 9, 2, 1)]
    cars.mkdir()
    scipy.io.savemat(cars / "cars_annos.mat", {"annotations": struct_array(rows, fields),
                                                "class_names": np.array(["a", "b"], object)})
    for path, *_ in rows:
        write_image(cars / path, 40, 30)
    train, test = load("cars", tmp_path, "train", SIZE), load("cars", tmp_path, "test", SIZE)
    assert len(train) == 1 and len(test) == 1 and test[0]["label"] == 1
    assert train[0]["boxes"].tolist() == [scaled((5, 4, 34, 24), 40, 30)]


def test_cars_malformed_mat(tmp_path):
    cars = make_cars_devkit(tmp_path)
    path = cars / "devkit" / "cars_train_annos.mat"
    scipy.io.savemat(path, {"annotations": struct_array([(1, 1, 5, 5, "x")],
                                                         ("bbox_x1", "bbox_y1", "bbox_x2",
                                                          "bbox_y2", "fname"))})
    with pytest.raises(DatasetFormatError, match="lacks the fields") as error:
        load("cars", tmp_path, "train", SIZE)
    assert "class" in str(error.value) and str(path) in str(error.value)
    rows = [(1, 1, 5, 5, 0, "00001.jpg")]  # class 0 in a 1-based field
    scipy.io.savemat(path, {"annotations": struct_array(rows, CARS_FIELDS)})
    with pytest.raises(DatasetFormatError, match="element 1"):
        load("cars", tmp_path, "train", SIZE)
    path.write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="cannot read .mat"):
        load("cars", tmp_path, "train", SIZE)


# ----------------------------------------------------------------------------- Aircraft


def make_aircraft(data_root):
    data = data_root / "fgvc-aircraft-2013b" / "data"
    write_text(data / "variants.txt", ["707-320", "F-16A/B", "Cessna 172"])
    write_text(data / "images_variant_trainval.txt", ["0034309 Cessna 172", "0034958 F-16A/B"])
    write_text(data / "images_variant_test.txt", ["1514522 707-320"])
    write_text(data / "images_box.txt", ["0034309 6 5 30 50", "0034958 1 1 40 40",
                                         "1514522 3 3 20 20"])
    for image_id in ("0034309", "0034958", "1514522"):
        # 40 x 60 with a white 20-pixel banner at the bottom.
        write_image(data / "images" / f"{image_id}.jpg", 40, 60, (0, 40, 39, 59),
                    color=(255, 255, 255), background=(0, 0, 0))
    return data


def test_aircraft_labels_boxes_and_banner(tmp_path):
    make_aircraft(tmp_path)
    train = load("aircraft", tmp_path, "train", SIZE)
    assert len(train) == 2 and len(load("aircraft", tmp_path, "test", SIZE)) == 1
    assert [train[0]["label"], train[1]["label"]] == [2, 1]  # variant names with spaces, /
    sample = train[0]
    assert_sample(sample, 0, "aircraft")
    assert denormalize_image(sample["image"]).max() < 0.2  # the white banner is gone
    # 1-based (6, 5, 30, 50) -> (5, 4, 29, 49), clipped to the 40 rows left -> y1 = 39.
    assert sample["boxes"].tolist() == [scaled((5, 4, 29, 39), 40, 40)]


def test_aircraft_unknown_variant(tmp_path):
    data = make_aircraft(tmp_path)
    write_text(data / "images_variant_test.txt", ["1514522 Boeing 999"])
    with pytest.raises(DatasetFormatError, match=r"images_variant_test.txt, line 1") as error:
        load("aircraft", tmp_path, "test", SIZE)
    assert "Boeing 999" in str(error.value)


# ----------------------------------------------------------------------------- Dogs

DOG_XML = """<annotation>
\t<folder>02085620</folder>
\t<filename>{name}</filename>
\t<source><database>ImageNet database</database></source>
\t<size><width>40</width><height>30</height><depth>3</depth></size>
\t<segment>0</segment>
{objects}</annotation>
"""
DOG_OBJECT = """\t<object>
\t\t<name>Chihuahua</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>
\t\t<bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>
\t</object>
"""


def make_dogs(data_root):
    dogs = data_root / "stanford_dogs"
    splits = {"train": [("n02085620-Chihuahua/n02085620_7", 1, [(4, 2, 20, 25), (25, 5, 38, 20)]),
                        ("n02116738-African_hunting_dog/n02116738_9829", 120, [(0, 0, 39, 29)])],
              "test": [("n02085620-Chihuahua/n02085620_10131", 1, [(5, 5, 10, 10)])]}
    dogs.mkdir()
    for split, rows in splits.items():
        scipy.io.savemat(dogs / f"{split}_list.mat", {
            "file_list": cell_column([f"{a}.jpg" for a, _, _ in rows]),
            "annotation_list": cell_column([a for a, _, _ in rows]),
            "labels": np.array([[float(label)] for _, label, _ in rows]),
        })
        for annotation, _, boxes in rows:
            write_image(dogs / "Images" / f"{annotation}.jpg", 40, 30)
            xml = DOG_XML.format(name=annotation.split("/")[1],
                                 objects="".join(DOG_OBJECT.format(*b) for b in boxes))
            write_text(dogs / "Annotation" / annotation, [xml])
    return dogs


def test_dogs_reads_every_object(tmp_path):
    make_dogs(tmp_path)
    train = load("dogs", tmp_path, "train", SIZE)
    assert len(train) == 2 and len(load("dogs", tmp_path, "test", SIZE)) == 1
    assert [train[0]["label"], train[1]["label"]] == [0, 119]
    sample = train[0]
    assert_sample(sample, 0, "dogs")
    assert sample["boxes"].tolist() == [scaled((4, 2, 20, 25), 40, 30),
                                        scaled((25, 5, 38, 20), 40, 30)]


def test_dogs_malformed_xml_names_file_and_line(tmp_path):
    dogs = make_dogs(tmp_path)
    xml = dogs / "Annotation" / "n02085620-Chihuahua" / "n02085620_7"
    xml.write_text("<annotation>\n<object>\n<bndbox><xmin>1</xmin>\n</annotation>\n")
    dataset = load("dogs", tmp_path, "train", SIZE)
    with pytest.raises(DatasetFormatError, match="malformed XML") as error:
        dataset[0]
    assert str(xml) in str(error.value) and error.value.line == 4


# ----------------------------------------------------------------------------- Flowers


def make_flowers(data_root, segmim=True):
    flowers = data_root / "flowers-102"
    flowers.mkdir()
    scipy.io.savemat(flowers / "imagelabels.mat", {"labels": np.array([[77, 102, 1]], np.uint8)})
    scipy.io.savemat(flowers / "setid.mat", {"trnid": np.array([[1]], np.uint16),
                                             "valid": np.array([[2]], np.uint16),
                                             "tstid": np.array([[3]], np.uint16)})
    for i in (1, 2, 3):
        write_image(flowers / "jpg" / f"image_{i:05d}.jpg", 40, 30)
        if segmim:
            write_image(flowers / "segmim" / f"segmim_{i:05d}.jpg", 40, 30, (8, 6, 27, 21),
                        color=(230, 20, 60), background=(0, 0, 254))
    return flowers


def test_flowers_masks_from_the_blue_background(tmp_path):
    make_flowers(tmp_path)
    splits = [load("flowers", tmp_path, split, SIZE) for split in ("train", "val", "test")]
    assert [len(s) for s in splits] == [1, 1, 1]
    assert [s[0]["label"] for s in splits] == [76, 101, 0]
    sample = splits[0][0]
    assert_sample(sample, 0, "flowers")
    assert set(sample["mask"].unique().tolist()) == {0, 1}
    # JPEG chroma blur makes edge pixels neither flower nor blue: a pixel or two of slack.
    box = sample["boxes"][0].numpy()
    assert abs(box - np.array(scaled((8, 6, 27, 21), 40, 30))).max() <= 2
    assert abs(np.array(tight_box(sample["mask"])) - box).max() <= 1


def test_flowers_without_segmentations(tmp_path):
    make_flowers(tmp_path, segmim=False)
    sample = load("flowers", tmp_path, "test", SIZE)[0]
    assert (sample["mask"] == IGNORE).all() and sample["boxes"].shape == (0, 4)


# ----------------------------------------------------------------------------- Tiny-ImageNet


def make_tinyimagenet(data_root):
    tiny = data_root / "tiny-imagenet-200"
    write_text(tiny / "wnids.txt", ["n02124075", "n01443537"])  # file order is not sorted
    for wnid in ("n02124075", "n01443537"):
        write_text(tiny / "train" / wnid / f"{wnid}_boxes.txt",
                   [f"{wnid}_0.JPEG\t0\t10\t63\t58", f"{wnid}_1.JPEG\t5\t5\t20\t20"])
        for k in (0, 1):
            write_image(tiny / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", 64, 64)
    write_text(tiny / "val" / "val_annotations.txt", ["val_0.JPEG\tn02124075\t0\t32\t44\t62"])
    write_image(tiny / "val" / "images" / "val_0.JPEG", 64, 64)
    return tiny


def test_tinyimagenet(tmp_path):
    make_tinyimagenet(tmp_path)
    train = load("tinyimagenet", tmp_path, "train", 64)
    test = load("tinyimagenet", tmp_path, "test", 64)
    assert len(train) == 4 and len(test) == 1
    # Labels index the sorted wnids, not the file order of wnids.txt.
    assert [(r.image.name, r.label) for r in train.records] == [
        ("n01443537_0.JPEG", 0), ("n01443537_1.JPEG", 0),
        ("n02124075_0.JPEG", 1), ("n02124075_1.JPEG", 1)]
    assert_sample(test[0], 0, "tinyimagenet", size=64)
    assert train[0]["boxes"].tolist() == [[0.0, 10.0, 63.0, 58.0]]
    assert test[0]["boxes"].tolist() == [[0.0, 32.0, 44.0, 62.0]] and test[0]["label"] == 1


def test_tinyimagenet_malformed_box_line(tmp_path):
    tiny = make_tinyimagenet(tmp_path)
    write_text(tiny / "val" / "val_annotations.txt",
               ["val_0.JPEG\tn02124075\t0\t32\t44\t62", "val_1.JPEG\tn02124075\t0\t32"])
    with pytest.raises(DatasetFormatError, match=r"val_annotations.txt, line 2"):
        load("tinyimagenet", tmp_path, "test", 64)


# ----------------------------------------------------------------------------- wsolevaluation


def make_wsol_cub(data_root):
    wsol = data_root / "wsolevaluation"
    image = "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"
    cubv2 = "001.Black_footed_Albatross/30107316117.jpg"
    for split, path in (("train", image), ("val", cubv2), ("test", image)):
        meta = wsol / "metadata" / "CUB" / split
        write_text(meta / "image_ids.txt", [path])
        write_text(meta / "class_labels.txt", [f"{path},0"])
        write_text(meta / "image_sizes.txt", [f"{path},40,30"])
        write_text(meta / "localization.txt", [f"{path},5,4,25,19", f"{path},30,2,38,9"])
        write_image(wsol / "dataset" / "CUB" / path, 40, 30)
    return wsol


def test_wsol_cub_and_cub_val(tmp_path):
    make_wsol_cub(tmp_path)
    for dataset in (load("wsol-cub", tmp_path, "val", SIZE), load("cub", tmp_path, "val", SIZE)):
        assert len(dataset) == 1
        sample = dataset[0]
        assert_sample(sample, 0, "wsol-cub")
        assert sample["boxes"].tolist() == [scaled((5, 4, 25, 19), 40, 30),
                                            scaled((30, 2, 38, 9), 40, 30)]


def test_cub_val_without_wsolevaluation(tmp_path):
    make_cub(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="CUBV2") as error:
        load("cub", tmp_path, "val", SIZE)
    assert "github.com/clovaai/wsolevaluation" in str(error.value)


def test_wsol_openimages_masks_with_ignore(tmp_path):
    wsol = tmp_path / "wsolevaluation"
    image = "test/01226z/7af766bd43da900b.jpg"
    stem = "test/01226z/7af766bd43da900b"
    meta = wsol / "metadata" / "OpenImages" / "test"
    write_text(meta / "image_ids.txt", [image])
    write_text(meta / "class_labels.txt", [f"{image},3"])
    write_text(meta / "localization.txt", [
        f"{image},{stem}_m01226z_6554d965.png,{stem}_ignore.png",
        f"{image},{stem}_m01226z_8856c605.png,",
    ])
    root = wsol / "dataset" / "OpenImages"
    write_image(root / image, 32, 32)
    write_gray(root / f"{stem}_m01226z_6554d965.png", 32, 32, (2, 2, 9, 9))
    write_gray(root / f"{stem}_m01226z_8856c605.png", 32, 32, (20, 20, 29, 29))
    write_gray(root / f"{stem}_ignore.png", 32, 32, (0, 0, 15, 15))  # overlaps instance 1
    sample = load("wsol-openimages", tmp_path, "test", SIZE)[0]
    assert_sample(sample, 0, "wsol-openimages")
    mask = sample["mask"]
    assert sample["label"] == 3
    assert (mask[2:10, 2:10] == 1).all() and (mask[20:30, 20:30] == 1).all()
    assert (mask[0, 0:16] == IGNORE).all() and mask[31, 31] == 0  # ignore minus foreground
    assert sample["boxes"].tolist() == [[2.0, 2.0, 9.0, 9.0], [20.0, 20.0, 29.0, 29.0]]


def test_wsol_malformed_localization(tmp_path):
    wsol = make_wsol_cub(tmp_path)
    path = wsol / "metadata" / "CUB" / "test" / "localization.txt"
    write_text(path, ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg,5,4,25"])
    with pytest.raises(DatasetFormatError, match=r"localization.txt, line 1") as error:
        load("wsol-cub", tmp_path, "test", SIZE)
    assert "<path>,<x0>,<y0>,<x1>,<y1>" in str(error.value)


# ----------------------------------------------------------------------------- COCO


def make_coco(data_root):
    coco = data_root / "coco"
    images = [{"id": 139, "file_name": "000000000139.jpg", "height": 30, "width": 40},
              {"id": 285, "file_name": "000000000285.jpg", "height": 30, "width": 40}]
    square = [[4.0, 4.0, 14.0, 4.0, 14.0, 14.0, 4.0, 14.0]]
    wide = [[20.0, 2.0, 38.0, 2.0, 38.0, 26.0, 20.0, 26.0]]
    crowd = [[0.0, 20.0, 10.0, 20.0, 10.0, 29.0, 0.0, 29.0]]
    annotations = [
        {"id": 1, "image_id": 139, "category_id": 3, "bbox": [4, 4, 10, 10], "area": 100.0,
         "iscrowd": 0, "segmentation": square},
        {"id": 2, "image_id": 139, "category_id": 90, "bbox": [20, 2, 18, 24], "area": 432.0,
         "iscrowd": 0, "segmentation": wide},
        {"id": 3, "image_id": 139, "category_id": 1, "bbox": [0, 20, 10, 9], "area": 90.0,
         "iscrowd": 1, "segmentation": crowd},
        {"id": 4, "image_id": 285, "category_id": 1, "bbox": [0, 20, 10, 9], "area": 90.0,
         "iscrowd": 1, "segmentation": crowd},
    ]
    categories = [{"id": i, "name": n, "supercategory": "x"}
                  for i, n in ((1, "person"), (3, "car"), (90, "toothbrush"))]
    (coco / "annotations").mkdir(parents=True)
    for year in ("train2017", "val2017"):
        (coco / "annotations" / f"instances_{year}.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}, indent=1))
        for image in images:
            write_image(coco / year / image["file_name"], 40, 30)
    return coco


def test_coco_objects_union_mask_and_label(tmp_path):
    pytest.importorskip("pycocotools")
    make_coco(tmp_path)
    dataset = load("coco", tmp_path, "test", 40)
    assert len(dataset) == 1  # image 285 has only a crowd region: nothing to localize
    sample = dataset[0]
    assert_sample(sample, 0, "coco", size=40)
    assert sample["label"] == 2  # largest object: toothbrush, index 2 of sorted ids 1, 3, 90
    assert sample["boxes"].tolist() == [scaled((4, 4, 14, 14), 40, 30, 40),
                                        scaled((20, 2, 38, 26), 40, 30, 40)]
    mask = sample["mask"]
    assert (mask == 1).any() and (mask == IGNORE).any() and (mask == 0).any()


def test_coco_malformed_json(tmp_path):
    pytest.importorskip("pycocotools")
    coco = make_coco(tmp_path)
    path = coco / "annotations" / "instances_train2017.json"
    path.write_text('{"images": [],\n "annotations": [,\n]}')
    with pytest.raises(DatasetFormatError, match="malformed JSON") as error:
        load("coco", tmp_path, "train", SIZE)
    assert error.value.line == 2 and str(path) in str(error.value)


# ----------------------------------------------------------------------------- all of them


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_reports_what_is_missing(tmp_path, name):
    with pytest.raises(DatasetError) as error:
        load(name, tmp_path, DATASETS[name].splits[0], SIZE)
    assert DATASETS[name].url.split()[0] in str(error.value)
    assert DATASETS[name].subdir in str(error.value)


# ----------------------------------------------------------------------------- annotation policy

BAD_CUB_LINES = [  # (file, line number, replacement, the reason the error gives)
    ("bounding_boxes.txt", 3, "3 nan 8.0 12.0 10.0", "field <x> = 'nan' is invalid"),
    ("bounding_boxes.txt", 3, "3 10.0 inf 12.0 10.0", "expected a finite number"),
    ("bounding_boxes.txt", 3, "3 30.0 8.0 -20.0 10.0", "is inverted (x1 < x0"),
    ("image_class_labels.txt", 3, "3 201", "class_id 201 is beyond the dataset's 200 classes"),
    ("train_test_split.txt", 3, "3 7", "field <is_training_image> = '7' is invalid"),
    ("images.txt", 4, "1 002.Laysan_Albatross/other.jpg", "duplicate image_id 1 (first on line 1)"),
    ("bounding_boxes.txt", 4, "1 5.0 4.0 20.0 15.0", "duplicate image_id 1"),
]


def replace_line(path, number, text):
    lines = path.read_text().splitlines()
    lines[number - 1:number] = [text]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("file", "number", "text", "reason"), BAD_CUB_LINES)
def test_a_bad_annotation_line_names_file_line_and_reason(tmp_path, file, number, text, reason):
    cub = make_cub(tmp_path)
    replace_line(cub / file, number, text)
    with pytest.raises(DatasetFormatError) as error:
        load("cub", tmp_path, "train", SIZE)
    assert reason in str(error.value)
    assert error.value.path == cub / file and error.value.line == number


@pytest.mark.parametrize(("file", "number", "text", "reason"), BAD_CUB_LINES)
def test_strict_false_skips_a_bad_line_and_reports_it(tmp_path, file, number, text, reason):
    cub = make_cub(tmp_path)
    replace_line(cub / file, number, text)
    with pytest.warns(UserWarning, match=f"skipped 1 bad annotations.*{file}, line {number}"):
        train = load("cub", tmp_path, "train", SIZE, strict=False)
    assert [(e.path.name, e.line) for e in train.skipped] == [(file, number)]
    assert reason in train.skipped[0].problem
    assert all(len(train[i]["boxes"]) == 1 for i in range(len(train)))  # none lost its box


def test_an_empty_annotation_file_is_named(tmp_path):
    cub = make_cub(tmp_path)
    (cub / "images.txt").write_text("\n")
    with pytest.raises(DatasetFormatError, match="empty annotation file") as error:
        load("cub", tmp_path, "train", SIZE)
    assert error.value.path == cub / "images.txt"


def test_a_box_outside_its_image_is_an_error_not_a_silent_drop(tmp_path):
    cub = make_cub(tmp_path)
    replace_line(cub / "bounding_boxes.txt", 1, "1 50.0 40.0 5.0 5.0")  # image is 40 x 30
    for strict in (True, False):  # an image without its only box never reaches training
        dataset = load("cub", tmp_path, "train", SIZE, strict=strict)
        with pytest.raises(DatasetFormatError, match="lies entirely outside the 40x30") as error:
            dataset[0]
        assert error.value.path == cub / "bounding_boxes.txt" and error.value.line == 1
    assert dataset[1]["boxes"].shape == (1, 4)


def test_a_split_left_without_images_is_an_error(tmp_path):
    cub = make_cub(tmp_path)
    (cub / "train_test_split.txt").write_text("1 0\n2 0\n3 0\n")
    with pytest.raises(DatasetFormatError, match="the train split has no images"):
        load("cub", tmp_path, "train", SIZE)
