"""Bounded windows of the reports a dashboard reads, through the views its declared inputs give.

A dashboard never loads a report's history: daily reports are read partition by partition for
the days asked, whole-table reports (the weekly review reports) are small by construction.
"""

import datetime as dt
from collections.abc import Mapping

import dagster as dg
import pandas as pd

from sales_analytics.catalog import lake_partition_column
from sales_analytics.storage.parquet_io import LakeView


def asset_key(report: str) -> dg.AssetKey:
    return dg.AssetKey(report.split("/"))


def input_name(report: str) -> str:
    """The name a report takes as an asset input ('reports/daily_sales' -> 'reports_daily_sales')."""
    return report.replace("/", "_")


def is_partitioned(report: str) -> bool:
    return lake_partition_column(asset_key(report)) is not None


class ReportReader:
    """Reads report windows for one dashboard build; remembers each partition it read, so charts and
    freshness over overlapping windows read every partition once."""

    def __init__(self, views: Mapping[str, LakeView]) -> None:
        self.views = views  # report -> its view
        self._frames: dict[tuple[str, str | None], pd.DataFrame] = {}

    def days(self, report: str) -> list[dt.date]:
        """Every stored partition day of a daily report, in order."""
        return [dt.date.fromisoformat(day) for day in self.views[report].partitions()]

    def newest_day(self, report: str, not_after: dt.date | None = None) -> dt.date | None:
        days = [d for d in self.days(report) if not_after is None or d <= not_after]
        return max(days, default=None)

    def window(self, report: str, first: dt.date, last: dt.date) -> pd.DataFrame:
        """Rows of the stored partitions from ``first`` to ``last`` (inclusive); none stored, no rows."""
        frames = [self._frame(report, day.isoformat()) for day in self.days(report) if first <= day <= last]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def present(self, report: str, first: dt.date, last: dt.date) -> set[dt.date]:
        """Days in the range that have a stored partition (possibly with no rows: a day without sales)."""
        return {day for day in self.days(report) if first <= day <= last}

    def whole(self, report: str) -> pd.DataFrame:
        """A report stored whole; none yet, no rows."""
        return self._frame(report, None)

    def _frame(self, report: str, day: str | None) -> pd.DataFrame:
        if (report, day) not in self._frames:
            view = self.views[report]
            table = view.whole() if day is None else view.read([day])
            self._frames[report, day] = table.to_pandas() if table is not None else pd.DataFrame()
        return self._frames[report, day]
