"""Assets of the ``ml`` group: train and backtest the demand model, promote it only when it earns it."""

import datetime as dt
import math
from collections.abc import Iterator
from typing import Literal

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from sales_analytics.alerts import precondition_failed
from sales_analytics.catalog import (
    CLEAN_CALENDAR,
    CLEAN_SIGNALS,
    CLEAN_STORES,
    DEMAND_FORECAST_KEY,
    DEMAND_MODEL_NAME,
    FORECAST_ACCURACY_KEY,
    SALES_BY_SERIES_KEY,
    published_key,
)
from sales_analytics.lake.assets import table_metadata
from sales_analytics.metrics import rounded_score
from sales_analytics.ml.features import DAY, FeatureConfig, Grain, dense_panel, weekly
from sales_analytics.ml.forecasting import (
    MAX_ITER,
    NotEnoughHistory,
    QuantileForecaster,
    backtest,
    forecast,
    strongest_naive,
    train,
)
from sales_analytics.ml.history import (
    CALENDAR_COLUMNS,
    FORECAST_HISTORY_DAYS,
    SALES_COLUMNS,
    SIGNAL_COLUMNS,
    STORE_COLUMNS,
    known_ahead,
    last_day,
    load_series,
)
from sales_analytics.ml.monitoring import (
    ACTIVE_DAYS,
    LIVE_ACCURACY_DAYS,
    SEASON_DAYS,
    LiveAccuracy,
    forecast_problems,
    live_accuracy,
    naive_day,
)
from sales_analytics.ml.promotion import compare_with_champion, promotion_verdict
from sales_analytics.ml.registry import ModelManifest, ModelRegistry, NotPromotable
from sales_analytics.ml.series import (
    SERIES_LEVELS,
    SeriesLevelName,
    series_panel,
)
from sales_analytics.partitions import daily_partitions, look_back
from sales_analytics.reports.publish import PUBLISHING_GROUP
from sales_analytics.schema import (
    DEMAND_FORECAST,
    FORECAST_ACCURACY,
    MODEL_BACKTEST,
    SORT_KEY_SEPARATOR,
    WEEKDAYS,
    WeekAnchor,
)
from sales_analytics.sources.spec import SourceSpec, order_sources
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import INPUT_COLUMNS, LakeView
from sales_analytics.storage.serving_store import Item, ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

DEMAND_MODEL = dg.AssetKey(["ml", "demand_model"])
DEMAND_CHAMPION = dg.AssetKey(["ml", "demand_model_champion"])
CHAMPION_BEHIND = "champion_behind"  # forecast_accuracy metadata the drift sensor reads
MAX_HORIZON_DAYS = 120  # the longest horizon a model may have: how far back forecasts of a day are looked for


class DemandModelConfig(dg.Config):
    level: SeriesLevelName = Field(default="store_category", description="what one series is: " + ", ".join(SERIES_LEVELS))
    history_days: int = Field(default=730, ge=120, description="days of curated history the model learns from")
    grain: Literal["source", "day", "week"] = Field(
        default="source", description="the period series are modelled in: week for sales reported by week (rows dated "
                                      "by the week's anchor day); source: as the sales sources declare (week_anchor)")
    week_anchor: WeekAnchor = Field(default="SUN", description="with grain week: the weekday a week's rows are dated by "
                                                               "(Walmart: FRI)")
    horizon: int = Field(default=28, ge=1, le=120, description="periods (days, or weeks) ahead to forecast")
    target: Literal["units", "net_sales"] = "units"
    backtest_windows: int = Field(default=3, ge=1, le=12)
    max_iter: int = Field(default=MAX_ITER, ge=10, le=2000, description="boosting iterations per quantile model")


def _sales_input(partition_mapping: dg.PartitionMapping | None = None) -> dg.AssetIn:
    return dg.AssetIn(SALES_BY_SERIES_KEY, metadata={INPUT_COLUMNS: SALES_COLUMNS}, partition_mapping=partition_mapping)


KNOWN_AHEAD_INS = {"calendar": dg.AssetIn(CLEAN_CALENDAR, metadata={INPUT_COLUMNS: CALENDAR_COLUMNS}),
                   "signals": dg.AssetIn(CLEAN_SIGNALS, metadata={INPUT_COLUMNS: SIGNAL_COLUMNS}),
                   "stores": dg.AssetIn(CLEAN_STORES, metadata={INPUT_COLUMNS: STORE_COLUMNS})}


@dg.asset(
    key=DEMAND_MODEL,
    # every curated day: the model learns from the newest history_days of them
    ins={"sales": _sales_input(), **KNOWN_AHEAD_INS},
    group_name="ml",
    kinds={"scikit-learn"},
    description=("A global HistGradientBoosting model (P10 / P50 / P90) across all store x category series, "
                 f"stored as a new version under `models/{DEMAND_MODEL_NAME}/`, with rolling-origin backtests against "
                 "seasonal naive (a week and, given a year of history, a year back) and exponential smoothing on every "
                 "training."),
    check_specs=[dg.AssetCheckSpec("promotable", asset=DEMAND_MODEL, blocking=True,
                                   description="Beats the stronger seasonal naive and is not worse than the champion beyond 2% "
                                               "on the same windows.")],
)
def demand_model(context: dg.AssetExecutionContext, config: DemandModelConfig, lake: LakeResource, sales: LakeView,
                 calendar: pa.Table | None, signals: pa.Table | None, stores: pa.Table | None) -> Iterator:
    until = last_day(sales)
    if until is None:
        raise precondition_failed("curated/sales_by_series has no partitions yet: materialize it first")
    if config.target == "net_sales" and (mixed := series_mixing_currencies(stores, config.level)):
        raise precondition_failed(f"net_sales series at level {config.level} would add up currencies ({'; '.join(mixed)}): "
                                  "forecast units, or a level whose series are single stores")
    panel, covariates = load_series(sales, until, config.history_days, config.target, config.level,
                                    known_ahead(calendar, signals, stores))
    grain = model_grain(config, panel, order_sources())
    dense = dense_panel(panel, grain)
    features = FeatureConfig(horizon=config.horizon, grain=grain)
    try:
        tested = backtest(dense, features, windows=config.backtest_windows, max_iter=config.max_iter, covariates=covariates)
    except NotEnoughHistory as err:
        raise precondition_failed(f"{err}: curate more days, or ask for a shorter horizon or fewer backtest windows") from err
    model = train(dense, pd.Timestamp(until), features, max_iter=config.max_iter, covariates=covariates)
    registry = ModelRegistry(lake)
    metrics = {**tested.summary, "windows": tested.windows, "target": config.target, "horizon": config.horizon,
               "level": config.level, "max_iter": config.max_iter, "grain": grain.name, "week_anchor": grain.anchor}
    manifest = registry.save(DEMAND_MODEL_NAME, model.models, model.features, model.trained_until,
                             [str(dense["date"].min().date()), str(until)], metrics)
    compared = compare_with_champion(registry, DEMAND_MODEL_NAME, tested, dense, covariates, config.target, config.level)
    ok, reason = promotion_verdict(tested.summary["model"], strongest_naive(tested.summary), compared)
    registry.record_verdict(DEMAND_MODEL_NAME, manifest.version, ok, reason)
    context.log.info(f"demand model {manifest.version}: {reason}")
    yield dg.MaterializeResult(asset_key=DEMAND_MODEL, metadata={
        "version": manifest.version, "series": int(dense["series_id"].nunique()), "trained_until": str(until),
        "grain": grain.freq, "periods": int(dense["date"].nunique()),
        **{f"{method}/{name}": rounded_score(value) for method, scores in tested.summary.items() for name, value in scores.items()},
        "backtest": dg.MetadataValue.md(_backtest_markdown(tested.windows)),
    })
    yield dg.AssetCheckResult(check_name="promotable", asset_key=DEMAND_MODEL, passed=ok,
                              metadata={"reason": reason, "version": manifest.version, "champion": compared.champion_version or "none"})


def model_grain(config: DemandModelConfig, panel: pd.DataFrame, sources: tuple[SourceSpec, ...]) -> Grain:
    """The configured grain, or the sales sources' (each day, or all the same week); a week only for rows dated
    by the week's anchor day, as a weekly source reports them: the forecast's accuracy is scored against the
    curated rows of its target date."""
    anchor = declared_week(sources) if config.grain == "source" else config.week_anchor if config.grain == "week" else None
    if anchor is None:
        return DAY
    off_anchor = panel[pd.to_datetime(panel["date"]).dt.dayofweek != WEEKDAYS.index(anchor)]
    if len(off_anchor):
        raise precondition_failed(f"grain week ({anchor}) models a source that reports weeks, its rows dated by "
                                  f"the week's {anchor}; {len(off_anchor)} rows are dated otherwise (first "
                                  f"{pd.Timestamp(off_anchor['date'].min()).date()}): model daily data by day")
    return weekly(anchor)


def declared_week(sources: tuple[SourceSpec, ...]) -> str | None:
    """The week anchor every sales source declares; None when they report days."""
    anchors = {source.week_anchor for source in sources}
    if len(anchors) > 1:
        by_grain = ", ".join(f"{s.name}: {s.week_anchor or 'day'}" for s in sources)
        raise precondition_failed(f"the sales sources report different periods ({by_grain}): configure grain day or "
                                  "week for the demand model")
    return anchors.pop() if anchors else None


def series_mixing_currencies(stores: pa.Table | None, level: str) -> list[str]:
    """Series of ``level`` whose stores sell in more than one currency (by the current store master):
    money forecast for them would be a sum across currencies. A store sells in one currency."""
    if stores is None or "store_id" in SERIES_LEVELS[level].keys:
        return []
    current = stores.filter(pc.equal(stores["is_current"], True)).to_pandas()
    currencies = current.groupby("region")["currency"].unique()
    return [f"{region}: {', '.join(sorted(found))}" for region, found in currencies.items() if len(found) > 1]


def champion_asset(model_key: dg.AssetKey, champion_key: dg.AssetKey, model_name: str, served: str) -> dg.AssetsDefinition:
    """Promotes the version ``model_key`` last trained. Downstream of a blocking check, it runs only when
    that version passed ``promotable``; run any other way (alone, from the CLI, in a backfill), the
    registry still refuses a version whose stored verdict did not pass."""

    @dg.asset(key=champion_key, deps=[model_key], group_name="ml", kinds={"scikit-learn"},
              description=f"The promoted {served}; runs only when `promotable` passed.")
    def _champion(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        candidate = context.instance.get_latest_materialization_event(model_key)
        if candidate is None:
            raise precondition_failed(f"{model_key.to_user_string()} has never been trained: nothing to promote")
        version = str(candidate.asset_materialization.metadata["version"].value)
        try:
            ModelRegistry(lake).promote(model_name, version)
        except NotPromotable as refused:
            raise precondition_failed(str(refused)) from refused
        return dg.MaterializeResult(metadata={"version": version})

    return _champion


demand_model_champion = champion_asset(DEMAND_MODEL, DEMAND_CHAMPION, DEMAND_MODEL_NAME, "demand model the prediction service serves")


def backtest_rows(manifest: ModelManifest) -> pa.Table:
    """The manifest's backtest as MODEL_BACKTEST rows: each window, and every window pooled ('all')."""
    methods = backtest_methods(manifest.metrics["windows"])
    scored = [(w["origin"], {m: w[m] for m in methods}) for w in manifest.metrics["windows"]]
    scored.append(("all", {m: manifest.metrics[m] for m in methods}))
    rows = [{"model_version": manifest.version, "window_origin": origin, "method": method, **metrics}
            for origin, by_method in scored for method, metrics in by_method.items()]
    return pa.Table.from_pylist([{c: r.get(c) for c in MODEL_BACKTEST.column_names} for r in rows],
                                schema=MODEL_BACKTEST.arrow_schema())


@dg.asset(key=published_key("rds", MODEL_BACKTEST.name), deps=[DEMAND_MODEL], group_name=PUBLISHING_GROUP, kinds={"postgres", "sql"},
          owners=["team:data-science"], description=MODEL_BACKTEST.description)
def model_backtest_report(context: dg.AssetExecutionContext, lake: LakeResource, report_db: SqlReportStore) -> dg.MaterializeResult:
    """The latest trained version's backtest in the SQL report store, next to every earlier version's."""
    candidate = context.instance.get_latest_materialization_event(DEMAND_MODEL)
    version = str(candidate.asset_materialization.metadata["version"].value)
    rows = backtest_rows(ModelRegistry(lake).manifest(DEMAND_MODEL_NAME, version))
    written = report_db.replace_partition(MODEL_BACKTEST, version, rows)
    return dg.MaterializeResult(metadata={"dagster/row_count": written, "version": version})


def backtest_methods(windows: list[dict]) -> list[str]:
    """The methods a backtest scored: the model and the baselines the data allowed (a year back needs a year)."""
    return [key for key in windows[0] if key != "origin"]


def _backtest_markdown(windows: list[dict]) -> str:
    methods = backtest_methods(windows)
    rows = [f"| {w['origin']} | " + " | ".join(f"{w[m]['wape']:.4f}" for m in methods) + " |" for w in windows]
    return ("| origin | " + " | ".join(f"WAPE {m.replace('_', ' ')}" for m in methods) + " |\n|---" + "|---" * len(methods)
            + "|\n" + "\n".join(rows))


@dg.asset(
    key=DEMAND_FORECAST_KEY,
    deps=[DEMAND_CHAMPION],  # the champion's version, read from the model registry
    ins={"sales": _sales_input(look_back(FORECAST_HISTORY_DAYS - 1)), **KNOWN_AHEAD_INS},
    partitions_def=daily_partitions,
    group_name="ml",
    kinds={"scikit-learn", "parquet"},
    description=DEMAND_FORECAST.description,
    metadata=table_metadata(DEMAND_FORECAST),
    check_specs=[
        dg.AssetCheckSpec("quantiles_ordered", asset=DEMAND_FORECAST_KEY,
                          description="P10 <= P50 <= P90 on every row, and none below zero for a units target."),
        dg.AssetCheckSpec("every_active_series_and_step", asset=DEMAND_FORECAST_KEY,
                          description=f"Every series that sold in the {ACTIVE_DAYS} days to the origin is forecast for "
                                      "every step of the horizon."),
    ],
)
def demand_forecast(context: dg.AssetExecutionContext, lake: LakeResource, sales: LakeView, calendar: pa.Table | None,
                    signals: pa.Table | None, stores: pa.Table | None) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """The champion's forecast as of the partition's day (the origin), from data up to that day only."""
    registry = ModelRegistry(lake)
    version = registry.champion(DEMAND_MODEL_NAME)
    if version is None:
        raise precondition_failed("no promoted demand model yet: materialize ml/demand_model (its promotable check must pass)")
    models, manifest = registry.load(DEMAND_MODEL_NAME, version)
    origin = dt.date.fromisoformat(context.partition_key)
    target, horizon, level = manifest.metrics["target"], int(manifest.metrics["horizon"]), manifest.metrics["level"]
    panel, covariates = load_series(sales, origin, FORECAST_HISTORY_DAYS, target, level, known_ahead(calendar, signals, stores))
    if panel.empty:
        raise precondition_failed(f"curated/sales_by_series has no data up to {origin}: nothing to forecast from")
    model = QuantileForecaster.stored(models, manifest)
    predicted = forecast(model, dense_panel(panel, model.config.grain), pd.Timestamp(origin), covariates)
    table = pa.table({
        "origin_date": pa.array([origin] * len(predicted), pa.date32()),
        "level": [level] * len(predicted), "series_id": predicted["series_id"],
        "target_date": pa.array(predicted["date"].dt.date, pa.date32()), "step": predicted["step"].astype("int64"),
        "p10": predicted["p10"], "p50": predicted["p50"], "p90": predicted["p90"],
        "model_version": [version] * len(predicted), "target": [target] * len(predicted),
    }).cast(DEMAND_FORECAST.arrow_schema())
    yield dg.Output(table, metadata={"dagster/row_count": table.num_rows, "model_version": version, "target": target,
                                     "level": level, "series": int(predicted["series_id"].nunique()), "horizon": horizon,
                                     "grain": model.config.grain.freq})
    recent = panel[(pd.to_datetime(panel["date"]) > pd.Timestamp(origin - dt.timedelta(days=ACTIVE_DAYS))) & (panel["y"] != 0)]
    found = forecast_problems(predicted, set(recent["series_id"]), horizon, non_negative=target == "units")
    yield dg.AssetCheckResult(check_name="quantiles_ordered", passed=not (found.disordered or found.negative),
                              metadata={"disordered_rows": found.disordered, "negative_rows": found.negative})
    yield dg.AssetCheckResult(check_name="every_active_series_and_step", passed=not found.missing,
                              metadata={"active_series": int(recent["series_id"].nunique()), "missing": len(found.missing),
                                        "first_missing": ", ".join(found.missing[:10]) or "none"})


def latest_forecasts(serving: ServingStore, series_id: str, first: dt.date, last: dt.date) -> list[Item]:
    """A series' forecast for each day in [first, last] from the latest origin that forecast it (the
    serving store keeps every origin's items: a re-published older origin never hides a newer one)."""
    items = serving.query(DEMAND_FORECAST, series_id, first.isoformat(), f"{last.isoformat()}{SORT_KEY_SEPARATOR}~")
    latest: dict[str, Item] = {}
    for item in items:  # sorted by target day, then origin: the last of a day is its latest origin
        latest[item["target_date"]] = item
    return list(latest.values())


def compute_forecast_accuracy(forecasts: pd.DataFrame, sold: pd.DataFrame) -> pa.Table:
    """Each forecast of the day (any origin, version or level) against the day's actual per series;
    ``sold``: the day's curated rows (a series absent from them sold nothing)."""
    if forecasts.empty:
        return FORECAST_ACCURACY.empty_table()
    actuals = pd.concat([series_panel(sold, level, target)[0][["series_id", "y"]].assign(level=level, target=target)
                         for level, target in forecasts[["level", "target"]].drop_duplicates().itertuples(index=False)])
    merged = forecasts.merge(actuals, on=["level", "target", "series_id"], how="left")
    actual = merged["y"].astype(float).fillna(0.0)
    return pa.table({
        "target_date": pa.array(merged["target_date"], pa.date32()), "origin_date": pa.array(merged["origin_date"], pa.date32()),
        "level": merged["level"], "series_id": merged["series_id"], "model_version": merged["model_version"], "step": merged["step"].astype("int64"),
        "actual": actual, "p10": merged["p10"], "p50": merged["p50"], "p90": merged["p90"],
        "abs_error": (actual - merged["p50"]).abs(), "in_band": (merged["p10"] <= actual) & (actual <= merged["p90"]),
    }).cast(FORECAST_ACCURACY.arrow_schema()).sort_by([(k, "ascending") for k in FORECAST_ACCURACY.key])


def champion_live_accuracy(every: pd.DataFrame, champion: str | None, sales: LakeView, day: dt.date) -> LiveAccuracy:
    """The champion's forecasts of the last LIVE_ACCURACY_DAYS days against seasonal naive's on the same
    series, days and steps (``every``: the stored forecasts of the look-back)."""
    first = pd.Timestamp(day - dt.timedelta(days=LIVE_ACCURACY_DAYS - 1))
    targets = pd.to_datetime(every["target_date"]) if len(every) else pd.Series(dtype="datetime64[ns]")
    ours = every[(every["model_version"] == champion) & (targets >= first) & (targets <= pd.Timestamp(day))] if len(every) else every
    if ours.empty:
        return LiveAccuracy(0.0, 0.0, 0)
    level, target = ours[["level", "target"]].iloc[0]
    needed = {d.date().isoformat() for d in pd.concat([pd.to_datetime(ours["target_date"]), naive_day(ours["target_date"], ours["step"])])}
    stored = needed & set(sales.partitions())
    rows = sales.read(sorted(stored))
    actuals = series_panel(rows.to_pandas(), level, target)[0] if rows is not None else pd.DataFrame(columns=["series_id", "date", "y"])
    return live_accuracy(ours, actuals, {dt.date.fromisoformat(d) for d in stored})


@dg.asset(
    key=FORECAST_ACCURACY_KEY,
    ins={
        # the day's actuals, and those seasonal naive repeats for the last weeks' forecasts
        "sales": _sales_input(look_back(LIVE_ACCURACY_DAYS - 1 + SEASON_DAYS * math.ceil(MAX_HORIZON_DAYS / SEASON_DAYS))),
        # the origins that may have forecast the day or the weeks before it: up to the longest horizon before those
        "forecasts": dg.AssetIn(DEMAND_FORECAST_KEY, partition_mapping=look_back(MAX_HORIZON_DAYS + LIVE_ACCURACY_DAYS - 1, 1)),
    },
    partitions_def=daily_partitions,
    group_name="ml",
    kinds={"parquet"},
    description=FORECAST_ACCURACY.description,
    metadata=table_metadata(FORECAST_ACCURACY),
    check_specs=[dg.AssetCheckSpec(
        "champion_beats_seasonal_naive", asset=FORECAST_ACCURACY_KEY,
        description=f"The champion's WAPE over the last {LIVE_ACCURACY_DAYS} days of actuals is below seasonal naive's on the "
                    "same series, days and steps; when it is not, it warns and champion_drift asks for a retraining.")],
)
def forecast_accuracy(context: dg.AssetExecutionContext, lake: LakeResource, sales: LakeView,
                      forecasts: LakeView) -> Iterator[dg.Output | dg.AssetCheckResult]:
    day = dt.date.fromisoformat(context.partition_key)
    actuals = sales.read([day.isoformat()]) if day.isoformat() in sales.partitions() else None
    if actuals is None:
        raise precondition_failed(f"curated/sales_by_series has no {day}: materialize it first")
    stored = forecasts.read(forecasts.partitions())
    every = stored.to_pandas() if stored is not None else pd.DataFrame(columns=DEMAND_FORECAST.column_names)
    of_day = every[pd.to_datetime(every["target_date"]) == pd.Timestamp(day)]
    scored = compute_forecast_accuracy(of_day, actuals.to_pandas())
    frame = scored.to_pandas()
    sums = frame.assign(actual=frame["actual"].abs()).groupby("step")[["abs_error", "actual"]].sum()
    by_step = sums["abs_error"] / sums["actual"].clip(lower=1e-9)
    champion = ModelRegistry(lake).champion(DEMAND_MODEL_NAME)
    live = champion_live_accuracy(every, champion, sales, day)
    live_metadata = {"champion": champion or "none", "champion_live_wape": rounded_score(live.model_wape),
                     "naive_live_wape": rounded_score(live.naive_wape), "live_points": live.points, CHAMPION_BEHIND: live.behind}
    yield dg.Output(scored, metadata={
        "dagster/row_count": scored.num_rows,
        "wape": rounded_score(frame["abs_error"].sum() / max(frame["actual"].abs().sum(), 1e-9)) if len(frame) else 0.0,
        "coverage_p10_p90": rounded_score(frame["in_band"].mean()) if len(frame) else 0.0,
        "wape_by_days_ahead": dg.MetadataValue.json({int(k): rounded_score(v) for k, v in by_step.items()}),
        **live_metadata,
    })
    yield dg.AssetCheckResult(check_name="champion_beats_seasonal_naive", passed=not live.behind,
                              severity=dg.AssetCheckSeverity.WARN, metadata=live_metadata)
