"""Through the real dagster-webserver and its GraphQL API, as the UI does it."""

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sklearn.dummy import DummyRegressor

from sales_analytics.catalog import DAILY_STORE_SALES_KEY, DEMAND_MODEL_NAME
from sales_analytics.dashboards.assets import AS_OF_TAG, insights_key, page_key
from sales_analytics.dashboards.spec import EXTRA_DIRS_ENV
from sales_analytics.declarations import DASHBOARD_COMPONENT, SOURCE_COMPONENT
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ml.assets import DEMAND_CHAMPION, DEMAND_MODEL
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_STORE_SALES, WEEKLY_SALES
from sales_analytics.storage.instance import ensure_instance
from sales_analytics.storage.parquet_io import partition_object_key
from sales_analytics_tests.helpers import free_port, write_instance

REPO = Path(__file__).resolve().parents[1]
LOCATION = {"repositoryLocationName": "sales_analytics", "repositoryName": "__repository__"}

pytestmark = pytest.mark.webserver
KEPT_RUNNING = {"weekly_reports_automation", "run_failure_alerts"}
MINUTELY = "e2e_minutely"
MINUTELY_DECLARATION = f"""
name: {MINUTELY}
title: Sales every minute
owner: team:platform
schedule: {{cron: "* * * * *", timezone: Europe/Berlin}}
reports: [reports/daily_sales]
kpis: [net_sales, orders]
insights: [movers]
charts:
  - {{type: trend, title: Net sales per day, days: 14}}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("web")
    # The local instance `make ui` configures, with one run at a time, as a run queue limit would hold a busy
    # deployment (deploy/dagster.yaml).
    ensure_instance(home / "dagster", max_concurrent_runs=1)
    # A dashboard added by declaration alone, in a deployment's own folder, firing every minute.
    write_instance(home / "dashboards", DASHBOARD_COMPONENT, MINUTELY_DECLARATION)
    env = {**os.environ, "SALES_ANALYTICS_HOME": str(home), "SALES_ANALYTICS_PROFILE": "local",
           "DAGSTER_HOME": str(home / "dagster"), EXTRA_DIRS_ENV: str(home / "dashboards")}
    port = free_port()
    bin_dir = Path(sys.executable).parent

    def start(command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    processes = [start([str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)])]
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if graphql(url, "{ version }").get("version"):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster-webserver did not come up in 120s")
        # What a deployment starts with, then everything but the weekly automation and the alerts
        # stopped as a user can in the UI, before the daemon starts: each test starts what it tests.
        defaults = instigators(url)
        for name, (kind, ident, status) in defaults.items():
            if status == "RUNNING" and name not in KEPT_RUNNING:
                stop(url, kind, ident)
        # The daemon runs sensors and schedules and dequeues launched runs, as in `dagster dev`.
        processes.append(start([str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]))
        yield {"url": url, "home": home, "defaults": {name: status for name, (_, _, status) in defaults.items()}}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def instigators(url: str) -> dict[str, tuple[str, str, str]]:
    """Every sensor and schedule: name -> (kind, id, status)."""
    repository = graphql(url, """query($s: RepositorySelector!) { repositoryOrError(repositorySelector: $s) { ... on Repository {
        sensors { id name sensorState { status } } schedules { id name scheduleState { status } } } } }""",
                         {"s": LOCATION})["repositoryOrError"]
    return {**{s["name"]: ("sensor", s["id"], s["sensorState"]["status"]) for s in repository["sensors"]},
            **{s["name"]: ("schedule", s["id"], s["scheduleState"]["status"]) for s in repository["schedules"]}}


def stop(url: str, kind: str, ident: str) -> None:
    mutation = ("mutation($id: String) { stopSensor(id: $id) { __typename } }" if kind == "sensor" else
                "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }")
    answer = graphql(url, mutation, {"id": ident})
    assert next(iter(answer.values()))["__typename"] in ("StopSensorMutationResult", "ScheduleStateResult"), answer


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def launch_and_wait(url: str, job: str, tags: dict[str, str] | None = None) -> str:
    mutation = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {"selector": {**LOCATION, "jobName": job},
              "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
    launched = graphql(url, mutation, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return finished_run(url, launched["run"]["runId"])["status"]


def finished_run(url: str, run_id: str, timeout: float = 180) -> dict[str, Any]:
    """The run's status and tags once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = graphql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }",
                      {"id": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return {"status": run["status"], "tags": {t["key"]: t["value"] for t in run["tags"]}}
        time.sleep(1)
    pytest.fail(f"run {run_id} did not finish within {timeout:.0f} s")


def test_ui_shows_the_lineage_with_checks_sensors_and_schedule(webserver: dict[str, Any]) -> None:
    data = graphql(webserver["url"], """{ assetNodes { assetKey { path } groupName dependencyKeys { path }
        assetChecksOrError { ... on AssetChecks { checks { name } } } } }""")
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert [d["path"] for d in nodes["clean/order_lines"]["dependencyKeys"]] == [["raw", "raw_order_lines"]]
    assert nodes["reports/daily_store_sales"]["groupName"] == "reports"
    checks = {c["name"] for c in nodes["clean/order_lines"]["assetChecksOrError"]["checks"]}
    assert {"unique_key", "reconciles_with_raw"} <= checks
    repository = graphql(webserver["url"], """query($s: RepositorySelector!) { repositoryOrError(repositorySelector: $s) {
        ... on Repository { sensors { name } schedules { name } } } }""", {"s": LOCATION})["repositoryOrError"]
    assert {"landing_pos", "landing_superstore", "touched_partitions_sensor"} <= {s["name"] for s in repository["sensors"]}
    assert sorted(s["name"] for s in repository["schedules"]) == [
        "daily_sales_schedule", "dashboard_customer_voice_schedule", "dashboard_demand_planning_schedule",
        f"dashboard_{MINUTELY}_schedule", "dashboard_executive_daily_schedule", "dashboard_store_performance_schedule",
        "demand_forecast_schedule",
        "receipts_schedule", "review_insights_schedule", "train_demand_model_schedule", "train_sentiment_model_schedule"]



def test_the_ui_cannot_promote_a_model_version_that_failed_its_check(webserver: dict[str, Any]) -> None:
    """The champion materialized alone from the UI (the run queue, the daemon), then backfilled, after its
    candidate failed `promotable`: the run fails naming the verdict, the backfill's run fails, nothing is promoted."""
    resources = local_resources(webserver["home"] / "local")
    with initialized(resources["lake"]) as lake:
        registry = ModelRegistry(lake)
        version = registry.save(DEMAND_MODEL_NAME, DummyRegressor(), [], "2026-01-31", ["2026-01-01", "2026-01-31"], {}).version
        registry.record_verdict(DEMAND_MODEL_NAME, version, False, "no better than seasonal naive")
    with dg.DagsterInstance.from_config(str(webserver["home"] / "dagster")) as instance:  # as if just trained
        instance.report_runless_asset_event(dg.AssetMaterialization(DEMAND_MODEL, metadata={"version": version}))
    mutation = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {"selector": {**LOCATION, "jobName": "__ASSET_JOB", "assetSelection": [{"path": list(DEMAND_CHAMPION.path)}]}}
    launched = graphql(webserver["url"], mutation, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert finished_run(webserver["url"], run_id)["status"] == "FAILURE"
    events = graphql(webserver["url"], """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {
        events { __typename ... on ExecutionStepFailureEvent { error { message } } } } } }""", {"id": run_id})
    failures = [e["error"]["message"] for e in events["logsForRun"]["events"] if e["__typename"] == "ExecutionStepFailureEvent"]
    assert any("no better than seasonal naive" in message for message in failures), failures
    backfill = graphql(webserver["url"], """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
        __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                       {"p": {"assetSelection": [{"path": list(DEMAND_CHAMPION.path)}], "allPartitions": True}})
    launched = backfill["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    # The run the daemon launches for it is what could promote: waited for, not the daemon's next 30 s look at the backfill.
    deadline, runs = time.monotonic() + 180, []
    while not runs and time.monotonic() < deadline:
        time.sleep(1)
        runs = graphql(webserver["url"], """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId } } } }""",
                       {"f": {"tags": [{"key": "dagster/backfill", "value": launched["backfillId"]}]}})["runsOrError"]["results"]
    assert runs, "the backfill launched no run"
    assert [finished_run(webserver["url"], run["runId"])["status"] for run in runs] == ["FAILURE"] * len(runs)
    with initialized(resources["lake"]) as lake:
        assert ModelRegistry(lake).champion(DEMAND_MODEL_NAME) is None

def test_schedules_and_sensors_a_deployment_runs_are_on_by_default(webserver: dict[str, Any]) -> None:
    stopped = {name for name, status in webserver["defaults"].items() if status != "RUNNING"}
    # Only the POS database's watermark waits for its URL: without one every tick would fail.
    assert stopped == ({"watermark_pos_db"} if not os.environ.get("SALES_ANALYTICS_POS_DB_URL") else set())
    assert {"touched_partitions_sensor", "receipt_scans_sensor", "landing_pos", "weekly_reports_automation",
            "daily_sales_schedule", "dashboard_executive_daily_schedule"} <= set(webserver["defaults"])


def test_the_weekly_automation_builds_a_week_in_the_daemon_once_its_days_are_in(webserver: dict[str, Any]) -> None:
    """Seven days built (as the daily job would, recorded in the deployment's instance): the automation
    sensor, running in the daemon, launches the week's report and its SQL and serving copies."""
    monday = dt.date(2025, 9, 29)
    resources = local_resources(webserver["home"] / "local")
    with initialized(resources["lake"]) as lake:
        generate(lake, GeneratorConfig(days=7, stores=2, products=10, start=monday, orders_per_store_day=5), progress=False)
    with dg.DagsterInstance.from_config(str(webserver["home"] / "dagster")) as instance:
        days = ingest_and_build(build_defs(resources), instance).touched_days
    assert days[0] == monday.isoformat() and len(days) == 7
    weekly = [["reports", "weekly_sales"], ["publishing", "rds_weekly_sales"], ["publishing", "dynamodb_weekly_sales"]]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        built = {tuple(path): latest_partition_run(webserver["url"], path, monday.isoformat()) for path in weekly}
        if all(built.values()):
            break
        time.sleep(3)
    else:
        pytest.fail(f"the weekly automation did not build the week of {monday} within 300 s: {built}")
    for run_id in set(built.values()):
        run = finished_run(webserver["url"], run_id)
        assert run["status"] == "SUCCESS" and run["tags"].get("dagster/from_automation_condition") == "true", run
        assert run["tags"].get("dagster/sensor_name") == "weekly_reports_automation", run
    with initialized(resources["report_db"]) as db:
        assert db.read(WEEKLY_SALES, monday.isoformat())


def latest_partition_run(url: str, path: list[str], partition: str) -> str | None:
    """The run that last materialized ``partition`` of the asset, if any did."""
    asset = graphql(url, """query($k: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $k) { ... on Asset {
        assetMaterializations(partitions: $p, limit: 1) { runId } } } }""", {"k": {"path": path}, "p": [partition]})
    found = asset["assetOrError"].get("assetMaterializations") or []
    return found[0]["runId"] if found else None


def test_runs_launched_from_the_ui_materialize_the_slice(webserver: dict[str, Any]) -> None:
    with initialized(local_resources(webserver["home"] / "local")["lake"]) as lake:
        generate(lake, GeneratorConfig(days=3, stores=2, products=20), progress=False)
    assert launch_and_wait(webserver["url"], "ingest_landing") == "SUCCESS"
    assert launch_and_wait(webserver["url"], "daily_sales", {"dagster/partition": "2026-01-02"}) == "SUCCESS"
    with initialized(local_resources(webserver["home"] / "local")["report_db"]) as db:
        rows = db.read(DAILY_STORE_SALES, "2026-01-02")
    assert len(rows) == 2 + 4 and all(r["net_sales"] > 0 for r in rows)  # 2 stores + 4 online stores


def test_a_dashboard_schedule_fires_in_the_daemon_and_materializes_its_assets(webserver: dict[str, Any]) -> None:
    """The declared-only dashboard's schedule, started as a user would in the UI, ticks in the daemon;
    its run builds the insights and the page as of yesterday (the reports are the daily job's), all seen
    through GraphQL."""
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    resources = local_resources(webserver["home"] / "local")
    with initialized(resources["lake"]) as lake:  # a fortnight up to yesterday, built before the tick
        generate(lake, GeneratorConfig(days=14, stores=2, products=15, start=yesterday - dt.timedelta(days=13)), progress=False)
    ingest_and_build(build_defs(resources), dg.DagsterInstance.ephemeral())
    selector = {**LOCATION, "scheduleName": f"dashboard_{MINUTELY}_schedule"}
    started = graphql(webserver["url"], """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
        __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }""", {"s": selector})
    assert started["startSchedule"]["scheduleState"]["status"] == "RUNNING", started
    run = wait_for_scheduled_run(webserver["url"], selector["scheduleName"])
    assert run["status"] == "SUCCESS" and {"key": AS_OF_TAG, "value": yesterday.isoformat()} in run["tags"]
    for path in (insights_key(MINUTELY).path, page_key(MINUTELY).path):
        asset = graphql(webserver["url"], """query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { ... on Asset {
            assetMaterializations(limit: 1) { runId partition metadataEntries { label } } } } }""", {"k": {"path": path}})
        (materialization,) = asset["assetOrError"]["assetMaterializations"]
        assert materialization["runId"] == run["runId"], path
    labels = {e["label"] for e in materialization["metadataEntries"]}
    assert {"preview", "dashboard_url", "page", "as_of"} <= labels
    with initialized(resources["lake"]) as lake:
        assert "<title>Sales every minute</title>" in lake.get_bytes(f"dashboards/{MINUTELY}/index.html").decode()


def wait_for_scheduled_run(url: str, schedule: str, timeout: float = 240) -> dict[str, Any]:
    query = """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId status tags { key value } } } } }"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = graphql(url, query, {"f": {"tags": [{"key": "dagster/schedule_name", "value": schedule}]}})["runsOrError"]["results"]
        finished = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if finished:
            return finished[0]
        time.sleep(2)
    pytest.fail(f"no run of {schedule} finished within {timeout:.0f}s")


def test_a_backfill_runs_in_monthly_chunks_one_at_a_time(webserver: dict[str, Any]) -> None:
    """Run-level scale-out: an asset backfill of two months, launched as from the UI, becomes several
    runs (a month per run at most); the instance's run limit lets only one run at a time."""
    resources = local_resources(webserver["home"] / "local")
    with initialized(resources["lake"]) as lake:
        generate(lake, GeneratorConfig(days=62, stores=2, products=10, start=dt.date(2025, 3, 1), orders_per_store_day=4),
                 progress=False)
    defs = build_defs(resources)
    assert defs.resolve_job_def("ingest_landing").execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    days = [(dt.date(2025, 3, 1) + dt.timedelta(days=k)).isoformat() for k in range(62)]
    assets = [{"path": ["clean", "order_lines"]}, {"path": ["quarantine", "rejected_order_lines"]}, {"path": ["reports", "daily_store_sales"]}]
    launched = graphql(webserver["url"], """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
        __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                       {"p": {"assetSelection": assets, "partitionNames": days}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = launched["backfillId"]
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        status = graphql(webserver["url"], """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            ... on PartitionBackfill { status } } }""", {"id": backfill})["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        time.sleep(2)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status
    runs = graphql(webserver["url"], """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs {
        results { status startTime endTime tags { key value } } } } }""",
                   {"f": {"tags": [{"key": "dagster/backfill", "value": backfill}]}})["runsOrError"]["results"]
    assert len(runs) == 2 and all(r["status"] == "SUCCESS" for r in runs)  # 31 + 31 days: a month per run
    chunks = sorted((tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
                    for tags in ({t["key"]: t["value"] for t in r["tags"]} for r in runs))
    assert chunks == [(days[0], days[30]), (days[31], days[-1])]
    times = sorted((r["startTime"], r["endTime"]) for r in runs)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(times))  # never two at once
    with initialized(resources["lake"]) as lake:
        assert all(lake.exists(partition_object_key(DAILY_STORE_SALES_KEY, "sale_date", day)) for day in days)


def test_dg_dev_serves_the_project_as_a_contributor_starts_it(tmp_path: Path) -> None:
    """`make ui` runs `dg dev` from the repository root: the project's code location, every asset."""
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    venv, port = Path(sys.executable).parent.parent, free_port()
    env = {**os.environ, "VIRTUAL_ENV": str(venv), "SALES_ANALYTICS_HOME": str(tmp_path), "SALES_ANALYTICS_PROFILE": "local",
           "DAGSTER_HOME": str(tmp_path / "dagster")}
    process = subprocess.Popen([str(venv / "bin" / "dg"), "dev", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline, nodes = time.monotonic() + 180, None
        while time.monotonic() < deadline and nodes is None:
            try:
                nodes = graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"] or None
            except (OSError, AssertionError):  # not up yet, or the code location still loading
                time.sleep(1)
        assert nodes, "dg dev did not serve the project in 180s"
        served = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert served == {key.to_user_string() for key in build_defs(local_resources(tmp_path)).resolve_asset_graph().get_all_asset_keys()}
        repository = graphql(url, """query($s: RepositorySelector!) { repositoryOrError(repositorySelector: $s) {
            ... on Repository { name } } }""", {"s": LOCATION})["repositoryOrError"]
        assert repository == {"name": "__repository__"}
        # The docs tab: the project's component types with the fields their YAML takes.
        documented = graphql(url, """query($l: String!) { componentTypesForLocationOrError(locationName: $l) {
            ... on ComponentTypes { componentTypes { name description schema } } } }""",
                             {"l": LOCATION["repositoryLocationName"]})["componentTypesForLocationOrError"]["componentTypes"]
        ours = {t["name"]: t for t in documented if t["name"].startswith("sales_analytics.")}
        assert set(ours) == {SOURCE_COMPONENT, DASHBOARD_COMPONENT}
        source_fields = _schema(ours[SOURCE_COMPONENT]["schema"])["properties"]
        assert {"prefix", "format", "columns", "changes"} <= set(source_fields)
        assert all(field.get("description") for field in source_fields.values())
        assert "cron" in json.dumps(_schema(ours[DASHBOARD_COMPONENT]["schema"]))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _schema(value: str | dict) -> dict:
    return json.loads(value) if isinstance(value, str) else value
