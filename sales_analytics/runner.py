"""Running the whole graph outside the daemon: ingest what landed, then build the touched days.

Used by ``sales-analytics demo`` and by tests; runs go to the given Dagster instance, so they show
up in the UI when that instance is the one ``dagster dev`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from sales_analytics.jobs import daily_sales_job, ingest_job
from sales_analytics.partitions import day_ranges, range_tags


@dataclass
class BuildSummary:
    touched_days: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)  # asset -> partitions materialized
    rows: dict[str, int] = field(default_factory=dict)  # asset -> rows written, over all runs
    checks: dict[str, bool] = field(default_factory=dict)  # "asset:check" -> all passed


def ingest_and_build(defs: dg.Definitions, instance: dg.DagsterInstance) -> BuildSummary:
    summary = BuildSummary()
    ingest = defs.resolve_job_def(ingest_job.name).execute_in_process(instance=instance)
    _collect(ingest, summary)
    raw = ingest.get_asset_materialization_events()[0].materialization
    summary.touched_days = list(raw.metadata["touched_partitions"].value)
    job = defs.resolve_job_def(daily_sales_job.name)
    for first, last in day_ranges(summary.touched_days):
        result = job.execute_in_process(instance=instance, tags=range_tags(first, last))
        _collect(result, summary)
    return summary


def _collect(result: dg.ExecuteInProcessResult, summary: BuildSummary) -> None:
    summary.run_ids.append(result.run_id)
    counted: set[str] = set()
    for event in result.get_asset_materialization_events():
        name = event.asset_key.to_user_string()
        summary.partitions[name] = summary.partitions.get(name, 0) + 1
        metadata = event.materialization.metadata
        rows = metadata.get("dagster/row_count") or metadata.get("rows_in_run")
        if rows is not None and name not in counted:  # a range run repeats its metadata on every partition
            summary.rows[name] = summary.rows.get(name, 0) + int(rows.value)
            counted.add(name)
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        summary.checks[name] = summary.checks.get(name, True) and evaluation.passed
