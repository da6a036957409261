"""Clean order lines for one business date: mapped per source spec, validated, latest version only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.lake.coerce import validate
from sales_analytics.schema import ORDER_LINES, QUARANTINE
from sales_analytics.sources.mapping import map_rows
from sales_analytics.sources.spec import SourceSpec


@dataclass(frozen=True)
class CleanDay:
    day: dt.date
    lines: pa.Table  # ORDER_LINES schema, one row per business key, sorted by key
    rejects: pa.Table  # QUARANTINE schema
    rows_in: int
    duplicates_collapsed: int

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.lines.num_rows + self.rejects.num_rows + self.duplicates_collapsed


def clean_day(shards: list[pa.Table], day: dt.date, specs: dict[str, SourceSpec]) -> CleanDay:
    """``shards``: the day's raw shards, each from one landed file of one source."""
    valid, rejects = [ORDER_LINES.empty_table()], [QUARANTINE.empty_table()]
    for shard in shards:
        source = shard["source"][0].as_py()
        if source not in specs:
            raise KeyError(f"raw shard from {shard['source_file'][0]} names source {source!r}, which has no spec")
        result = validate(map_rows(shard, specs[source]), ORDER_LINES, shard)
        valid.append(result.valid)
        rejects.append(result.rejects)
    lines, duplicates = latest_versions(pa.concat_tables(valid))
    rows_in = sum(s.num_rows for s in shards)
    return CleanDay(day, lines, pa.concat_tables(rejects), rows_in, duplicates)


def latest_versions(lines: pa.Table) -> tuple[pa.Table, int]:
    """One row per business key: the latest ``updated_at`` wins; among equals, the later landing key.

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
