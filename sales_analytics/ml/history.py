"""The demand model's inputs: a window of the curated series and what every series knows ahead.

Assets get the tables from their declared inputs; the service opens the same tables with
``catalog.view``. Either way the rows come through the IO manager's reader, and memory is bounded
by the window, not by history.
"""

import datetime as dt

import pandas as pd
import pyarrow as pa

from sales_analytics.ml.series import CURATED_COLUMNS, Covariates, calendar_frame, series_panel, signals_frame
from sales_analytics.storage.parquet_io import LakeView

FORECAST_HISTORY_DAYS = 400  # what the features look back at: a year ago, plus a few weeks
SALES_COLUMNS = [*CURATED_COLUMNS, "units", "net_sales"]  # either target
CALENDAR_COLUMNS = ["date", "is_holiday", "is_promo_week", "is_current"]
SIGNAL_COLUMNS = ["date", "signal", "value"]


def last_day(sales: LakeView) -> dt.date | None:
    """The newest stored day of the curated series (within what the view declares)."""
    days = sales.partitions()
    return dt.date.fromisoformat(days[-1]) if days else None


def load_series(sales: LakeView, until: dt.date, days: int, target: str, level: str,
                known_ahead: pd.DataFrame) -> tuple[pd.DataFrame, Covariates]:
    """The forecasting panel at ``level`` (``series_id``, ``date``, ``y``) for the ``days`` up to
    ``until``, and its covariates."""
    first = until - dt.timedelta(days=days - 1)
    rows = sales.between(first.isoformat(), until.isoformat())
    if rows is None:
        return pd.DataFrame(columns=["series_id", "date", "y"]), Covariates()
    panel, static = series_panel(rows.select([*CURATED_COLUMNS, target]).to_pandas(), level, target)
    return panel, Covariates(static=static, calendar=known_ahead)


def known_ahead(calendar: pa.Table | None, signals: pa.Table | None) -> pd.DataFrame:
    """Per day, what every series knows ahead: holidays and promotion weeks (clean/calendar) and each
    signal of clean/signals as ``signal_<name>``; future days included, empty before either is built."""
    frames = []
    if calendar is not None:
        current = calendar.filter(calendar["is_current"]).to_pandas()
        frames.append(calendar_frame(current["date"], current["is_holiday"], current["is_promo_week"]))
    if signals is not None:
        frames.append(signals_frame(signals.to_pandas()))
    return pd.concat(frames, axis=1).sort_index() if frames else pd.DataFrame()
