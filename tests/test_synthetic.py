"""Tests for coloc.data.synthetic: the seeded procedural benchmark."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from coloc.data.common import collate_samples
from coloc.data.synthetic import (
    FAMILIES,
    SPLIT_SIZES,
    VARIANTS,
    SyntheticDataset,
    benchmark,
)
from tests.test_runtime import FakeClock


def tight_box(mask: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]


def test_same_seed_split_index_gives_the_same_sample_and_others_differ():
    first = SyntheticDataset("train", 48, num_samples=20, seed=3)
    again = SyntheticDataset("train", 48, num_samples=50, seed=3)  # a prefix of a longer set
    other_seed = SyntheticDataset("train", 48, num_samples=20, seed=4)
    other_split = SyntheticDataset("val", 48, num_samples=20, seed=3)
    for i in (0, 7, 19):
        a, b = first[i], again[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
        assert torch.equal(a["mask"], b["mask"]) and a["label"] == b["label"]
        assert not torch.equal(a["image"], other_seed[i]["image"])
        assert not torch.equal(a["image"], other_split[i]["image"])
    assert not torch.equal(first[0]["image"], first[1]["image"])


@pytest.mark.parametrize("size", [32, 96])
def test_sample_follows_the_contract(size):
    dataset = SyntheticDataset("test", size, families=FAMILIES, num_samples=8)
    for i in range(len(dataset)):
        sample = dataset[i]
        assert sample["image"].shape == (3, size, size) and sample["image"].dtype == torch.float32
        assert isinstance(sample["label"], int) and 0 <= sample["label"] < dataset.num_classes
        assert sample["family"] == dataset.classes[sample["label"]].split("/")[0]
        assert sample["boxes"].shape == (1, 4) and sample["boxes"].dtype == torch.float32
        assert sample["mask"].shape == (size, size) and sample["mask"].dtype == torch.uint8
        assert set(sample["mask"].unique().tolist()) <= {0, 1}
        assert sample["part_mask"].shape == (size, size)
        assert sample["part_mask"].dtype == torch.bool
        assert sample["index"] == i
    batch = collate_samples([dataset[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, size, size)


def test_default_split_sizes_and_class_list():
    for split, size in SPLIT_SIZES.items():
        assert len(SyntheticDataset(split)) == size
    dataset = SyntheticDataset(families=("bird", "dog"))
    assert dataset.families == ("bird", "dog")
    assert dataset.num_classes == len(dataset.classes) == 24
    assert dataset.classes[0].startswith("bird/") and dataset.classes[-1].startswith("dog/")


@pytest.mark.parametrize("num_objects", [1, (1, 3)])
def test_boxes_are_tight_inclusive_boxes_of_each_object_inside_the_image(num_objects):
    size = 64
    dataset = SyntheticDataset(
        "val", size, families=FAMILIES, num_objects=num_objects, num_samples=30
    )
    for i in range(len(dataset)):
        scene, sample = dataset.render(i), dataset[i]
        assert torch.equal(sample["boxes"], torch.from_numpy(scene.boxes))
        assert len(scene.boxes) == len(scene.labels) == scene.instances.max()
        for k, box in enumerate(scene.boxes.astype(int).tolist()):
            assert box == tight_box(scene.instances == k + 1)
            assert 0 <= box[0] <= box[2] <= size - 1 and 0 <= box[1] <= box[3] <= size - 1
        assert np.array_equal(sample["mask"].numpy(), scene.mask.astype(np.uint8))


def test_part_mask_lies_inside_the_object_and_is_small():
    dataset = SyntheticDataset("train", 64, families=FAMILIES, num_samples=40)
    part_share = []
    for i in range(len(dataset)):
        sample = dataset[i]
        mask, part = sample["mask"].bool(), sample["part_mask"]
        assert not (part & ~mask).any()
        part_share.append(part.sum().item() / mask.sum().item())
    assert np.mean([share > 0 for share in part_share]) > 0.9
    assert 0.02 < np.mean(part_share) < 0.3


def test_generator_mirrors_objects_both_ways():
    """The crest sits on the head side: right of the box centre when facing right."""
    dataset = SyntheticDataset("train", 64, num_samples=40)
    sides = []
    for i in range(len(dataset)):
        scene = dataset.render(i)
        x0, _, x1, _ = scene.boxes[0]
        sides.append(np.nonzero(scene.part)[1].mean() > (x0 + x1) / 2)
    assert 0.2 < np.mean(sides) < 0.8


def test_augment_flips_image_mask_part_and_boxes_together():
    plain = SyntheticDataset("train", 40, num_samples=6)
    augmented = SyntheticDataset("train", 40, num_samples=6, augment=True)
    torch.manual_seed(0)
    flipped = 0
    for i in range(len(plain)):
        a, b = plain[i], augmented[i]
        if torch.equal(a["image"], b["image"]):
            assert torch.equal(a["boxes"], b["boxes"])
            continue
        flipped += 1
        assert torch.equal(a["image"].flip(-1), b["image"])
        assert torch.equal(a["mask"].flip(-1), b["mask"])
        assert torch.equal(a["part_mask"].flip(-1), b["part_mask"])
        x0, y0, x1, y1 = a["boxes"][0].tolist()
        assert b["boxes"][0].tolist() == [39 - x1, y0, 39 - x0, y1]
        assert b["boxes"][0].tolist() == tight_box(b["mask"].numpy() == 1)
    assert 0 < flipped < len(plain)


def _variant(variant: str, **kwargs) -> SyntheticDataset:
    return SyntheticDataset("test", 48, num_samples=30, variant=variant, **kwargs)


def test_only_fg_and_only_bg_variants():
    only_fg, only_bg_b, only_bg_t = (_variant(v) for v in ("only_fg", "only_bg_b", "only_bg_t"))
    for i in range(5):
        scene = only_fg.render(i)
        mask = scene.mask
        fg, _ = only_fg.compose(i)
        assert (fg[~mask] == 0).all() and np.array_equal(fg[mask], scene.image[mask])

        blacked, _ = only_bg_b.compose(i)
        in_box = np.zeros_like(mask)
        for x0, y0, x1, y1 in scene.boxes.astype(int):
            in_box[y0 : y1 + 1, x0 : x1 + 1] = True
        assert (blacked[in_box] == 0).all()
        assert np.array_equal(blacked[~in_box], scene.image[~in_box])

        filled, _ = only_bg_t.compose(i)
        assert np.array_equal(filled, scene.background)
        assert np.array_equal(filled[~mask], scene.image[~mask])
        assert not np.allclose(filled[mask], scene.image[mask])


@pytest.mark.parametrize("variant", ["mixed_same", "mixed_rand", "mixed_next"])
def test_mixed_variants_keep_the_foreground_on_another_images_background(variant):
    dataset = _variant(variant, context_bias=0.5)
    for i in range(8):
        source = dataset.background_source(i)
        assert source is not None and source != i
        if variant == "mixed_same":
            assert dataset.label(source) == dataset.label(i)
        if variant == "mixed_next":
            assert dataset.label(source) == (dataset.label(i) + 1) % dataset.num_classes
        image, scene = dataset.compose(i)
        mask = scene.mask
        assert np.array_equal(image[mask], scene.image[mask])
        assert np.array_equal(image[~mask], dataset.render(source).background[~mask])
        assert dataset[i]["label"] == scene.labels[0]
    assert _variant("original").background_source(0) is None


def test_mixed_rand_picks_a_random_class_independently_of_mixed_same():
    """Background Challenge: mixed_rand takes a random image of a random class, not
    (a shifted copy of) mixed_same's choice."""
    n = 300
    same, rand = (
        SyntheticDataset("test", 48, num_samples=n, variant=v) for v in ("mixed_same", "mixed_rand")
    )
    same_sources = np.array([same.background_source(i) for i in range(n)])
    rand_sources = np.array([rand.background_source(i) for i in range(n)])
    assert (same_sources == rand_sources).sum() <= 3  # chance: n / n = 1 expected
    assert abs(np.corrcoef(same_sources, rand_sources)[0, 1]) < 0.2
    rand_classes = rand_sources % rand.num_classes
    assert set(rand_classes) == set(range(rand.num_classes))
    assert (rand_classes == np.arange(n) % rand.num_classes).mean() < 0.2


def test_multi_object_scenes_have_one_to_three_boxes_from_several_families():
    dataset = SyntheticDataset("train", 64, families=FAMILIES, num_objects=(1, 3), num_samples=60)
    counts, families = set(), set()
    for i in range(len(dataset)):
        scene = dataset.render(i)
        counts.add(len(scene.boxes))
        families.update(dataset.classes[c].split("/")[0] for c in scene.labels)
    assert counts == {1, 2, 3}
    assert families == set(FAMILIES)
    three = SyntheticDataset("train", 64, num_objects=3, num_samples=5)
    assert all(three[i]["boxes"].shape == (3, 4) for i in range(5))


def _background_class_accuracy(dataset: SyntheticDataset) -> float:
    """Nearest-centroid classification from the mean colours of the background halves."""
    n = len(dataset)
    halves = [np.array_split(dataset.render(i).background, 2) for i in range(n)]
    features = np.stack([np.concatenate([h.mean((0, 1)) for h in pair]) for pair in halves])
    labels = np.array([dataset.label(i) for i in range(n)])
    half = n // 2
    centroids = np.stack([features[:half][labels[:half] == c].mean(0) for c in range(12)])
    predicted = np.linalg.norm(features[half:, None] - centroids[None], axis=2).argmin(1)
    return float((predicted == labels[half:]).mean())


def test_context_bias_ties_the_background_to_the_class():
    def tied_share(bias: float) -> float:
        dataset = SyntheticDataset("train", 32, num_samples=240, context_bias=bias)
        return np.mean([dataset.render(i).style == dataset.label(i) for i in range(240)])

    assert tied_share(0.0) < 0.2
    assert 0.4 < tied_share(0.5) < 0.75
    assert tied_share(1.0) == 1.0
    unbiased = _background_class_accuracy(SyntheticDataset("train", 32, num_samples=240))
    biased = SyntheticDataset("train", 32, num_samples=240, context_bias=1.0)
    assert _background_class_accuracy(biased) > 0.5 > 0.25 > unbiased  # chance: 1/12


def test_geometry_is_continuous_across_image_sizes():
    small = SyntheticDataset("val", 64, num_samples=10, families=FAMILIES)
    large = SyntheticDataset("val", 256, num_samples=10, families=FAMILIES)
    for i in range(10):
        assert small[i]["label"] == large[i]["label"]
        relative_small = (small.render(i).boxes + 0.5) / 64
        relative_large = (large.render(i).boxes + 0.5) / 256
        assert np.abs(relative_small - relative_large).max() < 2.5 / 64


def test_raw_image_is_uint8_for_plotting():
    dataset = SyntheticDataset("train", 40, num_samples=3)
    raw = dataset.raw_image(1)
    assert raw.shape == (40, 40, 3) and raw.dtype == np.uint8
    image, _ = dataset.compose(1)
    assert np.abs(raw / 255.0 - image).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [
        ({"families": ("bird", "fish")}, "bird, car, aircraft, dog"),
        ({"variant": "only_sky"}, ", ".join(VARIANTS)),
        ({"split": "holdout"}, "train, val, test"),
        ({"context_bias": 1.5}, "[0, 1]"),
        ({"context_bias": -0.1}, "[0, 1]"),
        ({"image_size": 8}, ">= 16"),
        ({"num_objects": 4}, "1-3"),
        ({"num_objects": (2, 1)}, "1-3"),
        ({"num_samples": 0}, ">= 1"),
        ({"seed": -1}, "[0, 2**64)"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_allowed_values(kwargs, allowed):
    with pytest.raises(ValueError, match=re.escape(allowed)):
        SyntheticDataset(**kwargs)


def test_indexing_accepts_integer_types_and_rejects_out_of_range():
    dataset = SyntheticDataset("train", 32, num_samples=3)
    assert torch.equal(dataset[np.int64(2)]["image"], dataset[2]["image"])
    with pytest.raises(IndexError):
        dataset[3]


def test_benchmark_reports_the_best_round_in_images_per_second(monkeypatch):
    # A fake clock: rounds of 4 images (20 in 5 rounds) take 2, 1, 4, 0.5 and 2 s in turn
    # (each round reads the clock twice), so the best round gives 4 / 0.5 = 8 images/s.
    durations = [2.0, 1.0, 4.0, 0.5, 2.0]
    reads = iter([t for d in durations * 3 for t in (0.0, d)])
    monkeypatch.setattr("coloc.data.synthetic.time", FakeClock(reads))
    threads = torch.get_num_threads()
    result = benchmark(n=20, image_size=32)
    assert result == {"image_size": 32, "samples_per_s": 8.0, "render_per_s": 8.0,
                      "jpeg_decode_per_s": 8.0}
    assert torch.get_num_threads() == threads  # restored after the single-thread timing


def test_bench_cli_prints_generator_and_baseline_rates(capsys):
    from coloc.bench import main as bench_main

    assert bench_main(["synthetic", "--n", "10", "--size", "32"]) == 0
    out = capsys.readouterr().out
    assert "full samples" in out and "JPEG decode" in out and "x" in out.splitlines()[-1]
