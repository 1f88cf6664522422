"""InCA's published numbers (coloc/reference/inca.py): cited, complete, consistent."""

import math

import pytest

from coloc.inca.config import TABLE1
from coloc.reference import inca as reference


def test_every_table_cites_its_source():
    assert set(reference.TABLES) == {f"table{i}" for i in range(1, 8)}
    for key, table in reference.TABLES.items():
        assert table.source.endswith(f"Table {key.removeprefix('table')}")
        assert "ACCV 2020" in table.source
    with pytest.raises(KeyError, match="no InCA table"):
        reference.table("table8")


def test_maxboxacc_means_match_their_ious_within_the_known_rounding():
    for key in ("table2", "table5"):
        for row in reference.table(key).rows:
            mean = (row["0.3"] + row["0.5"] + row["0.7"]) / 3
            assert math.isclose(mean, row["mean"], abs_tol=0.011), (key, row)


def test_the_same_runs_agree_across_tables():
    t2, t5 = reference.table("table2"), reference.table("table5")
    ours = t5.row(dataset="CUB", method="Ours", backbone="Res")
    assert [t2.row(method="Ours (full)")[c] for c in ("0.3", "0.5", "0.7", "mean")] == [
        ours[c] for c in ("0.3", "0.5", "0.7", "mean")]
    # Table 3's best row is Table 5's VGG CUB model (top-1 and MaxBoxAccV2)
    best = reference.table("table3").row(location="+ pool_3")
    vgg = t5.row(dataset="CUB", method="Ours", backbone="VGG")
    assert (best["top1_cls"], best["maxboxacc"]) == (vgg["top1"], vgg["mean"])
    # Table 4 rounds Table 5's means
    t4 = reference.table("table4").row(method="Ours", dataset="CUB")
    assert (t4["VGG"], t4["Inc"], t4["Res"]) == (66.7, 60.3, 63.2)
    # known: Table 7 swaps ImageNet Inc/Res against Table 5
    t7 = reference.table("table7").row(method="Ours", dataset="ImageNet")
    assert (t7["Inc"], t7["Res"]) == (
        t5.row(dataset="ImageNet", method="Ours", backbone="Res")["top1"],
        t5.row(dataset="ImageNet", method="Ours", backbone="Inc")["top1"])


def test_table1_is_the_paper_profile():
    t1 = reference.table("table1")
    for backbone, name in (("vgg16_psynet", "VGG16"), ("resnet50", "ResNet50")):
        row = t1.row(backbone=name)
        assert TABLE1[backbone] == {k: row[k] for k in ("drop_rate", "gamma_fg", "gamma_bg")}
