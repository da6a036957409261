"""The demand model's inputs: a window of the curated series and what every series knows ahead.

Assets get the tables from their declared inputs; the service opens the same tables with
``catalog.view``. Either way the rows come through the IO manager's reader, and memory is bounded
by the window, not by history.
"""

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.ml.series import (
    CURATED_COLUMNS,
    SERIES_LEVELS,
    Covariates,
    calendar_frame,
    series_panel,
    signals_frame,
)
from sales_analytics.storage.parquet_io import LakeView

FORECAST_HISTORY_DAYS = 400  # what the features look back at: a year ago, plus a few weeks
SALES_COLUMNS = [*CURATED_COLUMNS, "units", "net_sales"]  # either target
CALENDAR_COLUMNS = ["date", "is_holiday", "is_promo_week", "is_current"]
SIGNAL_COLUMNS = ["date", "store_id", "signal", "value"]
STORE_COLUMNS = ["store_id", "region", "currency", "size", "is_current"]
STORE_COVARIATES = {"size": "store_size"}  # store master column -> static covariate of a store's series


@dataclass(frozen=True)
class KnownAhead:
    """What is known of days and stores besides their sales, future days included: ``calendar`` per day for
    every store (holidays, promotion weeks, national signals as ``signal_<name>``); ``by_store`` a store's own
    signals (columns ``date, store_id, signal_<name>...``); ``stores`` each store's current attributes."""

    calendar: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_store: pd.DataFrame = field(default_factory=pd.DataFrame)
    stores: pd.DataFrame = field(default_factory=pd.DataFrame)


def last_day(sales: LakeView) -> dt.date | None:
    """The newest stored day of the curated series (within what the view declares)."""
    days = sales.partitions()
    return dt.date.fromisoformat(days[-1]) if days else None


def load_series(sales: LakeView, until: dt.date, days: int, target: str, level: str,
                known: KnownAhead) -> tuple[pd.DataFrame, Covariates]:
    """The forecasting panel at ``level`` (``series_id``, ``date``, ``y``) for the ``days`` up to
    ``until``, and its covariates: a store's own signals and attributes go to the series of that store."""
    first = until - dt.timedelta(days=days - 1)
    rows = sales.between(first.isoformat(), until.isoformat())
    if rows is None:
        return pd.DataFrame(columns=["series_id", "date", "y"]), Covariates()
    panel, static = series_panel(rows.select([*CURATED_COLUMNS, target]).to_pandas(), level, target)
    store_of = SERIES_LEVELS[level].store_of(static.index)
    if store_of is None:  # a series spans stores: only what every store shares applies
        return panel, Covariates(static=static, calendar=known.calendar)
    attributes = known.stores.reindex(store_of.to_numpy()).set_axis(static.index)
    return panel, Covariates(static=static.join(attributes), calendar=known.calendar,
                             by_series=_per_series(known.by_store, store_of))


def _per_series(by_store: pd.DataFrame, store_of: pd.Series) -> dict[str, pd.DataFrame]:
    """Each store signal as a table of days x series, a series taking its store's values."""
    if by_store.empty:
        return {}
    signals = {}
    for name in by_store.columns.drop(["date", "store_id"]):
        wide = by_store.pivot(index="date", columns="store_id", values=name)
        present = store_of[store_of.isin(wide.columns)]
        if len(present):
            signals[name] = wide[present.to_numpy()].set_axis(present.index, axis=1)
    return signals


def known_ahead(calendar: pa.Table | None, signals: pa.Table | None, stores: pa.Table | None = None) -> KnownAhead:
    """Holidays and promotion weeks (clean/calendar), each signal of clean/signals as ``signal_<name>`` (for
    every store, or a store's own) and the store master's covariates; empty before each is built."""
    frames = []
    if calendar is not None:
        current = calendar.filter(calendar["is_current"]).to_pandas()
        frames.append(calendar_frame(current["date"], current["is_holiday"], current["is_promo_week"]))
    by_store = pd.DataFrame()
    if signals is not None:
        everywhere = pc.is_null(signals["store_id"])
        national, own = signals.filter(everywhere), signals.filter(pc.invert(everywhere))
        if national.num_rows:
            frames.append(signals_frame(national.to_pandas()))
        if own.num_rows:
            by_store = signals_frame(own.to_pandas(), ["store_id"]).reset_index()
    return KnownAhead(calendar=pd.concat(frames, axis=1).sort_index() if frames else pd.DataFrame(),
                      by_store=by_store, stores=_store_covariates(stores))


def _store_covariates(stores: pa.Table | None) -> pd.DataFrame:
    if stores is None:
        return pd.DataFrame()
    current = stores.filter(pc.equal(stores["is_current"], True)).to_pandas()
    return current.set_index("store_id")[list(STORE_COVARIATES)].rename(columns=STORE_COVARIATES).astype(float)
