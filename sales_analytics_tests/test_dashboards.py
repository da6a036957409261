"""Declared dashboards: validation, one job and schedule each, insights that find what was planted,
and pages built from the reports on a generated history."""

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sales_analytics.dashboards.assets import (
    AS_OF_TAG,
    dashboard_definitions,
    freshness,
    insights_key,
    page_key,
)
from sales_analytics.dashboards.insights import MOVER_MIN_SWINGS, anomaly_insights, fmt, mover_insights
from sales_analytics.dashboards.render import page_warnings, render_page
from sales_analytics.dashboards.spec import (
    DashboardSpecError,
    dashboard_specs,
    declaration_file,
    load_spec,
    page_object_key,
)
from sales_analytics.declarations import DASHBOARD_COMPONENT, INSTANCE_FILE
from sales_analytics.definitions import build_defs, defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.profiles import initialized
from sales_analytics.reports.daily_sales import compute_daily_sales
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_SALES, INSIGHTS
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, partition_object_key

VALID = """
name: {name}
title: Test board
owner: team:test
schedule: {{cron: "0 7 * * *", timezone: Europe/Berlin}}
reports: [reports/daily_sales]
kpis: [net_sales]
charts:
  - {{type: trend, title: Net sales}}
"""


def write_spec(tmp_path: Path, text: str, folder: str = "test_board") -> Path:
    path = tmp_path / folder / INSTANCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"type: {DASHBOARD_COMPONENT}\nattributes:\n" + "".join(f"  {line}\n" for line in text.strip().splitlines()))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (('"0 7 * * *"', '"61 7 * * *"'), "schedule.cron: Value error, not a 5-field cron schedule"),
    (("Europe/Berlin", "Europe/Atlantis"), "schedule.timezone: Value error, unknown IANA timezone 'Europe/Atlantis'"),
    (("kpis: [net_sales]", "kpis: [net_sales, forecast_wape]"), "kpi forecast_wape reads ml/forecast_accuracy"),
    (("reports: [reports/daily_sales]", "reports: [reports/daily_sales, reports/review_aspects]"),
     "reports ['reports/review_aspects'] are listed but nothing reads them"),
    (("type: trend", "type: pie"), "charts.0.type: Input should be"),
    (("owner: team:test", "owner: someone"), "owner: String should match pattern"),
])
def test_a_bad_declaration_names_file_and_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write_spec(tmp_path, VALID.format(name="test_board").replace(*change))
    with pytest.raises(DashboardSpecError) as raised:
        load_spec(path)
    assert str(raised.value).startswith("test_board/defs.yaml: attributes") and message in str(raised.value)


def test_a_declaration_must_be_named_after_its_file(tmp_path: Path) -> None:
    with pytest.raises(DashboardSpecError, match="name 'other' must match its folder's name"):
        load_spec(write_spec(tmp_path, VALID.format(name="other")))


def test_four_dashboards_each_with_a_job_over_exactly_its_own_assets() -> None:
    """A dashboard's job builds its insights and page; the reports they read are other jobs' to build and publish."""
    assert {s.name for s in dashboard_specs()} >= {"executive_daily", "store_performance", "demand_planning", "customer_voice"}
    graph = defs.resolve_asset_graph()
    for spec in dashboard_specs():
        name = spec.name
        job = defs.resolve_job_def(f"dashboard_{name}")
        assert set(job.asset_layer.executable_asset_keys) == {insights_key(name), page_key(name)}, name
        assert job.partitions_def is None
        reports = {dg.AssetKey(r.split("/")) for r in spec.reports}
        assert graph.get(page_key(name)).parent_keys == {insights_key(name), *reports}
        assert graph.get(insights_key(name)).parent_keys == {dg.AssetKey(r.split("/")) for r in spec.insight_reports()}


BERLIN, LONDON, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


@pytest.mark.parametrize(("name", "tick", "utc_hour", "as_of"), [
    ("executive_daily", dt.datetime(2026, 3, 28, 6, 30, tzinfo=BERLIN), 5, "2026-03-27"),  # CET
    ("executive_daily", dt.datetime(2026, 3, 29, 6, 30, tzinfo=BERLIN), 4, "2026-03-28"),  # clocks went forward at 02:00
    ("executive_daily", dt.datetime(2026, 10, 25, 6, 30, tzinfo=BERLIN), 5, "2026-10-24"),  # and back again
    ("store_performance", dt.datetime(2026, 3, 28, 7, 0, tzinfo=BERLIN), 6, "2026-03-27"),  # Saturday, CET
    ("store_performance", dt.datetime(2026, 3, 30, 7, 0, tzinfo=BERLIN), 5, "2026-03-29"),  # Monday, CEST
    ("demand_planning", dt.datetime(2026, 3, 29, 8, 0, tzinfo=LONDON), 7, "2026-03-28"),  # first morning of BST
    ("demand_planning", dt.datetime(2026, 10, 25, 8, 0, tzinfo=LONDON), 8, "2026-10-24"),  # GMT again
    ("customer_voice", dt.datetime(2026, 3, 2, 9, 0, tzinfo=NEW_YORK), 14, "2026-03-01"),  # EST
    ("customer_voice", dt.datetime(2026, 3, 9, 9, 0, tzinfo=NEW_YORK), 13, "2026-03-08"),  # first Monday of EDT
])
def test_every_schedule_fires_at_its_local_time_across_dst(name: str, tick: dt.datetime, utc_hour: int, as_of: str) -> None:
    spec = next(s for s in dashboard_specs() if s.name == name)
    schedule = defs.resolve_schedule_def(f"dashboard_{name}_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == (spec.schedule.cron, spec.schedule.timezone)
    assert schedule.job_name == f"dashboard_{name}"
    minute, hour = spec.schedule.cron.split()[:2]
    assert (tick.minute, tick.hour) == (int(minute), int(hour))  # the tick is one the cron names, in local time
    assert tick.astimezone(dt.UTC).hour == utc_hour  # the same local time is a different UTC hour across DST
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.tags[AS_OF_TAG] == as_of


def test_a_scheduled_run_is_for_the_last_complete_utc_day_in_any_timezone(tmp_path: Path) -> None:
    """07:00 in Tokyo is 22:00 UTC the day before: that UTC day is not over, so the run is for the one before."""
    spec = load_spec(write_spec(tmp_path, VALID.format(name="test_board").replace("Europe/Berlin", "Asia/Tokyo")))
    test_defs = dg.Definitions.merge(defs, dashboard_definitions(spec))
    schedule = test_defs.resolve_schedule_def("dashboard_test_board_schedule")
    tick = dt.datetime(2026, 3, 30, 7, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=test_defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert schedule.execution_timezone == "Asia/Tokyo" and request.tags[AS_OF_TAG] == "2026-03-28"


# -- insights on a constructed history ---------------------------------------------------
WEEKDAY_FACTOR = [1.0, 0.9, 1.0, 1.2, 1.6, 2.2, 0.7]  # Monday..Sunday: Saturdays are always busy
PRODUCTS = {"P1": "food", "P2": "food", "P3": "toys", "P4": "toys"}
STORES = {"S1": "north", "S2": "south", "S3": "north"}


def constructed_sales(as_of: dt.date, days: int = 70, planted: float = 6.0) -> pd.DataFrame:
    """A daily_sales report over ``days`` with strong weekly seasonality and noise; on ``as_of``,
    store S2 sells ``planted`` times its usual amount of product P3."""
    rng = np.random.default_rng(3)
    lines = []
    for offset in range(days):
        day = as_of - dt.timedelta(days=days - 1 - offset)
        for store in STORES:
            for product in PRODUCTS:
                quantity = 20 * WEEKDAY_FACTOR[day.weekday()] * rng.uniform(0.9, 1.1)
                if day == as_of and (store, product) == ("S2", "P3"):
                    quantity *= planted
                lines.append({"order_date": day, "store_id": store, "channel": "store", "product_id": product,
                              "currency": "EUR", "order_id": f"{day}-{store}-{product}", "status": "sold",
                              "quantity": round(quantity), "unit_price": 10.0, "discount": 0.0})
    start = as_of - dt.timedelta(days=days)
    products = pa.table({"product_id": list(PRODUCTS), "category": list(PRODUCTS.values()), "valid_from": [start] * 4})
    stores = pa.table({"store_id": list(STORES), "region": list(STORES.values()), "valid_from": [start] * 3})
    return compute_daily_sales(pa.Table.from_pylist(lines), products, stores).to_pandas()


def test_a_planted_anomaly_is_found_with_its_driver_and_its_numbers() -> None:
    as_of = dt.date(2026, 3, 14)  # a Saturday: the busiest day of the week, and unusual on top of that
    sales = constructed_sales(as_of)
    stored = set(pd.to_datetime(sales["sale_date"]).dt.date)
    found = anomaly_insights(sales, stored, "EUR", as_of)
    anomalies = [i for i in found if i.kind == "anomaly"]
    assert {(i.metric, i.day) for i in anomalies} == {("net_sales", as_of)}  # orders did not change; no other day flagged
    (anomaly,) = anomalies
    total = sales[(sales["dimension"] == "total") & (pd.to_datetime(sales["sale_date"]).dt.date == as_of)]
    assert anomaly.value == pytest.approx(float(total["net_sales"].iloc[0]))
    assert fmt("net_sales", anomaly.value, "EUR") in anomaly.narrative
    assert fmt("net_sales", anomaly.reference, "EUR") in anomaly.narrative and "usual Saturday" in anomaly.narrative
    drivers = {i.subject: i for i in found if i.kind == "driver"}
    assert {"product=P3", "store=S2", "category=toys"} <= set(drivers)
    assert all(drivers[s].score > 0.8 for s in ("product=P3", "store=S2", "category=toys"))
    assert f"{drivers['product=P3'].score:.0%}" in drivers["product=P3"].narrative


def test_weekly_seasonality_alone_is_not_an_anomaly() -> None:
    as_of = dt.date(2026, 3, 14)
    sales = constructed_sales(as_of, planted=1.0)
    assert anomaly_insights(sales, set(pd.to_datetime(sales["sale_date"]).dt.date), "EUR", as_of) == []


def test_a_mover_is_listed_only_when_its_change_is_large_against_its_own_weekly_swing() -> None:
    as_of = dt.date(2026, 3, 14)
    planted = constructed_sales(as_of, planted=6.0)  # one day of S2 x P3 at six times its usual
    stored = set(pd.to_datetime(planted["sale_date"]).dt.date)
    movers = mover_insights(planted, stored, "EUR", as_of, ("product", "store", "category", "region"))
    assert {m.subject for m in movers} == {"product=P3", "store=S2", "category=toys", "region=south"}
    for mover in movers:
        assert mover.score >= 2.5 and mover.value > mover.reference
        assert f"{mover.score:.1f} times its usual weekly swing" in mover.narrative
    # The same weeks without the planted day: every member's change is day-to-day noise (a few per
    # cent either way), and none of it is news.
    noise = constructed_sales(as_of, planted=1.0)
    assert mover_insights(noise, stored, "EUR", as_of, ("product", "store", "category", "region")) == []


class _Reports:
    """Just what freshness reads of a reader: each report's newest day."""

    def __init__(self, newest: dict[str, dt.date]) -> None:
        self.newest = newest

    def newest_day(self, report: str) -> dt.date:
        return self.newest[report]


def test_a_page_says_at_the_top_when_its_data_is_stale_or_a_currency_is_left_out() -> None:
    spec = load_spec(declaration_file("store_performance"))
    refreshed = dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)
    assert spec.schedule.period_days == 2  # Monday to Saturday: the longest wait is Saturday to Monday
    fresh = freshness(spec, _Reports({r: dt.date(2026, 11, 30) for r in spec.reports}), refreshed)
    assert not any(f.stale for f in fresh) and page_warnings(spec, fresh, ["EUR"]) == []
    old = freshness(spec, _Reports({r: dt.date(2026, 3, 1) for r in spec.reports}), refreshed)
    warnings = page_warnings(spec, old, ["EUR", "GBP"])
    assert [w.split(":")[0] for w in warnings] == ["Stale data", "Stale data", "KPIs and insights are in EUR only"]
    assert "2026-03-01, 275 days before this refresh" in warnings[0] and "GBP are not added in" in warnings[2]
    html = render_page(spec, pd.DataFrame(columns=INSIGHTS.column_names), [], old, dt.date(2026, 3, 1), refreshed, warnings)
    assert html.index('role="alert">Stale data') < html.index('class="tiles"')  # above everything else


# -- built from generated data -----------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from sales_analytics.profiles import local_resources

    env = local_resources(tmp_path_factory.mktemp("dashboards") / "local")
    with initialized(env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=70, stores=3, products=30, orders_per_store_day=12), progress=False)
    test_defs = build_defs(env)
    instance = dg.DagsterInstance.ephemeral()
    summary = ingest_and_build(test_defs, instance)
    return {"env": env, "defs": test_defs, "instance": instance, "days": summary.touched_days}


def test_executive_page_is_built_with_insights_traceable_to_the_report(built: dict[str, Any]) -> None:
    day = built["days"][-10]  # later days exist: the scheduled run's insights stop at its day
    result = built["defs"].resolve_job_def("dashboard_executive_daily").execute_in_process(
        instance=built["instance"], tags={AS_OF_TAG: day})
    assert result.success
    page = next(e.materialization for e in result.get_asset_materialization_events()
                if e.asset_key == page_key("executive_daily"))
    assert page.metadata["as_of"].value == day
    assert page.metadata["charts"].value == 3 * 2  # each of the three charts once per currency (EUR, GBP)
    assert page.metadata["dashboard_url"].value.endswith("/dashboards/executive_daily")
    assert "Net sales (last 7 days)" in page.metadata["preview"].value
    with initialized(built["env"]["lake"]) as lake:
        html = lake.get_bytes(page_object_key("executive_daily")).decode()
        insights = parquet_bytes_to_table(lake.get_bytes(partition_object_key(insights_key("executive_daily"), None, None))).to_pandas()
        as_of = dt.date.fromisoformat(day)
        week = [(as_of - dt.timedelta(days=k)).isoformat() for k in range(7)]
        report = pd.concat([parquet_bytes_to_table(lake.get_bytes(partition_object_key(
            dg.AssetKey(["reports", "daily_sales"]), "sale_date", d))).to_pandas() for d in week])
    assert "<title>Executive daily summary</title>" in html and 'data-chart="chart-0-0"' in html
    assert f"Data as of <strong id=\"as-of\">{day}</strong>" in html
    total = report[(report["dimension"] == "total") & (report["currency"] == "EUR")]
    kpi = insights[(insights["kind"] == "kpi") & (insights["metric"] == "net_sales") & (insights["period"] == "week")].iloc[0]
    assert kpi["value"] == pytest.approx(total["net_sales"].sum())
    assert fmt("net_sales", kpi["value"], "EUR") in kpi["narrative"] and fmt("net_sales", kpi["value"], "EUR") in html
    movers = insights[insights["kind"] == "mover"]
    for mover in movers.itertuples():
        assert mover.score >= MOVER_MIN_SWINGS
        dimension, member = mover.subject.split("=", 1)
        rows = report[(report["dimension"] == dimension) & (report["member"] == member) & (report["currency"] == "EUR")]
        assert mover.value == pytest.approx(rows["net_sales"].sum())
        numbers = re.findall(r"[\d,]+\.\d\d", mover.narrative)
        assert numbers[0] == f"{mover.value:,.2f}" and numbers[-1] == f"{mover.reference:,.2f}"
    assert DAILY_SALES.name == "daily_sales"
