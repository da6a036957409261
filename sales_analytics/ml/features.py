"""Forecast features: what is known at a forecast origin about each (series, target period).

Series are modelled at their grain (``Grain``): daily sales by day (lags in days, a week's and a year's
season), weekly sales by week (lags in weeks, the 52-week season, holiday weeks), never weekly totals
spread over padded days. Input is a panel ``series_id, date, y`` plus optional per-series columns known
ahead of time (promotion plans, opening days, holidays), and ``Covariates``: each series' static
attributes, a calendar of days known ahead for all (holidays, promotion weeks, signals such as the
weather forecast) and signals known ahead per series (a store's own temperature or planned markdowns).
One row of features per series, origin and horizon step ``k`` (1..horizon): a *direct* multi-step
model that takes the step as a feature, so one global model serves every horizon without feeding its
own errors back.

Targets are scaled by each series' recent level (mean of the ``level`` periods up to the origin: 28
days, 13 weeks), so one model learns shapes shared across stores of very different size; predictions are
scaled back.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sales_analytics.ml.series import Covariates
from sales_analytics.schema import WEEKDAYS

KNOWN_AHEAD = ("open", "promo", "holiday", "school_holiday")  # exogenous columns used at the target period


@dataclass(frozen=True)
class Grain:
    """The period a series is modelled in; every count below is in periods of it."""
    name: str  # "day" or "week"
    freq: str  # pandas frequency of its dates: "D", or "W-FRI" for weeks ending (dated) on Fridays
    days: int  # in a period
    season: int  # the repeating cycle the seasonal lag and seasonal naive use: a week of days, a year of weeks
    year: int  # periods in a year, for last year's value: 364 days (the same weekday), 52 weeks
    short: int  # the recent mean (feature "mean_7", named for days): 7 days, 4 weeks
    level: int
    # Before an origin, for it to be a training example: 8 weeks of days; a year and a month of weeks, so every
    # weekly example has last year's week, weekly sales' main signal (generated weeks: the accuracy of half a
    # year's history, with less to train on; the same count as days, so the weekly path is no dearer than the daily).
    min_history: int

    @property
    def anchor(self) -> str | None:
        """The weekday a week is dated by; None for days."""
        return self.freq.removeprefix("W-") if self.name == "week" else None

    def span(self, periods: int | np.ndarray) -> pd.Timedelta | pd.TimedeltaIndex:
        """``periods`` periods as time."""
        return pd.to_timedelta(np.asarray(periods) * self.days, unit="D")


DAY = Grain("day", "D", days=1, season=7, year=364, short=7, level=28, min_history=56)


def weekly(anchor: str = "SUN") -> Grain:
    """Weeks dated by the day they end on (``anchor``): a source's week, as it reports it."""
    if anchor not in WEEKDAYS:
        raise ValueError(f"unknown week anchor {anchor!r}: one of {', '.join(WEEKDAYS)}")
    return Grain("week", f"W-{anchor}", days=7, season=52, year=52, short=4, level=13, min_history=56)


@dataclass(frozen=True)
class FeatureConfig:
    horizon: int = 28  # periods of the grain
    grain: Grain = DAY
    origin_stride: int = 14  # periods; days: training origins two weeks apart: half the rows of weekly, same accuracy on Rossmann
    same_weekday_weeks: int = 4  # mean of the same weekday over this many weeks
    max_training_rows: int = 1_500_000  # beyond this, each training origin sees a random share of the series


def feature_columns(panel: pd.DataFrame, grain: Grain, covariates: Covariates | None = None) -> list[str]:
    """The features a model at ``grain`` can use: a week has no weekday, and its season is its year (last year's
    week is the seasonal lag)."""
    exogenous = [c for c in KNOWN_AHEAD if c in panel.columns]
    return ["step", *(["weekday"] if grain.days == 1 else []), "week_of_year", "month", "day_of_month", "is_payday",
            "seasonal_lag", *(["last_year"] if grain.year != grain.season else []), "same_weekday_mean", "mean_7",
            "last_value", "trend", *exogenous, *(covariates.feature_names() if covariates else [])]


def dense_panel(panel: pd.DataFrame, grain: Grain = DAY) -> pd.DataFrame:
    """Every series in every period of its span (a missing period is zero sales), sorted, exogenous kept;
    a row delivered twice counts once (the later one). For weeks, the days of a week are summed into it,
    dated by its anchor (exogenous columns: their mean over the week's rows)."""
    panel = (panel.assign(date=pd.to_datetime(panel["date"])).drop_duplicates(["series_id", "date"], keep="last")
             .sort_values(["series_id", "date"]))
    if grain.name == "week":
        panel = _weeks(panel, grain)
    spans = panel.groupby("series_id")["date"].agg(["min", "max"])
    lengths = ((spans["max"] - spans["min"]) // grain.span(1) + 1).to_numpy()
    starts = np.cumsum(lengths) - lengths
    period_in_span = np.arange(lengths.sum()) - np.repeat(starts, lengths)
    index = pd.MultiIndex.from_arrays(
        [np.repeat(spans.index.to_numpy(), lengths),
         np.repeat(spans["min"].to_numpy(), lengths) + grain.span(period_in_span).to_numpy()],
        names=["series_id", "date"])
    dense = panel.set_index(["series_id", "date"]).reindex(index)
    dense["y"] = dense["y"].fillna(0.0)
    return dense.reset_index()


def _weeks(panel: pd.DataFrame, grain: Grain) -> pd.DataFrame:
    week_end = panel["date"].dt.to_period(grain.freq).dt.end_time.dt.normalize()
    exogenous = [c for c in panel.columns if c not in ("series_id", "date", "y")]
    return (panel.assign(date=week_end).groupby(["series_id", "date"], as_index=False, sort=True)
            .agg({"y": "sum", **dict.fromkeys(exogenous, "mean")}))


def calendar_at(calendar: pd.DataFrame, grain: Grain) -> pd.DataFrame:
    """A daily table (holidays, promotion weeks, signals; one column per name or per series) at the grain: a
    week has a holiday when one of its days has; signals are the week's mean."""
    if grain.name == "day" or calendar.empty:
        return calendar
    flags = [c for c in calendar.columns if set(pd.unique(calendar[c].dropna())) <= {0, 1}]
    weeks = calendar.groupby(calendar.index.to_period(grain.freq).end_time.normalize())
    return weeks.mean().assign(**{c: weeks[c].max() for c in flags})


def build_features(dense: pd.DataFrame, origins: list[pd.Timestamp], config: FeatureConfig,
                   covariates: Covariates | None = None, sample: float = 1.0) -> pd.DataFrame:
    """Feature rows for each origin, series and step; ``y`` (the actual, where known) and ``level``.
    With ``sample`` < 1 each origin keeps that share of the series (a fixed draw per origin)."""
    wide = dense.pivot(index="date", columns="series_id", values="y").sort_index()
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq=config.grain.freq))
    exog = {c: dense.pivot(index="date", columns="series_id", values=c).reindex(index=wide.index, columns=wide.columns).to_numpy(float)
            for c in KNOWN_AHEAD if c in dense.columns}
    values = wide.to_numpy(float)
    covariates = covariates or Covariates()
    ahead = pd.date_range(wide.index[0], periods=len(wide.index) + config.horizon, freq=config.grain.freq)
    exog |= {name: calendar_at(table, config.grain).reindex(index=ahead, columns=wide.columns).to_numpy(float)
             for name, table in covariates.by_series.items()}  # known for the periods ahead too
    static = covariates.static_codes().reindex(wide.columns)
    calendar = calendar_at(covariates.calendar, config.grain)
    frames = [_at_origin(values, exog, wide.index, wide.columns, wide.index.get_loc(origin), config, static, calendar,
                         sample) for origin in origins if origin in wide.index]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _at_origin(values: np.ndarray, exog: dict[str, np.ndarray], dates: pd.DatetimeIndex, series: pd.Index, origin: int,
               config: FeatureConfig, static: pd.DataFrame, calendar: pd.DataFrame, sample: float) -> pd.DataFrame:
    """All steps at one origin as (step x series) arrays: only periods up to ``origin`` inform features."""
    grain = config.grain
    if origin + 1 < min(grain.season, grain.level):
        return pd.DataFrame()
    known = values[:origin + 1]
    alive = ~np.all(np.isnan(known), axis=0)  # series that existed by the origin
    if sample < 1.0:
        alive &= np.random.default_rng(origin).random(len(alive)) < sample
    # Within a series' span missing days are zeros (dense_panel); NaN means it did not exist yet, and
    # a new store's level is the mean of the days it has, not diluted by days before it opened.
    known = known[:, alive]
    level = _recent_mean(known, grain.level)
    level = np.where(level > 0, level, np.maximum(_recent_mean(known, len(known)), 0))
    level = np.where(level > 0, level, 1.0)
    mean_short, mean_long = _recent_mean(known, grain.short) / level, _recent_mean(known, grain.level) / level
    previous_long = _recent_mean(known[:-grain.level], grain.level) / level if len(known) >= 2 * grain.level else mean_long
    steps = np.arange(1, config.horizon + 1)
    targets = origin + steps
    seasonal_index = targets - grain.season * -(-steps // grain.season)  # the same point in the last known season
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no such point yet in a new series' history
        same_weekday = np.nanmean([_rows(known, seasonal_index - grain.season * w) for w in range(config.same_weekday_weeks)],
                                  axis=0)
    target_dates = dates[origin] + grain.span(steps)
    shape = (len(steps), int(alive.sum()))
    columns = {
        "series_id": np.broadcast_to(series[alive].to_numpy(), shape),
        "origin": np.full(shape, dates[origin]),
        "date": np.broadcast_to(target_dates.to_numpy()[:, None], shape),
        "step": np.broadcast_to(steps[:, None], shape),
        "weekday": np.broadcast_to(target_dates.dayofweek.to_numpy()[:, None], shape),
        "week_of_year": np.broadcast_to(target_dates.isocalendar().week.to_numpy(int)[:, None], shape),
        "month": np.broadcast_to(target_dates.month.to_numpy()[:, None], shape),
        "day_of_month": np.broadcast_to(target_dates.day.to_numpy()[:, None], shape),
        "is_payday": np.broadcast_to(np.asarray((target_dates.day == 1) | (target_dates.day == 15)
                                                | target_dates.is_month_end, int)[:, None], shape),
        "seasonal_lag": _rows(known, seasonal_index) / level,
        "last_year": _rows(known, targets - grain.year) / level,
        "same_weekday_mean": same_weekday / level,
        "mean_7": np.broadcast_to(mean_short, shape),
        "last_value": np.broadcast_to(known[-1] / level, shape),
        "trend": np.broadcast_to(mean_long - previous_long, shape),
        "level": np.broadcast_to(level, shape),
        "y": _rows(values[:, alive], targets),
        **{name: _rows(table[:, alive], targets) for name, table in exog.items()},
        **{name: np.broadcast_to(column.to_numpy()[alive], shape) for name, column in static.items()},
        **{name: np.broadcast_to(column.reindex(target_dates).to_numpy(float)[:, None], shape)
           for name, column in calendar.items()},
    }
    return pd.DataFrame({name: np.asarray(column).ravel() for name, column in columns.items()})


def _recent_mean(known: np.ndarray, periods: int) -> np.ndarray:
    """Mean of the last ``periods`` periods each series existed in; NaN for one that did not exist then."""
    if not len(known):
        return np.full(known.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: series not born yet
        return np.nanmean(known[-periods:], axis=0)


def _rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` with NaN rows where the index falls outside the table."""
    inside = (index >= 0) & (index < len(table))
    out = np.full((len(index), table.shape[1]), np.nan)
    out[inside] = table[index[inside]]
    return out
