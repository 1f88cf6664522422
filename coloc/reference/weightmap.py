"""WeightMap's published numbers, as data (:class:`coloc.reference.Table`): ``table(key)``.

WeightMap: Shaharabany and Wolf, "Learning a Weight Map for Weakly-Supervised
Localization" (arXiv 2111.14131, 2021), Tables 1-6. Baseline rows are the paper's
(Table 2's taken by the authors from Choe et al., Pattern Recognition 2021).

Cross-references visible in the numbers (stated, not corrected):

- Method I and Method II have the same top-1 cls on CUB (79.56) and on Cars (87.9):
  both use Method I's classifier for the class decision.
- Table 6's full row (83.03) is Table 1's Method II GT-known loc.
"""

from __future__ import annotations

from coloc.reference import Table, corloc_rows

WEIGHTMAP_PAPER = "WeightMap (Shaharabany and Wolf, 2021)"
LOC_COLUMNS = ("gt_known_loc", "top1_loc", "top1_cls")

TABLES: dict[str, Table] = {}


def _add(table: Table) -> None:
    TABLES[table.key] = table


def _methods(rows: list[tuple[str, tuple[float | None, ...]]], columns: tuple[str, ...]
             ) -> tuple[dict, ...]:
    return corloc_rows([({"method": method}, values) for method, values in rows], columns)


_add(Table(
    key="table1",
    source=f"{WEIGHTMAP_PAPER}, Table 1",
    caption="WSOL results on CUB-200-2011",
    metric="accuracy (%)",
    value_columns=LOC_COLUMNS,
    rows=_methods([
        ("CAM", (56.00, 43.67, 80.65)),
        ("ACoL", (59.30, 45.92, 71.90)),
        ("SPG", (58.90, 48.90, None)),
        ("DANet", (67.00, 52.52, 75.40)),
        ("RCAM", (70.00, 53.00, None)),
        ("ADL", (75.40, 53.04, 80.34)),
        ("I2C", (72.60, 55.99, 76.70)),
        ("infoCAM+", (75.89, 54.35, 73.97)),
        ("PsyNet", (80.32, 57.97, 69.67)),
        ("RDAP", (82.36, 65.84, 75.56)),
        ("ART", (82.65, 65.22, 77.51)),
        ("Method I", (82.85, 67.00, 79.56)),
        ("Method II", (83.03, 67.12, 79.56)),
    ], LOC_COLUMNS),
))

_add(Table(
    key="table2",
    source=f"{WEIGHTMAP_PAPER}, Table 2",
    caption="WSOL results on Stanford Cars",
    metric="accuracy (%)",
    value_columns=LOC_COLUMNS,
    rows=_methods([
        ("CAM", (65.2, 56.8, 88.9)),
        ("HaS", (87.4, 76.6, 87.6)),
        ("ADL", (82.8, 73.8, 88.9)),
        ("RDAP", (92.9, 84.1, 89.7)),
        ("Method I", (96.1, 84.9, 87.9)),
        ("Method II", (95.1, 83.7, 87.9)),
    ], LOC_COLUMNS),
    note="Baselines from Choe et al. (Pattern Recognition 2021), who ran them cleanly.",
))

_add(Table(
    key="table3",
    source=f"{WEIGHTMAP_PAPER}, Table 3",
    caption="WSOL results on Tiny-ImageNet (every classifier a ResNet50)",
    metric="accuracy (%)",
    value_columns=LOC_COLUMNS[:2],
    rows=_methods([
        ("CAM", (54.56, 40.55)),
        ("infoCAM", (57.79, 43.34)),
        ("infoCAM+", (57.71, 43.07)),
        ("Method I", (60.21, 43.80)),
        ("Method II", (60.41, 44.00)),
    ], LOC_COLUMNS[:2]),
))

_add(Table(
    key="table4",
    source=f"{WEIGHTMAP_PAPER}, Table 4",
    caption="Weakly supervised segmentation on CUB-200-2011",
    metric="PxAP (%)",
    value_columns=("pxap",),
    rows=_methods([("CAM", (62.57,)), ("ART", (75.45,)), ("Method I", (76.30,)),
                   ("Method II", (76.70,))], ("pxap",)),
))

_add(Table(
    key="table5",
    source=f"{WEIGHTMAP_PAPER}, Table 5",
    caption="Weakly supervised segmentation on Oxford Flowers 102",
    metric="PxAP (%)",
    value_columns=("pxap",),
    rows=_methods([("CAM", (69.0,)), ("HaS", (63.1,)), ("ADL", (69.8,)), ("RDAP", (71.4,)),
                   ("Method I", (75.6,)), ("Method II", (75.2,))], ("pxap",)),
))

_add(Table(
    key="table6",
    source=f"{WEIGHTMAP_PAPER}, Table 6",
    caption="Ablation of Method II's loss terms on CUB-200-2011",
    metric="GT-known loc (%)",
    value_columns=("gt_known_loc",),
    rows=tuple(
        {"method": method, "reg": reg, "outer": outer, "inner": inner, "gt_known_loc": value}
        for method, reg, outer, inner, value in (
            ("- R", False, True, True, 62.13),
            ("- L_outer", True, False, True, 81.64),
            ("- L_inner", True, True, False, 79.92),
            ("Method II", True, True, True, 83.03),
        )
    ),
))


def table(key: str) -> Table:
    """The published table ``key`` (``"table1"`` ... ``"table6"``)."""
    if key not in TABLES:
        raise KeyError(f"no WeightMap table {key!r}; known: {', '.join(TABLES)}")
    return TABLES[key]
