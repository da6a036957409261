"""The code location loads, and its lineage reads like the architecture."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg

from sales_analytics.catalog import landing_key
from sales_analytics.declarations import DASHBOARD_COMPONENT, SOURCE_COMPONENT
from sales_analytics.definitions import build_defs, defs
from sales_analytics.groups import DATA_ENGINEERING, DATA_SCIENCE, GROUPS, LAYER_TAG
from sales_analytics.partitions import FIRST_DAY, partition_days
from sales_analytics.profiles import build_resources
from sales_analytics.sources.spec import order_sources

REPO = Path(__file__).resolve().parents[1]


def test_definitions_load_for_every_profile() -> None:
    dg.Definitions.validate_loadable(defs)
    for profile in ("local", "stack", "aws"):
        dg.Definitions.validate_loadable(build_defs(build_resources(profile)))


def test_dagster_cli_validates_the_workspace() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def _dg(*args: str, project: Path = REPO) -> subprocess.CompletedProcess:
    """``dg`` as a contributor runs it from the project's root, in the project's environment (the
    project's own package first on the path: a copy's, when the project is a copy)."""
    venv = Path(sys.executable).parent.parent
    return subprocess.run([str(venv / "bin" / "dg"), *args], cwd=project, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "VIRTUAL_ENV": str(venv), "NO_COLOR": "1", "COLUMNS": "500", "PYTHONPATH": str(project)})


def test_dg_checks_the_project_and_lists_every_definition() -> None:
    checked = _dg("check", "defs")
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr, checked.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    graph = defs.resolve_asset_graph()
    assert {a["asset_key"] for a in found["assets"]} == {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {c["key"] for c in found["asset_checks"]} == {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}
    assert {j["name"] for j in found["jobs"]} == {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}
    assert {s["name"] for s in found["schedules"]} == {s.name for s in defs.schedules}
    assert {s["name"] for s in found["sensors"]} == {s.name for s in defs.sensors}


def test_a_contributor_adds_a_source_and_a_dashboard_by_scaffolding_them(tmp_path: Path) -> None:
    """README's "add a source" and "add a dashboard": dg scaffold defs, fill in, dg check defs."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "sales_analytics", project / "sales_analytics", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", project)
    for component, folder in ((SOURCE_COMPONENT, "sources/kiosk"), (DASHBOARD_COMPONENT, "dashboards/kiosk_board")):
        scaffolded = _dg("scaffold", "defs", component, folder, project=project)
        assert scaffolded.returncode == 0, scaffolded.stderr
    listed = _dg("list", "defs", "--json", project=project)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert {"landing/kiosk_files", "dashboards/kiosk_board_insights", "dashboards/kiosk_board_page"} <= {a["asset_key"] for a in found["assets"]}
    assert {"landing_kiosk", "dashboard_kiosk_board_schedule"} <= {s["name"] for s in found["sensors"] + found["schedules"]}
    declared = project / "sales_analytics/defs/sources/kiosk/defs.yaml"
    declared.write_text(declared.read_text().replace("timezone: UTC", "timezone: Mars/Olympus"))
    checked = _dg("check", "defs", project=project)
    assert checked.returncode != 0
    assert f"{declared}: attributes.timezone: Value error, unknown time zone 'Mars/Olympus'" in checked.stdout + checked.stderr


def test_lineage_runs_landing_raw_clean_report_stores() -> None:
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey.from_user_string
    orders = {landing_key(s.name) for s in order_sources()}
    assert {key("landing/pos_files"), key("landing/web_files"), key("landing/superstore_files"), key("landing/pos_db_files")} <= orders
    assert graph.get(key("raw/raw_order_lines")).parent_keys == orders
    assert graph.get(key("clean/stores")).parent_keys == {key("landing/stores_files"), key("landing/rossmann_stores_files")}
    assert graph.get(key("clean/order_lines")).parent_keys == {key("raw/raw_order_lines")}
    assert graph.get(key("reports/daily_store_sales")).parent_keys == {key("clean/order_lines")}
    assert graph.get(key("reports/daily_store_sales")).child_keys == {key("publishing/rds_daily_store_sales"),
                                                                      key("publishing/dynamodb_daily_store_sales"),
                                                                      key("dashboards/store_performance_page")}
    assert graph.get(key("curated/sales_by_series")).parent_keys == {key("clean/order_lines"), key("clean/products"),
                                                                     key("clean/stores")}
    assert graph.get(key("ml/demand_model")).parent_keys == {key("curated/sales_by_series"), key("clean/calendar"),
                                                            key("clean/signals"), key("clean/stores")}
    assert graph.get(key("ml/forecast_accuracy")).parent_keys == {key("ml/demand_forecast"), key("curated/sales_by_series")}
    assert graph.get(key("ml/demand_model_champion")).parent_keys == {key("ml/demand_model")}
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert set(groups.values()) == {"sources", "raw", "clean", "quarantine", "curated", "ml", "reports", "publishing",
                                    "dashboards"}
    # Rejected rows and the SQL / DynamoDB copies each have a group of their own, apart from what they come from.
    assert all(group == "quarantine" for key, group in groups.items() if key.startswith("quarantine/"))
    assert all(group == "publishing" for key, group in groups.items() if key.startswith("publishing/"))
    # Every asset links to what declares it: its Python, or a source's YAML spec.
    references = {k.to_user_string(): graph.get(k).metadata.get("dagster/code_references") for k in graph.get_all_asset_keys()}
    assert all(references.values()), [key for key, found in references.items() if not found]
    assert references["landing/pos_files"].code_references[0].file_path.endswith("sales_analytics/defs/sources/pos/defs.yaml")


def test_every_label_is_unique_and_each_group_sets_its_owners_kinds_and_tag_once() -> None:
    """The UI labels an asset by its key's last part: no two alike, in the global view too."""
    graph = defs.resolve_asset_graph()
    labels = Counter(k.path[-1] for k in graph.get_all_asset_keys())
    assert [label for label, count in labels.items() if count > 1] == []
    for asset_key in graph.get_all_asset_keys():
        node, group = graph.get(asset_key), GROUPS[str(graph.get(asset_key).group_name)]
        assert node.tags[LAYER_TAG] == node.group_name and group.kinds <= node.kinds and node.owners, asset_key
    owners = {k.to_user_string(): graph.get(k).owners for k in graph.get_all_asset_keys()}
    assert owners["clean/order_lines"] == owners["landing/pos_files"] == [DATA_ENGINEERING]  # from the group
    assert owners["publishing/rds_model_backtest"] == [DATA_SCIENCE]  # its own, not the group's analysts
    assert owners["dashboards/executive_daily_page"] == ["team:leadership"]  # the dashboard's declared owner


def test_checks_guard_clean_table_and_report() -> None:
    checks = {(c.asset_key.to_user_string(), c.name) for c in defs.resolve_asset_graph().asset_check_keys}
    assert {("clean/order_lines", n) for n in ("matches_canonical_schema", "unique_key",
                                               "non_negative_quantity_and_price", "reconciles_with_raw")} <= checks
    assert ("reports/daily_store_sales", "units_reconcile_with_clean") in checks
    assert ("raw/raw_order_lines", "no_schema_drift") in checks


def test_daily_job_selects_clean_and_reports_and_schedule_targets_it() -> None:
    job = defs.resolve_job_def("daily_sales")
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert selected == {"clean/order_lines", "quarantine/rejected_order_lines", "curated/sales_by_series", "reports/daily_store_sales",
                        "publishing/rds_daily_store_sales", "publishing/dynamodb_daily_store_sales", "reports/daily_sales",
                        "publishing/rds_daily_sales", "publishing/dynamodb_daily_sales"}
    schedule = defs.resolve_schedule_def("daily_sales_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    tick = dt.datetime(2026, 3, 5, 3, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-03-04"  # yesterday's order date, complete by 03:00


def test_ml_jobs_select_their_assets_and_schedules_fire_after_the_daily_build() -> None:
    train_job, forecast_job = defs.resolve_job_def("train_demand_model"), defs.resolve_job_def("demand_forecast")
    assert {k.to_user_string() for k in train_job.asset_layer.executable_asset_keys} == {
        "ml/demand_model", "ml/demand_model_champion", "publishing/rds_model_backtest"}
    assert {k.to_user_string() for k in forecast_job.asset_layer.executable_asset_keys} == {
        "ml/demand_forecast", "ml/forecast_accuracy", *[f"publishing/{store}_{table}" for store in ("rds", "dynamodb")
                                                        for table in ("demand_forecast", "forecast_accuracy")]}
    daily_job = defs.resolve_job_def("daily_sales")  # the sales reports only: forecasts are published by their own job
    assert not any("forecast" in k.to_user_string() for k in daily_job.asset_layer.executable_asset_keys)
    assert defs.resolve_schedule_def("train_demand_model_schedule").cron_schedule == "0 5 * * 1"
    schedule = defs.resolve_schedule_def("demand_forecast_schedule")
    tick = dt.datetime(2026, 3, 5, 4, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert schedule.cron_schedule == "0 4 * * *" and request.partition_key == "2026-03-04"


def test_review_nlp_lineage_jobs_and_schedules() -> None:
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey.from_user_string
    assert graph.get(key("clean/reviews")).parent_keys == {key("landing/clothing_reviews_files"), key("landing/web_reviews_files")}
    assert graph.get(key("ml/sentiment_model")).parent_keys == {key("clean/reviews"), key("clean/products")}
    assert graph.get(key("ml/sentiment_model_champion")).parent_keys == {key("ml/sentiment_model")}
    assert graph.get(key("ml/review_scores")).parent_keys == {key("ml/sentiment_model_champion"), key("clean/reviews"),
                                                             key("clean/products")}
    reports = {"review_sentiment", "review_aspects", "negative_review_spikes"}
    for name in reports:
        assert graph.get(key(f"publishing/rds_{name}")).parent_keys == {key(f"reports/{name}")}
    assert graph.get(key("publishing/dynamodb_review_sentiment")).parent_keys == {key("reports/review_sentiment")}
    train_job, insights_job = defs.resolve_job_def("train_sentiment_model"), defs.resolve_job_def("review_insights")
    assert {k.to_user_string() for k in train_job.asset_layer.executable_asset_keys} == {
        "ml/sentiment_model", "ml/sentiment_model_champion"}
    assert {k.to_user_string() for k in insights_job.asset_layer.executable_asset_keys} == {
        "ml/review_scores", *(f"reports/{name}" for name in reports), *(f"publishing/rds_{name}" for name in reports),
        "publishing/dynamodb_review_sentiment"}
    assert defs.resolve_schedule_def("train_sentiment_model_schedule").cron_schedule == "30 5 * * 1"
    assert defs.resolve_schedule_def("review_insights_schedule").cron_schedule == "0 6 * * *"


def test_receipts_job_reads_yesterdays_scans_before_the_daily_build() -> None:
    job = defs.resolve_job_def("receipts")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "ml/receipt_extraction", "publishing/rds_receipt_review_queue"}
    schedule = defs.resolve_schedule_def("receipts_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC),
                                        repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert schedule.cron_schedule == "0 2 * * *" and request.partition_key == "2026-03-04"
    assert dg.AssetKey(["landing", "receipts_files"]) in defs.resolve_asset_graph().get(dg.AssetKey(["raw", "raw_order_lines"])).parent_keys


def test_only_days_that_are_partitions_are_built_today_waits_for_midnight() -> None:
    now = dt.datetime(2026, 4, 10, 23, 30, tzinfo=dt.UTC)  # late evening: today's rows may already be in
    before_history = (FIRST_DAY - dt.timedelta(days=1)).isoformat()
    assert partition_days(["2026-04-10", "2026-04-09", before_history, "2026-04-09"], now=now) == ["2026-04-09"]
    assert partition_days(["2026-04-10"], now=now + dt.timedelta(hours=1)) == ["2026-04-10"]  # over: now a partition
