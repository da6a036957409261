"""What the demand model publishes, checked: forecasts that are whole and ordered, and the champion's
live accuracy against seasonal naive on the same days."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEASON_DAYS = 7
LIVE_ACCURACY_DAYS = 28  # the champion is judged on the forecasts of the last four weeks of actuals
ACTIVE_DAYS = 28  # a series that sold in these days before the origin must be forecast


@dataclass(frozen=True)
class ForecastProblems:
    disordered: int  # rows where P10 <= P50 <= P90 does not hold
    negative: int  # rows below zero for a target that is never negative
    missing: list[str]  # 'series@step' absent for an active series

    @property
    def ok(self) -> bool:
        return not (self.disordered or self.negative or self.missing)


def forecast_problems(table: pd.DataFrame, active_series: set[str], horizon: int, non_negative: bool) -> ForecastProblems:
    disordered = int(((table["p10"] > table["p50"]) | (table["p50"] > table["p90"])).sum())
    negative = int((table[["p10", "p50", "p90"]] < 0).any(axis=1).sum()) if non_negative else 0
    present = set(zip(table["series_id"], table["step"].astype(int), strict=True))
    missing = [f"{s}@{k}" for s in sorted(active_series) for k in range(1, horizon + 1) if (s, k) not in present]
    return ForecastProblems(disordered, negative, missing)


def naive_day(target_date: pd.Series, step: pd.Series) -> pd.Series:
    """The day whose actual seasonal naive repeats for a forecast ``step`` days ahead of its origin: the
    same weekday, the last one known at the origin."""
    weeks = np.ceil(step.astype(float) / SEASON_DAYS).astype(int)
    return pd.to_datetime(target_date) - pd.to_timedelta(weeks * SEASON_DAYS, unit="D")


@dataclass(frozen=True)
class LiveAccuracy:
    model_wape: float
    naive_wape: float
    points: int  # forecast rows both were scored on

    @property
    def behind(self) -> bool:
        return self.points > 0 and self.model_wape >= self.naive_wape


def live_accuracy(forecasts: pd.DataFrame, actuals: pd.DataFrame, stored_days: set[dt.date]) -> LiveAccuracy:
    """``forecasts``: the champion's rows (series_id, target_date, step, p50) of the days judged;
    ``actuals``: series_id, date, y at the forecasts' level, for the target and the naive days; a
    series absent on a stored day sold nothing. Rows whose days are not stored are left out."""
    frame = forecasts.assign(target_date=pd.to_datetime(forecasts["target_date"]),
                             naive_date=naive_day(forecasts["target_date"], forecasts["step"]))
    stored = pd.to_datetime(sorted(stored_days))
    frame = frame[frame["target_date"].isin(stored) & frame["naive_date"].isin(stored)]
    if frame.empty:
        return LiveAccuracy(0.0, 0.0, 0)
    sold = actuals.assign(date=pd.to_datetime(actuals["date"])).set_index(["series_id", "date"])["y"]
    actual = sold.reindex(pd.MultiIndex.from_arrays([frame["series_id"], frame["target_date"]])).fillna(0.0).to_numpy()
    naive = sold.reindex(pd.MultiIndex.from_arrays([frame["series_id"], frame["naive_date"]])).fillna(0.0).to_numpy()
    scale = max(float(np.abs(actual).sum()), 1e-9)
    return LiveAccuracy(float(np.abs(actual - frame["p50"].to_numpy()).sum() / scale),
                        float(np.abs(actual - naive).sum() / scale), len(frame))
