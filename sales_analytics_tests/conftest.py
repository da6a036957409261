"""Test fixtures: isolated local resources, and the real ``stack`` servers for the session.

The session starts SeaweedFS and DynamoDB Local on test ports (so a developer's own stack keeps
running), reuses a PostgreSQL answering on 127.0.0.1:5432 or starts a private cluster, and stops
exactly what it started. Each test gets its own bucket, SQL schema and DynamoDB table prefix.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Never reach a real AWS account or the EC2 metadata endpoint from tests.
os.environ.update({
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
})
os.environ.pop("AWS_PROFILE", None)
# Steps retry after 1.5, 4.5 and 10.5 s (± 1.5 s) instead of a deployment's 2, 6 and 14 (± 2): at
# least 12 s in all still rides out a server's few seconds away and its restart on a busy machine,
# without sleeping through the longer backoffs. Set before the code loads.
os.environ.setdefault("SALES_ANALYTICS_RETRY_DELAY_SECONDS", "1.5")

import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from sales_analytics import stack
from sales_analytics.profiles import StackSettings, data_home, local_resources
from sales_analytics_tests.helpers import isolated_stack

REPO = Path(__file__).resolve().parents[1]

# Fuzz tests explore new examples on a developer's machine; under CI (CI=true) they replay the same
# ones, so a red CI run is a change's doing, not the draw's.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def stack_paths() -> stack.StackPaths:
    # Under the checkout, not /tmp/pytest-of-root: a private PostgreSQL runs as the postgres user.
    return stack.StackPaths(root=data_home() / "test-stack", tools=data_home() / "tools")


@pytest.fixture(scope="session")
def stack_settings(stack_paths: stack.StackPaths) -> Iterator[StackSettings]:
    defaults = {"SALES_ANALYTICS_TEST_S3_PORT": "18433", "SALES_ANALYTICS_TEST_DYNAMODB_PORT": "18000"}
    for name, port in defaults.items():
        os.environ.setdefault(name, port)
    settings = StackSettings.from_env("SALES_ANALYTICS_TEST_", database="sales_analytics_test")
    for service in ("seaweedfs", "dynamodb"):
        shutil.rmtree(stack_paths.data(service), ignore_errors=True)
    started = stack.start(settings, stack_paths)
    yield settings
    stack.stop(started, stack_paths)


@pytest.fixture
def stack_env(stack_settings: StackSettings) -> Iterator[dict[str, Any]]:
    with isolated_stack(stack_settings) as resources:
        yield resources


@pytest.fixture(scope="module")
def stack_env_module(stack_settings: StackSettings) -> Iterator[dict[str, Any]]:
    """One isolated stack for a whole module, when its tests share one (slow) build."""
    with isolated_stack(stack_settings) as resources:
        yield resources


@pytest.fixture
def empty_database(stack_settings: StackSettings) -> Iterator[str]:
    """A new, empty PostgreSQL database (e.g. for a Dagster instance), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(stack_settings.postgres_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, Any]:
    return local_resources(tmp_path / "local")


@pytest.fixture(params=["local", "stack"])
def any_env(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The same test on the embedded profile and on the real servers."""
    if request.param == "local":
        return request.getfixturevalue("local_env")
    return request.getfixturevalue("stack_env")


@pytest.fixture(scope="session")
def dashboard_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every dashboard built over a generated history on the embedded profile (sales_analytics_tests/world.py)."""
    import dagster as dg

    from sales_analytics_tests.world import build_world

    return build_world(tmp_path_factory.mktemp("world") / "local", dg.DagsterInstance.ephemeral())


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave files for people (screenshots): kept after the run, under .data/ by default."""
    path = Path(os.environ.get("SALES_ANALYTICS_ARTIFACTS", REPO / ".data" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
