"""Test fixtures: isolated local resources, and the real ``stack`` servers for the session.

The session starts SeaweedFS and DynamoDB Local on test ports (so a developer's own stack keeps
running), reuses a PostgreSQL answering on 127.0.0.1:5432 or starts a private cluster, and stops
exactly what it started. Each test gets its own bucket, SQL schema and DynamoDB table prefix.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

# Never reach a real AWS account or the EC2 metadata endpoint from tests.
os.environ.update({
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
})
os.environ.pop("AWS_PROFILE", None)
# Parallel test processes share the cores: each runs its numerical libraries on one thread, or
# OpenMP's spinning threads (scikit-learn's gradient boosting) fight over them and both slow down.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Steps retry after 1.5, 4.5 and 10.5 s (± 1.5 s) instead of a deployment's 2, 6 and 14 (± 2): at
# least 12 s in all still rides out a server's few seconds away and its restart on a busy machine,
# without sleeping through the longer backoffs. Set before the code loads.
os.environ.setdefault("SALES_ANALYTICS_RETRY_DELAY_SECONDS", "1.5")
# The real datasets among the fixtures go back to 2013 (Rossmann) and 2014 (Superstore): the tests'
# deployment starts its history before them, as a deployment onboarding them would.
os.environ.setdefault("SALES_ANALYTICS_HISTORY_START", "2010-01-01")

import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from sales_analytics import stack
from sales_analytics.profiles import StackSettings, local_resources
from sales_analytics_tests.helpers import (
    isolated_stack,
    start_testing_stack,
    suite_stack_paths,
    suite_stack_settings,
)

REPO = Path(__file__).resolve().parents[1]

# Fuzz tests explore new examples on a developer's machine; under CI (CI=true) they replay the same
# ones, so a red CI run is a change's doing, not the draw's.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


TEST_STACK = pytest.StashKey[tuple[stack.StackPaths, list[str]]]()  # what the controller started


def pytest_configure(config: pytest.Config) -> None:
    """With parallel workers (pytest-xdist), the controller starts the stack once for all of them."""
    if getattr(config, "workerinput", None) is None and config.getoption("numprocesses", default=None):
        paths = suite_stack_paths()
        config.stash[TEST_STACK] = (paths, start_testing_stack(suite_stack_settings(), paths))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """A worker per core and one more (``--maxprocesses`` caps it): much of the suite waits on a daemon's
    loop, a server's restart or a browser, and the extra worker uses those cores meanwhile."""
    return len(os.sched_getaffinity(0)) + 1


# Modules that take minutes start first: parallel workers then finish together, instead of one of
# them running the daemon or fault tests alone at the end.
LONGEST_FIRST = ["test_webserver.py", "test_faults.py", "test_ml_assets.py", "test_forecasting.py", "test_ocr.py",
                 "test_concurrency.py", "test_celery.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's own order is kept


def pytest_unconfigure(config: pytest.Config) -> None:
    if TEST_STACK in config.stash:
        paths, started = config.stash[TEST_STACK]
        stack.stop(started, paths)


@pytest.fixture(scope="session")
def stack_paths() -> stack.StackPaths:
    return suite_stack_paths()


@pytest.fixture(scope="session")
def stack_settings(stack_paths: stack.StackPaths) -> Iterator[StackSettings]:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker: the controller started the stack (pytest_configure)
        yield suite_stack_settings()
        return
    settings = suite_stack_settings()
    started = start_testing_stack(settings, stack_paths)
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
def dashboard_world(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """The whole mission built over a generated history on the embedded profile (world.py): once per
    test session, by whichever worker asks first; the others wait for it and open the same folder."""
    from sales_analytics_tests.world import open_world

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # the session's folder, above each worker's own
    with FileLock(shared / "world.lock"):
        return open_world(shared / "world")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave files for people (screenshots): kept after the run, under .data/ by default."""
    path = Path(os.environ.get("SALES_ANALYTICS_ARTIFACTS", REPO / ".data" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
