"""Forecasting series: the curated store x product grain summed to the level a model forecasts at,
with what is known about each series besides its sales (its attributes, the shared calendar)."""

import zlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SeriesLevel:
    keys: tuple[str, ...]  # curated columns that name a series, joined by '|'
    attributes: tuple[str, ...]  # curated columns constant within a series: its static features

    def store_of(self, series_ids: pd.Index) -> pd.Series | None:
        """Each series' store (indexed by series id); None when a series spans stores."""
        if "store_id" not in self.keys:
            return None
        return pd.Series(series_ids.str.split("|").str[self.keys.index("store_id")], index=series_ids)


SeriesLevelName = Literal["store_category", "store_product", "region_category"]  # the keys of SERIES_LEVELS
SERIES_LEVELS: dict[str, SeriesLevel] = {
    "store_category": SeriesLevel(("store_id", "category"), ("region", "store_format", "category")),
    "store_product": SeriesLevel(("store_id", "product_id"), ("region", "store_format", "category")),
    "region_category": SeriesLevel(("region", "category"), ("region", "category")),
}
CURATED_COLUMNS = ["sale_date", "store_id", "product_id", "category", "region", "store_format"]


@dataclass
class Covariates:
    """``static``: one row per series (index ``series_id``), e.g. the store's format or size;
    ``calendar``: one row per day (index ``date``, future days included), known ahead for every series
    alike, e.g. holidays and promotion weeks; ``by_series``: per signal, a table of days x series (future
    days included) for what differs by series, e.g. a store's temperature or planned markdowns."""

    static: pd.DataFrame = field(default_factory=pd.DataFrame)
    calendar: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_series: dict[str, pd.DataFrame] = field(default_factory=dict)

    def feature_names(self) -> list[str]:
        return [*self.static.columns, *self.calendar.columns, *self.by_series]

    def static_codes(self) -> pd.DataFrame:
        """Static attributes as numbers: text by a stable hash, so codes agree between training and
        serving without a stored vocabulary (trees split codes apart as they need)."""
        return self.static.apply(lambda column: column if pd.api.types.is_numeric_dtype(column)
                                 else column.astype(str).map(_stable_code)).astype(float)


def _stable_code(text: str) -> float:
    return float(zlib.crc32(text.encode()) % 100_003)


def series_panel(curated: pd.DataFrame, level: str, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``series_id, date, y`` per series and day at ``level``; each series' latest attributes)."""
    spec = SERIES_LEVELS[level]
    series_id = curated[spec.keys[0]].astype(str)
    for key in spec.keys[1:]:
        series_id = series_id + "|" + curated[key].astype(str)
    frame = curated.assign(series_id=series_id.to_numpy())
    panel = (frame.groupby(["series_id", "sale_date"], as_index=False, sort=False)[target].sum()
             .rename(columns={"sale_date": "date", target: "y"}))
    panel["y"] = panel["y"].astype(float)
    static = frame.sort_values("sale_date").groupby("series_id")[list(spec.attributes)].last()
    return panel, static


def calendar_frame(dates: pd.Series, is_holiday: pd.Series, is_promo_week: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"is_holiday": np.asarray(is_holiday, float), "is_promo_week": np.asarray(is_promo_week, float)},
                        index=pd.DatetimeIndex(pd.to_datetime(dates), name="date")).sort_index()


def signals_frame(signals: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """clean/signals (``date, signal, value``) as one ``signal_<name>`` column per signal, one row per day
    (and per ``by`` column, e.g. the store)."""
    signals = signals.assign(date=pd.to_datetime(signals["date"]))
    wide = signals.pivot(index=["date", *(by or [])], columns="signal", values="value").add_prefix("signal_")
    wide.columns.name = None
    return wide.astype(float)


def generated_weekly_panel(series: int, weeks: int, seed: int = 3,
                           markdowns: bool = False) -> tuple[pd.DataFrame, Covariates]:
    """Weekly sales dated by their Friday, as a weekly source reports them: a yearly season, holiday weeks
    (Thanksgiving's and Christmas's, known ahead in the calendar) that sell up to twice as much, returns that
    make a quiet week negative now and then, and stores of different sizes. With ``markdowns``, each store
    marks down in a few weeks of its own, planned 13 weeks ahead, selling more in proportion (a per-series
    signal, ``signal_markdown``). For tests and benchmarks."""
    rng = np.random.default_rng(seed)
    fridays = pd.date_range("2021-01-08", periods=weeks, freq="W-FRI")
    week = fridays.isocalendar().week.to_numpy(int)
    holiday = np.isin(week, (47, 51)).astype(float)
    season = 1 + 0.35 * np.sin(2 * np.pi * (week - 10) / 52)
    size = rng.lognormal(0, 0.6, series)
    trend = 1 + rng.normal(0.0015, 0.001, series)[:, None] * np.arange(weeks)
    y = 1000 * size[:, None] * season * trend * (1 + 0.9 * holiday) * rng.lognormal(0, 0.08, (series, weeks))
    planned = _markdowns(np.random.default_rng(seed + 1), series, weeks + 13) if markdowns else np.zeros((series, weeks + 13))
    y *= 1 + planned[:, :weeks]
    y -= rng.binomial(1, 0.01, (series, weeks)) * 1.2 * y  # a week whose returns exceed its sales
    panel = pd.DataFrame({"series_id": np.repeat([f"W{i:04d}" for i in range(series)], weeks),
                          "date": np.tile(fridays, series), "y": y.ravel()})
    days = pd.date_range(fridays[0] - pd.Timedelta(days=6), fridays[-1] + pd.Timedelta(weeks=13), freq="D")
    day_week = days.isocalendar().week.to_numpy(int)
    calendar = calendar_frame(pd.Series(days), pd.Series((np.isin(day_week, (47, 51)) & (days.dayofweek == 3)).astype(int)),
                              pd.Series(np.zeros(len(days))))
    ids = pd.Index(panel["series_id"].unique(), name="series_id")
    static = pd.DataFrame({"size": size}, index=ids)
    by_series = {"signal_markdown": pd.DataFrame(planned.T, index=pd.DatetimeIndex(
        pd.date_range(fridays[0], periods=weeks + 13, freq="W-FRI"), name="date"), columns=ids)} if markdowns else {}
    return panel, Covariates(static=static, calendar=calendar, by_series=by_series)


def _markdowns(rng: np.random.Generator, series: int, weeks: int) -> np.ndarray:
    """A markdown's uplift in about one week in eight: 10-60% more sales."""
    return rng.binomial(1, 0.12, (series, weeks)) * rng.uniform(0.1, 0.6, (series, weeks))
