"""Forecast features: what is known at a forecast origin about each (series, target day).

Input is a daily panel ``series_id, date, y`` plus optional per-series columns known ahead of time
(promotion plans, opening days, holidays), and ``Covariates``: each series' static attributes and
a calendar of days known ahead for all (holidays, promotion weeks, signals such as the weather
forecast). One row of features per series, origin and horizon
step ``k`` (1..horizon): a *direct* multi-step model that takes the step as a feature, so one
global model serves every horizon without feeding its own errors back.

Targets are scaled by each series' recent level (mean of the 28 days up to the origin), so one
model learns shapes shared across stores of very different size; predictions are scaled back.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sales_analytics.ml.series import Covariates

SEASON = 7
LEVEL_DAYS = 28
KNOWN_AHEAD = ("open", "promo", "holiday", "school_holiday")  # exogenous columns used at the target day


@dataclass(frozen=True)
class FeatureConfig:
    horizon: int = 28
    origin_stride: int = 14  # training origins two weeks apart: half the rows of weekly, same accuracy on Rossmann
    same_weekday_weeks: int = 4  # mean of the same weekday over this many weeks
    max_training_rows: int = 1_500_000  # beyond this, each training origin sees a random share of the series


def feature_columns(panel: pd.DataFrame, covariates: Covariates | None = None) -> list[str]:
    exogenous = [c for c in KNOWN_AHEAD if c in panel.columns]
    return ["step", "weekday", "week_of_year", "month", "day_of_month", "is_payday", "seasonal_lag", "last_year",
            "same_weekday_mean", "mean_7", "mean_28", "last_value", "trend", *exogenous,
            *(covariates.feature_names() if covariates else [])]


def dense_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """Every series on every day of its span (missing days are zero sales), sorted, exogenous kept;
    a day delivered twice counts once (the later row)."""
    panel = (panel.assign(date=pd.to_datetime(panel["date"])).drop_duplicates(["series_id", "date"], keep="last")
             .sort_values(["series_id", "date"]))
    spans = panel.groupby("series_id")["date"].agg(["min", "max"])
    lengths = ((spans["max"] - spans["min"]).dt.days + 1).to_numpy()
    starts = np.cumsum(lengths) - lengths
    day_in_span = np.arange(lengths.sum()) - np.repeat(starts, lengths)
    index = pd.MultiIndex.from_arrays(
        [np.repeat(spans.index.to_numpy(), lengths),
         np.repeat(spans["min"].to_numpy(), lengths) + day_in_span.astype("timedelta64[D]")],
        names=["series_id", "date"])
    dense = panel.set_index(["series_id", "date"]).reindex(index)
    dense["y"] = dense["y"].fillna(0.0)
    return dense.reset_index()


def build_features(dense: pd.DataFrame, origins: list[pd.Timestamp], config: FeatureConfig,
                   covariates: Covariates | None = None, sample: float = 1.0) -> pd.DataFrame:
    """Feature rows for each origin, series and step; ``y`` (the actual, where known) and ``level``.
    With ``sample`` < 1 each origin keeps that share of the series (a fixed draw per origin)."""
    wide = dense.pivot(index="date", columns="series_id", values="y").sort_index()
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="D"))
    exog = {c: dense.pivot(index="date", columns="series_id", values=c).reindex(index=wide.index, columns=wide.columns).to_numpy(float)
            for c in KNOWN_AHEAD if c in dense.columns}
    values = wide.to_numpy(float)
    covariates = covariates or Covariates()
    static = covariates.static_codes().reindex(wide.columns)
    frames = [_at_origin(values, exog, wide.index, wide.columns, wide.index.get_loc(origin), config, static, covariates.calendar,
                         sample) for origin in origins if origin in wide.index]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _at_origin(values: np.ndarray, exog: dict[str, np.ndarray], dates: pd.DatetimeIndex, series: pd.Index, origin: int,
               config: FeatureConfig, static: pd.DataFrame, calendar: pd.DataFrame, sample: float) -> pd.DataFrame:
    """All steps at one origin as (step x series) arrays: only days up to ``origin`` inform features."""
    if origin + 1 < SEASON:
        return pd.DataFrame()
    known = values[:origin + 1]
    alive = ~np.all(np.isnan(known), axis=0)  # series that existed by the origin
    if sample < 1.0:
        alive &= np.random.default_rng(origin).random(len(alive)) < sample
    # Within a series' span missing days are zeros (dense_panel); NaN means it did not exist yet, and
    # a new store's level is the mean of the days it has, not diluted by days before it opened.
    known = known[:, alive]
    level = _recent_mean(known, LEVEL_DAYS)
    level = np.where(level > 0, level, np.maximum(_recent_mean(known, len(known)), 0))
    level = np.where(level > 0, level, 1.0)
    mean_7, mean_28 = _recent_mean(known, 7) / level, _recent_mean(known, 28) / level
    previous_28 = _recent_mean(known[:-28], 28) / level if len(known) >= 56 else mean_28
    steps = np.arange(1, config.horizon + 1)
    targets = origin + steps
    seasonal_index = targets - SEASON * -(-steps // SEASON)  # the same weekday in the last known week
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no such weekday yet in a new series' history
        same_weekday = np.nanmean([_rows(known, seasonal_index - SEASON * w) for w in range(config.same_weekday_weeks)], axis=0)
    target_dates = dates[origin] + pd.to_timedelta(steps, unit="D")
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
        "last_year": _rows(known, targets - 364) / level,
        "same_weekday_mean": same_weekday / level,
        "mean_7": np.broadcast_to(mean_7, shape), "mean_28": np.broadcast_to(mean_28, shape),
        "last_value": np.broadcast_to(known[-1] / level, shape),
        "trend": np.broadcast_to(mean_28 - previous_28, shape),
        "level": np.broadcast_to(level, shape),
        "y": _rows(values[:, alive], targets),
        **{name: _rows(table[:, alive], targets) for name, table in exog.items()},
        **{name: np.broadcast_to(column.to_numpy()[alive], shape) for name, column in static.items()},
        **{name: np.broadcast_to(column.reindex(target_dates).to_numpy(float)[:, None], shape)
           for name, column in calendar.items()},
    }
    return pd.DataFrame({name: np.asarray(column).ravel() for name, column in columns.items()})


def _recent_mean(known: np.ndarray, days: int) -> np.ndarray:
    """Mean of the last ``days`` days each series existed in; NaN for one that did not exist then."""
    if not len(known):
        return np.full(known.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: series not born yet
        return np.nanmean(known[-days:], axis=0)


def _rows(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` with NaN rows where the index falls outside the table."""
    inside = (index >= 0) & (index < len(table))
    out = np.full((len(index), table.shape[1]), np.nan)
    out[inside] = table[index[inside]]
    return out
