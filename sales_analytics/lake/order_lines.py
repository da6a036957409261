"""Clean order lines for one order date: typed, validated, deduplicated to the latest version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.lake.coerce import REJECT_SCHEMA, coerce, parse_timestamps
from sales_analytics.schema import ORDER_LINES


@dataclass(frozen=True)
class CleanDay:
    day: dt.date
    lines: pa.Table  # ORDER_LINES schema, one row per business key, sorted by key
    rejects: pa.Table  # REJECT_SCHEMA
    rows_in: int
    duplicates_collapsed: int

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.lines.num_rows + self.rejects.num_rows + self.duplicates_collapsed


def clean_day(raw: pa.Table | None, day: dt.date) -> CleanDay:
    if raw is None or raw.num_rows == 0:
        return CleanDay(day, ORDER_LINES.empty_table(), REJECT_SCHEMA.empty_table(), 0, 0)
    order_date = parse_timestamps(raw["order_ts"]).cast(pa.date32()) if "order_ts" in raw.column_names else None
    result = coerce(raw, ORDER_LINES, derived={"order_date": order_date} if order_date is not None else None)
    lines, duplicates = latest_versions(result.valid)
    return CleanDay(day, lines, result.rejects, raw.num_rows, duplicates)


def latest_versions(lines: pa.Table) -> tuple[pa.Table, int]:
    """One row per business key: the latest ``updated_at`` wins; among equals, the last landed.

    Returns the deduplicated table (sorted by key) and how many rows were collapsed.
    """
    if lines.num_rows == 0:
        return lines, 0
    order = [(k, "ascending") for k in ORDER_LINES.key] + [("updated_at", "descending"), ("source_file", "descending")]
    ranked = lines.take(pc.sort_indices(lines, sort_keys=order))
    ranked = ranked.append_column("_rank", pa.array(range(ranked.num_rows), pa.int64()))
    firsts = ranked.group_by(list(ORDER_LINES.key), use_threads=False).aggregate([("_rank", "min")])
    keep = pc.sort_indices(firsts["_rank_min"])
    winners = ranked.take(firsts["_rank_min"].take(keep)).drop_columns(["_rank"])
    return winners, lines.num_rows - winners.num_rows
