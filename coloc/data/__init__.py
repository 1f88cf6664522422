"""Datasets: one entry point, :func:`load`, for the synthetic benchmark and the real data.

Every dataset returns the :class:`~coloc.data.common.Sample` dict (batch them with
:func:`~coloc.data.common.collate_samples`) and applies the protocol's transforms
(:mod:`coloc.data.transforms`): the test transform by default, a training transform with
``augment="wsol"`` or ``augment="psynet"``.

======================  ===================  ============================================
name                    splits               notes
======================  ===================  ============================================
synthetic[-<family>]    train, val, test     generated on the fly; no files
cub                     train, val, test     val = wsolevaluation's CUBV2 (wsol-cub)
cars, dogs              train, test
aircraft                train, test          train = the official trainval
flowers                 train, val, test
tinyimagenet            train, test          test = the official val folder
wsol-cub, wsol-imagenet,
wsol-openimages         train, val, test     val = train-fullsup
coco                    train, test          test = val2017
======================  ===================  ============================================

:data:`DATASETS` describes each real dataset (where to get it, its layout under
``data_root``) and :func:`check` lists what is missing from a copy.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from coloc.data.coco import COCO_INFO, COCODataset
from coloc.data.common import Sample, collate_samples
from coloc.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from coloc.data.finegrained import (
    AIRCRAFT_INFO,
    CARS_INFO,
    CUB,
    CUB_INFO,
    DOGS_INFO,
    FLOWERS_INFO,
    FGVCAircraft,
    Flowers102,
    StanfordCars,
    StanfordDogs,
)
from coloc.data.real import DatasetInfo
from coloc.data.tinyimagenet import TINYIMAGENET_INFO, TinyImageNet
from coloc.data.transforms import AUGMENTS, ProtocolTransform, TransformedDataset
from coloc.data.wsol import (
    WSOL_CUB_INFO,
    WSOL_IMAGENET_INFO,
    WSOL_OPENIMAGES_INFO,
    WSOLDataset,
)

__all__ = [
    "AUGMENTS", "DATASETS", "DatasetError", "DatasetFormatError", "DatasetInfo",
    "DatasetNotFoundError", "Sample", "check", "collate_samples", "load",
]

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (CUB_INFO, CARS_INFO, AIRCRAFT_INFO, DOGS_INFO, FLOWERS_INFO,
                 TINYIMAGENET_INFO, WSOL_CUB_INFO, WSOL_IMAGENET_INFO, WSOL_OPENIMAGES_INFO,
                 COCO_INFO)
}
"""Real datasets by :func:`load` name: title, description, URL, directory under
``data_root``, splits and expected layout (``info.tree``)."""

_CLASSES = {"cub": CUB, "cars": StanfordCars, "aircraft": FGVCAircraft, "dogs": StanfordDogs,
            "flowers": Flowers102, "tinyimagenet": TinyImageNet, "coco": COCODataset}
_WSOL_FOLDERS = {"wsol-cub": "CUB", "wsol-imagenet": "ILSVRC", "wsol-openimages": "OpenImages"}
_VALID = "synthetic, synthetic-<family>, " + ", ".join(DATASETS)


def load(name: str, root: str | Path | None = None, split: str = "train",
         image_size: int = 224, *, augment: str | None = None, strict: bool = True,
         **kwargs) -> Dataset:
    """The dataset ``name`` (see the module table) for ``split`` at ``image_size`` pixels.

    ``root`` is ``data_root``, the directory holding every real dataset in its own
    sub-directory (``DATASETS[name].subdir``); the synthetic set needs none. ``augment``
    picks the training transform (None = the test transform, "wsol", "psynet"). Extra
    keyword arguments go to :class:`~coloc.data.synthetic.SyntheticDataset` (families,
    num_samples, seed, context_bias, num_objects, variant). Missing or malformed data
    raises :class:`DatasetError`; an unknown name, split or augment a ``ValueError``.
    ``strict=False`` skips bad annotation lines of a real dataset instead (they are
    listed in ``dataset.skipped`` and counted in a warning; see :mod:`coloc.data.real`).
    """
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
    if name == "synthetic" or name.startswith("synthetic-"):
        return _synthetic(name, split, image_size, augment, kwargs)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {_VALID}")
    info = DATASETS[name]
    if split not in info.splits:
        raise ValueError(f"{name} has the splits {info.splits}, got {split!r}")
    if root is None:
        raise ValueError(f"{name} is read from disk: pass root=<data_root> holding "
                         f"{info.subdir}/ (see coloc.data.DATASETS[{name!r}].tree)")
    if kwargs:
        raise TypeError(f"{name} takes no extra arguments, got {sorted(kwargs)}")
    data_root = Path(root)
    if name == "cub" and split == "val":
        wsol_root = data_root / WSOL_CUB_INFO.subdir
        if not wsol_root.is_dir():
            raise WSOL_CUB_INFO.error(
                DatasetNotFoundError,
                "CUB's val split is wsolevaluation's CUBV2 (train-fullsup), which is missing",
                path=wsol_root)
        return WSOLDataset(wsol_root, "CUB", "val", image_size, augment=augment,
                           strict=strict)
    directory = data_root / info.subdir
    if name in _WSOL_FOLDERS:
        return WSOLDataset(directory, _WSOL_FOLDERS[name], split, image_size, augment=augment,
                           strict=strict)
    return _CLASSES[name](directory, split, image_size, augment=augment, strict=strict)


def check(name: str, root: str | Path | None = None, *, images: bool = True) -> list[str]:
    """Required paths of dataset ``name`` missing under ``root`` (= data_root); empty when
    the dataset is complete (and always for the synthetic set).

    First the layout (annotation files, image folders); when that is complete and
    ``images`` is true, every image file the annotations of each split list (a bad
    annotation raises :class:`DatasetFormatError`, naming the file and line).
    """
    if name == "synthetic" or name.startswith("synthetic-"):
        return []
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {_VALID}")
    if root is None:
        raise ValueError(f"{name} is read from disk: pass root=<data_root>")
    missing = DATASETS[name].missing(root)
    if missing or not images:
        return missing
    listed = {record.image for split in DATASETS[name].splits
              if not (name == "cub" and split == "val")  # wsol-cub's, checked there
              for record in load(name, root, split).records}
    return sorted(str(path) for path in listed if not path.is_file())


def _synthetic(name: str, split: str, image_size: int, augment: str | None,
               kwargs: dict) -> Dataset:
    """The synthetic set; a training transform is applied on top of scenes generated at
    its resize size, so the crop loses no detail to resampling."""
    from coloc.data.synthetic import SyntheticDataset  # lazy: generated data only

    if name != "synthetic":
        if "families" in kwargs:
            raise TypeError(f"{name} fixes the family; pass families only with 'synthetic'")
        kwargs = {**kwargs, "families": (name.removeprefix("synthetic-"),)}
    transform = ProtocolTransform(image_size, augment)
    dataset = SyntheticDataset(split, transform.resize_size, **kwargs)
    return dataset if augment is None else TransformedDataset(dataset, transform)
