"""Sensors: one landing sensor per declared file source, then re-runs of exactly the days touched;
and one for receipt scans, which asks for the OCR of each landing day with new scans.

A landing sensor lists the folders where new objects usually appear: for sources that land in
dated folders, today's and ``lookback_days`` before. Beside that window it sweeps the older dated
folders, ``SWEEP_FOLDERS_PER_TICK`` per tick from the oldest and round again, asking for any
object version not ingested yet: a source's whole history is taken in bounded, resumable steps,
and a file landed or corrected in an old folder is found within one pass (folders / per tick
ticks), while a tick never lists all history's objects. Its cursor maps each requested key to the
version requested and when: a new key or a new version of a seen key (a re-delivered, corrected
file) is requested once; entries leave the cursor with their folder or once ingested. Each tick requests at most
``MAX_OBJECTS_PER_TICK`` objects in one run (run key: the batch), and the ingest itself skips any
version already ingested, so an object is ingested exactly once even if a run is requested twice.
A request whose run failed is noticed (no manifest after ``RETRY_AFTER``) and made again.
"""

import datetime as dt
import hashlib
import itertools
import json
import os

import dagster as dg
import sqlalchemy as sa

from sales_analytics.alerts import Alert, AlertNotifier, alert_for
from sales_analytics.catalog import FORECAST_ACCURACY_KEY, RAW_ORDER_LINES, published_key
from sales_analytics.ingest.assets import raw_order_lines
from sales_analytics.ingest.extract import database_url, latest_watermark, read_position
from sales_analytics.ingest.raw import landing_day, manifest_key
from sales_analytics.jobs import (
    INGEST_ASSETS,
    daily_sales_job,
    ingest_and_build_job,
    receipts_job,
    reference_job,
    train_demand_model_job,
)
from sales_analytics.ml.assets import CHAMPION_BEHIND
from sales_analytics.ocr.assets import RECEIPT_LANDING
from sales_analytics.partitions import day_ranges, partition_days, range_tags
from sales_analytics.sources.spec import DATED_FOLDER, SourceSpec
from sales_analytics.storage.lake import LakeResource, ObjectInfo

# A run of this many daily exports takes seconds; smaller batches spread a backlog over the run
# queue's slots instead of one long run.
MAX_OBJECTS_PER_TICK = 200
RETRY_AFTER = dt.timedelta(hours=1)
SWEEP_FOLDERS_PER_TICK = 31  # older dated folders looked through per tick: a year of history in 12 ticks
# The daemon looks at its sensors every 5 s and skips one whose interval has not quite passed since its last tick,
# so an interval of exactly 5 s would tick every 10: a second's slack keeps the cadence at the interval.
TICK_SLACK_SECONDS = 1
RECEIPT_LOOKBACK_DAYS = 3  # scans filed into a folder a few days old are still noticed


def window_prefixes(spec: SourceSpec, today: dt.date) -> list[str]:
    if not spec.dated_folders:
        return [spec.prefix]
    return [f"{spec.prefix}{today - dt.timedelta(days=back):%Y-%m-%d}/" for back in range(spec.lookback_days, -1, -1)]


def sweep_prefixes(spec: SourceSpec, lake: LakeResource, window: list[str], swept_to: str | None) -> list[str]:
    """The next dated folders older than the window after ``swept_to`` (oldest first), round again at the end."""
    if not spec.dated_folders:
        return []
    older = [name for name in lake.folders(spec.prefix) if DATED_FOLDER.fullmatch(name) and f"{spec.prefix}{name}/" < window[0]]
    after = [name for name in older if swept_to is None or name > swept_to] or older
    return [f"{spec.prefix}{name}/" for name in after[:SWEEP_FOLDERS_PER_TICK]]


def landing_tick(spec: SourceSpec, lake: LakeResource, cursor: str | None, now: dt.datetime) -> dg.SensorResult:
    """One tick: new or changed objects in the window and the swept folders, as one run request."""
    prefixes = window_prefixes(spec, now.date())
    state = json.loads(cursor or "{}")
    state = state if "requested" in state else {"requested": state, "swept_to": None}  # an earlier release's cursor
    swept = sweep_prefixes(spec, lake, prefixes, state["swept_to"])
    # requested: key -> [version requested, epoch seconds of the request, or None once ingested]
    seen: dict[str, list] = {k: v for k, v in state["requested"].items() if k.startswith(tuple(prefixes + swept))
                             or (v[1] is not None and now.timestamp() - v[1] < RETRY_AFTER.total_seconds())}
    batch: dict[str, ObjectInfo] = {}
    for prefix in prefixes:
        for info in lake.list(prefix):
            if len(batch) >= MAX_OBJECTS_PER_TICK:
                break
            version, requested_at = seen.get(info.key, (None, None))
            if version != info.version:
                batch[info.key] = info
            elif requested_at is not None and now.timestamp() - requested_at >= RETRY_AFTER.total_seconds():
                if lake.exists(manifest_key(info.key, version)):
                    seen[info.key] = [version, None]  # confirmed ingested: never checked again
                else:
                    batch[info.key] = info  # its run failed or was lost: ask again
    for prefix in swept:
        for info in lake.list(prefix):
            if len(batch) >= MAX_OBJECTS_PER_TICK:
                break
            if seen.get(info.key, [None])[0] != info.version and not lake.exists(manifest_key(info.key, info.version)):
                batch[info.key] = info
    swept_to = swept[-1].removeprefix(spec.prefix).rstrip("/") if swept and len(batch) < MAX_OBJECTS_PER_TICK else state["swept_to"]
    stamp = now.timestamp()
    seen |= {key: [info.version, stamp] for key, info in batch.items()}
    next_cursor = json.dumps({"requested": seen, "swept_to": swept_to}, sort_keys=True)
    if not batch:
        return dg.SensorResult(skip_reason=f"nothing new under {prefixes[-1]}", cursor=next_cursor)
    digest = hashlib.sha256(json.dumps([{k: i.version for k, i in batch.items()}, stamp], sort_keys=True).encode()).hexdigest()[:24]
    tags = {"source": spec.name, "objects": str(len(batch))}
    if spec.target != "order_lines":  # a reference snapshot rebuilds its dimension
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"{spec.name}:{digest}", tags=tags)], cursor=next_cursor)
    return dg.SensorResult(run_requests=[ingest_request(spec, list(batch.values()), f"{spec.name}:{digest}", tags, now)],
                           cursor=next_cursor)


def ingest_request(spec: SourceSpec, objects: list[ObjectInfo], run_key: str, tags: dict[str, str],
                   now: dt.datetime) -> dg.RunRequest:
    """Exactly these objects into raw, and in the same run the days they landed under, when those are built days
    (over, not today's) that one daily run takes (``day_ranges``); otherwise the ingest alone, and the touched-days
    sensor rebuilds after it."""
    run_config = {"ops": {raw_order_lines.op.name: {"config": {"objects": sorted(o.key for o in objects)}}}}
    ranges = day_ranges(partition_days({landing_day(spec, o).isoformat() for o in objects}, now))
    if len(ranges) == 1:
        return dg.RunRequest(run_key=run_key, run_config=run_config, tags={**tags, **range_tags(*ranges[0])})
    return dg.RunRequest(run_key=run_key, run_config=run_config, tags=tags, asset_selection=list(INGEST_ASSETS))


def landing_sensor(spec: SourceSpec) -> dg.SensorDefinition:
    # By the job's name: a source's definitions are built by its component, the jobs by the platform.
    @dg.sensor(name=f"landing_{spec.name}", job_name=(ingest_and_build_job if spec.target == "order_lines" else reference_job).name,
               minimum_interval_seconds=spec.poll_seconds - TICK_SLACK_SECONDS,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Ingests new or changed objects under `{spec.prefix}` ({spec.description.strip()[:80]}…)")
    def _landing(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        return landing_tick(spec, lake, context.cursor, dt.datetime.now(dt.UTC))

    return _landing


def watermark_sensor(spec: SourceSpec, extract_job_name: str) -> dg.SensorDefinition:
    """Asks for an extraction when the source table's watermark moved past the extracted position."""
    assert spec.extract is not None

    # On where the database is configured: without its URL every tick would fail.
    configured = bool(os.environ.get(spec.extract.url_env))
    @dg.sensor(name=f"watermark_{spec.name}", job_name=extract_job_name, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING if configured else dg.DefaultSensorStatus.STOPPED,
               description=f"Polls max({spec.extract.watermark}) of {spec.extract.table}; extracts when it moved.")
    def _watermark(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
        return watermark_tick(spec, lake, sa.create_engine(database_url(spec.extract)))

    return _watermark


def watermark_tick(spec: SourceSpec, lake: LakeResource, engine: sa.Engine) -> dg.SensorResult | dg.SkipReason:
    try:
        latest = latest_watermark(engine, spec)
    finally:
        engine.dispose()
    position = read_position(lake, spec)
    if latest is None or (position is not None and latest <= position[0]):
        return dg.SkipReason(f"{spec.name}: nothing changed since {position[0] if position else 'the start'}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"{spec.name}:{latest}")])


# The daily job's last asset: a day whose copy here was built after an ingest has been rebuilt since.
DAILY_BUILD_DONE = published_key("dynamodb", "daily_sales")
MAX_INGESTS_PER_TICK = 100
TOUCHED_BY_TAG = "touched_by_runs"  # the ingest runs whose rows are in the days a rebuild covers
MAX_RUNS_IN_TAG = 10


# At every look of the daemon (every 5 s): a tick is a query of the instance, and the days a file's late lines
# touch follow its own day's rebuild within seconds.
@dg.sensor(job=daily_sales_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
           description="After each raw ingest, re-runs the order-date partitions it touched, and only those not "
                       "rebuilt since (a run per range of days).")
def touched_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else None
    ingests = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=RAW_ORDER_LINES, after_storage_id=after),
                                                      limit=MAX_INGESTS_PER_TICK, ascending=True).records
    # An ingest whose run is still going may be rebuilding its days in that run (ingest_and_build): judge it, and
    # every ingest after it, once it has ended.
    ingests = list(itertools.takewhile(lambda record: _run_ended(context.instance, record.run_id), ingests))
    if not ingests:
        return dg.SensorResult(skip_reason="no ingest ended since the last tick", cursor=context.cursor)
    touched_by: dict[str, set[str]] = {}  # day -> the ingest runs that touched it
    for record in ingests:
        for day in stale_days(context.instance, record):
            touched_by.setdefault(day, set()).add(record.run_id)
    last = ingests[-1].storage_id
    if not touched_by:
        return dg.SensorResult(skip_reason=f"the days of {len(ingests)} ingest(s) were all rebuilt since", cursor=str(last))
    # One run per range of days (day_ranges: a month of daily data, a quarter of weekly), not one per day; its tags say which
    # ingest runs touched those days, so the UI shows why a day was rebuilt.
    requests = []
    for first, final in day_ranges(list(touched_by)):
        runs = sorted({run for day, by in touched_by.items() if first <= day <= final for run in by})
        requests.append(dg.RunRequest(run_key=f"ingest-{last}:{first}..{final}", tags={
            **range_tags(first, final), TOUCHED_BY_TAG: " ".join(runs[:MAX_RUNS_IN_TAG]),
            "rebuild_reason": f"{len(runs)} raw/order_lines ingest run(s) touched these days"}))
    return dg.SensorResult(cursor=str(last), run_requests=requests)


def _run_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def stale_days(instance: dg.DagsterInstance, ingest: dg.EventLogRecord) -> set[str]:
    """The days an ingest touched that no daily build has finished since (the demo, a person or a
    backfill may have rebuilt some already)."""
    materialization = ingest.asset_materialization
    touched = materialization.metadata.get("touched_partitions") if materialization else None
    days = set(touched.value) if touched is not None else set()
    if not days:
        return days
    rebuilt = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DAILY_BUILD_DONE, asset_partitions=sorted(days), after_storage_id=ingest.storage_id),
        limit=len(days) * 10).records  # a day is rarely rebuilt ten times between two ticks
    return set(partition_days(days - {r.partition_key for r in rebuilt}))  # today's rows: the daily schedule's, tomorrow


def receipts_tick(lake: LakeResource, cursor: str | None, now: dt.datetime) -> dg.SensorResult:
    """New or replaced scans in the last days' folders: one OCR run per landing day that has any. A
    re-run reads the whole day again, which is safe: the day's rows, queue and order export are replaced."""
    days = [now.date() - dt.timedelta(days=back) for back in range(RECEIPT_LOOKBACK_DAYS, -1, -1)]
    prefixes = [f"{RECEIPT_LANDING}{day.isoformat()}/" for day in days]
    seen: dict[str, str] = {k: v for k, v in json.loads(cursor or "{}").items() if k.startswith(tuple(prefixes))}
    changed: dict[str, list[str]] = {}
    for day, prefix in zip(days, prefixes, strict=True):
        for info in lake.list(prefix):
            if seen.get(info.key) != info.version:
                seen[info.key] = info.version
                changed.setdefault(day.isoformat(), []).append(f"{info.key}@{info.version}")
    next_cursor = json.dumps(seen, sort_keys=True)
    if not changed:
        return dg.SensorResult(skip_reason=f"no new scans under {prefixes[-1]}", cursor=next_cursor)
    return dg.SensorResult(cursor=next_cursor, run_requests=[
        dg.RunRequest(partition_key=day, run_key=f"receipts:{day}:{hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:24]}",
                      tags={"scans": str(len(keys))})
        for day, keys in sorted(changed.items())])


@dg.sensor(job=receipts_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description=f"Reads new receipt scans under `{RECEIPT_LANDING}<day>/`: one run per landing day with new scans.")
def receipt_scans_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    return receipts_tick(lake, context.cursor, dt.datetime.now(dt.UTC))


# Weekly reports follow their days by declarative automation.
weekly_reports_automation = dg.AutomationConditionSensorDefinition(
    "weekly_reports_automation",
    target=dg.AssetSelection.assets(["reports", "weekly_sales"]).downstream(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds a week's reports once all its days are in daily_sales, and again when any of them changes.",
)


@dg.sensor(job=train_demand_model_job, minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING,
           description="When forecast_accuracy finds the demand champion no better than seasonal naive over the last four "
                       "weeks (its champion_beats_seasonal_naive check warns): an alert, and a retraining.")
def champion_drift(context: dg.SensorEvaluationContext, alerts: AlertNotifier) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else None
    scored = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FORECAST_ACCURACY_KEY, after_storage_id=after), limit=MAX_INGESTS_PER_TICK,
        ascending=True).records
    if not scored:
        return dg.SensorResult(skip_reason="no forecast scored since the last tick", cursor=context.cursor)
    cursor = str(scored[-1].storage_id)
    behind = [r for r in scored if (m := r.asset_materialization) and (flag := m.metadata.get(CHAMPION_BEHIND)) and flag.value]
    if not behind:
        return dg.SensorResult(skip_reason=f"the champion held against seasonal naive in {len(scored)} scoring(s)", cursor=cursor)
    latest = behind[-1]
    metadata = {k: v.value for k, v in latest.asset_materialization.metadata.items()}
    finding = (f"demand champion {metadata['champion']} is behind seasonal naive over the last weeks of actuals: WAPE "
               f"{metadata['champion_live_wape']} vs {metadata['naive_live_wape']} on {metadata['live_points']} forecasts; "
               f"a retraining ({train_demand_model_job.name}) was requested")
    alerts.send(Alert(job="demand_forecast", run_id=latest.run_id, partition=latest.partition_key, error=finding, run_url=None,
                      outcome="found the demand model behind seasonal naive"), context.log)
    return dg.SensorResult(cursor=cursor, run_requests=[
        dg.RunRequest(run_key=f"drift-{latest.storage_id}", tags={"rebuild_reason": finding[:200]})])


@dg.run_failure_sensor(name="run_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="An alert for every failed run (after its steps' retries): log, webhook, SNS.")
def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertNotifier) -> None:
    alerts.send(alert_for(context), context.log)
