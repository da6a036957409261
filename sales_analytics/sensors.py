"""Sensors: react to landings, then re-run exactly the order dates they touched."""


import hashlib

import dagster as dg

from sales_analytics.ingest.assets import RAW_ORDER_LINES
from sales_analytics.ingest.raw import pending_objects
from sales_analytics.jobs import daily_sales_job, ingest_job
from sales_analytics.partitions import day_ranges, range_tags
from sales_analytics.sources.spec import file_sources
from sales_analytics.storage.lake import LakeResource

MAX_OBJECTS_PER_TICK = 500


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Starts an ingest run when landed objects appear (or change) that were not ingested yet.")
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    pending = []
    for _, info in pending_objects(lake, file_sources()):
        pending.append(f"{info.key}@{info.version}")
        if len(pending) >= MAX_OBJECTS_PER_TICK:
            break
    if not pending:
        return dg.SkipReason("no new landed objects")
    # The same set of object versions never starts a second run.
    run_key = hashlib.sha256("\n".join(pending).encode()).hexdigest()[:32]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, tags={"landed_objects": str(len(pending))})])


@dg.asset_sensor(asset_key=RAW_ORDER_LINES, job=daily_sales_job, default_status=dg.DefaultSensorStatus.STOPPED,
                 description="After each raw ingest, re-runs the order-date partitions it touched, and only those.")
def touched_partitions_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> dg.SensorResult:
    materialization = asset_event.asset_materialization
    touched = materialization.metadata.get("touched_partitions") if materialization else None
    days = list(touched.value) if touched is not None else []
    # One run per contiguous range of days (at most a month), not one per day.
    return dg.SensorResult(run_requests=[
        dg.RunRequest(run_key=f"{asset_event.run_id}:{first}..{last}", tags=range_tags(first, last))
        for first, last in day_ranges(days)
    ])
