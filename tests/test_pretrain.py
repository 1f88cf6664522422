"""The synthetic stand-in for ImageNet weights (coloc/pretrain.py)."""

from pathlib import Path

import pytest
import torch

import coloc.pretrain as pretrain
from coloc import runtime
from coloc.models import build_backbone
from coloc.pretrain import PretrainConfig, families_except, synthetic_pretrained_backbone
from coloc.runtime import RunFileError

TINY = PretrainConfig(image_size=32, num_samples=12, epochs=1, batch_size=6)


def test_families_other_than_the_target():
    assert families_except("bird") == ("car", "aircraft", "dog")
    assert families_except(("bird", "dog")) == ("car", "aircraft")


def test_pretraining_is_cached_and_loads_into_the_backbone(tmp_path, monkeypatch):
    path = synthetic_pretrained_backbone(TINY, tmp_path)
    assert path.parent.parent == tmp_path / "pretrain"
    backbone = build_backbone("small_cnn", weights_path=path)
    assert torch.equal(backbone.state_dict()["features.0.weight"],
                       torch.load(path, weights_only=True)["features.0.weight"])
    monkeypatch.setattr(pretrain, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert synthetic_pretrained_backbone(TINY, tmp_path) == path  # loaded, not retrained
    assert PretrainConfig(epochs=2).hash() != PretrainConfig().hash()


def test_the_cache_is_written_atomically_and_a_damaged_one_is_named(tmp_path, monkeypatch):
    written = []
    real = runtime.atomic_write_bytes
    monkeypatch.setattr(runtime, "atomic_write_bytes",
                        lambda path, data: written.append(Path(path).name) or real(path, data))
    path = synthetic_pretrained_backbone(TINY, tmp_path)
    assert {"backbone.pt", "results.json"} <= set(written)
    path.write_bytes(path.read_bytes()[:500])  # e.g. a copy cut short
    monkeypatch.setattr(pretrain, "fit", lambda *a, **k: pytest.fail("retrained"))
    with pytest.raises(RunFileError, match="backbone.pt: is not a readable torch file"):
        synthetic_pretrained_backbone(TINY, tmp_path)
