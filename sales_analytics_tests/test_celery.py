"""Step-level scale-out: a day's partition materialized by real Celery workers (dagster-celery)
over the local RabbitMQ, the run and its events in a PostgreSQL-backed Dagster instance."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import amqp
import dagster as dg
import kombu
import pytest

from sales_analytics.definitions import CELERY_BROKER_ENV, EXECUTOR_ENV, build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import daily_sales_job, ingest_job, reference_job
from sales_analytics.profiles import StackSettings, initialized, local_resources
from sales_analytics.reports.daily_store_sales import DAILY_STORE_SALES_KEY
from sales_analytics.storage.parquet_io import partition_object_key

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[1]
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"  # the machine's RabbitMQ
BIN = Path(sys.executable).parent
STEP_QUEUE = "dagster"  # dagster-celery's default queue


def instance_yaml(settings: StackSettings, database: str) -> str:
    return f"""storage:
  postgres:
    postgres_db:
      username: {settings.postgres_user}
      password: ""
      hostname: 127.0.0.1
      port: {settings.postgres_port}
      db_name: {database}
      scheme: postgresql+psycopg2
telemetry:
  enabled: false
"""


def landed_and_ingested(home: Path) -> str:
    """Generated exports ingested into raw (in process): the day the workers will build."""
    resources = local_resources(home / "local")
    with initialized(resources["lake"]) as lake:
        generate(lake, GeneratorConfig(days=3, stores=2, products=15, orders_per_store_day=8), progress=False)
    defs, instance = build_defs(resources), dg.DagsterInstance.ephemeral()
    for job in (reference_job, ingest_job):
        assert defs.resolve_job_def(job.name).execute_in_process(instance=instance).success
    return "2026-01-02"


def purge_step_queue() -> None:
    """Steps of an earlier, interrupted run must not reach this test's worker."""
    with kombu.Connection(BROKER) as connection:
        try:
            connection.default_channel.queue_purge(STEP_QUEUE)
        except amqp.exceptions.NotFound:
            pass  # never declared: nothing to purge


def test_a_partition_materializes_through_celery_workers(stack_settings: StackSettings, empty_database: str,
                                                         tmp_path: Path) -> None:
    day = landed_and_ingested(tmp_path)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(instance_yaml(stack_settings, empty_database))
    worker_config = tmp_path / "celery.yaml"
    worker_config.write_text(f"execution:\n  config:\n    broker: {BROKER}\n    backend: rpc://\n")
    env = {**os.environ, "SALES_ANALYTICS_HOME": str(tmp_path), "SALES_ANALYTICS_PROFILE": "local",
           "DAGSTER_HOME": str(dagster_home), EXECUTOR_ENV: "celery", CELERY_BROKER_ENV: BROKER,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the worker command runs `celery` from PATH
    purge_step_queue()
    worker = subprocess.Popen([str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(worker_config),
                               "-n", f"test-{os.getpid()}@%h", "--", "--concurrency=2"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "sales_analytics.definitions", "-j", daily_sales_job.name,
                              "--tags", json.dumps({"dagster/partition": day})], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=600, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        events = [e.dagster_event for e in instance.all_logs(record.dagster_run.run_id) if e.dagster_event]
    run_pid = next(e.pid for e in events if e.event_type == dg.DagsterEventType.RUN_START)
    step_pids = {e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    assert len([e for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS]) >= 5
    assert run_pid not in step_pids  # every step ran in a Celery worker's process, not in the run's
    with initialized(local_resources(tmp_path / "local")["lake"]) as lake:
        assert lake.exists(partition_object_key(DAILY_STORE_SALES_KEY, "sale_date", day))


def test_steps_run_in_the_run_process_unless_processes_or_celery_are_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    from sales_analytics.definitions import step_executor

    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert step_executor().name == "in_process"
    for choice in ("multiprocess", "celery"):
        monkeypatch.setenv(EXECUTOR_ENV, choice)
        assert step_executor().name == choice
    monkeypatch.setenv(EXECUTOR_ENV, "threads")
    with pytest.raises(ValueError, match="choose in_process, multiprocess or celery"):
        step_executor()


def test_worker_config_matches_the_executor(tmp_path: Path) -> None:
    """The worker CLI validates the same config block the executor takes."""
    config = tmp_path / "celery.yaml"
    config.write_text(f"execution:\n  config:\n    broker: {BROKER}\n    backend: rpc://\n")
    from dagster_celery.cli import get_validated_config

    assert get_validated_config(str(config))["broker"] == BROKER
