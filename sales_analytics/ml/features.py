"""Forecast features: what is known at a forecast origin about each (series, target day).

Input is a daily panel ``series_id, date, y`` plus optional exogenous columns known ahead of time
(promotion plans, opening days, holidays). One row of features per series, origin and horizon
step ``k`` (1..horizon): a *direct* multi-step model that takes the step as a feature, so one
global model serves every horizon without feeding its own errors back.

Targets are scaled by each series' recent level (mean of the 28 days up to the origin), so one
model learns shapes shared across stores of very different size; predictions are scaled back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SEASON = 7
LEVEL_DAYS = 28
KNOWN_AHEAD = ("open", "promo", "holiday", "school_holiday")  # exogenous columns used at the target day


@dataclass(frozen=True)
class FeatureConfig:
    horizon: int = 28
    origin_stride: int = 7  # training origins one week apart
    same_weekday_weeks: int = 4  # mean of the same weekday over this many weeks


def feature_columns(panel: pd.DataFrame) -> list[str]:
    exogenous = [c for c in KNOWN_AHEAD if c in panel.columns]
    return ["step", "weekday", "week_of_year", "month", "day_of_month", "is_payday", "seasonal_lag", "last_year",
            "same_weekday_mean", "mean_7", "mean_28", "last_value", "trend", *exogenous]


def dense_panel(panel: pd.DataFrame) -> pd.DataFrame:
    """Every series on every day of its span (missing days are zero sales), sorted, exogenous kept."""
    panel = panel.assign(date=pd.to_datetime(panel["date"])).sort_values(["series_id", "date"])
    spans = panel.groupby("series_id")["date"].agg(["min", "max"])
    index = pd.MultiIndex.from_tuples(
        [(s, d) for s, row in spans.iterrows() for d in pd.date_range(row["min"], row["max"], freq="D")],
        names=["series_id", "date"])
    dense = panel.set_index(["series_id", "date"]).reindex(index)
    dense["y"] = dense["y"].fillna(0.0)
    return dense.reset_index()


def build_features(dense: pd.DataFrame, origins: list[pd.Timestamp], config: FeatureConfig) -> pd.DataFrame:
    """Feature rows for each origin, series and step; ``y`` (the actual, where known) and ``level``."""
    wide = dense.pivot(index="date", columns="series_id", values="y").sort_index()
    exog = {c: dense.pivot(index="date", columns="series_id", values=c) for c in KNOWN_AHEAD if c in dense.columns}
    frames = [_at_origin(wide, exog, origin, config) for origin in origins]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _at_origin(wide: pd.DataFrame, exog: dict[str, pd.DataFrame], origin: pd.Timestamp, config: FeatureConfig) -> pd.DataFrame:
    known = wide.loc[:origin]
    if len(known) < SEASON:
        return pd.DataFrame()
    alive = known.columns[known.notna().any()]  # series that existed by the origin
    known = known[alive]
    level = known.tail(LEVEL_DAYS).mean().fillna(0.0)
    level = level.where(level > 0, known.mean().clip(lower=0)).replace(0, np.nan).fillna(1.0)
    mean_7, mean_28 = known.tail(7).mean() / level, known.tail(28).mean() / level
    previous_28 = known.iloc[-56:-28].mean() / level if len(known) >= 56 else mean_28
    rows = []
    for step in range(1, config.horizon + 1):
        target = origin + pd.Timedelta(days=step)
        weeks_back = -(-step // SEASON)
        seasonal = _value_at(known, target - pd.Timedelta(days=SEASON * weeks_back)) / level
        same_weekday = pd.concat([_value_at(known, target - pd.Timedelta(days=SEASON * (weeks_back + w)))
                                  for w in range(config.same_weekday_weeks)], axis=1).mean(axis=1) / level
        frame = pd.DataFrame({
            "series_id": alive, "origin": origin, "date": target, "step": step,
            "weekday": target.dayofweek, "week_of_year": int(target.isocalendar().week), "month": target.month,
            "day_of_month": target.day, "is_payday": int(target.day in (1, 15) or target.is_month_end),
            "seasonal_lag": seasonal.to_numpy(), "last_year": (_value_at(known, target - pd.Timedelta(days=364)) / level).to_numpy(),
            "same_weekday_mean": same_weekday.to_numpy(), "mean_7": mean_7.to_numpy(), "mean_28": mean_28.to_numpy(),
            "last_value": (known.iloc[-1] / level).to_numpy(), "trend": (mean_28 - previous_28).to_numpy(),
            "level": level.to_numpy(),
            "y": _value_at(wide[alive], target).to_numpy(),
        })
        for name, table in exog.items():
            frame[name] = _value_at(table[alive], target).to_numpy()
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _value_at(wide: pd.DataFrame, day: pd.Timestamp) -> pd.Series:
    if day in wide.index:
        return wide.loc[day]
    return pd.Series(np.nan, index=wide.columns)
