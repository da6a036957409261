"""Bounded windows of the reports a dashboard reads, straight from the lake.

A dashboard never loads a report's history: daily reports are read partition by partition for
the days asked, whole-table reports (the weekly review reports) are small by construction.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, partition_object_key, stored_partitions

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
    """Reads report windows for one dashboard build; remembers each listing and object it read, so
    charts and freshness over overlapping windows read every partition once."""

    def __init__(self, lake: LakeResource) -> None:
        self.lake = lake
        self._listings: dict[str, dict[dt.date, str]] = {}
        self._objects: dict[str, pd.DataFrame] = {}

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
        frames = [self._object(key) for key in keys]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _object(self, key: str) -> pd.DataFrame:
        if key not in self._objects:
            self._objects[key] = parquet_bytes_to_table(self.lake.get_bytes(key)).to_pandas()
        return self._objects[key]

    def present(self, report: str, first: dt.date, last: dt.date) -> set[dt.date]:
        """Days in the range that have a stored partition (possibly with no rows: a day without sales)."""
        return {day for day in self.days(report) if first <= day <= last}

    def whole(self, report: str) -> pd.DataFrame:
        """A report stored whole; none yet, no rows."""
        key = partition_object_key(asset_key(report), None, None)
        return self._object(key) if self.lake.exists(key) else pd.DataFrame()
