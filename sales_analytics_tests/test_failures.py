"""Failing well: transient faults are retried with backoff and jitter, preconditions are not, and a
run that fails anyway raises an alert (log and webhook) that carries no secrets."""

import datetime as dt
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
from sklearn.dummy import DummyRegressor

from sales_analytics.alerts import (
    DEFAULT_RETRY_DELAY,
    NETWORK_RETRY,
    RETRY_DELAY_ENV,
    Alert,
    AlertNotifier,
    network_retry,
    redacted,
)
from sales_analytics.catalog import DEMAND_FORECAST_KEY, DEMAND_MODEL_NAME, SALES_BY_SERIES_KEY
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ingest.assets import raw_order_lines
from sales_analytics.jobs import daily_sales_job, demand_forecast_job, ingest_job, train_demand_model_job
from sales_analytics.ml.assets import forecast_accuracy
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.partitions import daily_partitions
from sales_analytics.profiles import ALERT_WEBHOOK_ENV, initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DEMAND_FORECAST, SALES_BY_SERIES
from sales_analytics.sensors import champion_drift, run_failure_alerts
from sales_analytics.storage.parquet_io import PARTITION_COLUMN, partition_object_key, table_to_parquet_bytes
from sales_analytics_tests.helpers import failure_text, free_port

SQLITE_BUSY_TIMEOUT = 5.0  # pysqlite's default wait for a lock before "database is locked"


def test_every_job_retries_its_steps_with_exponential_backoff_and_jitter(local_env: dict[str, Any]) -> None:
    defs = build_defs(local_env)
    jobs = list(defs.resolve_all_job_defs())
    assert len(jobs) > 10
    assert all(job.op_retry_policy == NETWORK_RETRY for job in jobs if not job.name.startswith("__")), \
        [job.name for job in jobs if job.op_retry_policy != NETWORK_RETRY]
    assert NETWORK_RETRY.backoff == dg.Backoff.EXPONENTIAL and NETWORK_RETRY.jitter == dg.Jitter.PLUS_MINUS


@pytest.mark.parametrize(("setting", "delay"), [(None, DEFAULT_RETRY_DELAY), ("0.5", 0.5)])
def test_the_retry_delay_is_a_deployment_setting(setting: str | None, delay: float) -> None:
    env = {k: v for k, v in os.environ.items() if k != RETRY_DELAY_ENV} | ({RETRY_DELAY_ENV: setting} if setting else {})
    loaded = subprocess.run([sys.executable, "-c", "from sales_analytics.alerts import NETWORK_RETRY; print(NETWORK_RETRY.delay)"],
                            env=env, capture_output=True, text=True, check=True)
    assert float(loaded.stdout) == delay
    waits = [network_retry(delay).calculate_delay(attempt) for attempt in (1, 2, 3) for _ in range(200)]
    assert min(waits) >= 0 and max(waits) <= 8 * delay  # delay, 3x and 7x, each ± delay


@pytest.mark.faults
def test_a_report_write_that_meets_a_locked_database_is_retried_and_the_run_succeeds(tmp_path: Path) -> None:
    """The report database is held locked for longer than a writer waits: the publishing step
    fails, is retried after its backoff, and the run succeeds with the same rows as before."""
    env = local_resources(tmp_path)
    start = dt.date.today() - dt.timedelta(days=4)
    with initialized(env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=3, stores=2, products=10, start=start), progress=False)
    defs = build_defs(env)
    with dg.instance_for_test() as instance:
        day = ingest_and_build(defs, instance).touched_days[-1]
        database = tmp_path / "reports.db"
        before = _rows(database, day)
        holder = sqlite3.connect(database, timeout=0, check_same_thread=False)  # released from another thread
        holder.execute("BEGIN EXCLUSIVE")
        # Held until a step has given up waiting for it and been sent to retry: however slow the
        # machine, the first write meets the lock and the retry finds it free.
        release = threading.Thread(target=_release_after_first_retry, args=(instance, holder))
        release.start()
        started = time.monotonic()
        try:
            result = defs.resolve_job_def(daily_sales_job.name).execute_in_process(instance=instance, partition_key=day)
        finally:
            release.join()
            holder.close()
    retried = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert result.success and retried, "the locked write should have been retried, and then succeed"
    assert all("rds" in step for step in retried)  # only the steps that write to the locked database
    assert time.monotonic() - started > SQLITE_BUSY_TIMEOUT
    assert _rows(database, day) == before


def _release_after_first_retry(instance: dg.DagsterInstance, holder: sqlite3.Connection, timeout: float = 300) -> None:
    def retried() -> bool:
        runs = instance.get_runs(limit=1)  # the run under test: the newest
        return bool(runs and instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY))

    deadline = time.monotonic() + timeout
    while not retried() and time.monotonic() < deadline:
        time.sleep(0.1)
    holder.rollback()


def _rows(database: Path, day: str) -> list[tuple]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT * FROM daily_store_sales WHERE sale_date = ?", (day,)).fetchall())


class _Hook(BaseHTTPRequestHandler):
    """Keeps every JSON body POSTed to it in its server's ``received``."""

    def do_POST(self) -> None:
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    server = HTTPServer(("127.0.0.1", free_port()), _Hook)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hooks/alerts")
    yield server.received
    server.shutdown()


def test_a_precondition_is_not_retried_and_the_failed_run_alerts_the_log_and_the_webhook(
        tmp_path: Path, webhook: list[dict], capfd: pytest.CaptureFixture[str]) -> None:
    env = local_resources(tmp_path)  # nothing built: no champion model to forecast with
    defs = build_defs(env)
    day = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(demand_forecast_job.name).execute_in_process(
            instance=instance, partition_key=day, raise_on_error=False)
        assert not result.success
        assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        with initialized(env["alerts"]) as alerts:
            context = dg.build_run_status_sensor_context(
                sensor_name=run_failure_alerts.name, dagster_event=failure, dagster_instance=instance,
                dagster_run=result.dagster_run, resources={"alerts": alerts}).for_run_failure()
            run_failure_alerts(context)
    assert len(webhook) == 1
    alert = webhook[0]
    assert alert["job"] == demand_forecast_job.name and alert["run_id"] == result.run_id and alert["partition"] == day
    assert "no promoted demand model yet" in alert["error"] and alert["subject"].endswith("failed")
    assert f"run of {demand_forecast_job.name} [{day}] failed" in capfd.readouterr().err  # the sensor's log


def test_an_unreachable_webhook_is_logged_and_does_not_stop_the_log_alert(caplog: pytest.LogCaptureFixture) -> None:
    notifier = AlertNotifier(webhook_url=f"http://127.0.0.1:{free_port()}/nobody", timeout_seconds=2)
    alert = Alert(job="daily_sales", run_id="r1", partition=None, error="boom", run_url=None)
    assert notifier.send(alert, logging.getLogger("test")) == ["log"]
    assert any("not delivered to webhook" in r.getMessage() for r in caplog.records)
    file_url = AlertNotifier(webhook_url="file:///etc/passwd")
    assert file_url.send(alert, logging.getLogger("test")) == ["log"]


def test_alert_text_masks_url_passwords_and_secret_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALES_ANALYTICS_RDS_PASSWORD", "hunter2-but-longer")
    text = ("could not connect to postgresql+psycopg2://reports:pa55w0rd!@db.internal:5432/bi; "
            "auth hunter2-but-longer rejected")
    masked = redacted(text)
    assert "pa55w0rd" not in masked and "hunter2-but-longer" not in masked
    assert "postgresql+psycopg2://reports:***@db.internal:5432/bi" in masked



def test_a_champion_behind_seasonal_naive_warns_alerts_and_asks_for_retraining(tmp_path: Path, webhook: list[dict]) -> None:
    """Planted drift: a strictly weekly series that seasonal naive gets exactly right, and a champion whose
    forecasts of the last four weeks are twice the truth. Scoring a day warns, and the drift sensor alerts
    and asks for a retraining, once."""
    env = local_resources(tmp_path)
    first, last = dt.date(2026, 3, 1), dt.date(2026, 4, 11)
    units = {first + dt.timedelta(days=k): 10 + 5 * ((first + dt.timedelta(days=k)).weekday() >= 5) for k in range(42)}
    with initialized(env["lake"]) as lake:
        registry = ModelRegistry(lake)
        version = registry.save(DEMAND_MODEL_NAME, DummyRegressor(), [], "2026-03-14", ["2026-03-01", "2026-03-14"], {}).version
        registry.record_verdict(DEMAND_MODEL_NAME, version, True, "planted")
        registry.promote(DEMAND_MODEL_NAME, version)
        for day, sold in units.items():
            curated = [{"sale_date": day, "store_id": "S1", "product_id": "P1", "category": "tea", "region": "north",
                        "store_format": "express", "units": sold, "net_sales": 2.0 * sold}]
            lake.put_bytes(partition_object_key(SALES_BY_SERIES_KEY, "sale_date", day.isoformat()),
                           table_to_parquet_bytes(pa.Table.from_pylist(curated, schema=SALES_BY_SERIES.arrow_schema())))
            if day >= last - dt.timedelta(days=27):  # the champion's one-day-ahead forecast of the day, twice the truth
                origin = day - dt.timedelta(days=1)
                forecast = [{"origin_date": origin, "level": "store_category", "series_id": "S1|tea", "target_date": day, "step": 1,
                             "p10": sold, "p50": 2.0 * sold, "p90": 3.0 * sold, "model_version": version, "target": "units"}]
                lake.put_bytes(partition_object_key(DEMAND_FORECAST_KEY, "origin_date", origin.isoformat()),
                               table_to_parquet_bytes(pa.Table.from_pylist(forecast, schema=DEMAND_FORECAST.arrow_schema())))
    upstream = [dg.AssetSpec(key, partitions_def=daily_partitions, metadata={PARTITION_COLUMN: column})
                for key, column in ((SALES_BY_SERIES_KEY, "sale_date"), (DEMAND_FORECAST_KEY, "origin_date"))]
    with dg.instance_for_test() as instance:
        scored = dg.materialize([*upstream, forecast_accuracy], resources=env, instance=instance, partition_key=last.isoformat(),
                                selection=[forecast_accuracy.key])
        (check,) = scored.get_asset_check_evaluations()
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["champion_live_wape"].value == pytest.approx(1.0)  # |2y - y| / y over 28 days
        assert check.metadata["naive_live_wape"].value == 0.0 and check.metadata["live_points"].value == 28
        with initialized(env["alerts"]) as alerts:
            result = champion_drift(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))
            (request,) = result.run_requests
            assert champion_drift.job_name == train_demand_model_job.name and version in request.tags["rebuild_reason"]
            again = champion_drift(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={"alerts": alerts}))
            assert not again.run_requests  # the same scoring asks once
    (alert,) = webhook
    assert alert["subject"].endswith("found the demand model behind seasonal naive") and version in alert["error"]

@pytest.mark.security
@pytest.mark.parametrize("key", ["landing/orders/pos/../../models/demand/champion.json", "/etc/passwd",
                                 "models/demand/champion.json", "landing/orders/pos/2026-03-02\\..\\x.csv"])
def test_a_run_told_to_ingest_a_key_outside_the_landing_prefixes_fails_at_once(local_env: dict[str, Any], key: str) -> None:
    """The objects a run ingests come from its run config, which a person can edit in the UI."""
    result = build_defs(local_env).resolve_job_def(ingest_job.name).execute_in_process(
        run_config={"ops": {raw_order_lines.op.name: {"config": {"objects": [key]}}}}, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]  # nothing to retry
    assert "not an object under a declared source's landing prefix" in failure_text(result)
