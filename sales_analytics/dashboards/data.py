"""Bounded windows of the reports a dashboard reads, straight from the lake.

A dashboard never loads a report's history: daily reports are read partition by partition for
the days asked, whole-table reports (the weekly review reports) are small by construction.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, read_unpartitioned, stored_partitions

# report asset key -> its partition column (None: stored whole)
PARTITION_COLUMNS = {
    "reports/daily_sales": "sale_date",
    "reports/daily_store_sales": "sale_date",
    "ml/demand_forecast": "origin_date",
    "ml/forecast_accuracy": "target_date",
    "reports/review_sentiment": None,
    "reports/review_aspects": None,
    "reports/negative_review_spikes": None,
}


def asset_key(report: str) -> dg.AssetKey:
    return dg.AssetKey(report.split("/"))


class ReportReader:
    """Reads report windows; remembers each report's partition listing for the run."""

    def __init__(self, lake: LakeResource) -> None:
        self.lake = lake
        self._listings: dict[str, dict[dt.date, str]] = {}

    def days(self, report: str) -> dict[dt.date, str]:
        """Partition day -> object key of every stored partition of a daily report."""
        if report not in self._listings:
            listed = stored_partitions(self.lake, asset_key(report), PARTITION_COLUMNS[report])
            self._listings[report] = {dt.date.fromisoformat(day): key for day, key in listed.items()}
        return self._listings[report]

    def newest_day(self, report: str, not_after: dt.date | None = None) -> dt.date | None:
        days = [d for d in self.days(report) if not_after is None or d <= not_after]
        return max(days, default=None)

    def window(self, report: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        """Rows of the stored partitions from ``first`` to ``last`` (inclusive); none stored, no rows."""
        keys = [key for day, key in sorted(self.days(report).items()) if first <= day <= last]
        frames = [parquet_bytes_to_table(self.lake.get_bytes(key)).to_pandas() for key in keys]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def present(self, report: str, first: dt.date, last: dt.date) -> set[dt.date]:
        """Days in the range that have a stored partition (possibly with no rows: a day without sales)."""
        return {day for day in self.days(report) if first <= day <= last}

    def whole(self, report: str) -> pd.DataFrame:
        table = read_unpartitioned(self.lake, asset_key(report))
        return table.to_pandas() if table is not None else pd.DataFrame()
