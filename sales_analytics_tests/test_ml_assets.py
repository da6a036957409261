"""The demand model in the graph: trained from the curated lake, backtested, stored, promoted by a blocking check."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from sales_analytics.catalog import CLEAN_CALENDAR, CLEAN_SIGNALS, CLEAN_STORES
from sales_analytics.curated.assets import SALES_BY_SERIES_KEY
from sales_analytics.declarations import SOURCE_COMPONENT
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.lake.assets import reference_assets
from sales_analytics.ml.assets import (
    DEMAND_FORECAST_KEY,
    DEMAND_MODEL_NAME,
    declared_week,
    demand_forecast,
    demand_model,
    demand_model_champion,
    forecast_accuracy,
    latest_forecasts,
    model_backtest_report,
    series_mixing_currencies,
)
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.ml.series import generated_weekly_panel
from sales_analytics.partitions import daily_partitions
from sales_analytics.profiles import HOME_ENV, PROFILE_ENV, initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DEMAND_FORECAST, FORECAST_ACCURACY, MODEL_BACKTEST, SALES_BY_SERIES
from sales_analytics.sources.spec import load_spec, order_sources, source_named
from sales_analytics.storage.instance import ensure_instance
from sales_analytics.storage.parquet_io import PARTITION_COLUMN, partition_object_key, table_to_parquet_bytes
from sales_analytics_tests.helpers import WEEKLY_STORE_SALES, materialize_in_graph, write_instance

START, DAYS = dt.date(2026, 1, 1), 120
CONFIG = {"ops": {demand_model.op.name: {"config": {"history_days": DAYS, "horizon": 14, "backtest_windows": 2, "max_iter": 60}}}}


def test_model_is_trained_backtested_stored_and_promoted_only_when_it_earns_it(tmp_path: Path) -> None:
    local_env = local_resources(tmp_path / "local")  # SALES_ANALYTICS_HOME=tmp_path names it for the CLI
    with initialized(local_env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=DAYS, stores=4, products=40, start=START, orders_per_store_day=15))
    instance = dg.DagsterInstance.from_config(str(ensure_instance(tmp_path / "dagster")))  # persistent: the CLI opens it too
    summary = ingest_and_build(build_defs(local_env), instance)  # the daily job curates the series too
    last = (START + dt.timedelta(days=DAYS - 1)).isoformat()
    assert summary.partitions["curated/sales_by_series"] == DAYS

    first = materialize_in_graph(local_env, [demand_model, demand_model_champion, model_backtest_report],
                           instance=instance, run_config=CONFIG)
    assert first.success
    metadata = first.asset_materializations_for_node(demand_model.op.name)[0].metadata
    assert metadata["model/wape"].value < metadata["seasonal_naive/wape"].value  # it earned promotion
    check = first.get_asset_check_evaluations()[0]
    assert check.passed and "no champion yet" in check.metadata["reason"].value
    with initialized(local_env["report_db"]) as db:  # two windows and the pooled row, for each of three methods
        backtest = db.read(MODEL_BACKTEST, metadata["version"].value)
        assert len(backtest) == 3 * 3 and {r["window_origin"] for r in backtest} >= {"all"}
        pooled = {r["method"]: r["wape"] for r in backtest if r["window_origin"] == "all"}
        assert pooled["model"] == pytest.approx(metadata["model/wape"].value, abs=5e-5)  # metadata: 4 decimals
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        version = metadata["version"].value
        assert registry.champion(DEMAND_MODEL_NAME) == version
        models, manifest = registry.load(DEMAND_MODEL_NAME, version)
        assert set(models) == {0.1, 0.5, 0.9} and manifest.trained_until == last
    forecasts = materialize_in_graph(local_env, [demand_forecast], instance=instance, partition_key=last)
    table = forecasts.output_for_node(demand_forecast.op.name).to_pylist()
    series = metadata["series"].value
    assert len(table) == series * 14 and {r["model_version"] for r in table} == {version}
    assert all(0 <= r["p10"] <= r["p50"] <= r["p90"] for r in table)
    assert {str(r["target_date"]) for r in table} == {(dt.date.fromisoformat(last) + dt.timedelta(days=k)).isoformat()
                                                      for k in range(1, 15)}
    _forecasts_are_published_and_the_latest_origin_wins(local_env, instance, dt.date.fromisoformat(last))

    with initialized(local_env["lake"]) as lake:
        # a champion far better than anything we can train: the next candidate is stored but not promoted
        champion = ModelRegistry(lake).manifest(DEMAND_MODEL_NAME, version)
        lake.put_bytes(f"models/{DEMAND_MODEL_NAME}/{version}/manifest.json",
                       lake.get_bytes(f"models/{DEMAND_MODEL_NAME}/{version}/manifest.json").replace(
                           f'"wape": {champion.metrics["model"]["wape"]}'.encode(), b'"wape": 0.0001'))
    by_region = {"ops": {demand_model.op.name: {"config": {**CONFIG["ops"][demand_model.op.name]["config"], "level": "region_category"}}}}
    second = materialize_in_graph(local_env, [demand_model, demand_model_champion], instance=instance, run_config=by_region,
                            raise_on_error=False)
    check = second.get_asset_check_evaluations()[0]
    assert not check.passed and "own backtest" in check.metadata["reason"].value  # another level: only its score to go by
    assert second.asset_materializations_for_node(demand_model.op.name)[0].metadata["series"].value == 4 * 6  # regions x categories
    assert not second.asset_materializations_for_node(demand_model_champion.op.name)  # the blocking check stopped it
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        assert registry.champion(DEMAND_MODEL_NAME) == version and len(registry.versions(DEMAND_MODEL_NAME)) == 2
        refused = registry.versions(DEMAND_MODEL_NAME)[-1]
        assert not registry.verdict(DEMAND_MODEL_NAME, refused).passed  # the verdict is stored with the version
    _the_refused_version_is_never_promoted(local_env, instance, tmp_path, version)


def _the_refused_version_is_never_promoted(env: dict[str, Any], instance: dg.DagsterInstance, home: Path, champion: str) -> None:
    """The champion materialized alone, in process and from the CLI, after its candidate failed the check."""
    alone = materialize_in_graph(env, [demand_model_champion], instance=instance, raise_on_error=False)
    assert not alone.success
    (failure,) = [e for e in alone.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "did not pass its promotion check" in failure.step_failure_data.error.message
    cli = subprocess.run([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "sales_analytics.definitions",
                          "--select", "ml/demand_model_champion"], check=False, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DAGSTER_HOME": str(home / "dagster"), HOME_ENV: str(home), PROFILE_ENV: "local"})
    assert cli.returncode != 0 and "did not pass its promotion check" in cli.stdout + cli.stderr
    with initialized(env["lake"]) as lake:
        assert ModelRegistry(lake).champion(DEMAND_MODEL_NAME) == champion


def _forecasts_are_published_and_the_latest_origin_wins(env: dict[str, Any], instance: dg.DagsterInstance,
                                                        last: dt.date) -> None:
    """The daily forecast job for two origins, then the older one again: SQL holds each origin's rows,
    and the serving store still answers every day with the newest origin's forecast."""
    job = build_defs(env).resolve_job_def("demand_forecast")
    older = last - dt.timedelta(days=1)
    for origin in (older, last, older):
        assert job.execute_in_process(partition_key=origin.isoformat(), instance=instance).success
    with initialized(env["report_db"]) as db, initialized(env["serving_store"]) as serving:
        newest = db.read(DEMAND_FORECAST, last.isoformat())
        assert len(newest) == len(db.read(DEMAND_FORECAST, older.isoformat())) > 0
        series_id = newest[0]["series_id"]
        served = latest_forecasts(serving, series_id, older + dt.timedelta(days=1), last + dt.timedelta(days=14))
        origin_of = {item["target_date"]: item["origin_date"] for item in served}
        assert origin_of[last.isoformat()] == older.isoformat()  # only the older origin forecast that day
        assert {origin_of[(last + dt.timedelta(days=k)).isoformat()] for k in range(1, 14)} == {last.isoformat()}
        expected = {str(r["target_date"]): r["p50"] for r in newest if r["series_id"] == series_id}
        from_newest = {i["target_date"]: float(i["p50"]) for i in served if i["origin_date"] == last.isoformat()}
        assert from_newest == pytest.approx(expected)
        accuracy = db.read(FORECAST_ACCURACY, last.isoformat())
        assert {r["origin_date"] for r in accuracy} == {older}  # the older origin's forecast of `last`, scored


def test_forecast_accuracy_scores_every_past_forecast_of_the_day(local_env: dict[str, Any]) -> None:
    day, d1, d2 = dt.date(2026, 4, 10), dt.date(2026, 4, 8), dt.date(2026, 4, 9)
    forecast_rows = [  # two origins forecast 2026-04-10 for two series; one forecast is of another day
        (d1, "store_category", "S1|tea", day, 2, 8.0, 10.0, 12.0, "v1", "units"),
        (d1, "store_category", "S2|tea", day, 2, 0.0, 1.0, 3.0, "v1", "units"),
        (d2, "store_category", "S1|tea", day, 1, 11.0, 13.0, 15.0, "v2", "units"),
        (d2, "store_category", "S1|tea", dt.date(2026, 4, 11), 2, 1.0, 2.0, 3.0, "v2", "units"),
        (d2, "region_category", "north|tea", day, 1, 20.0, 30.0, 40.0, "v3", "net_sales"),
    ]
    with initialized(local_env["lake"]) as lake:
        for origin in (d1, d2):
            rows = [dict(zip(DEMAND_FORECAST.column_names, r, strict=True)) for r in forecast_rows if r[0] == origin]
            lake.put_bytes(partition_object_key(DEMAND_FORECAST_KEY, "origin_date", origin.isoformat()),
                           table_to_parquet_bytes(pa.Table.from_pylist(rows, schema=DEMAND_FORECAST.arrow_schema())))
        actuals = pa.Table.from_pylist([  # S1 sold 11 tea over two products; S2 sold nothing
            {"sale_date": day, "store_id": "S1", "product_id": p, "category": "tea", "region": "north",
             "store_format": "express", "units": u, "net_sales": v} for p, u, v in (("P1", 4, 12.0), ("P2", 7, 21.5))],
            schema=SALES_BY_SERIES.arrow_schema())
        lake.put_bytes(partition_object_key(SALES_BY_SERIES_KEY, "sale_date", day.isoformat()), table_to_parquet_bytes(actuals))
    upstream = [dg.AssetSpec(key, partitions_def=forecast_accuracy.partitions_def, metadata={PARTITION_COLUMN: column})
                for key, column in ((SALES_BY_SERIES_KEY, "sale_date"), (DEMAND_FORECAST_KEY, "origin_date"))]
    result = dg.materialize([*upstream, forecast_accuracy], resources=local_env, partition_key=day.isoformat(),
                            selection=[forecast_accuracy.key])
    scored = [(str(r["origin_date"]), r["series_id"], r["model_version"], r["step"], r["actual"], r["abs_error"], r["in_band"])
              for r in result.output_for_node(forecast_accuracy.op.name).to_pylist()]
    assert scored == [("2026-04-08", "S1|tea", "v1", 2, 11.0, 1.0, True),
                      ("2026-04-08", "S2|tea", "v1", 2, 0.0, 1.0, True),
                      ("2026-04-09", "north|tea", "v3", 1, 33.5, 3.5, True),  # net sales of the region's tea
                      ("2026-04-09", "S1|tea", "v2", 1, 11.0, 2.0, True)]
    metadata = result.asset_materializations_for_node(forecast_accuracy.op.name)[0].metadata
    assert metadata["wape"].value == pytest.approx((1 + 1 + 2 + 3.5) / (11 + 11 + 33.5), abs=5e-5)
    assert metadata["wape_by_days_ahead"].value == {"1": round(5.5 / 44.5, 4), "2": round(2 / 11, 4)}  # S2: error 1, sold 0


def test_money_is_not_forecast_for_series_that_add_up_currencies() -> None:
    stores = pa.table({"store_id": ["S1", "S2", "S3", "S4"], "region": ["north", "north", "south", "south"],
                       "currency": ["EUR", "GBP", "EUR", "GBP"], "is_current": [True, True, True, False]})
    assert series_mixing_currencies(stores, "region_category") == ["north: EUR, GBP"]  # S4 closed: south is EUR only
    assert series_mixing_currencies(stores, "store_category") == []  # a store sells in one currency
    assert series_mixing_currencies(None, "region_category") == []  # no store master yet: nothing known to mix


def test_the_sales_sources_declare_the_grain_the_model_takes(tmp_path: Path) -> None:
    weekly_source = load_spec(write_instance(tmp_path, SOURCE_COMPONENT, {**WEEKLY_STORE_SALES, "week_anchor": "FRI"}))
    assert declared_week((weekly_source,)) == "FRI"
    assert declared_week(order_sources()) is None  # the demo's sources report days
    with pytest.raises(dg.Failure, match=r"report different periods \(weekly_store_sales: FRI, pos: day"):
        declared_week((weekly_source, source_named("pos")))


def test_a_weekly_source_is_trained_and_forecast_by_week(local_env: dict[str, Any]) -> None:
    """Curated rows dated by their Friday, as a weekly source lands them, with each store's size and its own
    markdowns planned by week: the model is configured by week, learns from both, is promoted against last year's
    week, and forecasts Fridays; daily rows under the same configuration are refused."""
    panel, covariates = generated_weekly_panel(6, 130, markdowns=True)
    weekly_rows = [{"sale_date": day.date(), "store_id": f"S{series[-1]}", "product_id": "P1", "category": "grocery",
                    "region": "north", "store_format": "mall", "units": round(max(y, 0)), "net_sales": float(y)}
                   for series, day, y in panel.itertuples(index=False)]
    markdowns = covariates.by_series["signal_markdown"].rename(columns=lambda series: f"S{series[-1]}")
    with initialized(local_env["lake"]) as lake:
        for day, rows in pd.DataFrame(weekly_rows).groupby("sale_date"):
            lake.put_bytes(partition_object_key(SALES_BY_SERIES_KEY, "sale_date", day.isoformat()), table_to_parquet_bytes(
                pa.Table.from_pylist(rows.to_dict("records"), schema=SALES_BY_SERIES.arrow_schema())))
        lake.put_bytes("landing/reference/stores/2020-01-01/stores.csv", "".join(
            ["store_id,name,region,city,format,currency,opened,size\n",
             *(f"{store},Store,north,Leeds,mall,GBP,2019-01-01,{size * 5000:.0f}\n"
               for store, size in zip(markdowns.columns, covariates.static["size"]))]).encode())
        lake.put_bytes("landing/reference/signals/2020-01-01/markdowns.csv", "".join(
            ["date,store_id,signal,value\n", *(f"{day.date()},{store},markdown,{value}\n"
                                               for (day, store), value in markdowns.stack().items())]).encode())
    reference = [asset for asset in reference_assets if {CLEAN_STORES, CLEAN_SIGNALS} & set(asset.keys)]
    upstream = [dg.AssetSpec(SALES_BY_SERIES_KEY, partitions_def=daily_partitions, metadata={PARTITION_COLUMN: "sale_date"}),
                dg.AssetSpec(CLEAN_CALENDAR), *reference]
    by_week = {"ops": {demand_model.op.name: {"config": {"grain": "week", "week_anchor": "FRI", "horizon": 8, "history_days": 910,
                                                          "backtest_windows": 2, "max_iter": 60}}}}
    with dg.instance_for_test() as instance:
        assert dg.materialize(reference, resources=local_env, instance=instance).success
        trained = dg.materialize([*upstream, demand_model, demand_model_champion], resources=local_env, instance=instance,
                                 run_config=by_week, selection=[demand_model.key, demand_model_champion.key])
        metadata = trained.asset_materializations_for_node(demand_model.op.name)[0].metadata
        assert metadata["grain"].value == "W-FRI" and metadata["periods"].value == 130  # weeks, not 904 padded days
        assert metadata["model/wape"].value < metadata["seasonal_naive/wape"].value  # last year's week
        with initialized(local_env["lake"]) as lake:
            _, manifest = ModelRegistry(lake).load(DEMAND_MODEL_NAME, metadata["version"].value)
        assert {"store_size", "signal_markdown"} <= set(manifest.features)  # the store's own, by series
        last = max(r["sale_date"] for r in weekly_rows)
        forecasts = dg.materialize([*upstream, demand_forecast], resources=local_env, instance=instance,
                                   partition_key=last.isoformat(), selection=[demand_forecast.key])
        table = forecasts.output_for_node(demand_forecast.op.name).to_pandas()
        assert len(table) == 6 * 8 and {d.weekday() for d in table["target_date"]} == {4}
        assert min(table["target_date"]) == last + dt.timedelta(weeks=1)

        by_day = {"ops": {demand_model.op.name: {"config": {**by_week["ops"][demand_model.op.name]["config"], "week_anchor": "SUN"}}}}
        refused = dg.materialize([*upstream, demand_model], resources=local_env, instance=instance, run_config=by_day,
                                 selection=[demand_model.key], raise_on_error=False)
        assert not refused.success
        failure = next(e for e in refused.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert "rows dated by the week's SUN" in failure.step_failure_data.error.message
