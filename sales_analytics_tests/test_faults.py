"""Faults on the real servers during a run, each ending with the lake and the report tables equal,
table by table, to a fault-free build of the same data."""

import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest
from botocore.awsrequest import AWSResponse
from psycopg import sql

from sales_analytics import stack
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig
from sales_analytics.ingest.raw import ingest_object, requested_objects
from sales_analytics.jobs import daily_sales_job
from sales_analytics.partitions import range_tags
from sales_analytics.profiles import StackSettings, initialized
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES
from sales_analytics.sensors import RETRY_AFTER, landing_tick
from sales_analytics.sources.spec import source_named
from sales_analytics.storage.lake import LakeResource, ObjectInfo
from sales_analytics.storage.parquet_io import LakeReader
from sales_analytics.storage.serving_store import DynamoDBServingStore
from sales_analytics_tests.helpers import (
    LAKE_ASSETS,
    free_port,
    isolated_resources,
    isolated_stack,
    land_and_ingest,
    start_testing_stack,
    stored_contents,
    suite_stack_paths,
    suite_stack_settings,
)

pytestmark = [pytest.mark.stack, pytest.mark.faults]
DAYS = 10
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=20, orders_per_store_day=12,
                         start=dt.date.today() - dt.timedelta(days=DAYS + 1))
OUTAGE_SECONDS = 3.0


@pytest.fixture(scope="module")
def stack_paths() -> stack.StackPaths:
    """Servers of this module's own: its tests stop and restart them, which no other test may meet."""
    return suite_stack_paths("test-stack-faults")


@pytest.fixture(scope="module")
def stack_settings(stack_paths: stack.StackPaths) -> Iterator[StackSettings]:
    shared = suite_stack_settings()
    settings = dataclasses.replace(shared, s3_port=shared.s3_port + 100, dynamodb_port=shared.dynamodb_port + 100)
    started = start_testing_stack(settings, stack_paths)
    yield settings
    stack.stop(started, stack_paths)


def _build(resources: dict, days: list[str]) -> tuple[dg.ExecuteInProcessResult, dg.DagsterInstance]:
    instance = dg.DagsterInstance.ephemeral()
    result = build_defs(resources).resolve_job_def(daily_sales_job.name).execute_in_process(
        instance=instance, tags=range_tags(days[0], days[-1]), raise_on_error=False)
    return result, instance


@dataclasses.dataclass(frozen=True)
class FaultFree:
    """The same data built without faults: what every faulty build must end equal to."""

    days: list[str]
    contents: dict[str, Any]
    reports_by_day: dict[tuple[str, str, str], list]
    seconds: float


@pytest.fixture(scope="module")
def fault_free(stack_settings: StackSettings) -> Iterator[FaultFree]:
    with isolated_stack(stack_settings) as clean:
        days = land_and_ingest(clean, CONFIG)
        started = time.monotonic()
        assert _build(clean, days)[0].success
        seconds = time.monotonic() - started
        yield FaultFree(days, stored_contents(clean), _reports_by_day(clean, days), seconds)


@pytest.mark.parametrize("service", ["seaweedfs", "dynamodb"])
def test_a_server_stopped_mid_run_and_restarted_costs_a_delay_not_a_row(stack_settings: StackSettings, stack_paths: stack.StackPaths,
                                                                        fault_free: FaultFree, service: str) -> None:
    """S3 (SeaweedFS) or DynamoDB Local goes away while the days are being built and comes back a
    few seconds later: the steps that met the outage retry (DynamoDB's client may already ride it
    out itself), the run succeeds, and every table equals a fault-free build."""
    with isolated_stack(stack_settings, uuid.uuid4().hex[:10]) as faulty:
        days = land_and_ingest(faulty, CONFIG)
        assert days == fault_free.days
        outcome: dict = {}
        run = threading.Thread(target=lambda: outcome.update(zip(("result", "instance"), _build(faulty, days), strict=True)))
        run.start()
        reached = {"seaweedfs": _first_lake_partition_written, "dynamodb": _publishing_to_dynamodb}[service]
        deadline = time.monotonic() + 120
        while not reached(faulty) and run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.is_alive(), "the run ended before it used the server: nothing to interrupt"
        stack.stop([service], stack_paths)  # mid-run: the lake half written, or DynamoDB mid-publish
        stopped = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        assert stack.start(stack_settings, stack_paths) == [service]
        back = time.monotonic()
        run.join(timeout=300)
        recovered = time.monotonic() - back
        result = outcome["result"]
        retried = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert result.success, [e.message for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert retried or service == "dynamodb", "the outage should have made some step retry"
        expected = fault_free.contents
        assert all(expected["parquet"].values()) and all(expected["sql"].values())
        assert stored_contents(faulty) == expected
        print(f"{service} down {back - stopped:.1f} s; {len(retried)} step retries; run done {recovered:.1f} s after it was back")


@pytest.fixture(scope="module")
def restartable_postgres(stack_settings: StackSettings, stack_paths: stack.StackPaths) -> Iterator[tuple[StackSettings, stack.StackPaths]]:
    """A PostgreSQL cluster of the module's own, on a free port: one it may restart (the session's
    server may be the machine's, shared with other work)."""
    settings = dataclasses.replace(stack_settings, postgres_port=free_port())
    paths = dataclasses.replace(stack_paths, root=stack_paths.root / "restartable-postgres")
    shutil.rmtree(paths.root, ignore_errors=True)
    data, log = stack.postgres_folders(paths)  # outside the root when the postgres user cannot reach it
    assert stack.start_postgres(settings, paths)
    yield settings, paths
    stack.stop_postgres(paths)
    for folder in (paths.root, data):
        shutil.rmtree(folder, ignore_errors=True)
    log.unlink(missing_ok=True)


def _connect(settings: StackSettings) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=settings.postgres_port, user=settings.postgres_user, dbname=settings.database)


def _blocked_writer(settings: StackSettings, table: str, timeout: float = 180) -> int:
    """The backend of the report write waiting for the lock the test holds on ``table``."""
    deadline = time.monotonic() + timeout
    with _connect(settings) as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE %s",
                               (f"DELETE FROM %{table}%",)).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    raise AssertionError(f"no write to {table} reached the server in {timeout} s")


@pytest.mark.parametrize("fault", ["connection dropped", "server restarted"])
def test_postgres_lost_during_a_report_write_costs_a_retry_not_a_row(
        restartable_postgres: tuple[StackSettings, stack.StackPaths], fault_free: FaultFree, fault: str) -> None:
    """The test holds a lock on the SQL report table, so the run's write is caught inside its
    transaction; then the writer's connection is terminated, or the whole server restarted. The
    transaction rolls back, the step retries, and every table equals a fault-free build."""
    settings, paths = restartable_postgres
    with isolated_stack(settings) as faulty:
        days = land_and_ingest(faulty, CONFIG)
        assert days == fault_free.days
        with initialized(faulty["report_db"]) as report_db:
            report_db.ensure_table(DAILY_SALES)
            schema = report_db.schema_name
        holder = _connect(settings)
        holder.execute(sql.SQL("LOCK TABLE {}.{} IN ACCESS EXCLUSIVE MODE").format(
            sql.Identifier(schema), sql.Identifier(DAILY_SALES.name)))
        outcome: dict = {}
        run = threading.Thread(target=lambda: outcome.update(zip(("result", "instance"), _build(faulty, days), strict=True)))
        run.start()
        writer = _blocked_writer(settings, DAILY_SALES.name)
        hit = time.monotonic()
        if fault == "connection dropped":
            holder.execute("SELECT pg_terminate_backend(%s)", (writer,))
            holder.rollback()
        else:
            stack.stop_postgres(paths)  # a fast shutdown: every session ends, open transactions roll back
            assert stack.start_postgres(settings, paths)
        holder.close()
        run.join(timeout=300)
        recovered = time.monotonic() - hit
        result = outcome["result"]
        retried = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert result.success, [e.message for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert any("rds" in key and DAILY_SALES.name in key for key in retried), retried
        assert all(fault_free.contents["sql"].values())
        assert stored_contents(faulty) == fault_free.contents
        print(f"PostgreSQL {fault} during the write of {DAILY_SALES.name}: {len(retried)} step retries; "
              f"run done {recovered:.1f} s later")


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.data


INJECTED: dict[str, int] = {"sends": 0, "throttled": 0, "unprocessed": 0}
THROTTLES = 12  # each costs botocore's backoff (about half a second): enough to prove, few enough to be quick
THROTTLED = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                        "message": "The level of configured provisioned throughput for the table was exceeded."}).encode()


class ThrottledDynamoDB(DynamoDBServingStore):
    """DynamoDB Local as a busy AWS table behaves: every third BatchWriteItem request (up to
    ``THROTTLES`` of them) is refused with ProvisionedThroughputExceededException, and an accepted one leaves a third of its items
    unprocessed (they are really not written; the response hands them back). DynamoDB Local never
    throttles, so this one fault is injected in process, through botocore's own event hooks."""

    def client(self) -> Any:
        if self._client is None:
            events = super().client().meta.events
            events.register("before-send.dynamodb.BatchWriteItem", self._throttle)
            events.register("before-parameter-build.dynamodb.BatchWriteItem", self._hold_back)
            events.register("after-call.dynamodb.BatchWriteItem", self._hand_back)
        return self._client

    def _throttle(self, request: Any, **_: Any) -> AWSResponse | None:
        INJECTED["sends"] += 1
        if INJECTED["sends"] % 3 or INJECTED["sends"] > 3 * THROTTLES:
            return None
        INJECTED["throttled"] += 1
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(THROTTLED))

    def _hold_back(self, params: dict, context: dict, **_: Any) -> None:
        (table, requests), = params["RequestItems"].items()
        held = requests[: len(requests) // 3]
        params["RequestItems"] = {table: requests[len(held):]}
        context["held_back"] = {table: held} if held else {}

    def _hand_back(self, http_response: Any, parsed: dict, context: dict, **_: Any) -> None:
        if http_response.status_code == 200 and context.get("held_back"):
            parsed["UnprocessedItems"] = context["held_back"]
            INJECTED["unprocessed"] += sum(map(len, context["held_back"].values()))


def test_dynamodb_throttling_and_unprocessed_items_cost_a_delay_not_a_row(stack_settings: StackSettings,
                                                                          fault_free: FaultFree) -> None:
    with isolated_stack(stack_settings) as faulty:
        days = land_and_ingest(faulty, CONFIG)
        assert days == fault_free.days
        store = faulty["serving_store"]
        faulty["serving_store"] = ThrottledDynamoDB(**{name: getattr(store, name) for name in type(store).model_fields})
        started = time.monotonic()
        result, _ = _build(faulty, days)
        took = time.monotonic() - started
        assert result.success
        faults = dict(INJECTED)
        assert faults["throttled"] == THROTTLES and faults["unprocessed"] >= 100, faults
        assert all(fault_free.contents["dynamodb"].values())
        assert stored_contents(faulty) == fault_free.contents
        print(f"{faults['throttled']} BatchWriteItem requests throttled, {faults['unprocessed']} items handed back "
              f"unprocessed; run took {took:.1f} s, {fault_free.seconds:.1f} s without faults")


ORDER_CSV = ("order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at\n"
             "{order},1,2026-02-03T10:00:00Z,S001,store,P1,,1,2.50,0,EUR,sold,2026-02-03T10:00:00Z\n")
OUTAGE: dict[str, Any] = {}


class LakeLostMidTick(LakeResource):
    """The lake whose S3 server (the real SeaweedFS) is stopped once a folder with objects is listed."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        listed = list(super().list(prefix))
        yield from listed
        if listed and not OUTAGE.get("stopped"):
            stack.stop(["seaweedfs"], OUTAGE["paths"])
            OUTAGE["stopped"] = prefix


def _requested(result: dg.SensorResult) -> list[str]:
    return sorted(key for r in result.run_requests for key in next(iter(r.run_config["ops"].values()))["config"]["objects"])


def test_a_sensor_tick_failing_halfway_never_moves_its_cursor_past_an_unrequested_object(
        stack_settings: StackSettings, stack_paths: stack.StackPaths) -> None:
    """S3 goes away between a landing sensor's folder listings: the tick fails and records no
    cursor, so the next tick asks for every object, those it had listed included. Then a run dies
    after ingesting half of what it was asked for: once its request is stale, the sensor asks
    again for exactly the other half (the ingested ones have manifests)."""
    spec = source_named("pos")
    now = dt.datetime.now(dt.UTC)
    # Folders up to two days back: still in the window an hour later, even past midnight.
    keys = sorted(f"{spec.prefix}{now.date() - dt.timedelta(days=back):%Y-%m-%d}/export-{i}.csv" for back in range(3) for i in range(4))
    with isolated_stack(stack_settings) as resources:
        with initialized(resources["lake"]) as lake:
            for number, key in enumerate(keys):
                lake.put_bytes(key, ORDER_CSV.format(order=f"A{number}").encode())
        sensor = build_defs(resources).resolve_sensor_def(f"landing_{spec.name}")
        lost = LakeLostMidTick(**{name: getattr(resources["lake"], name) for name in type(resources["lake"]).model_fields})
        OUTAGE.update(paths=stack_paths, stopped=None)
        try:
            with dg.build_sensor_context(resources={"lake": lost}, cursor=None) as context, pytest.raises(Exception) as failed:
                sensor.evaluate_tick(context)
        finally:
            assert stack.start(stack_settings, stack_paths) == ["seaweedfs"]
        assert OUTAGE["stopped"] and "Could not connect" in str(failed.value), failed.value
        with dg.build_sensor_context(resources={"lake": resources["lake"]}, cursor=None) as context:
            first = sensor.evaluate_tick(context)  # from the last cursor stored: the failed tick stored none
        assert _requested(first) == keys
        with initialized(resources["lake"]) as lake:
            for spec_of, info in list(requested_objects(lake, keys))[::2]:  # the run died after every other object
                ingest_object(lake, spec_of, info)
            stale = now + RETRY_AFTER + dt.timedelta(minutes=1)
            again = landing_tick(spec, lake, first.cursor, stale)
            assert _requested(again) == keys[1::2]
            for spec_of, info in requested_objects(lake, keys[1::2]):
                ingest_object(lake, spec_of, info)
            settled = landing_tick(spec, lake, again.cursor, stale + RETRY_AFTER * 2)
        assert _requested(settled) == []
        print(f"tick failed after listing {OUTAGE['stopped']}; the next asked for all {len(keys)} objects, "
              f"the stale request for the {len(keys[1::2])} a dead run left")


def _build_range_in_child(settings: StackSettings, tag: str, first: str, last: str) -> None:
    build_defs(isolated_resources(settings, tag)).resolve_job_def(daily_sales_job.name).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(first, last))


def _reports_by_day(resources: dict, days: list[str]) -> dict[tuple[str, str, str], list]:
    """What a reader sees of each report day, in the SQL store and in the serving store."""
    seen: dict[tuple[str, str, str], list] = {}
    with initialized(resources["report_db"]) as report_db, initialized(resources["serving_store"]) as serving:
        for spec in (DAILY_STORE_SALES, DAILY_SALES):
            items = [i for pk in {k for k, _ in serving.all_keys(spec)} for i in serving.query(spec, pk)]
            for day in days:
                seen[("sql", spec.name, day)] = [sorted(r.items()) for r in report_db.read(spec, day)]
                seen[("dynamodb", spec.name, day)] = sorted(repr(sorted(i.items())) for i in items if i[spec.partition_column] == day)
    return seen


def _first_lake_partition_written(resources: dict) -> bool:
    with initialized(resources["lake"]) as lake:
        return bool(LakeReader(lake).stored_partitions(LAKE_ASSETS[0], "order_date"))


def _publishing_to_dynamodb(resources: dict) -> bool:
    with initialized(resources["serving_store"]) as serving:
        return bool(serving.being_replaced(DAILY_SALES))


KILL_POINTS = {"writing the lake": (_first_lake_partition_written, 0.5), "publishing to DynamoDB": (_publishing_to_dynamodb, 0.0)}


@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_run_killed_mid_write_leaves_no_partial_partition_and_a_rerun_completes(stack_settings: StackSettings,
                                                                                   fault_free: FaultFree, kill_point: str) -> None:
    """SIGKILL while the days are being written: whatever a reader sees then, in the lake, the SQL
    store or the serving store, is either a whole partition, equal to a fault-free build's, or
    nothing; running the days again completes them."""
    tag = uuid.uuid4().hex[:10]
    reached, then = KILL_POINTS[kill_point]
    with isolated_stack(stack_settings, tag) as killed:
        days = land_and_ingest(killed, CONFIG)
        assert days == fault_free.days
        child = mp.get_context("spawn").Process(target=_build_range_in_child, args=(stack_settings, tag, days[0], days[-1]))
        child.start()
        deadline = time.monotonic() + 120
        while not reached(killed) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(then)  # into the writes that follow
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL  # killed while still running, not after
        midway, expected = stored_contents(killed), fault_free.contents
        for asset, partitions in midway["parquet"].items():
            assert all(rows == expected["parquet"][asset][day] for day, rows in partitions.items()), asset
        seen, whole = _reports_by_day(killed, days), fault_free.reports_by_day
        assert all(rows in ([], whole[key]) for key, rows in seen.items())  # a day is all there, or not at all
        with initialized(killed["serving_store"]) as serving:
            hidden = serving.being_replaced(DAILY_SALES)
        # The day being published when the kill came (none if it fell between two days) stays hidden
        # from readers, whatever part of it was written: one day at most, and it reads as absent.
        assert hidden <= set(days) and len(hidden) <= 1, hidden
        assert all(seen[("dynamodb", DAILY_SALES.name, day)] == [] for day in hidden)
        written = {store: sum(1 for (where, *_), rows in seen.items() if where == store and rows) for store in ("sql", "dynamodb")}
        print(f"killed {kill_point}: {sum(map(len, midway['parquet'].values()))} of {sum(map(len, expected['parquet'].values()))} "
              f"lake partitions, {written['sql']} SQL and {written['dynamodb']} DynamoDB report days of {len(seen) // 2} "
              f"visible (each whole); {len(hidden)} DynamoDB day(s) hidden mid-publish")
        assert _build(killed, days)[0].success
        assert stored_contents(killed) == expected
        with initialized(killed["serving_store"]) as serving:
            assert serving.being_replaced(DAILY_SALES) == set()  # the re-run completed the hidden day and showed it
