"""The production instance config (deploy/dagster.yaml) loads against a real PostgreSQL, and the
run-queue limits it sets match the tags our runs carry."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from sales_analytics.dashboards.spec import dashboard_job_name, dashboard_specs
from sales_analytics.definitions import defs
from sales_analytics.profiles import StackSettings, build_resources, initialized

REPO = Path(__file__).resolve().parents[1]
PRODUCTION = REPO / "deploy" / "dagster.yaml"


@pytest.mark.stack
def test_production_instance_loads_against_postgresql(stack_settings: StackSettings, empty_database: str,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dagster.yaml").write_text(PRODUCTION.read_text())
    variables = {"DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_USERNAME": stack_settings.postgres_user, "DAGSTER_PG_PASSWORD": "",
                 "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(stack_settings.postgres_port),
                 "DAGSTER_PG_DB": empty_database, "PGSSLMODE": "disable", "DAGSTER_COMPUTE_LOG_BUCKET": "compute-logs"}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "instance", "info"], env={**os.environ, **variables}, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    state = yaml.safe_load(result.stdout.split("Storage schema state:")[1].split("\n", 2)[2])
    assert all(v["current"] == v["latest"] for v in state["schema"].values())  # migrated into the empty database
    for name, value in variables.items():  # the parts `instance info` does not instantiate, built here
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        parts = {type(p).__name__ for p in (instance.run_launcher, instance.compute_log_manager, instance.run_coordinator,
                                            instance.run_storage)}
        assert parts == {"EcsRunLauncher", "S3ComputeLogManager", "QueuedRunCoordinator", "PostgresRunStorage"}
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2


def test_run_queue_limits_match_the_tags_our_runs_carry() -> None:
    config = yaml.safe_load(PRODUCTION.read_text())
    limits = {limit["key"]: limit for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert limits["source"]["value"] == limits["dashboard"]["value"] == {"applyLimitPerUniqueValue": True}
    assert config["run_retries"]["enabled"] and config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    for spec in dashboard_specs():  # one run at a time per dashboard
        assert defs.resolve_job_def(dashboard_job_name(spec.name)).tags["dashboard"] == spec.name
    assert set(config["run_launcher"]["config"]["propagate_tags"]["allow_list"]) >= {"source", "dashboard"}


def test_aws_profile_offloads_heavy_steps_to_fargate_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured, not run here: the `aws` profile's Pipes steps become Fargate tasks of the code-location image."""
    for name, value in {"SALES_ANALYTICS_ECS_CLUSTER": "analytics", "SALES_ANALYTICS_STEP_TASK_DEFINITION": "sales-code:7",
                        "SALES_ANALYTICS_STEP_SUBNET": "subnet-1", "SALES_ANALYTICS_STEP_SECURITY_GROUP": "sg-1"}.items():
        monkeypatch.setenv(name, value)
    with initialized(build_resources("aws")["offload"]) as offload:
        task = offload.ecs_run_task_params("sales_analytics.ocr.evaluation")
    assert offload.mode == "ecs" and task["cluster"] == "analytics" and task["taskDefinition"] == "sales-code:7"
    assert task["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-1"]
    assert task["overrides"]["containerOverrides"][0]["command"] == ["python", "-m", "sales_analytics.ocr.evaluation"]
