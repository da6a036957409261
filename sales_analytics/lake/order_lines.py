"""Clean order lines for a range of business dates: mapped per source spec, validated, latest version only.

The range is processed as one batch per source (vectorised over all its days), then split back
into days: a backfill of a week costs a few large Arrow operations, not seven small ones.

A line is keyed by ``(source, order_id, line_no)`` within its order date, so each day is built
from its own raw shards alone. A source whose spec says each delivery replaces an order keeps only
the order's lines from its latest file (the lines of earlier files count as superseded). A correction that moves a line to another day is a new line there;
the source cancels the old one (the contract the README states).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.lake.coerce import validate
from sales_analytics.schema import ORDER_LINES, QUARANTINE
from sales_analytics.sources.mapping import Mapped, map_rows
from sales_analytics.sources.spec import SourceSpec
from sales_analytics.tables import same_as_neighbour, split_by, with_constants

SHARD_DAY = "_shard_day"  # the raw shard a row came from: the partition it belongs to


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


def clean_days(shards_by_day: dict[str, list[pa.Table]], specs: dict[str, SourceSpec]) -> list[CleanDay]:
    """``shards_by_day``: each day's raw shards (one landed file of one source each)."""
    by_source: dict[str, list[pa.Table]] = {}
    for day, shards in shards_by_day.items():
        for shard in shards:
            source = shard["source"][0].as_py()
            if source not in specs:
                raise KeyError(f"raw shard from {shard['source_file'][0]} names source {source!r}, which has no spec")
            by_source.setdefault(source, []).append(with_constants(shard, {SHARD_DAY: dt.date.fromisoformat(day)}))
    valid, current, rejects = [ORDER_LINES.empty_table()], [ORDER_LINES.empty_table()], [QUARANTINE.empty_table()]
    for source, shards in by_source.items():
        batch = pa.concat_tables(shards, promote_options="permissive")
        mapped = map_rows(batch, specs[source])
        _pin_to_shard_day(mapped, batch[SHARD_DAY])
        result = validate(mapped, ORDER_LINES, batch, partition_day=batch[SHARD_DAY])
        valid.append(result.valid)
        current.append(latest_deliveries(result.valid) if specs[source].changes.delivery_replaces_order else result.valid)
        rejects.append(result.rejects)
    all_valid = pa.concat_tables(valid)
    lines = split_by(latest_versions(pa.concat_tables(current))[0], "order_date")
    valid_counts = {d: t.num_rows for d, t in split_by(all_valid.select(["order_date"]), "order_date").items()}
    day_rejects = split_by(pa.concat_tables(rejects), "order_date")
    no_lines, no_rejects = ORDER_LINES.empty_table(), QUARANTINE.empty_table()
    days = []
    for day, shards in shards_by_day.items():
        date = dt.date.fromisoformat(day)
        day_lines = lines.get(date, no_lines)
        days.append(CleanDay(date, day_lines, day_rejects.get(date, no_rejects),
                             sum(s.num_rows for s in shards), valid_counts.get(date, 0) - day_lines.num_rows))
    return days


def _pin_to_shard_day(mapped: dict[str, Mapped], shard_day: pa.ChunkedArray) -> None:
    """A row belongs to the day its raw shard is in; a mapping that now says otherwise (the spec
    changed after landing) is a rejection, not a row written into someone else's partition."""
    derived = mapped["order_date"].parsed
    same = pc.fill_null(pc.equal(derived, shard_day), False)
    mapped["order_date"] = Mapped(pc.if_else(same, derived, pa.scalar(None, pa.date32())), pc.cast(derived, pa.string()),
                                  "business date differs from the day the row landed under (spec changed?)")


def clean_day(shards: list[pa.Table], day: dt.date, specs: dict[str, SourceSpec]) -> CleanDay:
    return clean_days({day.isoformat(): shards}, specs)[0]


def latest_deliveries(lines: pa.Table) -> pa.Table:
    """Only each order's lines from its latest delivery (the file with its newest ``updated_at``, then
    the later landing key): a correction that leaves a line out removes it."""
    if lines.num_rows == 0:
        return lines
    order = ["order_date", "order_id"]
    ranked = lines.select([*order, "updated_at", "source_file"]).sort_by(
        [(k, "ascending") for k in order] + [("updated_at", "descending"), ("source_file", "descending")])
    winners = ranked.filter(pc.invert(same_as_neighbour(ranked, order, 1))).select([*order, "source_file"])
    delivered = lines.join(winners.rename_columns([*order, "_delivery"]), keys=order, use_threads=False)
    return delivered.filter(pc.equal(delivered["source_file"], delivered["_delivery"])).select(lines.column_names).cast(lines.schema)


def latest_versions(lines: pa.Table) -> tuple[pa.Table, int]:
    """One row per day and business key: the latest ``updated_at`` wins; among equals, the later landing key.

    Returns the deduplicated table (sorted by day and key) and how many rows were collapsed.
    """
    if lines.num_rows == 0:
        return lines, 0
    group = ["order_date", *ORDER_LINES.key]
    order = [(k, "ascending") for k in group] + [("updated_at", "descending"), ("source_file", "descending")]
    ranked = pc.sort_indices(lines.select([*group, "updated_at", "source_file"]), sort_keys=order)
    first = pc.invert(same_as_neighbour(lines.select(group).take(ranked), group, 1))
    winners = lines.take(ranked.filter(first))
    return winners, lines.num_rows - winners.num_rows
