"""Recorded runs keep their names: configuration hashes and run folders pinned.

A run is found by ``<paper>/<dataset>/<name>-<hash>``; if a refactoring changed a
configuration's identity, every recorded run (hours of GPU time on real data) would be
retrained. These values were computed before the package was split into a shared core
and one folder per paper, and must not move unless the package version does.
"""

from coloc import caml
from coloc.runs import run_directory

PINNED = {
    "caml/synthetic/caml-rotation-030961252153": caml.profile("synthetic"),
    "caml/synthetic/baseline-rotation-ad93000e3a36": caml.profile("synthetic").baseline(),
    "caml/synthetic/variant-rotation-nocls-e99448e53e09": caml.profile(
        "synthetic", use_cls=False),
    "caml/synthetic/caml-vflip-6c8795cc0d2a": caml.profile("synthetic", pretext="vflip"),
    "caml/synthetic/caml-rotation-892617782b42": caml.profile("synthetic", distance="rms"),
    "caml/cub/caml-rotation-9e8b2b032230": caml.profile("cub", require_data=False),
    "caml/synthetic-car/caml-rotation-11240babb006": caml.profile("synthetic-car"),
}


def test_run_folders_keep_their_names(tmp_path):
    for expected, config in PINNED.items():
        assert run_directory(config, tmp_path) == tmp_path / expected


def test_identity_keeps_its_keys():
    assert sorted(caml.profile("synthetic").identity()) == [
        "amp", "augment", "backbone", "batch_size", "channels_last", "corloc_rule",
        "corloc_threshold", "dataset", "distance", "eca_kernel_size", "embedding", "epochs",
        "gamma", "headroom", "image_size", "lr", "margin", "milestones", "momentum", "pairs",
        "peak_gradient", "pooling", "pretext", "pretrained", "pretraining", "seed", "select",
        "selection", "test_samples", "theta_bg", "topk_largest", "topk_ratio",
        "train_samples", "use_caml", "use_cls", "val_samples", "weight_decay",
        "weights_path"]


def test_synthetic_pretraining_keeps_its_folder(tmp_path):
    pretraining = caml.profile("synthetic").synthetic_pretraining
    assert pretraining.directory(tmp_path) == tmp_path / "pretrain/small_cnn-families-958592cb8342"
