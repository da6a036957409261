"""Small helpers shared by the tests."""

import csv
import datetime as dt
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import sqlalchemy as sa
import uvicorn
import yaml

from sales_analytics import stack
from sales_analytics.declarations import INSTANCE_FILE
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ingest.raw import FileIngest, ingest_object, read_day_shards
from sales_analytics.jobs import ingest_job
from sales_analytics.lake.order_lines import CleanDay, clean_day
from sales_analytics.profiles import StackSettings, data_home, initialized, stack_resources
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES
from sales_analytics.sources.spec import file_sources, source_named
from sales_analytics.storage.parquet_io import LakeReader, parquet_bytes_to_table

SPECS = {s.name: s for s in file_sources()}
# Trimmed copies of real public datasets, each folder with its METADATA.json (data/make_fixtures.py).
REAL_DATA = Path(__file__).resolve().parent / "data"
LAKE_ASSETS = [dg.AssetKey(["clean", "order_lines"]), dg.AssetKey(["reports", "daily_store_sales"]),
               dg.AssetKey(["reports", "daily_sales"])]


def suite_stack_paths(name: str = "test-stack") -> stack.StackPaths:
    # Under the checkout, not /tmp/pytest-of-root: a private PostgreSQL runs as the postgres user.
    return stack.StackPaths(root=data_home() / name, tools=data_home() / "tools")


def suite_stack_settings() -> StackSettings:
    """The test stack's ports (``SALES_ANALYTICS_TEST_*_PORT`` move them), a database of its own."""
    for name, port in (("SALES_ANALYTICS_TEST_S3_PORT", "18433"), ("SALES_ANALYTICS_TEST_DYNAMODB_PORT", "18000")):
        os.environ.setdefault(name, port)
    return StackSettings.from_env("SALES_ANALYTICS_TEST_", database="sales_analytics_test")


def start_testing_stack(settings: StackSettings, paths: stack.StackPaths) -> list[str]:
    """SeaweedFS and DynamoDB Local with fresh data (a developer's own stack keeps running), and
    PostgreSQL: the one answering on its port, or a private cluster. Returns what it started."""
    for service in ("seaweedfs", "dynamodb"):
        shutil.rmtree(paths.data(service), ignore_errors=True)
    return stack.start(settings, paths)


# A weekly source as a retailer sends it (Walmart's train.csv): sales per store, department and Friday.
WEEKLY_STORE_SALES = {
    "name": "weekly_store_sales", "description": "a retailer's weekly sales per store and department, returns netted in",
    "prefix": "landing/weekly_store_sales/", "source_columns": ["Store", "Dept", "Date", "Weekly_Sales"],
    "format": {"type": "csv"},
    "columns": {"order_id": {"template": "W{Store}-{Dept}-{Date}"}, "line_no": {"value": "1"},
                "order_ts": {"from": "Date", "format": "%Y-%m-%d"}, "store_id": {"template": "S{Store}"},
                "channel": {"value": "store"}, "product_id": {"template": "D{Dept}"}, "quantity": {"value": "1"},
                "unit_price": {"expr": "{Weekly_Sales}"}, "discount": {"value": "0"}, "currency": {"value": "USD"}},
    "changes": {"negative_price": "refund"},
}


def write_instance(folder: Path, component_type: str, attributes: str | dict[str, Any]) -> Path:
    """A component instance laid out as `dg scaffold defs` lays it out: ``<folder>/<name>/defs.yaml``."""
    text = attributes if isinstance(attributes, str) else yaml.safe_dump(attributes, sort_keys=False)
    path = folder / yaml.safe_load(text)["name"] / INSTANCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"  {line}" if line.strip() else line for line in text.strip("\n").splitlines(keepends=True))
    path.write_text(f"type: {component_type}\nattributes:\n{body}\n")
    return path


def csv_records(path: Path, encoding: str = "utf-8") -> int:
    """How many records a CSV file holds (a quoted field may span lines)."""
    with open(path, newline="", encoding=encoding) as handle:
        return sum(1 for _ in csv.DictReader(handle))


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message with its chain of causes, for asserting on what a user sees."""
    parts = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)


def materialize_in_graph(env: dict[str, Any], assets: list[dg.AssetsDefinition], **kwargs: Any) -> dg.ExecuteInProcessResult:
    """These assets alone, inside the project's whole graph: their inputs load from the lake through the
    IO manager, as in a deployment's run that selects them."""
    keys = [key for asset in assets for key in asset.keys]
    return dg.materialize(build_defs(env).assets, selection=keys, resources=env, **kwargs)


def free_port() -> int:
    """A loopback port nothing listens on (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The ASGI app under a real uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def isolated_resources(stack_settings: StackSettings, tag: str) -> dict[str, Any]:
    """Resources on the real servers, isolated by the bucket, SQL schema and table prefix ``tag`` names:
    the same tag gives the same resources, in any process."""
    return stack_resources(stack_settings, bucket=f"test-{tag}", sql_schema=f"t_{tag}", table_prefix=f"t{tag}_")


@contextmanager
def isolated_stack(stack_settings: StackSettings, tag: str | None = None) -> Iterator[dict[str, Any]]:
    """Isolated resources (a new tag unless given), their bucket made; schema and tables dropped afterwards."""
    tag = tag or uuid.uuid4().hex[:10]
    resources = isolated_resources(stack_settings, tag)
    with initialized(resources["lake"]) as lake:
        lake.ensure_bucket()
    yield resources
    with initialized(resources["report_db"]) as report_db:
        with report_db.engine().begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "t_{tag}" CASCADE'))
        report_db.engine().dispose()
    with initialized(resources["serving_store"]) as serving:
        client = serving.client()
        for name in client.list_tables()["TableNames"]:
            if name.startswith(f"t{tag}_"):
                client.delete_table(TableName=name)


def land_and_ingest(resources: dict[str, Any], config: GeneratorConfig) -> list[str]:
    """Generated exports landed and ingested to raw; the touched days."""
    with initialized(resources["lake"]) as lake:
        generate(lake, config, progress=False)
    result = build_defs(resources).resolve_job_def(ingest_job.name).execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return sorted({d for e in result.get_asset_materialization_events()
                   for d in e.materialization.metadata.get("touched_partitions", dg.MetadataValue.json([])).value})


def stored_contents(resources: dict[str, Any]) -> dict[str, Any]:
    """Every row of the shared tables, and the lake's partitions by content, comparable across stacks."""
    with (initialized(resources["lake"]) as lake, initialized(resources["report_db"]) as report_db,
          initialized(resources["serving_store"]) as serving):
        sql = {spec.name: sorted(map(repr, (sorted(r.items()) for r in report_db.read(spec))))
               for spec in (DAILY_STORE_SALES, DAILY_SALES)}
        dynamodb = {spec.name: sorted(repr(sorted(item.items())) for pk in sorted({k for k, _ in serving.all_keys(spec)})
                                      for item in serving.query(spec, pk))
                    for spec in (DAILY_STORE_SALES, DAILY_SALES)}
        parquet = {"/".join(key.path): {day: parquet_bytes_to_table(lake.get_bytes(obj)).to_pylist() for day, obj in
                                        LakeReader(lake).stored_partitions(key, "sale_date" if key.path[0] == "reports" else "order_date").items()}
                   for key in LAKE_ASSETS}
    return {"sql": sql, "dynamodb": dynamodb, "parquet": parquet}


def ingest_one(env: dict[str, Any], source: str, name: str, data: bytes) -> tuple[FileIngest, list[CleanDay]]:
    """Land one object, ingest it, clean every day it touched; returns the ingest and the cleaned
    days, after checking that the landing and every day reconcile."""
    spec = source_named(source)
    key = f"{spec.prefix}{'2026-02-03/' if spec.dated_folders else ''}{name}"
    with initialized(env["lake"]) as lake:
        lake.put_bytes(key, data)
        result = ingest_object(lake, spec, lake.info(key))
        days = [clean_day(read_day_shards(lake, d), dt.date.fromisoformat(d), SPECS) for d in sorted(result.days)]
    assert result.rows == sum(result.days.values()) + result.quarantined  # landing reconciles
    assert all(d.reconciles for d in days)  # every day reconciles
    return result, days


def rows(days: list[CleanDay]) -> list[dict]:
    return pa.concat_tables([d.lines for d in days]).to_pylist() if days else []


def rejects(days: list[CleanDay]) -> list[tuple[int, str | None, str]]:
    return [(r["source_row"], r["column"], r["reason"]) for d in days for r in d.rejects.to_pylist()]
