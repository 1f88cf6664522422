"""Published numbers, as data: one module per paper, each table citing its source.

The book sets measured rows beside these; nothing here is ever written into a measured
column. Numbers are percentages as printed in the papers; ``None`` is a dash ("-").
This module holds the :class:`Table` every paper's module fills; :mod:`coloc.reference.caml`
holds CAML's tables (``table(key)``), and each later paper adds a module of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

CORLOC_COLUMNS = ("0.3", "0.5", "0.7", "mean")
"""IoU columns of a CorLoc or MaxBoxAccV2 table: three criteria and their mean."""


@dataclass(frozen=True)
class Table:
    """One published table: where it is from, what it measures, its rows.

    ``rows`` are mappings from column name to value: descriptive columns (method,
    backbone, switches) and numeric columns (``value_columns``, percentages or None).
    """

    key: str
    source: str  # "CAML (Ki et al., ICCV 2021), Table 3"
    caption: str
    metric: str
    value_columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    note: str = ""

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (descriptive columns first)."""
        frame = pd.DataFrame([dict(row) for row in self.rows])
        described = [c for c in frame.columns if c not in self.value_columns]
        return frame[described + [c for c in self.value_columns if c in frame.columns]]

    def row(self, **match: Any) -> Mapping[str, Any]:
        """The one row whose descriptive columns equal ``match`` (KeyError otherwise)."""
        found = [r for r in self.rows if all(r.get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise KeyError(f"{self.source}: {len(found)} rows match {match}")
        return found[0]


def corloc_rows(rows: Sequence[tuple[dict[str, Any], Sequence[float | None]]],
                 columns: Sequence[str] = CORLOC_COLUMNS) -> tuple[dict[str, Any], ...]:
    """Rows from ``(descriptive columns, values)`` pairs, values named by ``columns``."""
    return tuple({**meta, **dict(zip(columns, values, strict=True))} for meta, values in rows)
