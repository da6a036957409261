"""Sensors: landing sensors against the real S3 server, re-runs of exactly the touched days, receipt scans."""

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg

from sales_analytics.definitions import build_defs
from sales_analytics.ingest.raw import ingest_object, requested_objects
from sales_analytics.jobs import INGEST_ASSETS, ingest_and_build_job
from sales_analytics.ocr.assets import RECEIPT_LANDING
from sales_analytics.partitions import MAX_DAYS_PER_RUN, MAX_SPAN_DAYS, RANGE_END_TAG, RANGE_START_TAG, day_ranges
from sales_analytics.profiles import initialized
from sales_analytics.sensors import (
    MAX_OBJECTS_PER_TICK,
    RECEIPT_LOOKBACK_DAYS,
    RETRY_AFTER,
    SWEEP_FOLDERS_PER_TICK,
    TOUCHED_BY_TAG,
    ingest_request,
    landing_tick,
    receipts_tick,
)
from sales_analytics.sources.spec import source_named
from sales_analytics.storage.lake import ObjectInfo

CSV = ("order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at\n"
       "A1,1,2026-02-03T10:00:00Z,S001,store,P1,,1,2.50,0,EUR,sold,2026-02-03T10:00:00Z\n")
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
POS = source_named("pos")


def requested(result: dg.SensorResult) -> list[str]:
    return [key for r in result.run_requests for key in next(iter(r.run_config["ops"].values()))["config"]["objects"]]


def folder(days_back: int) -> str:
    return f"{POS.prefix}{NOW.date() - dt.timedelta(days=days_back):%Y-%m-%d}/"


def test_landing_sensor_sees_every_object_once_across_restarts(stack_env: dict[str, Any]) -> None:
    layout = {0: 1200, 1: 800, 2: 500, 10: 30}  # today's folder alone pages past 1,000 keys; day 10 is swept
    keys = [f"{folder(back)}f{i:05d}.csv" for back, n in layout.items() for i in range(n)]
    with initialized(stack_env["lake"]) as lake:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: lake.put_bytes(key, b"x"), keys))
        cursor, seen, ticks = None, [], 0
        while True:
            result = landing_tick(POS, lake, cursor, NOW)
            cursor = json.loads(json.dumps(result.cursor))  # what Dagster stores: survives a restart
            if not result.run_requests:
                break
            assert len(requested(result)) <= MAX_OBJECTS_PER_TICK and len(result.run_requests) == 1
            seen += requested(result)
            ticks += 1
        assert sorted(seen) == sorted(keys) and len(seen) == len(set(seen)) == 2530
        assert ticks == -(-2530 // MAX_OBJECTS_PER_TICK)  # every tick a full batch until the last
        modified = f"{folder(1)}f00007.csv"
        lake.put_bytes(modified, b"a corrected delivery")
        assert requested(landing_tick(POS, lake, cursor, NOW + dt.timedelta(minutes=1))) == [modified]


class ListingCounter:
    """The lake a sensor tick sees, counting the folders it lists object by object."""

    def __init__(self, lake: Any) -> None:
        self.lake, self.listed = lake, []

    def folders(self, prefix: str) -> list[str]:  # before ``list``, which shadows the builtin in the class body
        return self.lake.folders(prefix)

    def list(self, prefix: str) -> Any:
        self.listed.append(prefix)
        return self.lake.list(prefix)

    def exists(self, key: str) -> bool:
        return self.lake.exists(key)


def test_the_sweep_takes_a_whole_history_in_bounded_ticks_and_finds_a_late_correction(stack_env: dict[str, Any]) -> None:
    history = [folder(back) for back in range(POS.lookback_days + 1, POS.lookback_days + 1 + 70)]  # 70 old days
    keys = [f"{prefix}export.csv" for prefix in history]
    with initialized(stack_env["lake"]) as lake:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: lake.put_bytes(key, CSV.encode()), keys))
        cursor, ticks, seen = None, 0, []
        while ticks < 10:
            counted = ListingCounter(lake)
            result = landing_tick(POS, counted, cursor, NOW + dt.timedelta(minutes=ticks))
            assert len(counted.listed) <= POS.lookback_days + 1 + SWEEP_FOLDERS_PER_TICK  # never all history
            cursor, ticks = result.cursor, ticks + 1
            seen += requested(result)
            if sorted(seen) == sorted(keys):
                break
        assert sorted(seen) == sorted(keys) and ticks == -(-70 // SWEEP_FOLDERS_PER_TICK)  # oldest first, resumable
        for spec, info in requested_objects(lake, keys):
            ingest_object(lake, spec, info)
        corrected = keys[5]  # a corrected export lands in a folder two months old
        lake.put_bytes(corrected, CSV.replace("A1,1,", "A1,2,").encode())
        found, later = [], NOW + RETRY_AFTER * 2
        for tick in range(-(-70 // SWEEP_FOLDERS_PER_TICK) + 1):  # within one pass of the sweep
            result = landing_tick(POS, lake, cursor, later + dt.timedelta(minutes=tick))
            cursor, found = result.cursor, found + requested(result)
        assert found == [corrected]  # and nothing ingested is asked for again


def test_a_request_whose_run_never_ingested_is_made_again(local_env: dict[str, Any]) -> None:
    key = f"{folder(0)}a.csv"
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(key, CSV.encode())
        first = landing_tick(POS, lake, None, NOW)
        assert requested(first) == [key]
        later = NOW + RETRY_AFTER + dt.timedelta(minutes=1)
        again = landing_tick(POS, lake, first.cursor, later)  # the first run failed: no manifest
        assert requested(again) == [key] and again.run_requests[0].run_key != first.run_requests[0].run_key
        for spec, info in requested_objects(lake, [key]):
            ingest_object(lake, spec, info)
        settled = landing_tick(POS, lake, again.cursor, later + RETRY_AFTER * 2)
        assert requested(settled) == [] and json.loads(settled.cursor)["requested"][key][1] is None  # confirmed, never re-checked


def test_sensor_definition_runs_against_its_lake_resource(local_env: dict[str, Any]) -> None:
    defs = build_defs(local_env)
    sensor = defs.resolve_sensor_def("landing_pos")
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(f"{POS.prefix}{dt.datetime.now(dt.UTC).date():%Y-%m-%d}/a.csv", CSV.encode())
    with dg.build_sensor_context(resources={"lake": local_env["lake"]}, repository_def=defs.get_repository_def()) as context:
        result = sensor.evaluate_tick(context)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]  # today's file: ingested alone, its day is not over
    run = defs.resolve_job_def(sensor.job_name).execute_in_process(run_config=request.run_config,
                                                                   asset_selection=request.asset_selection)
    assert run.success and {e.asset_key for e in run.get_asset_materialization_events()} <= set(INGEST_ASSETS)


def test_a_new_export_is_ingested_and_its_day_rebuilt_in_one_run(local_env: dict[str, Any]) -> None:
    """The landing sensor's run for yesterday's export ingests it and rebuilds that day in the same run (one run on
    its way to the reports, not two); the day its late line touches follows from the touched-days sensor. Today's
    file (its day is not over) or a backlog wider than a month is ingested alone."""
    now = dt.datetime.now(dt.UTC)
    yesterday, today = now.date() - dt.timedelta(days=1), now.date()
    late = yesterday - dt.timedelta(days=2)
    line = CSV.splitlines()[1]
    export = CSV.replace("2026-02-03", str(yesterday)) + line.replace("A1", "A2").replace("2026-02-03", str(late)) + "\n"
    defs = build_defs(local_env)
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(f"{POS.prefix}{yesterday}/a.csv", export.encode())
        tick = landing_tick(POS, lake, None, now)
        request = tick.run_requests[0]
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (str(yesterday), str(yesterday))
        assert request.asset_selection is None  # the whole job: the ingest and the day's build
        lake.put_bytes(f"{POS.prefix}{today}/b.csv", CSV.replace("2026-02-03", str(today)).encode())
        alone = landing_tick(POS, lake, tick.cursor, now).run_requests[0]
        assert RANGE_START_TAG not in alone.tags and set(alone.asset_selection) == set(INGEST_ASSETS)
        backlog = [ObjectInfo(f"{POS.prefix}{day}/c.csv", 1, "v1", now) for day in (yesterday - dt.timedelta(days=40), yesterday)]
        assert ingest_request(POS, backlog, "k", {}, now).asset_selection == list(INGEST_ASSETS)
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def(ingest_and_build_job.name).execute_in_process(
            instance=instance, tags=request.tags, run_config=request.run_config)
        assert run.success
        report = dg.AssetKey(["reports", "daily_store_sales"])
        assert instance.get_materialized_partitions(report) == {str(yesterday)}
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        follow_up = defs.resolve_sensor_def("touched_partitions_sensor").evaluate_tick(context).run_requests
        assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in follow_up] == [(str(late), str(late))]


def test_ingest_triggers_runs_for_exactly_the_touched_days(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes("landing/orders/pos/2026-02-03/a.csv", CSV.encode())
        lake.put_bytes("landing/orders/web/2026-02-09/b.csv", CSV.replace("2026-02-03", "2026-01-15").encode())
        lake.put_bytes("landing/orders/web/2026-02-09/c.csv", CSV.replace("2026-02-03", "2026-02-04").encode())
    defs = build_defs(local_env)
    with dg.instance_for_test() as instance:
        ingest = defs.resolve_job_def("ingest_landing").execute_in_process(instance=instance)
        assert ingest.success
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        requests = defs.resolve_sensor_def("touched_partitions_sensor").evaluate_tick(context).run_requests
        ranges = sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)
        assert ranges == [("2026-01-15", "2026-01-15"), ("2026-02-03", "2026-02-04")]
        assert {r.tags[TOUCHED_BY_TAG] for r in requests} == {ingest.run_id}  # why each range is rebuilt
        job = defs.resolve_job_def("daily_sales")
        for request in requests:  # what the daemon would launch
            assert job.execute_in_process(instance=instance, tags=request.tags).success
        built = instance.get_materialized_partitions(dg.AssetKey(["reports", "daily_store_sales"]))
        assert built == {"2026-01-15", "2026-02-03", "2026-02-04"}
        again = defs.resolve_sensor_def("touched_partitions_sensor").evaluate_tick(context)  # from the same cursor
        assert not again.run_requests and "rebuilt since" in again.skip_message  # the days were built after the ingest


def test_a_weekly_sources_weeks_share_runs_and_daily_data_still_runs_a_month_at_a_time() -> None:
    start = dt.date(2010, 2, 5)  # the Walmart layout: 143 Fridays
    fridays = [(start + dt.timedelta(weeks=w)).isoformat() for w in range(143)]
    weekly = day_ranges(fridays)
    assert len(weekly) == 11  # was 143: a run per week
    assert all((dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days < MAX_SPAN_DAYS for first, last in weekly)
    assert [d for first, last in weekly for d in fridays if first <= d <= last] == fridays  # each week in exactly one
    days = [(start + dt.timedelta(days=n)).isoformat() for n in range(100)]
    assert [(dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1 for first, last in day_ranges(days)] == [
        MAX_DAYS_PER_RUN, MAX_DAYS_PER_RUN, MAX_DAYS_PER_RUN, 100 - 3 * MAX_DAYS_PER_RUN]
    assert day_ranges(["2026-01-01", "2026-01-09"]) == [("2026-01-01", "2026-01-01"), ("2026-01-09", "2026-01-09")]  # 8 apart


def test_every_ingest_between_two_ticks_is_seen_and_days_rebuilt_since_are_not_asked_again(local_env: dict[str, Any]) -> None:
    defs = build_defs(local_env)
    sensor = defs.resolve_sensor_def("touched_partitions_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        for name, day in (("a.csv", "2026-02-03"), ("b.csv", "2026-03-10"), ("c.csv", "2026-04-20")):  # three ingests, one tick
            with initialized(local_env["lake"]) as lake:
                lake.put_bytes(f"landing/orders/pos/{day}/{name}", CSV.replace("2026-02-03", day).encode())
            assert defs.resolve_job_def("ingest_landing").execute_in_process(instance=instance).success
        assert defs.resolve_job_def("daily_sales").execute_in_process(instance=instance, partition_key="2026-03-10").success
        requests = sensor.evaluate_tick(context).run_requests  # 2026-03-10 was rebuilt by hand after its ingest
        assert sorted(r.tags[RANGE_START_TAG] for r in requests) == ["2026-02-03", "2026-04-20"]


def test_receipt_scans_ask_for_one_ocr_run_per_landing_day_with_new_scans(local_env: dict[str, Any]) -> None:
    today, yesterday = NOW.date(), NOW.date() - dt.timedelta(days=1)
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(f"{RECEIPT_LANDING}{yesterday}/S001/a.jpg", b"scan a")
        lake.put_bytes(f"{RECEIPT_LANDING}{today}/S001/b.jpg", b"scan b")
        lake.put_bytes(f"{RECEIPT_LANDING}{today}/S002/c.jpg", b"scan c")
        too_old = NOW.date() - dt.timedelta(days=RECEIPT_LOOKBACK_DAYS + 1)
        lake.put_bytes(f"{RECEIPT_LANDING}{too_old}/S001/old.jpg", b"scan old")
        first = receipts_tick(lake, None, NOW)
        assert sorted((r.partition_key, r.tags["scans"]) for r in first.run_requests) == [(str(yesterday), "1"), (str(today), "2")]
        quiet = receipts_tick(lake, first.cursor, NOW + dt.timedelta(minutes=1))
        assert not quiet.run_requests and "no new scans" in quiet.skip_reason.skip_message
        lake.put_bytes(f"{RECEIPT_LANDING}{yesterday}/S001/a.jpg", b"scan a, rescanned")  # replaced: read the day again
        again = receipts_tick(lake, quiet.cursor, NOW + dt.timedelta(minutes=2))
        assert [r.partition_key for r in again.run_requests] == [str(yesterday)]
        assert again.run_requests[0].run_key != first.run_requests[0].run_key
