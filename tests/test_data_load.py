"""The entry point coloc.data.load, the DATASETS registry and check()."""

import sys
import types

import pytest
import torch

from coloc.data import DATASETS, check, load
from coloc.data.transforms import TransformedDataset


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'") as error:
        load("imagenet", "/data")
    for name in ("synthetic", "synthetic-<family>", *DATASETS):
        assert name in str(error.value)
    with pytest.raises(ValueError, match="valid names"):
        check("imagenet", "/data")


def test_bad_split_augment_root_and_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"cars has the splits \('train', 'test'\)"):
        load("cars", tmp_path, "val")
    with pytest.raises(ValueError, match="augment"):
        load("cub", tmp_path, "train", augment="flip")
    with pytest.raises(ValueError, match="root=<data_root>"):
        load("cub", None, "train")
    with pytest.raises(TypeError, match="num_samples"):
        load("cub", tmp_path, "train", num_samples=3)


def test_registry_describes_every_real_dataset():
    assert set(DATASETS) == {"cub", "cars", "aircraft", "dogs", "flowers", "tinyimagenet",
                             "wsol-cub", "wsol-imagenet", "wsol-openimages", "coco"}
    for name, info in DATASETS.items():
        assert info.name == name and info.url.startswith("http") and info.description
        assert info.num_classes > 1
        assert info.tree.startswith(info.subdir + "/")
        assert set(info.splits) <= {"train", "val", "test"} and "train" in info.splits
        for layout in info.layouts:  # the drawn tree names every required file
            for required in layout:
                assert required.rstrip("/").split("/")[-1] in info.tree, (name, required)


def test_check_lists_what_is_missing(tmp_path):
    missing = check("cub", tmp_path)
    assert str(tmp_path / "CUB_200_2011" / "images.txt") in missing
    assert str(tmp_path / "CUB_200_2011" / "images") + "/" in missing
    cub = tmp_path / "CUB_200_2011"
    (cub / "images").mkdir(parents=True)
    for file in ("images.txt", "image_class_labels.txt", "train_test_split.txt"):
        (cub / file).write_text("")
    assert check("cub", tmp_path) == [str(cub / "bounding_boxes.txt")]
    (cub / "bounding_boxes.txt").write_text("")
    assert check("cub", tmp_path, images=False) == []  # the layout only: files are empty
    assert check("synthetic") == [] and check("synthetic-dog") == []


def test_check_reports_the_closest_alternative_layout(tmp_path):
    cars = tmp_path / "stanford_cars"
    (cars / "car_ims").mkdir(parents=True)
    assert check("cars", tmp_path) == [str(cars / "cars_annos.mat")]
    (cars / "cars_annos.mat").write_bytes(b"")
    assert check("cars", tmp_path, images=False) == []


@pytest.fixture
def fake_synthetic(monkeypatch):
    """Stand-in SyntheticDataset recording how load() builds it."""
    calls = []

    class SyntheticDataset(torch.utils.data.Dataset):
        def __init__(self, split, image_size, **kwargs):
            calls.append((split, image_size, kwargs))
            self.size = image_size

        def __len__(self):
            return 2

        def __getitem__(self, index):
            s = self.size
            mask = torch.zeros(s, s, dtype=torch.uint8)
            mask[s // 4: s // 2, s // 4: s // 2] = 1
            return {"image": torch.zeros(3, s, s), "label": 1, "family": "dog",
                    "boxes": torch.tensor([[s / 4, s / 4, s / 2 - 1, s / 2 - 1]]),
                    "mask": mask, "part_mask": mask.bool(), "index": index}

    module = types.ModuleType("coloc.data.synthetic")
    module.SyntheticDataset = SyntheticDataset
    monkeypatch.setitem(sys.modules, "coloc.data.synthetic", module)
    return calls


def test_synthetic_dispatch(fake_synthetic):
    dataset = load("synthetic", split="val", image_size=64, seed=3, context_bias=0.5)
    assert fake_synthetic[-1] == ("val", 64, {"seed": 3, "context_bias": 0.5})
    assert dataset[0]["image"].shape == (3, 64, 64)
    load("synthetic-dog", split="test", image_size=32)
    assert fake_synthetic[-1] == ("test", 32, {"families": ("dog",)})
    with pytest.raises(TypeError, match="fixes the family"):
        load("synthetic-dog", families=("bird",))


def test_synthetic_training_transform_generates_at_the_resize_size(fake_synthetic):
    dataset = load("synthetic-dog", split="train", image_size=64, augment="wsol")
    assert fake_synthetic[-1][1] == 73  # round(256 / 224 * 64), then a random 64 crop
    assert isinstance(dataset, TransformedDataset) and len(dataset) == 2
    assert dataset.size == 73  # the wrapped dataset's attributes stay reachable
    torch.manual_seed(0)
    sample = dataset[1]
    assert sample["image"].shape == (3, 64, 64) and sample["index"] == 1
    assert sample["mask"].shape == sample["part_mask"].shape == (64, 64)
    assert sample["label"] == 1 and sample["family"] == "dog"


def test_real_synthetic_set_through_load():
    pytest.importorskip("coloc.data.synthetic")
    dataset = load("synthetic-car", split="val", image_size=32, num_samples=2,
                   augment="psynet")
    sample = dataset[0]
    assert sample["family"] == "car" and sample["image"].shape == (3, 32, 32)
    assert ((sample["boxes"] >= 0) & (sample["boxes"] <= 31)).all()


def test_check_lists_the_image_files_a_copy_lacks(tmp_path):
    from tests.test_data_real import CUB_IMAGES, make_cub

    cub = make_cub(tmp_path)
    assert check("cub", tmp_path) == []
    missing = cub / "images" / CUB_IMAGES[2][0]
    missing.unlink()
    assert check("cub", tmp_path) == [str(missing)]
    assert check("cub", tmp_path, images=False) == []  # the layout alone looks complete
