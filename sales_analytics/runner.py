"""Running the whole graph outside the daemon: ingest what landed, then build the touched days.

Used by ``sales-analytics demo`` and by tests; runs go to the given Dagster instance, so they show
up in the UI when that instance is the one ``dagster dev`` uses.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

import dagster as dg

from sales_analytics.ingest.assets import RAW_ORDER_LINES, raw_order_lines
from sales_analytics.jobs import daily_sales_job, ingest_job, reference_job
from sales_analytics.partitions import day_ranges, range_tags

COUNTED = ("rows_rejected", "duplicates_collapsed")


@dataclass
class BuildSummary:
    touched_days: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)  # asset -> partitions materialized
    rows: dict[str, int] = field(default_factory=dict)  # asset -> rows written, over all runs
    counts: dict[str, int] = field(default_factory=dict)  # COUNTED metadata, summed over runs
    checks: dict[str, bool] = field(default_factory=dict)  # "asset:check" -> all passed


def ingest_and_build(defs: dg.Definitions, instance: dg.DagsterInstance, console_log_level: str = "WARNING",
                     daily_assets: list[dg.AssetKey] | None = None, objects: list[str] | None = None) -> BuildSummary:
    """Reference data, then ingest, then the touched days (``daily_assets`` of the daily job; given,
    only those are built and reference data is skipped). ``objects``: ingest just these landing
    keys, as a landing sensor's run does; by default everything pending.

    Every event is still recorded in the instance; ``console_log_level`` only quiets the terminal."""
    summary = BuildSummary()
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}
    if daily_assets is None:  # the dimensions first: facts of the day join the store as it was
        collect_run(defs.resolve_job_def(reference_job.name).execute_in_process(instance=instance, run_config=run_config), summary)
    ingest_config = {"ops": {raw_order_lines.op.name: {"config": {"objects": objects}}}} if objects else {}
    ingest = defs.resolve_job_def(ingest_job.name).execute_in_process(instance=instance, run_config={**run_config, **ingest_config})
    collect_run(ingest, summary)
    raw = next(e.materialization for e in ingest.get_asset_materialization_events() if e.asset_key == RAW_ORDER_LINES)
    summary.touched_days = list(raw.metadata["touched_partitions"].value)
    job = defs.resolve_job_def(daily_sales_job.name)
    for first, last in day_ranges(summary.touched_days):
        collect_run(job.execute_in_process(instance=instance, tags=range_tags(first, last), run_config=run_config,
                                           asset_selection=daily_assets), summary)
        release_run_memory()
    return summary


def build_dashboards(defs: dg.Definitions, instance: dg.DagsterInstance, day: str,
                     console_log_level: str = "WARNING") -> dict[str, str]:
    """Each declared dashboard whose reports have been built, as of ``day``; name -> what happened."""
    from sales_analytics.dashboards.assets import dashboards

    outcome = {}
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}
    for dashboard in dashboards:
        missing = [r for r in dashboard.spec.reports
                   if instance.get_latest_materialization_event(dg.AssetKey(r.split("/"))) is None]
        if missing:
            outcome[dashboard.spec.name] = f"skipped: {', '.join(missing)} not built yet"
            continue
        job = defs.resolve_job_def(dashboard.job.name)
        result = job.execute_in_process(instance=instance, run_config=run_config,
                                        partition_key=day if job.partitions_def else None)
        outcome[dashboard.spec.name] = "built" if result.success else "failed"
    return outcome


def release_run_memory() -> None:
    """An in-process result holds its outputs (a month of tables) in reference cycles; collect them
    before the next run, as a run's own process would end, so memory stays bounded by one range."""
    gc.collect()


def collect_run(result: dg.ExecuteInProcessResult, summary: BuildSummary) -> None:
    """Add one run's materializations, counts and check verdicts to ``summary``."""
    summary.run_ids.append(result.run_id)
    for event in result.get_asset_materialization_events():
        name = event.asset_key.to_user_string()
        summary.partitions[name] = summary.partitions.get(name, 0) + 1
        metadata = event.materialization.metadata
        if "dagster/row_count" in metadata:
            summary.rows[name] = summary.rows.get(name, 0) + int(metadata["dagster/row_count"].value)
        for key in COUNTED:
            if key in metadata:
                summary.counts[key] = summary.counts.get(key, 0) + int(metadata[key].value)
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        summary.checks[name] = summary.checks.get(name, True) and evaluation.passed
