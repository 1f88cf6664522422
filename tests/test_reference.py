"""Published numbers (coloc/reference.py): cited, complete, internally consistent."""

import math

import pytest

from coloc.reference import caml as reference


def test_every_table_cites_its_source_and_holds_percentages():
    assert set(reference.TABLES) == {f"table{i}" for i in range(1, 8)} | {
        f"supp_table{i}" for i in range(1, 4)}
    for key, table in reference.TABLES.items():
        number = key.removeprefix("supp_table").removeprefix("table")
        assert table.source.endswith(f"Table {number}")
        assert ("supplement" in table.source) == key.startswith("supp")
        for row in table.rows:
            for column in table.value_columns:
                value = row[column]
                assert value is None or 0 <= value <= 100, (key, row)


def test_corloc_means_are_the_mean_of_the_three_ious():
    for key in ("table3", "table4", "table5", "table6", "supp_table1", "supp_table2"):
        for row in reference.table(key).rows:
            assert math.isclose((row["0.3"] + row["0.5"] + row["0.7"]) / 3, row["mean"],
                                abs_tol=0.011), (key, row)


def test_the_same_run_has_the_same_numbers_across_tables():
    ours = reference.table("table3").row(method="Ours")
    for key, match in (("table4", {"embedding": "attention"}), ("table5", {"pairs": "both"}),
                       ("table6", {"pooling": "top-70%"}), ("supp_table1", {"ptap_test": True}),
                       ("supp_table2", {"selection": "pixel"})):
        row = reference.table(key).row(**match)
        assert [row[c] for c in ("0.3", "0.5", "0.7", "mean")] == [
            ours[c] for c in ("0.3", "0.5", "0.7", "mean")], key
    rotation_cub = reference.table("table7").row(task="rotation", dataset="cub")
    assert rotation_cub["ours"] == ours["0.5"]
    assert rotation_cub["baseline"] == reference.table("table3").row(method="Baseline")["0.5"]


def test_table2_caml_vgg_row_is_the_rotation_plus_scale_model():
    vgg = reference.table("table2").row(backbone="VGG16", method="CAML (Ours)")
    for dataset in ("cub", "cars", "aircraft", "dogs"):
        rs = reference.table("supp_table3").row(task="rotation+scale", dataset=dataset)
        assert vgg[dataset] == rs["ours"]


def test_frames_and_lookups():
    frame = reference.table("table7").frame()
    assert list(frame.columns) == ["task", "dataset", "baseline", "ours"] and len(frame) == 24
    with pytest.raises(KeyError, match="table1"):
        reference.table("table9")
    with pytest.raises(KeyError):
        reference.table("table3").row(method="nobody")
