"""Runs of different partitions at the same time share the report tables (PostgreSQL, DynamoDB)
and the lake: built concurrently, three processes at once, every table must equal what the same
days built one after another give."""

import datetime as dt
import multiprocessing as mp
import uuid
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import dagster as dg
import pytest

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import daily_sales_job, ingest_job
from sales_analytics.profiles import StackSettings, initialized
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, stored_partitions
from sales_analytics_tests.helpers import isolated_resources, isolated_stack

pytestmark = [pytest.mark.stack, pytest.mark.load]
DAYS = 6
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=20, orders_per_store_day=12,
                         start=dt.date.today() - dt.timedelta(days=DAYS + 1))
LAKE_ASSETS = [dg.AssetKey(["clean", "order_lines"]), dg.AssetKey(["reports", "daily_store_sales"]),
               dg.AssetKey(["reports", "daily_sales"])]


def _landed_and_ingested(resources: dict[str, Any]) -> list[str]:
    with initialized(resources["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
    result = build_defs(resources).resolve_job_def(ingest_job.name).execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return sorted({d for e in result.get_asset_materialization_events()
                   for d in e.materialization.metadata.get("touched_partitions", dg.MetadataValue.json([])).value})


def build_day(settings: StackSettings, tag: str, day: str) -> bool:
    """One day's daily_sales run, as the run queue launches it: its own process and instance."""
    job = build_defs(isolated_resources(settings, tag)).resolve_job_def(daily_sales_job.name)
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=day).success


def _contents(resources: dict[str, Any]) -> dict[str, Any]:
    """Every row of the shared tables, and the lake's partitions by content, comparable across stacks."""
    with (initialized(resources["lake"]) as lake, initialized(resources["report_db"]) as report_db,
          initialized(resources["serving_store"]) as serving):
        sql = {spec.name: sorted(map(repr, (sorted(r.items()) for r in report_db.read(spec))))
               for spec in (DAILY_STORE_SALES, DAILY_SALES)}
        dynamodb = {spec.name: sorted(repr(sorted(item.items())) for pk in sorted({k for k, _ in serving.all_keys(spec)})
                                      for item in serving.query(spec, pk))
                    for spec in (DAILY_STORE_SALES, DAILY_SALES)}
        parquet = {"/".join(key.path): {day: parquet_bytes_to_table(lake.get_bytes(obj)).to_pylist() for day, obj in
                                        stored_partitions(lake, key, "sale_date" if key.path[0] == "reports" else "order_date").items()}
                   for key in LAKE_ASSETS}
    return {"sql": sql, "dynamodb": dynamodb, "parquet": parquet}


def test_concurrent_runs_of_different_days_leave_the_shared_tables_as_sequential_runs_do(
        stack_settings: StackSettings) -> None:
    tags = {"concurrent": uuid.uuid4().hex[:10], "sequential": uuid.uuid4().hex[:10]}
    with (isolated_stack(stack_settings, tags["concurrent"]) as concurrent,
          isolated_stack(stack_settings, tags["sequential"]) as sequential):
        days = _landed_and_ingested(concurrent)
        assert _landed_and_ingested(sequential) == days and len(days) >= DAYS
        with ProcessPoolExecutor(max_workers=3, mp_context=mp.get_context("spawn")) as pool:
            assert all(pool.map(build_day, [stack_settings] * len(days), [tags["concurrent"]] * len(days), days))
        for day in days:
            assert build_day(stack_settings, tags["sequential"], day)
        built, expected = _contents(concurrent), _contents(sequential)
        assert all(expected["sql"].values()) and all(expected["dynamodb"].values())
        assert built["sql"] == expected["sql"]
        assert built["dynamodb"] == expected["dynamodb"]
        assert built["parquet"] == expected["parquet"]
