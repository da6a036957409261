"""Demand forecasting: a global gradient-boosting model with P10 / P50 / P90, and honest backtests.

One ``HistGradientBoostingRegressor`` per quantile, trained across all series on the direct
multi-step features of ``ml.features``. Every training is backtested on rolling origins against
two baselines computed in the same run: seasonal naive (the same weekday a week before) and
exponential smoothing (Holt-Winters, weekly season, statsmodels).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sales_analytics.ml.features import DAY, FeatureConfig, Grain, build_features, feature_columns, weekly
from sales_analytics.ml.registry import ModelManifest
from sales_analytics.ml.series import Covariates

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

QUANTILES = (0.1, 0.5, 0.9)
YEAR = 364  # days: 52 weeks, so the same weekday a year back


class NotEnoughHistory(ValueError):
    """The series are too short for the horizon and backtest asked for: more data, not a retry, helps."""
# Counts are spread uniformly over +-half a unit before fitting (jittering, as in quantile regression
# for counts): where most days sell nothing, boosting starts at the median 0, every pinball gradient
# ties there and no tree can split; at 10k store x product series the model predicted 0 everywhere.
JITTER = 0.5
MAX_ITER = 150  # with learning rate 0.1: the accuracy of 300 at 0.05 (Rossmann, 10k generated series) in half the time


@dataclass
class QuantileForecaster:
    features: list[str]
    models: dict[float, HistGradientBoostingRegressor]
    config: FeatureConfig
    trained_until: str = ""

    @classmethod
    def stored(cls, models: dict[float, HistGradientBoostingRegressor], manifest: ModelManifest) -> QuantileForecaster:
        """A forecaster from the registry's quantile models and their manifest."""
        grain = weekly(manifest.metrics["week_anchor"]) if manifest.metrics.get("grain") == "week" else DAY
        return cls(manifest.features, models, FeatureConfig(horizon=int(manifest.metrics["horizon"]), grain=grain),
                   manifest.trained_until)

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` from ``build_features``: P10 / P50 / P90 per row, in the series' own units."""
        inputs = rows.reindex(columns=self.features)  # a covariate the data no longer has is unknown, not an error
        scaled = np.column_stack([self.models[q].predict(inputs) for q in QUANTILES])
        scaled = np.sort(scaled, axis=1)  # quantile models trained apart may cross: keep them ordered
        values = np.clip(scaled * rows["level"].to_numpy()[:, None], 0.0, None)
        if "open" in rows:  # a day the store is known to be closed sells nothing
            values[rows["open"].to_numpy() == 0] = 0.0
        out = rows[["series_id", "date", "step"]].copy()
        out["p10"], out["p50"], out["p90"] = values[:, 0], values[:, 1], values[:, 2]
        return out


def training_origins(dense: pd.DataFrame, until: pd.Timestamp, config: FeatureConfig) -> list[pd.Timestamp]:
    """Origins ``origin_stride`` periods apart whose whole horizon ends by ``until`` and that have enough
    history before them."""
    grain = config.grain
    first = dense["date"].min() + grain.span(grain.min_history)
    last = until - grain.span(config.horizon)
    origins = []
    while last >= first:
        origins.append(last)
        last -= grain.span(config.origin_stride)
    return sorted(origins)


def train(dense: pd.DataFrame, until: pd.Timestamp, config: FeatureConfig, max_iter: int = MAX_ITER,
          covariates: Covariates | None = None) -> QuantileForecaster:
    """Fit on data up to ``until`` (inclusive); targets beyond it are never seen."""
    # Loaded on use: every run's process imports the code location, few runs need it.
    from sklearn.ensemble import HistGradientBoostingRegressor

    history = dense[dense["date"] <= until]
    origins = training_origins(history, until, config)
    full_size = len(origins) * config.horizon * history["series_id"].nunique()
    rows = build_features(history, origins, config, covariates,
                          sample=min(1.0, config.max_training_rows / max(full_size, 1))) if origins else pd.DataFrame()
    if rows.empty or rows["y"].isna().all():
        raise NotEnoughHistory(f"not enough history before {until.date()} to train (need {config.grain.min_history} "
                               f"{config.grain.name}s + the horizon)")
    rows = rows[rows["y"].notna()]
    # A feature with one value or none (last year's sales in a first year, a promotion flag never set) teaches
    # nothing, costs a histogram per split, and scikit-learn cannot bin an empty one: leave it out of this model.
    features = [f for f in feature_columns(history, config.grain, covariates) if rows[f].min() < rows[f].max()]
    jitter = np.random.default_rng(0).uniform(-JITTER, JITTER, len(rows))
    target = (rows["y"] + jitter) / rows["level"]
    models = {}
    for q in QUANTILES:
        model = HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=max_iter, learning_rate=0.1,
                                              max_leaf_nodes=63, min_samples_leaf=40, l2_regularization=1.0,
                                              random_state=0)
        models[q] = model.fit(rows[features], target)
    return QuantileForecaster(features, models, config, str(until.date()))


def forecast(model: QuantileForecaster, dense: pd.DataFrame, origin: pd.Timestamp,
             covariates: Covariates | None = None) -> pd.DataFrame:
    """P10 / P50 / P90 for the ``horizon`` periods after ``origin``, from data up to it."""
    return model.predict(build_features(dense[dense["date"] <= origin].pipe(_with_future_exog, dense, origin, model.config),
                                        [origin], model.config, covariates))


def _with_future_exog(history: pd.DataFrame, dense: pd.DataFrame, origin: pd.Timestamp, config: FeatureConfig) -> pd.DataFrame:
    """Exogenous plans (promotions, opening days) are known ahead: keep them, hide the sales."""
    ahead = dense[(dense["date"] > origin) & (dense["date"] <= origin + config.grain.span(config.horizon))]
    return pd.concat([history, ahead.assign(y=np.nan)], ignore_index=True)


# -- baselines ---------------------------------------------------------------------------------
def seasonal_naive(dense: pd.DataFrame, origin: pd.Timestamp, horizon: int, grain: Grain = DAY) -> pd.DataFrame:
    """Each period forecast as the same point of the last known season: the same weekday of the last week
    for days, the same week of the last year for weeks."""
    last_season = dense[(dense["date"] > origin - grain.span(grain.season)) & (dense["date"] <= origin)]
    rows = []
    for step in range(1, horizon + 1):
        target = origin + grain.span(step)
        source = target - grain.span(grain.season * -(-step // grain.season))
        period = last_season[last_season["date"] == source]
        rows.append(pd.DataFrame({"series_id": period["series_id"].to_numpy(), "date": target, "step": step,
                                  "p50": period["y"].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def seasonal_naive_yearly(dense: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """Each day forecast as the same weekday 52 weeks (``YEAR`` days) earlier: the yearly season of daily sales."""
    targets = pd.date_range(origin + pd.Timedelta(days=1), periods=horizon, freq="D")
    year_ago = dense[dense["date"].isin(targets - pd.Timedelta(days=YEAR))]
    dates = year_ago["date"] + pd.Timedelta(days=YEAR)
    return pd.DataFrame({"series_id": year_ago["series_id"].to_numpy(), "date": dates.to_numpy(),
                         "step": (dates - origin).dt.days.to_numpy(), "p50": year_ago["y"].to_numpy()})


SEASONAL_NAIVES = ("seasonal_naive", "seasonal_naive_yearly")  # the bars a model must clear: the stronger one


def exponential_smoothing(dense: pd.DataFrame, origin: pd.Timestamp, horizon: int, grain: Grain = DAY) -> pd.DataFrame:
    """Holt-Winters per series (additive season of the grain, damped trend), on the last year and a bit
    (two years for weeks: a yearly season needs two); seasonal naive where it cannot fit."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    history = dense[dense["date"] <= origin]
    naive = seasonal_naive(dense, origin, horizon, grain)
    frames = []
    for series_id, rows in history.groupby("series_id"):
        y = rows.set_index("date")["y"].asfreq(grain.freq).fillna(0.0).tail(max(365, 2 * grain.season + 2))
        dates = pd.date_range(origin + grain.span(1), periods=horizon, freq=grain.freq)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = ExponentialSmoothing(y.to_numpy(), trend="add", damped_trend=True, seasonal="add",
                                              seasonal_periods=grain.season, initialization_method="estimated").fit()
            values = np.clip(fitted.forecast(horizon), 0.0, None)
        except (ValueError, np.linalg.LinAlgError):
            values = naive[naive["series_id"] == series_id].sort_values("step")["p50"].to_numpy()
        if len(values) == horizon:
            frames.append(pd.DataFrame({"series_id": series_id, "date": dates, "step": range(1, horizon + 1), "p50": values}))
    return pd.concat(frames, ignore_index=True)


# -- scoring -----------------------------------------------------------------------------------
def score(predicted: pd.DataFrame, actual: pd.DataFrame, naive_scale: float) -> dict[str, float]:
    """WAPE, MASE (against the in-sample seasonal-naive error), bias, and where quantiles are given
    the weighted quantile loss and the share of actuals inside P10..P90."""
    joined = predicted.merge(actual[["series_id", "date", "y"]], on=["series_id", "date"], how="inner")
    y, p50 = joined["y"].to_numpy(), joined["p50"].to_numpy()
    total = np.abs(y).sum() or 1.0
    result = {"wape": float(np.abs(y - p50).sum() / total), "bias": float((p50 - y).sum() / total),
              "mase": float(np.abs(y - p50).mean() / naive_scale) if naive_scale else float("nan"), "points": len(joined)}
    if "p10" in joined:
        losses = [_pinball(y, joined[f"p{int(q * 100)}"].to_numpy(), q) for q in QUANTILES]
        result["weighted_quantile_loss"] = float(2 * np.mean(losses) / total)
        result["coverage_p10_p90"] = float(((y >= joined["p10"]) & (y <= joined["p90"])).mean())
    return result


def _pinball(y: np.ndarray, q_pred: np.ndarray, q: float) -> float:
    diff = y - q_pred
    return float(np.maximum(q * diff, (q - 1) * diff).sum())


def seasonal_naive_scale(dense: pd.DataFrame, until: pd.Timestamp, grain: Grain = DAY) -> float:
    """Mean absolute change over a season in the training data (week over week for days, year over year for
    weeks): the denominator of MASE."""
    history = dense[dense["date"] <= until].sort_values(["series_id", "date"])
    change = history.groupby("series_id")["y"].diff(grain.season).abs()
    return float(change.mean()) if change.notna().any() else 0.0


Baseline = Callable[[pd.DataFrame, pd.Timestamp, int], pd.DataFrame]  # (dense, origin, horizon) -> p50 per series and day


@dataclass
class Backtest:
    windows: list[dict] = field(default_factory=list)  # per origin: metrics of the model and each baseline
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metrics over all windows
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)  # method -> every window's forecasts
    actuals: pd.DataFrame = field(default_factory=pd.DataFrame)  # what the windows' days sold
    seconds: dict[str, float] = field(default_factory=dict)  # method -> time spent fitting and forecasting
    mean_scale: float = 0.0  # the MASE denominator the summary used


def default_baselines(dense: pd.DataFrame, first_origin: pd.Timestamp, grain: Grain = DAY) -> dict[str, Baseline]:
    """At the grain's own seasons: for days, seasonal naive a week back and a year back (where every window has
    a year of history before it); for weeks, a year back; and exponential smoothing."""
    if grain.name == "week":
        return {"seasonal_naive": partial(seasonal_naive, grain=grain),
                "exponential_smoothing": partial(exponential_smoothing, grain=grain)}
    yearly = {"seasonal_naive_yearly": seasonal_naive_yearly} if (first_origin - dense["date"].min()).days >= YEAR else {}
    return {"seasonal_naive": seasonal_naive, **yearly, "exponential_smoothing": exponential_smoothing}


def strongest_naive(summary: dict[str, dict[str, float]]) -> tuple[str, float]:
    """(name, WAPE) of the seasonal naive with the lowest WAPE in a backtest's summary."""
    return min(((name, summary[name]["wape"]) for name in SEASONAL_NAIVES if name in summary), key=lambda found: found[1])


def backtest(dense: pd.DataFrame, config: FeatureConfig, windows: int = 3, max_iter: int = MAX_ITER,
             covariates: Covariates | None = None, baselines: dict[str, Baseline] | None = None) -> Backtest:
    """Rolling origins: the last ``windows`` horizons, each forecast by a model trained only on data
    before it, next to the baselines (``default_baselines`` unless given) on the same points."""
    last, grain = dense["date"].max(), config.grain
    if baselines is None:
        baselines = default_baselines(dense, last - grain.span(config.horizon * windows), grain)
    methods: dict[str, Baseline] = {
        "model": lambda d, origin, _: forecast(train(d, origin, config, max_iter, covariates), d, origin, covariates),
        **baselines}
    result = Backtest(seconds=dict.fromkeys(methods, 0.0))
    pooled: dict[str, list[pd.DataFrame]] = {name: [] for name in methods}
    actuals, scales = [], []
    for w in range(windows, 0, -1):
        origin = last - grain.span(config.horizon * w)
        actual = dense[(dense["date"] > origin) & (dense["date"] <= origin + grain.span(config.horizon))]
        scale = seasonal_naive_scale(dense, origin, grain)
        scores = {}
        for name, method in methods.items():
            started = time.perf_counter()
            predicted = method(dense, origin, config.horizon)
            result.seconds[name] += time.perf_counter() - started
            scores[name] = score(predicted, actual, scale)
            pooled[name].append(predicted)
        result.windows.append({"origin": str(origin.date()), **scores})
        actuals.append(actual)
        scales.append(scale)
    result.actuals = pd.concat(actuals, ignore_index=True)
    result.predictions = {name: pd.concat(frames, ignore_index=True) for name, frames in pooled.items()}
    result.mean_scale = float(np.mean(scales))
    result.summary = {name: score(p, result.actuals, result.mean_scale) for name, p in result.predictions.items()}
    return result
