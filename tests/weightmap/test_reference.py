"""WeightMap's published numbers (coloc/reference/weightmap.py): cited, in range, and
consistent with what the paper prints twice."""

import pytest

from coloc.reference import weightmap as reference


def test_every_table_cites_its_source_and_holds_percentages():
    assert set(reference.TABLES) == {f"table{i}" for i in range(1, 7)}
    for key, table in reference.TABLES.items():
        assert table.source.endswith(f"Table {key.removeprefix('table')}")
        for row in table.rows:
            for column in table.value_columns:
                assert row[column] is None or 0 <= row[column] <= 100, (key, row)


def test_numbers_the_paper_prints_twice_agree():
    # Sec. 4 text: Method I 82.85 GT-known and 67 top-1 loc on CUB; Table 6's full row
    # is Table 1's Method II; both methods share Method I's classifier (top-1 cls).
    method1 = reference.table("table1").row(method="Method I")
    assert (method1["gt_known_loc"], method1["top1_loc"]) == (82.85, 67.00)
    method2 = reference.table("table1").row(method="Method II")
    assert reference.table("table6").row(method="Method II")["gt_known_loc"] == \
        method2["gt_known_loc"]
    for key in ("table1", "table2"):
        assert reference.table(key).row(method="Method I")["top1_cls"] == \
            reference.table(key).row(method="Method II")["top1_cls"]


def test_ablation_rows_switch_off_one_term_each():
    rows = reference.table("table6").rows
    assert sorted((r["reg"], r["outer"], r["inner"]).count(False) for r in rows) == [0, 1, 1, 1]
    with pytest.raises(KeyError, match="table1"):
        reference.table("table7")
