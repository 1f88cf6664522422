"""CAML's published numbers, as data (:class:`coloc.reference.Table`), by key: ``table(key)``.

CAML: Ki, Uh, Choe, Byun, "Contrastive Attention Maps for Self-supervised
Co-localization", ICCV 2021 (main paper Tables 1-7) and its supplementary material
(supplement Tables 1-3). Supplement Figure 1 (CorLoc mean vs. k) is a bar chart without
printed values and is therefore not here.

Cross-references visible in the numbers themselves (stated, not corrected):

- Table 3 "Ours" (CUB, VGG16, rotation) is the "Ours" row of Tables 4, 5 and 6 and of
  supplement Tables 1 and 2, and Table 7's rotation "Ours" on CUB (83.65).
- Table 3 "Baseline" is Table 7's rotation "Baseline" on CUB (77.21).
- Table 2's VGG16 "Ours" row (85.88, 97.26, 96.60, 82.82) equals supplement Table 3's
  rotation+scale "Ours" row on all four datasets: the state-of-the-art comparison
  uses the R+S model, not the rotation model of Tables 3-7.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coloc.reference import CORLOC_COLUMNS, Table, corloc_rows

CAML_PAPER = "CAML (Ki et al., ICCV 2021)"
CAML_SUPPLEMENT = "CAML supplement (Ki et al., ICCV 2021)"
DATASET_COLUMNS = ("cub", "cars", "aircraft", "dogs")


def _paired(task_rows: Mapping[str, Sequence[float]], task_key: str = "task"
            ) -> tuple[dict[str, Any], ...]:
    """Rows of a (task x dataset x baseline/ours) table, from 8 numbers per task."""
    out = []
    for task, values in task_rows.items():
        for i, dataset in enumerate(DATASET_COLUMNS):
            out.append({task_key: task, "dataset": dataset, "baseline": values[2 * i],
                        "ours": values[2 * i + 1]})
    return tuple(out)


TABLES: dict[str, Table] = {}


def _add(table: Table) -> None:
    TABLES[table.key] = table


_add(Table(
    key="table1",
    source=f"{CAML_PAPER}, Table 1",
    caption="MaxBoxAccV2 comparisons with the WSOL state of the art on CUB (VGG16)",
    metric="MaxBoxAccV2 (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "Few-shot [Choe et al.]", "supervision": "few fully labelled"},
         (None, 86.30, None, None)),
        ({"method": "CAM", "supervision": "class labels"}, (96.77, 73.14, 21.23, 63.72)),
        ({"method": "ACoL", "supervision": "class labels"}, (93.77, 63.20, 15.17, 57.38)),
        ({"method": "ADL", "supervision": "class labels"}, (97.72, 78.06, 23.04, 66.28)),
        ({"method": "MEIL", "supervision": "class labels"}, (96.19, 70.99, 18.38, 61.85)),
        ({"method": "InCA", "supervision": "class labels"}, (96.20, 77.20, 26.75, 66.72)),
        ({"method": "CAML (Ours)", "supervision": "none"}, (96.42, 84.15, 50.60, 77.06)),
    ]),
    note="Values taken from Choe et al. (CVPR 2020) except MEIL (reproduced by the CAML "
         "authors from its released checkpoint). The pretext task of the CAML row is not "
         "stated.",
))

_add(Table(
    key="table2",
    source=f"{CAML_PAPER}, Table 2",
    caption="CorLoc@0.5 comparisons with the co-localization state of the art",
    metric="CorLoc@0.5 (%)",
    value_columns=DATASET_COLUMNS,
    rows=corloc_rows([
        ({"backbone": "VGG16", "method": "Part-based"}, (69.37, 93.05, 42.91, 36.23)),
        ({"backbone": "VGG16", "method": "SCDA"}, (76.79, 90.96, 94.91, 78.76)),
        ({"backbone": "VGG16", "method": "DDT"}, (82.26, 71.33, 92.53, None)),
        ({"backbone": "VGG16", "method": "OLM"}, (80.45, 92.51, 94.94, 80.70)),
        ({"backbone": "VGG16", "method": "PsyNet"}, (83.78, 96.61, 95.59, 73.71)),
        ({"backbone": "VGG16", "method": "CAML (Ours)"}, (85.88, 97.26, 96.60, 82.82)),
        ({"backbone": "SE-ResNet50", "method": "PsyNet"}, (85.10, 98.81, 97.81, 77.84)),
        ({"backbone": "SE-ResNet50", "method": "CAML (Ours)"}, (85.93, 98.95, 98.75, 80.32)),
    ], DATASET_COLUMNS),
    note="Values taken from the respective papers. The VGG16 CAML row equals supplement "
         "Table 3's rotation+scale row.",
))

_add(Table(
    key="table3",
    source=f"{CAML_PAPER}, Table 3",
    caption="Ablation of L_cls, L_caml and PTAP (CUB, VGG16, rotation)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "Baseline", "L_cls": True, "L_caml": False, "PTAP": False},
         (96.75, 77.21, 28.66, 67.54)),
        ({"method": "Ours", "L_cls": True, "L_caml": True, "PTAP": True},
         (97.30, 83.65, 38.64, 73.20)),
        ({"method": "- L_cls", "L_cls": False, "L_caml": True, "PTAP": True},
         (94.73, 77.25, 40.24, 70.74)),
        ({"method": "- L_caml", "L_cls": True, "L_caml": False, "PTAP": True},
         (96.65, 78.97, 32.70, 69.44)),
        ({"method": "- A_PTAP", "L_cls": True, "L_caml": True, "PTAP": False},
         (96.73, 79.49, 32.27, 69.50)),
    ]),
))

_add(Table(
    key="table4",
    source=f"{CAML_PAPER}, Table 4",
    caption="L_caml on attended feature maps or on attention maps (CUB, VGG16, rotation)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "L_caml w/ feature maps", "embedding": "features"},
         (95.82, 76.97, 30.96, 67.92)),
        ({"method": "L_caml w/ attention maps", "embedding": "attention"},
         (97.30, 83.65, 38.64, 73.20)),
    ]),
))

_add(Table(
    key="table5",
    source=f"{CAML_PAPER}, Table 5",
    caption="Positive and negative pairs (CUB, VGG16, rotation)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "Ours w/o neg pairs", "pairs": "positive"}, (96.94, 80.60, 32.94, 70.16)),
        ({"method": "Ours w/o pos pairs", "pairs": "negative"}, (96.65, 78.11, 28.99, 67.92)),
        ({"method": "Ours", "pairs": "both"}, (97.30, 83.65, 38.64, 73.20)),
    ]),
))

_add(Table(
    key="table6",
    source=f"{CAML_PAPER}, Table 6",
    caption="Pooling of PTAP (CUB, VGG16, rotation)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "Ours w/ bottom-30%", "pooling": "bottom-30%"}, (89.04, 57.90, 17.74, 54.89)),
        ({"method": "Ours w/ max", "pooling": "max"}, (91.09, 62.35, 20.60, 58.01)),
        ({"method": "Ours w/ top-70%", "pooling": "top-70%"}, (97.30, 83.65, 38.64, 73.20)),
        ({"method": "Ours w/ average", "pooling": "average"}, (96.30, 81.89, 34.65, 70.94)),
    ]),
))

_add(Table(
    key="table7",
    source=f"{CAML_PAPER}, Table 7",
    caption="CorLoc@0.5 of six pretext tasks, baseline vs. CAML (VGG16)",
    metric="CorLoc@0.5 (%)",
    value_columns=("baseline", "ours"),
    rows=_paired({
        "rotation": (77.21, 83.65, 88.69, 97.41, 91.86, 97.14, 77.79, 82.03),
        "scale": (44.66, 83.62, 77.41, 91.69, 65.70, 96.69, 67.30, 82.63),
        "translation": (22.98, 83.05, 61.37, 97.40, 47.13, 96.36, 58.05, 66.72),
        "hflip": (73.76, 75.12, 91.45, 96.81, 87.15, 94.83, 78.18, 80.88),
        "vflip": (75.94, 80.51, 91.96, 96.08, 92.85, 94.77, 77.07, 80.44),
        "pst": (48.92, 76.80, 92.89, 95.68, 92.41, 96.51, 67.91, 86.64),
    }),
    note="Baseline: classification loss only. PST results reproduced by the CAML authors "
         "with PsyNet's code.",
))

_add(Table(
    key="supp_table1",
    source=f"{CAML_SUPPLEMENT}, Table 1",
    caption="PTAP at test time or not (CUB, VGG16, rotation; PTAP used in training)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "PTAP at train only", "ptap_test": False}, (97.04, 81.29, 35.12, 71.15)),
        ({"method": "PTAP at train and test", "ptap_test": True}, (97.30, 83.65, 38.64, 73.20)),
    ]),
))

_add(Table(
    key="supp_table2",
    source=f"{CAML_SUPPLEMENT}, Table 2",
    caption="Channel-wise vs. pixel-wise top-k selection of PTAP (CUB, VGG16, rotation)",
    metric="CorLoc (%)",
    value_columns=CORLOC_COLUMNS,
    rows=corloc_rows([
        ({"method": "PTAP w/ channel-wise", "selection": "channel"}, (96.63, 80.66, 35.27, 70.86)),
        ({"method": "PTAP w/ pixel-wise", "selection": "pixel"}, (97.30, 83.65, 38.64, 73.20)),
    ]),
))

_add(Table(
    key="supp_table3",
    source=f"{CAML_SUPPLEMENT}, Table 3",
    caption="CorLoc@0.5 of combined transformations, baseline vs. CAML (VGG16)",
    metric="CorLoc@0.5 (%)",
    value_columns=("baseline", "ours"),
    rows=_paired({
        "rotation+scale": (79.98, 85.88, 91.19, 97.26, 91.11, 96.60, 76.84, 82.82),
        "scale+translation": (35.98, 84.15, 42.86, 97.50, 68.22, 96.72, 34.86, 83.62),
    }),
))


def table(key: str) -> Table:
    """A CAML table by key: ``table1`` ... ``table7``, ``supp_table1`` ... ``supp_table3``."""
    if key not in TABLES:
        raise KeyError(f"unknown CAML table {key!r}; available: {', '.join(TABLES)}")
    return TABLES[key]
