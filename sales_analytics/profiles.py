"""Profiles: one codebase, three places. ``SALES_ANALYTICS_PROFILE`` picks one.

- ``local`` (default): embedded, no servers — lake under ``.data/local/lake``, SQLite report DB,
  SQLite-backed serving store with DynamoDB's item model.
- ``stack``: real servers on 127.0.0.1 started by ``sales-analytics stack start``.
- ``aws``: S3, RDS PostgreSQL and DynamoDB, configured through environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from sales_analytics.alerts import AlertNotifier
from sales_analytics.offload import OffloadResource
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import ParquetLakeIOManager
from sales_analytics.storage.serving_store import DynamoDBServingStore, EmbeddedServingStore, ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

PROFILE_ENV = "SALES_ANALYTICS_PROFILE"
HOME_ENV = "SALES_ANALYTICS_HOME"
ALERT_WEBHOOK_ENV = "SALES_ANALYTICS_ALERT_WEBHOOK"
PROFILES = ("local", "stack", "aws")


def active_profile() -> str:
    profile = os.environ.get(PROFILE_ENV, "local")
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def data_home() -> Path:
    """Where local data, stack servers and the Dagster instance live (default ``./.data``)."""
    return Path(os.environ.get(HOME_ENV, ".data")).resolve()


@dataclass(frozen=True)
class StackSettings:
    """Ports and names of the ``stack`` servers; each port can be moved by an environment variable."""

    s3_port: int
    dynamodb_port: int
    postgres_port: int
    bucket: str = "sales-lake"
    database: str = "sales_analytics"
    postgres_user: str = "postgres"
    # DynamoDB Local and SeaweedFS accept any credentials; these are placeholders, not secrets.
    access_key: str = "stack"
    secret_key: str = "stack"
    region: str = "us-east-1"
    port_env_prefix: str = "SALES_ANALYTICS_"  # where the ports were read from, for error messages

    @classmethod
    def from_env(cls, prefix: str = "SALES_ANALYTICS_", **overrides: Any) -> StackSettings:
        return cls(
            s3_port=int(os.environ.get(f"{prefix}S3_PORT", "8333")),
            dynamodb_port=int(os.environ.get(f"{prefix}DYNAMODB_PORT", "8000")),
            postgres_port=int(os.environ.get(f"{prefix}POSTGRES_PORT", "5432")),
            port_env_prefix=prefix,
            **overrides,
        )

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.dynamodb_port}"

    def postgres_url(self, database: str | None = None) -> str:
        return f"postgresql+psycopg://{self.postgres_user}@127.0.0.1:{self.postgres_port}/{database or self.database}"


def build_resources(profile: str | None = None) -> dict[str, Any]:
    """The resources every asset uses, for the given (or active) profile."""
    profile = profile or active_profile()
    if profile == "local":
        return local_resources(data_home() / "local")
    if profile == "stack":
        return stack_resources(StackSettings.from_env())
    region = dg.EnvVar("AWS_REGION")
    return _resource_set(
        LakeResource(root=dg.EnvVar("SALES_ANALYTICS_LAKE_URI"), s3=S3Resource(region_name=region)),
        SqlReportStore(url=dg.EnvVar("SALES_ANALYTICS_RDS_URL"), schema_name="reports"),
        DynamoDBServingStore(region_name=region, create_tables=False),
        # Heavy steps in Fargate tasks of the code-location image (deploy/README.md).
        OffloadResource(mode="ecs", ecs_cluster=dg.EnvVar("SALES_ANALYTICS_ECS_CLUSTER"),
                        ecs_task_definition=dg.EnvVar("SALES_ANALYTICS_STEP_TASK_DEFINITION"),
                        ecs_subnets=[dg.EnvVar("SALES_ANALYTICS_STEP_SUBNET")],
                        ecs_security_groups=[dg.EnvVar("SALES_ANALYTICS_STEP_SECURITY_GROUP")]),
        AlertNotifier(webhook_url=_alert_webhook(), sns_topic_arn=dg.EnvVar("SALES_ANALYTICS_ALERT_TOPIC_ARN"), region_name=region),
    )


def local_resources(home: Path) -> dict[str, Any]:
    return _resource_set(
        LakeResource(root=str(home / "lake"), s3=S3Resource()),
        SqlReportStore(url=f"sqlite:///{home / 'reports.db'}"),
        EmbeddedServingStore(path=str(home / "serving.db")),
    )


def stack_resources(stack: StackSettings, *, bucket: str | None = None, sql_schema: str | None = None,
                    table_prefix: str = "sales_analytics_") -> dict[str, Any]:
    """The ``stack`` servers; tests isolate themselves with their own bucket, schema and prefix."""
    credentials = {"aws_access_key_id": stack.access_key, "aws_secret_access_key": stack.secret_key}
    return _resource_set(
        LakeResource(root=f"s3://{bucket or stack.bucket}",
                     s3=S3Resource(endpoint_url=stack.s3_endpoint, region_name=stack.region, **credentials)),
        SqlReportStore(url=stack.postgres_url(), schema_name=sql_schema),
        DynamoDBServingStore(endpoint_url=stack.dynamodb_endpoint, region_name=stack.region,
                             table_prefix=table_prefix, **credentials),
    )


def _resource_set(lake: LakeResource, report_db: SqlReportStore, serving: ServingStore,
                  offload: OffloadResource | None = None, alerts: AlertNotifier | None = None) -> dict[str, Any]:
    """``offload``: where Pipes steps run; a child process unless the profile says otherwise.
    ``alerts``: where run failures are reported; the log, and the webhook in
    ``SALES_ANALYTICS_ALERT_WEBHOOK`` when that is set."""
    return {"lake": lake, "io_manager": ParquetLakeIOManager(lake=lake), "report_db": report_db,
            "serving_store": serving, "offload": offload or OffloadResource(),
            "alerts": alerts or AlertNotifier(webhook_url=_alert_webhook())}


def _alert_webhook() -> dg.EnvVar | None:
    """The webhook URL is a secret (it authorises posting): read at run time, never stored in config."""
    return dg.EnvVar(ALERT_WEBHOOK_ENV) if os.environ.get(ALERT_WEBHOOK_ENV) else None


@contextmanager
def initialized(resource: dg.ConfigurableResource) -> Iterator[Any]:
    """A resource usable outside a run (CLI, tests): environment variables resolved."""
    with resource.process_config_and_initialize_cm() as ready:
        yield ready
