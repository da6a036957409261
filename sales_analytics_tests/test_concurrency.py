"""Runs of different partitions at the same time share the report tables (PostgreSQL, DynamoDB)
and the lake: built concurrently, three processes at once, every table must equal what the same
days built one after another give."""

import datetime as dt
import multiprocessing as mp
import uuid
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import pytest

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig
from sales_analytics.jobs import daily_sales_job
from sales_analytics.profiles import StackSettings
from sales_analytics_tests.helpers import isolated_resources, isolated_stack, land_and_ingest, stored_contents

pytestmark = [pytest.mark.stack, pytest.mark.load]
DAYS = 6
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=20, orders_per_store_day=12,
                         start=dt.date.today() - dt.timedelta(days=DAYS + 1))


def build_day(settings: StackSettings, tag: str, day: str) -> bool:
    """One day's daily_sales run, as the run queue launches it: its own process and instance."""
    job = build_defs(isolated_resources(settings, tag)).resolve_job_def(daily_sales_job.name)
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key=day).success


def test_concurrent_runs_of_different_days_leave_the_shared_tables_as_sequential_runs_do(
        stack_settings: StackSettings) -> None:
    tags = {"concurrent": uuid.uuid4().hex[:10], "sequential": uuid.uuid4().hex[:10]}
    with (isolated_stack(stack_settings, tags["concurrent"]) as concurrent,
          isolated_stack(stack_settings, tags["sequential"]) as sequential):
        days = land_and_ingest(concurrent, CONFIG)
        assert land_and_ingest(sequential, CONFIG) == days and len(days) >= DAYS
        with ProcessPoolExecutor(max_workers=3, mp_context=mp.get_context("spawn")) as pool:
            assert all(pool.map(build_day, [stack_settings] * len(days), [tags["concurrent"]] * len(days), days))
        for day in days:
            assert build_day(stack_settings, tags["sequential"], day)
        built, expected = stored_contents(concurrent), stored_contents(sequential)
        assert all(expected["sql"].values()) and all(expected["dynamodb"].values())
        assert built["sql"] == expected["sql"]
        assert built["dynamodb"] == expected["dynamodb"]
        assert built["parquet"] == expected["parquet"]
