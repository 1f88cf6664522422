"""Datasets kept in memory: the synthetic splits every run of a chapter shares.

The synthetic benchmark is generated from seeds; a chapter trains a dozen runs on the
same images, so each split is generated once per process and kept. Real datasets are
read from disk by their loaders and are not cached here.
"""

from __future__ import annotations

from functools import lru_cache

from torch.utils.data import Dataset

from coloc.data import load
from coloc.data.synthetic import FAMILIES

SYNTHETIC = ("synthetic", *(f"synthetic-{family}" for family in FAMILIES))
"""The synthetic benchmark's names: all birds by default, or one family."""


class InMemory(Dataset):
    """A dataset's samples generated once and kept (synthetic scenes without augment).

    Every run of a chapter reads the same training images; generating them once saves
    most of the data time on the CPU profile. Only for deterministic datasets.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.samples = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


@lru_cache(maxsize=6)
def synthetic_split(name: str, split: str, image_size: int, num_samples: int | None,
                    seed: int, options: tuple[tuple[str, object], ...] = ()) -> InMemory:
    """The synthetic ``split`` generated once per process and kept (:class:`InMemory`).

    ``num_samples`` None is the whole split; ``options`` are further
    :class:`~coloc.data.synthetic.SyntheticDataset` arguments as sorted ``(name, value)``
    pairs (e.g. ``(("context_bias", 1.0),)``), a tuple so the call can be cached.
    """
    kwargs = dict(options)
    if num_samples is not None:
        kwargs["num_samples"] = num_samples
    return InMemory(load(name, split=split, image_size=image_size, seed=seed, **kwargs))
