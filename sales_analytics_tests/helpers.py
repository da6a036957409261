"""Small helpers shared by the tests."""

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as sa
import uvicorn

from sales_analytics.profiles import StackSettings, initialized, stack_resources


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message with its chain of causes, for asserting on what a user sees."""
    parts = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)


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
