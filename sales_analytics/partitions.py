"""Partitioning: facts and reports are partitioned by order date (UTC days)."""

import datetime as dt
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

# backfill_policy is marked beta; we rely on it deliberately, so its warning is noise in every run.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")
# Likewise look-back windows that reach before the first partition (see look_back).
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*allow_nonexistent_upstream_partitions.*")

HISTORY_START_ENV = "SALES_ANALYTICS_HISTORY_START"
DEFAULT_HISTORY_START = "2015-01-01"
FUTURE_DAYS = 1  # an order dated later than tomorrow (UTC) is a typo or a wrong format, not a sale


def history_start() -> dt.date:
    """The deployment's first day of history (read when the code location loads): day partitions start
    there, and older rows are quarantined at ingest."""
    value = os.environ.get(HISTORY_START_ENV, DEFAULT_HISTORY_START)
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"{HISTORY_START_ENV}={value!r} is not a date (YYYY-MM-DD)") from err


def latest_plausible_day(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date() + dt.timedelta(days=FUTURE_DAYS)


FIRST_DAY = history_start()
daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat())
# ISO weeks, Monday to Sunday, keyed by their Monday: the first whole week of history.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=(FIRST_DAY + dt.timedelta(days=-FIRST_DAY.weekday() % 7)).isoformat(), day_offset=1)

# Backfills run in chunks of a month per run: memory stays bounded by the chunk, not by history.
MAX_DAYS_PER_RUN = 31
MAX_GAP_DAYS = 7  # a week: weekly data's days share runs
MAX_SPAN_DAYS = 92  # a quarter: the most days one run rebuilds, given days or not
monthly_chunks = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)

# Dagster's tags for one run over a partition range (as a single-run backfill sets them).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def day_ranges(days: list[str], max_len: int = MAX_DAYS_PER_RUN) -> list[tuple[str, str]]:
    """The given days in as few runs as memory allows: days at most ``MAX_GAP_DAYS`` apart share a range, so a
    weekly source's weeks are not a run each (the days between are rebuilt too, unchanged). A range holds at
    most ``max_len`` of the given days and spans at most ``MAX_SPAN_DAYS``: dense daily data still runs a month
    at a time, sparse data up to a quarter."""
    ranges: list[tuple[dt.date, dt.date, int]] = []  # first, last, days given within
    for day in sorted({dt.date.fromisoformat(d) for d in days}):
        if ranges and (day - ranges[-1][1]).days <= MAX_GAP_DAYS and ranges[-1][2] < max_len \
                and (day - ranges[-1][0]).days < MAX_SPAN_DAYS:
            ranges[-1] = (ranges[-1][0], day, ranges[-1][2] + 1)
        else:
            ranges.append((day, day, 1))
    return [(first.isoformat(), last.isoformat()) for first, last, _ in ranges]


def partition_days(days: Iterable[str], now: dt.datetime | None = None) -> list[str]:
    """Those of ``days`` that are day partitions now: a day becomes one when it is over (UTC), so rows
    of today wait for the daily schedule's run tomorrow; days before the first partition never are."""
    first = daily_partitions.get_first_partition_key() or ""
    last = ((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    return sorted(d for d in set(days) if first <= d <= last)


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def add_partition_metadata(context: dg.AssetExecutionContext, by_partition: Mapping[str, Mapping[str, Any]],
                           asset_key: dg.AssetKey | None = None) -> None:
    """Each partition of the run gets its own numbers (``dagster/row_count`` of that day), not the
    range's totals repeated on every partition; partitions missing from ``by_partition`` get none."""
    for key in context.partition_keys:
        context.add_asset_metadata(dict(by_partition.get(key, {})), asset_key=asset_key, partition_key=key)


def look_back(first: int, last: int = 0) -> dg.TimeWindowPartitionMapping:
    """A daily dependency on the days from ``first`` to ``last`` days before the asset's own day; days
    before the partitions begin do not exist, and a reader finds them absent."""
    return dg.TimeWindowPartitionMapping(start_offset=-first, end_offset=-last, allow_nonexistent_upstream_partitions=True)
