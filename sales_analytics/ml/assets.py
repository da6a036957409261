"""Assets of the ``ml`` group: train and backtest the demand model, promote it only when it earns it."""

import datetime as dt
from collections.abc import Iterator
from typing import Literal

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from sales_analytics.alerts import precondition_failed
from sales_analytics.curated.assets import SALES_BY_SERIES_KEY
from sales_analytics.lake.assets import table_metadata
from sales_analytics.ml.features import FeatureConfig, dense_panel
from sales_analytics.ml.forecasting import MAX_ITER, NotEnoughHistory, QuantileForecaster, backtest, forecast, train
from sales_analytics.ml.promotion import compare_with_champion, promotion_verdict
from sales_analytics.ml.registry import ModelManifest, ModelRegistry
from sales_analytics.ml.series import (
    CURATED_COLUMNS,
    SERIES_LEVELS,
    Covariates,
    SeriesLevelName,
    calendar_frame,
    series_panel,
    signals_frame,
)
from sales_analytics.partitions import daily_partitions
from sales_analytics.schema import (
    DEMAND_FORECAST,
    FORECAST_ACCURACY,
    MODEL_BACKTEST,
    SALES_BY_SERIES,
    SORT_KEY_SEPARATOR,
)
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import (
    INPUT_COLUMNS,
    parquet_bytes_to_table,
    read_unpartitioned,
    stored_partitions,
)
from sales_analytics.storage.serving_store import Item, ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

MODEL_NAME = "demand"
CLEAN_CALENDAR = dg.AssetKey(["clean", "calendar"])
CLEAN_SIGNALS = dg.AssetKey(["clean", "signals"])
DEMAND_MODEL = dg.AssetKey(["ml", "demand_model"])
DEMAND_CHAMPION = dg.AssetKey(["ml", "demand_model_champion"])
DEMAND_FORECAST_KEY = dg.AssetKey(["ml", "demand_forecast"])
FORECAST_ACCURACY_KEY = dg.AssetKey(["ml", "forecast_accuracy"])
MAX_HORIZON_DAYS = 120  # the longest horizon a model may have: how far back forecasts of a day are looked for
BACKTEST_METHODS = ("model", "seasonal_naive", "exponential_smoothing")
FORECAST_HISTORY_DAYS = 400  # what the features look back at: a year ago, plus a few weeks


class DemandModelConfig(dg.Config):
    level: SeriesLevelName = Field(default="store_category", description="what one series is: " + ", ".join(SERIES_LEVELS))
    history_days: int = Field(default=730, ge=120, description="days of curated history the model learns from")
    horizon: int = Field(default=28, ge=1, le=120, description="days ahead to forecast")
    target: Literal["units", "net_sales"] = "units"
    backtest_windows: int = Field(default=3, ge=1, le=12)
    max_iter: int = Field(default=MAX_ITER, ge=10, le=2000, description="boosting iterations per quantile model")


def load_series(lake: LakeResource, until: dt.date, days: int, target: str, level: str) -> tuple[pd.DataFrame, Covariates]:
    """The forecasting panel at ``level`` (``series_id``, ``date``, ``y``) for the ``days`` up to ``until``, and
    its covariates: memory bounded by the training window, not by history."""
    first = (until - dt.timedelta(days=days - 1)).isoformat()
    stored = stored_partitions(lake, SALES_BY_SERIES_KEY, SALES_BY_SERIES.partition_column)
    tables = [parquet_bytes_to_table(lake.get_bytes(key), [*CURATED_COLUMNS, target])
              for day, key in sorted(stored.items()) if first <= day <= until.isoformat()]
    if not tables:
        return pd.DataFrame(columns=["series_id", "date", "y"]), Covariates()
    panel, static = series_panel(pa.concat_tables(tables).to_pandas(), level, target)
    return panel, Covariates(static=static, calendar=load_known_ahead(lake))


def load_known_ahead(lake: LakeResource) -> pd.DataFrame:
    """Per day, what every series knows ahead: holidays and promotion weeks (clean/calendar) and each
    signal of clean/signals as ``signal_<name>``; future days included, empty before either is built."""
    frames = []
    if (days := read_unpartitioned(lake, CLEAN_CALENDAR, ["date", "is_holiday", "is_promo_week", "is_current"])) is not None:
        current = days.filter(days["is_current"]).to_pandas()
        frames.append(calendar_frame(current["date"], current["is_holiday"], current["is_promo_week"]))
    if (signals := read_unpartitioned(lake, CLEAN_SIGNALS, ["date", "signal", "value"])) is not None:
        frames.append(signals_frame(signals.to_pandas()))
    return pd.concat(frames, axis=1).sort_index() if frames else pd.DataFrame()


def last_curated_day(lake: LakeResource) -> dt.date | None:
    days = stored_partitions(lake, SALES_BY_SERIES_KEY, SALES_BY_SERIES.partition_column)
    return dt.date.fromisoformat(max(days)) if days else None


@dg.asset(
    key=DEMAND_MODEL,
    deps=[SALES_BY_SERIES_KEY, CLEAN_CALENDAR, CLEAN_SIGNALS],
    group_name="ml",
    kinds={"scikit-learn"},
    owners=["team:data-science"],
    description=("A global HistGradientBoosting model (P10 / P50 / P90) across all store x category series, "
                 f"stored as a new version under `models/{MODEL_NAME}/`, with rolling-origin backtests against "
                 "seasonal naive and exponential smoothing on every training."),
    check_specs=[dg.AssetCheckSpec("promotable", asset=DEMAND_MODEL, blocking=True,
                                   description="Beats seasonal naive and is not worse than the champion beyond 2%.")],
)
def demand_model(context: dg.AssetExecutionContext, config: DemandModelConfig, lake: LakeResource) -> Iterator:
    until = last_curated_day(lake)
    if until is None:
        raise precondition_failed("curated/sales_by_series has no partitions yet: materialize it first")
    panel, covariates = load_series(lake, until, config.history_days, config.target, config.level)
    dense = dense_panel(panel)
    features = FeatureConfig(horizon=config.horizon)
    try:
        tested = backtest(dense, features, windows=config.backtest_windows, max_iter=config.max_iter, covariates=covariates)
    except NotEnoughHistory as err:
        raise precondition_failed(f"{err}: curate more days, or ask for a shorter horizon or fewer backtest windows") from err
    model = train(dense, pd.Timestamp(until), features, max_iter=config.max_iter, covariates=covariates)
    registry = ModelRegistry(lake)
    metrics = {**tested.summary, "windows": tested.windows, "target": config.target, "horizon": config.horizon,
               "level": config.level}
    manifest = registry.save(MODEL_NAME, model.models, model.features, model.trained_until,
                             [str(dense["date"].min().date()), str(until)], metrics)
    compared = compare_with_champion(registry, MODEL_NAME, tested, dense, covariates, config.target, config.level)
    ok, reason = promotion_verdict(tested.summary["model"], tested.summary["seasonal_naive"]["wape"], compared)
    context.log.info(f"demand model {manifest.version}: {reason}")
    yield dg.MaterializeResult(asset_key=DEMAND_MODEL, metadata={
        "version": manifest.version, "series": int(dense["series_id"].nunique()), "trained_until": str(until),
        **{f"{method}/{name}": value for method, scores in tested.summary.items() for name, value in scores.items()},
        "backtest": dg.MetadataValue.md(_backtest_markdown(tested.windows)),
    })
    yield dg.AssetCheckResult(check_name="promotable", asset_key=DEMAND_MODEL, passed=ok,
                              metadata={"reason": reason, "version": manifest.version, "champion": compared.champion_version or "none"})


def champion_asset(model_key: dg.AssetKey, champion_key: dg.AssetKey, model_name: str, served: str) -> dg.AssetsDefinition:
    """Promotes the version ``model_key`` last trained. Downstream of a blocking check, it runs only
    when that version passed ``promotable``."""

    @dg.asset(key=champion_key, deps=[model_key], group_name="ml", kinds={"scikit-learn"}, owners=["team:data-science"],
              description=f"The promoted {served}; runs only when `promotable` passed.")
    def _champion(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        candidate = context.instance.get_latest_materialization_event(model_key)
        version = str(candidate.asset_materialization.metadata["version"].value)
        ModelRegistry(lake).promote(model_name, version)
        return dg.MaterializeResult(metadata={"version": version})

    return _champion


demand_model_champion = champion_asset(DEMAND_MODEL, DEMAND_CHAMPION, MODEL_NAME, "demand model the prediction service serves")


def backtest_rows(manifest: ModelManifest) -> pa.Table:
    """The manifest's backtest as MODEL_BACKTEST rows: each window, and every window pooled ('all')."""
    scored = [(w["origin"], {m: w[m] for m in BACKTEST_METHODS}) for w in manifest.metrics["windows"]]
    scored.append(("all", {m: manifest.metrics[m] for m in BACKTEST_METHODS}))
    rows = [{"model_version": manifest.version, "window_origin": origin, "method": method, **metrics}
            for origin, by_method in scored for method, metrics in by_method.items()]
    return pa.Table.from_pylist([{c: r.get(c) for c in MODEL_BACKTEST.column_names} for r in rows],
                                schema=MODEL_BACKTEST.arrow_schema())


@dg.asset(key=["reports", "rds", MODEL_BACKTEST.name], deps=[DEMAND_MODEL], group_name="reports", kinds={"postgres", "sql"},
          owners=["team:data-science"], description=MODEL_BACKTEST.description)
def model_backtest_report(context: dg.AssetExecutionContext, lake: LakeResource, report_db: SqlReportStore) -> dg.MaterializeResult:
    """The latest trained version's backtest in the SQL report store, next to every earlier version's."""
    candidate = context.instance.get_latest_materialization_event(DEMAND_MODEL)
    version = str(candidate.asset_materialization.metadata["version"].value)
    rows = backtest_rows(ModelRegistry(lake).manifest(MODEL_NAME, version))
    written = report_db.replace_partition(MODEL_BACKTEST, version, rows)
    return dg.MaterializeResult(metadata={"dagster/row_count": written, "version": version})


def _backtest_markdown(windows: list[dict]) -> str:
    rows = [f"| {w['origin']} | " + " | ".join(f"{w[m]['wape']:.4f}" for m in BACKTEST_METHODS) + " |" for w in windows]
    return "| origin | WAPE model | seasonal naive | exp. smoothing |\n|---|---|---|---|\n" + "\n".join(rows)


@dg.asset(
    key=DEMAND_FORECAST_KEY,
    deps=[DEMAND_CHAMPION, SALES_BY_SERIES_KEY, CLEAN_CALENDAR, CLEAN_SIGNALS],
    partitions_def=daily_partitions,
    group_name="ml",
    kinds={"scikit-learn", "parquet"},
    owners=["team:data-science"],
    description=DEMAND_FORECAST.description,
    metadata=table_metadata(DEMAND_FORECAST),
)
def demand_forecast(context: dg.AssetExecutionContext, lake: LakeResource) -> pa.Table:
    """The champion's forecast as of the partition's day (the origin), from data up to that day only."""
    registry = ModelRegistry(lake)
    version = registry.champion(MODEL_NAME)
    if version is None:
        raise precondition_failed("no promoted demand model yet: materialize ml/demand_model (its promotable check must pass)")
    models, manifest = registry.load(MODEL_NAME, version)
    origin = dt.date.fromisoformat(context.partition_key)
    target, horizon, level = manifest.metrics["target"], int(manifest.metrics["horizon"]), manifest.metrics["level"]
    panel, covariates = load_series(lake, origin, FORECAST_HISTORY_DAYS, target, level)
    if panel.empty:
        raise precondition_failed(f"curated/sales_by_series has no data up to {origin}: nothing to forecast from")
    model = QuantileForecaster.stored(models, manifest)
    predicted = forecast(model, dense_panel(panel), pd.Timestamp(origin), covariates)
    table = pa.table({
        "origin_date": pa.array([origin] * len(predicted), pa.date32()),
        "level": [level] * len(predicted), "series_id": predicted["series_id"],
        "target_date": pa.array(predicted["date"].dt.date, pa.date32()), "step": predicted["step"].astype("int64"),
        "p10": predicted["p10"], "p50": predicted["p50"], "p90": predicted["p90"],
        "model_version": [version] * len(predicted), "target": [target] * len(predicted),
    }).cast(DEMAND_FORECAST.arrow_schema())
    context.add_output_metadata({"dagster/row_count": table.num_rows, "model_version": version, "target": target, "level": level,
                                 "series": int(predicted["series_id"].nunique()), "horizon_days": horizon})
    return table


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


def forecasts_of_day(lake: LakeResource, day: dt.date) -> pd.DataFrame:
    """Every stored forecast whose target is ``day``: origins at most MAX_HORIZON_DAYS before it."""
    first = (day - dt.timedelta(days=MAX_HORIZON_DAYS)).isoformat()
    stored = stored_partitions(lake, DEMAND_FORECAST_KEY, DEMAND_FORECAST.partition_column)
    tables = [parquet_bytes_to_table(lake.get_bytes(key)) for origin, key in sorted(stored.items())
              if first <= origin < day.isoformat()]
    if not tables:
        return pd.DataFrame()
    every = pa.concat_tables(tables)
    return every.filter(pc.equal(every["target_date"], pa.scalar(day, pa.date32()))).to_pandas()


@dg.asset(
    key=FORECAST_ACCURACY_KEY,
    deps=[DEMAND_FORECAST_KEY],
    ins={"actuals": dg.AssetIn(SALES_BY_SERIES_KEY, metadata={INPUT_COLUMNS: [*CURATED_COLUMNS, "units", "net_sales"]})},
    partitions_def=daily_partitions,
    group_name="ml",
    kinds={"parquet"},
    owners=["team:data-science"],
    description=FORECAST_ACCURACY.description,
    metadata=table_metadata(FORECAST_ACCURACY),
)
def forecast_accuracy(context: dg.AssetExecutionContext, actuals: pa.Table, lake: LakeResource) -> pa.Table:
    day = dt.date.fromisoformat(context.partition_key)
    scored = compute_forecast_accuracy(forecasts_of_day(lake, day), actuals.to_pandas())
    frame = scored.to_pandas()
    sums = frame.assign(actual=frame["actual"].abs()).groupby("step")[["abs_error", "actual"]].sum()
    by_step = sums["abs_error"] / sums["actual"].clip(lower=1e-9)
    context.add_output_metadata({
        "dagster/row_count": scored.num_rows,
        "wape": float(frame["abs_error"].sum() / max(frame["actual"].abs().sum(), 1e-9)) if len(frame) else 0.0,
        "coverage_p10_p90": float(frame["in_band"].mean()) if len(frame) else 0.0,
        "wape_by_days_ahead": dg.MetadataValue.json({int(k): round(float(v), 4) for k, v in by_step.items()}),
    })
    return scored
