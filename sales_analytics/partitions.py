"""Partitioning: facts and reports are partitioned by order date (UTC days)."""

import datetime as dt
import warnings
from collections.abc import Mapping
from typing import Any

import dagster as dg

# backfill_policy is marked beta; we rely on it deliberately, so its warning is noise in every run.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

daily_partitions = dg.DailyPartitionsDefinition(start_date="2015-01-01")
# ISO weeks, Monday to Sunday (2015-01-05 is a Monday), keyed by their Monday.
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date="2015-01-05", day_offset=1)

# Backfills run in chunks of a month per run: memory stays bounded by the chunk, not by history.
MAX_DAYS_PER_RUN = 31
monthly_chunks = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)

# Dagster's tags for one run over a partition range (as a single-run backfill sets them).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def day_ranges(days: list[str], max_len: int = MAX_DAYS_PER_RUN) -> list[tuple[str, str]]:
    """Contiguous runs of the given days, each at most ``max_len`` long."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted({dt.date.fromisoformat(d) for d in days}):
        if ranges and (day - ranges[-1][1]).days == 1 and (day - ranges[-1][0]).days < max_len:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return [(first.isoformat(), last.isoformat()) for first, last in ranges]


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def add_partition_metadata(context: dg.AssetExecutionContext, by_partition: Mapping[str, Mapping[str, Any]],
                           asset_key: dg.AssetKey | None = None) -> None:
    """Each partition of the run gets its own numbers (``dagster/row_count`` of that day), not the
    range's totals repeated on every partition; partitions missing from ``by_partition`` get none."""
    for key in context.partition_keys:
        context.add_asset_metadata(dict(by_partition.get(key, {})), asset_key=asset_key, partition_key=key)
