"""The demand model in the graph: trained from the curated lake, backtested, stored, promoted by a blocking check."""

import datetime as dt
from typing import Any

import dagster as dg

from sales_analytics.curated.assets import SALES_BY_SERIES_KEY
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ml.assets import MODEL_NAME, demand_forecast, demand_model, demand_model_champion
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.partitions import range_tags
from sales_analytics.profiles import initialized
from sales_analytics.runner import ingest_and_build

START, DAYS = dt.date(2026, 1, 1), 150
CONFIG = {"ops": {demand_model.op.name: {"config": {"history_days": DAYS, "horizon": 14, "backtest_windows": 2, "max_iter": 60}}}}


def test_model_is_trained_backtested_stored_and_promoted_only_when_it_earns_it(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=DAYS, stores=4, products=60, start=START, orders_per_store_day=30))
    instance = dg.DagsterInstance.ephemeral()
    ingest_and_build(build_defs(local_env), instance)
    last = (START + dt.timedelta(days=DAYS - 1)).isoformat()
    curate = build_defs(local_env).resolve_implicit_global_asset_job_def()
    assert curate.execute_in_process(instance=instance, asset_selection=[SALES_BY_SERIES_KEY],
                                     tags=range_tags(START.isoformat(), last)).success

    first = dg.materialize([demand_model, demand_model_champion], resources=local_env, instance=instance, run_config=CONFIG)
    assert first.success
    metadata = first.asset_materializations_for_node(demand_model.op.name)[0].metadata
    assert metadata["model/wape"].value < metadata["seasonal_naive/wape"].value  # it earned promotion
    check = first.get_asset_check_evaluations()[0]
    assert check.passed and "no champion yet" in check.metadata["reason"].value
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        version = metadata["version"].value
        assert registry.champion(MODEL_NAME) == version
        models, manifest = registry.load(MODEL_NAME, version)
        assert set(models) == {0.1, 0.5, 0.9} and manifest.trained_until == last
    forecasts = dg.materialize([demand_forecast], resources=local_env, instance=instance, partition_key=last)
    table = forecasts.output_for_node(demand_forecast.op.name).to_pylist()
    series = metadata["series"].value
    assert len(table) == series * 14 and {r["model_version"] for r in table} == {version}
    assert all(0 <= r["p10"] <= r["p50"] <= r["p90"] for r in table)
    assert {str(r["target_date"]) for r in table} == {(dt.date.fromisoformat(last) + dt.timedelta(days=k)).isoformat()
                                                      for k in range(1, 15)}
    with initialized(local_env["lake"]) as lake:
        # a champion far better than anything we can train: the next candidate is stored but not promoted
        champion = ModelRegistry(lake).manifest(MODEL_NAME, version)
        lake.put_bytes(f"models/{MODEL_NAME}/{version}/manifest.json",
                       lake.get_bytes(f"models/{MODEL_NAME}/{version}/manifest.json").replace(
                           f'"wape": {champion.metrics["model"]["wape"]}'.encode(), b'"wape": 0.0001'))
    second = dg.materialize([demand_model, demand_model_champion], resources=local_env, instance=instance, run_config=CONFIG,
                            raise_on_error=False)
    assert not second.get_asset_check_evaluations()[0].passed
    assert not second.asset_materializations_for_node(demand_model_champion.op.name)  # the blocking check stopped it
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        assert registry.champion(MODEL_NAME) == version and len(registry.versions(MODEL_NAME)) == 2
