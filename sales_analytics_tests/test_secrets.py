"""Secrets reach the platform only through the environment (``dg.EnvVar`` and the source's URL
variable), and leave no trace: after a full run on the real servers — an extraction from the POS
database with a password in its URL, ingest, the daily build, a failed run and its alert to a
webhook whose URL is itself a secret — no event, no metadata, no stored run config and nothing
printed holds either secret."""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sales_analytics.definitions import build_defs
from sales_analytics.jobs import demand_forecast_job
from sales_analytics.profiles import ALERT_WEBHOOK_ENV, StackSettings, initialized
from sales_analytics.runner import ingest_and_build
from sales_analytics.sensors import run_failure_alerts
from sales_analytics_tests.helpers import free_port

pytestmark = pytest.mark.stack
DB_PASSWORD = f"pw-{uuid.uuid4().hex}"  # the test cluster trusts local connections: any password connects
WEBHOOK_TOKEN = f"tok-{uuid.uuid4().hex}"


@pytest.fixture
def configured_secrets(stack_settings: StackSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """The POS database's URL (with a password) and an alert webhook (with a token) in the environment."""
    schema = f"src_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(stack_settings.postgres_url()).set(password=DB_PASSWORD,
                                                         query={"options": f"-csearch_path={schema}"})
    monkeypatch.setenv("SALES_ANALYTICS_POS_DB_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}")  # nobody listens
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        conn.execute(sa.text("""CREATE TABLE sales_lines (receipt_no text, line_no int, sold_at timestamptz, store_code text,
            sku text, loyalty_id text, qty int, price numeric(10, 2), discount numeric(4, 2), currency text,
            updated_at timestamptz, PRIMARY KEY (receipt_no, line_no))"""))
        sold = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)  # a day that is over in every timezone
        conn.execute(sa.text("INSERT INTO sales_lines VALUES (:r, :n, :t, 'B1', 'SKU1', NULL, 2, 3.5, 0, 'EUR', :t)"),
                     [{"r": f"R{i:04d}", "n": 1, "t": sold} for i in range(20)])
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_no_secret_appears_in_events_metadata_run_config_or_output(
        configured_secrets: sa.Engine, stack_env: dict[str, Any], capfd: pytest.CaptureFixture[str]) -> None:
    defs = build_defs(stack_env)
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("extract_pos_db").execute_in_process(instance=instance).success
        summary = ingest_and_build(defs, instance)
        assert summary.rows.get("clean/order_lines", 0) >= 20
        failed = defs.resolve_job_def(demand_forecast_job.name).execute_in_process(  # no champion model: it fails
            instance=instance, partition_key=summary.touched_days[-1], raise_on_error=False)
        assert not failed.success
        failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        with initialized(stack_env["alerts"]) as alerts:
            run_failure_alerts(dg.build_run_status_sensor_context(
                sensor_name=run_failure_alerts.name, dagster_event=failure, dagster_instance=instance,
                dagster_run=failed.dagster_run, resources={"alerts": alerts}).for_run_failure())
        runs = instance.get_runs()
        assert len(runs) >= 4
        recorded = []
        for run in runs:
            recorded.append(json.dumps(run.run_config, default=str) + json.dumps(run.tags))
            recorded += [f"{entry.user_message} {entry.dagster_event!r}" for entry in instance.all_logs(run.run_id)]
    printed = capfd.readouterr()
    everything = "\n".join([*recorded, printed.out, printed.err])
    assert "not delivered to webhook" in printed.err  # the alert went out and its failure was logged...
    for secret in (DB_PASSWORD, WEBHOOK_TOKEN):
        assert secret not in everything  # ...without the webhook's token or the database's password
