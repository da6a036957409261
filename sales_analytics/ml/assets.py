"""Assets of the ``ml`` group: train and backtest the demand model, promote it only when it earns it."""

import datetime as dt
from collections.abc import Iterator
from typing import Literal

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from sales_analytics.curated.assets import SALES_BY_SERIES_KEY
from sales_analytics.ml.features import FeatureConfig, dense_panel
from sales_analytics.ml.forecasting import backtest, train
from sales_analytics.ml.registry import ModelRegistry, promotion_verdict
from sales_analytics.schema import SALES_BY_SERIES
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, partition_object_key

MODEL_NAME = "demand"
DEMAND_MODEL = dg.AssetKey(["ml", "demand_model"])
DEMAND_CHAMPION = dg.AssetKey(["ml", "demand_model_champion"])


class DemandModelConfig(dg.Config):
    history_days: int = Field(default=730, ge=120, description="days of curated history the model learns from")
    horizon: int = Field(default=28, ge=1, le=120, description="days ahead to forecast")
    target: Literal["units", "net_sales"] = "units"
    backtest_windows: int = Field(default=3, ge=1, le=12)
    max_iter: int = Field(default=300, ge=10, le=2000, description="boosting iterations per quantile model")


def load_series(lake: LakeResource, until: dt.date, days: int, target: str) -> pd.DataFrame:
    """The forecasting panel (``series_id`` = store|category, ``date``, ``y``) for the ``days`` up to ``until``:
    memory bounded by the training window, not by history."""
    tables = []
    for offset in range(days):
        key = partition_object_key(SALES_BY_SERIES_KEY, SALES_BY_SERIES.partition_column, (until - dt.timedelta(days=offset)).isoformat())
        if lake.exists(key):
            tables.append(parquet_bytes_to_table(lake.get_bytes(key), ["sale_date", "store_id", "category", target]))
    if not tables:
        return pd.DataFrame(columns=["series_id", "date", "y"])
    frame = pa.concat_tables(tables).to_pandas()
    return pd.DataFrame({"series_id": frame["store_id"] + "|" + frame["category"], "date": frame["sale_date"],
                         "y": frame[target].astype(float)})


def last_curated_day(lake: LakeResource) -> dt.date | None:
    days = [o.key.split(f"{SALES_BY_SERIES.partition_column}=")[1].split("/")[0]
            for o in lake.list("/".join(SALES_BY_SERIES_KEY.path) + "/")]
    return dt.date.fromisoformat(max(days)) if days else None


@dg.asset(
    key=DEMAND_MODEL,
    deps=[SALES_BY_SERIES_KEY],
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
        raise dg.Failure("curated/sales_by_series has no partitions yet: materialize it first")
    dense = dense_panel(load_series(lake, until, config.history_days, config.target))
    features = FeatureConfig(horizon=config.horizon)
    tested = backtest(dense, features, windows=config.backtest_windows, max_iter=config.max_iter)
    model = train(dense, pd.Timestamp(until), features, max_iter=config.max_iter)
    registry = ModelRegistry(lake)
    metrics = {**tested.summary, "target": config.target, "horizon": config.horizon}
    manifest = registry.save(MODEL_NAME, model.models, model.features, model.trained_until,
                             [str(dense["date"].min().date()), str(until)], metrics)
    champion = registry.champion(MODEL_NAME)
    champion_metrics = registry.manifest(MODEL_NAME, champion).metrics["model"] if champion else None
    ok, reason = promotion_verdict(tested.summary["model"], tested.summary["seasonal_naive"]["wape"], champion_metrics)
    context.log.info(f"demand model {manifest.version}: {reason}")
    yield dg.MaterializeResult(asset_key=DEMAND_MODEL, metadata={
        "version": manifest.version, "series": int(dense["series_id"].nunique()), "trained_until": str(until),
        **{f"{method}/{name}": value for method, scores in tested.summary.items() for name, value in scores.items()},
        "backtest": dg.MetadataValue.md(_backtest_markdown(tested.windows)),
    })
    yield dg.AssetCheckResult(check_name="promotable", asset_key=DEMAND_MODEL, passed=ok,
                              metadata={"reason": reason, "version": manifest.version, "champion": champion or "none"})


@dg.asset(key=DEMAND_CHAMPION, deps=[DEMAND_MODEL], group_name="ml", kinds={"scikit-learn"}, owners=["team:data-science"],
          description="The promoted demand model the prediction service serves; runs only when `promotable` passed.")
def demand_model_champion(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    candidate = context.instance.get_latest_materialization_event(DEMAND_MODEL)
    version = str(candidate.asset_materialization.metadata["version"].value)
    ModelRegistry(lake).promote(MODEL_NAME, version)
    return dg.MaterializeResult(metadata={"version": version})


def _backtest_markdown(windows: list[dict]) -> str:
    methods = ("model", "seasonal_naive", "exponential_smoothing")
    rows = [f"| {w['origin']} | " + " | ".join(f"{w[m]['wape']:.4f}" for m in methods) + " |" for w in windows]
    return "| origin | WAPE model | seasonal naive | exp. smoothing |\n|---|---|---|---|\n" + "\n".join(rows)
