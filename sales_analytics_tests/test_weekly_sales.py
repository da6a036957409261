"""Weekly sales follow their days by declarative automation: each complete week once, and an old
week again when a correction changes one of its days."""

import datetime as dt
from collections import defaultdict
from typing import Any

import dagster as dg
import pytest

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import weekly_sales_job
from sales_analytics.profiles import initialized
from sales_analytics.reports.weekly_sales import WEEKLY_SALES_KEY
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_SALES, WEEKLY_SALES

START = dt.date(2026, 1, 5)  # a Monday: three whole weeks
WEEKS = ["2026-01-05", "2026-01-12", "2026-01-19"]
AUTOMATED = dg.AssetSelection.assets(WEEKLY_SALES_KEY).downstream()


def requested_weeks(result: Any) -> set[str]:
    return set(result.get_requested_partitions(WEEKLY_SALES_KEY))


def build_weeks(defs: dg.Definitions, instance: dg.DagsterInstance, weeks: set[str]) -> None:
    for week in sorted(weeks):  # what the automation sensor's runs do
        assert defs.resolve_job_def(weekly_sales_job.name).execute_in_process(instance=instance, partition_key=week).success


def test_each_complete_week_is_built_once_and_rebuilt_when_a_day_changes(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=22, stores=2, products=15, start=START, orders_per_store_day=6), progress=False)
    defs, instance = build_defs(local_env), dg.DagsterInstance.ephemeral()
    # The sensor's first tick, at deployment, takes stock (history before it is a backfill's job).
    deployed = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED)
    assert deployed.total_requested == 0
    ingest_and_build(defs, instance)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED, cursor=deployed.cursor)
    assert requested_weeks(first) == set(WEEKS)  # not 2026-01-26: only its Monday has landed
    build_weeks(defs, instance, requested_weeks(first))
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED, cursor=first.cursor)
    assert quiet.total_requested == 0

    with initialized(local_env["report_db"]) as db:
        daily, weekly = db.read(DAILY_SALES), db.read(WEEKLY_SALES)
    summed: dict[tuple, float] = defaultdict(float)
    for row in daily:
        monday = row["sale_date"] - dt.timedelta(days=row["sale_date"].weekday())
        if monday.isoformat() in WEEKS:
            summed[monday, row["slice"], row["currency"]] += row["net_sales"]
    assert {(r["week_start"], r["slice"], r["currency"]) for r in weekly} == set(summed)
    assert all(r["net_sales"] == pytest.approx(summed[r["week_start"], r["slice"], r["currency"]], abs=0.01) for r in weekly)
    with initialized(local_env["serving_store"]) as serving:
        items = serving.query(WEEKLY_SALES, "total=*")
    assert sorted({i["week_start"] for i in items}) == WEEKS

    # A day of the second week is rebuilt (as a late line would): only that week is asked for again.
    day = "2026-01-14"
    assert defs.resolve_job_def("daily_sales").execute_in_process(instance=instance, partition_key=day).success
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED, cursor=quiet.cursor)
    assert requested_weeks(again) == {"2026-01-12"}


def test_weeks_whose_days_were_built_before_the_automation_started_are_built_on_its_first_tick(local_env: dict[str, Any]) -> None:
    """History built before the deployment's sensor first ticks (the demo, then `make ui`): "updated"
    and "newly missing" only see what happens later, so the first tick asks for every complete week."""
    with initialized(local_env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=22, stores=2, products=15, start=START, orders_per_store_day=6), progress=False)
    defs, instance = build_defs(local_env), dg.DagsterInstance.ephemeral()
    ingest_and_build(defs, instance)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED)
    assert requested_weeks(first) == set(WEEKS)
    build_weeks(defs, instance, requested_weeks(first))
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=AUTOMATED, cursor=first.cursor)
    assert again.total_requested == 0
