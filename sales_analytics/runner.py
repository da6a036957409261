"""Running the whole graph outside the daemon: ingest what landed, build the touched days, and
(``build_mission``) everything after them: weekly reports, both models, forecasts and their
accuracy, review insights, receipts and every dashboard.

Used by ``sales-analytics demo`` and by tests; runs go to the given Dagster instance, so they show
up in the UI when that instance is the one ``dagster dev`` uses.
"""

from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from sales_analytics.catalog import RAW_ORDER_LINES, published_key
from sales_analytics.ingest.assets import raw_order_lines
from sales_analytics.jobs import (
    daily_sales_job,
    demand_forecast_job,
    ingest_job,
    receipts_job,
    reference_job,
    review_insights_job,
    train_demand_model_job,
    train_sentiment_model_job,
    weekly_sales_job,
)
from sales_analytics.ml.assets import DEMAND_MODEL, FORECAST_ACCURACY_KEY, demand_model, forecast_accuracy
from sales_analytics.nlp.assets import SENTIMENT_MODEL
from sales_analytics.ocr.assets import RECEIPT_EXTRACTION, RECEIPT_LANDING
from sales_analytics.partitions import day_ranges, partition_days, range_tags
from sales_analytics.schema import FORECAST_ACCURACY
from sales_analytics.storage.lake import LakeResource

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
                     daily_assets: list[dg.AssetKey] | None = None, objects: list[str] | None = None,
                     summary: BuildSummary | None = None, reference: bool = True) -> BuildSummary:
    """Reference data, then ingest, then the touched days (``daily_assets`` of the daily job; given,
    only those are built and reference data is skipped). ``objects``: ingest just these landing
    keys, as a landing sensor's run does; by default everything pending.

    Every event is still recorded in the instance; ``console_log_level`` only quiets the terminal.
    ``summary``: a summary of earlier runs to add these runs to; ``reference``: False when the caller
    has just rebuilt reference data."""
    summary = summary if summary is not None else BuildSummary()
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}
    if daily_assets is None and reference:  # the dimensions first: facts of the day join the store as it was
        collect_run(defs.resolve_job_def(reference_job.name).execute_in_process(instance=instance, run_config=run_config), summary)
    ingest_config = {"ops": {raw_order_lines.op.name: {"config": {"objects": objects}}}} if objects else {}
    ingest = defs.resolve_job_def(ingest_job.name).execute_in_process(instance=instance, run_config={**run_config, **ingest_config})
    collect_run(ingest, summary)
    raw = next(e.materialization for e in ingest.get_asset_materialization_events() if e.asset_key == RAW_ORDER_LINES)
    summary.touched_days = list(raw.metadata["touched_partitions"].value)
    job = defs.resolve_job_def(daily_sales_job.name)
    for first, last in day_ranges(partition_days(summary.touched_days)):
        collect_run(job.execute_in_process(instance=instance, tags=range_tags(first, last), run_config=run_config,
                                           asset_selection=daily_assets), summary)
        release_run_memory()
    return summary


def build_dashboards(defs: dg.Definitions, instance: dg.DagsterInstance, day: str,
                     console_log_level: str = "WARNING", summary: BuildSummary | None = None) -> dict[str, str]:
    """Each declared dashboard whose reports have been built, as of ``day``; name -> what happened.
    ``summary``: where to add the runs' materializations and checks, if anywhere."""
    from sales_analytics.dashboards.assets import AS_OF_TAG
    from sales_analytics.dashboards.spec import dashboard_job_name, dashboard_specs

    outcome = {}
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}
    for spec in dashboard_specs():
        missing = [r for r in spec.reports
                   if instance.get_latest_materialization_event(dg.AssetKey(r.split("/"))) is None]
        if missing:
            outcome[spec.name] = f"skipped: {', '.join(missing)} not built yet"
            continue
        job = defs.resolve_job_def(dashboard_job_name(spec.name))
        result = job.execute_in_process(instance=instance, run_config=run_config, tags={AS_OF_TAG: day})
        outcome[spec.name] = "built" if result.success else "failed"
        if summary is not None:
            collect_run(result, summary)
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


SCORED_DAYS = 10  # forecasts made this many days before the last day, scored day by day since
# A day's scoring of past forecasts, with its SQL and serving copies: the stores stay in step.
SCORING = [FORECAST_ACCURACY_KEY, published_key("rds", FORECAST_ACCURACY.name), published_key("dynamodb", FORECAST_ACCURACY.name)]


@dataclass
class MissionSummary:
    """What ``build_mission`` built, beyond the daily build: the figures a person checks first."""
    build: BuildSummary
    weeks: list[str] = field(default_factory=list)
    demand_model: dict[str, Any] = field(default_factory=dict)  # version, promoted, WAPE per method
    forecast_accuracy: dict[str, float] = field(default_factory=dict)  # scored day -> WAPE of its forecasts
    sentiment_model: dict[str, Any] = field(default_factory=dict)  # version, promoted, macro-F1 ours and lexicon
    receipts: dict[str, int] = field(default_factory=dict)  # accepted, review
    dashboards: dict[str, str] = field(default_factory=dict)  # name -> built, skipped or failed


def build_mission(defs: dg.Definitions, instance: dg.DagsterInstance, lake: LakeResource,
                  model_config: dict[str, Any] | None = None, console_log_level: str = "WARNING") -> MissionSummary:
    """Everything the platform does with what has landed, in the order its schedules would: reference
    data, receipts (in their store's currency; accepted lines are then ingested like any export), ingestion and the days,
    the complete weeks, the demand model with its backtest and promotion, forecasts from the last
    ``SCORED_DAYS`` origins scored as each day's actuals arrive, the sentiment model and review
    insights, and every dashboard. Stops at the first failed run, naming it."""
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}

    def run(job: str, config: dict[str, Any] | None = None, **kwargs: Any) -> dg.ExecuteInProcessResult:
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, run_config={**run_config, **(config or {})},
                                                              raise_on_error=False, **kwargs)
        if not result.success:
            raise RuntimeError(f"run {result.run_id} of {job} {kwargs.get('partition_key', '')} failed: "
                               f"see it in the Dagster UI")
        collect_run(result, summary.build)
        release_run_memory()
        return result

    summary = MissionSummary(BuildSummary())
    run(reference_job.name)
    for day in sorted({info.key.removeprefix(RECEIPT_LANDING).split("/")[0] for info in lake.list(RECEIPT_LANDING)}):
        scanned = [e.materialization for e in run(receipts_job.name, partition_key=day).get_asset_materialization_events()
                   if e.asset_key == RECEIPT_EXTRACTION]
        for counted in ("accepted", "review"):
            summary.receipts[counted] = summary.receipts.get(counted, 0) + sum(int(m.metadata[counted].value) for m in scanned)
    built = ingest_and_build(defs, instance, console_log_level, summary=summary.build, reference=False)
    if not built.touched_days:
        return summary
    last = dt.date.fromisoformat(built.touched_days[-1])
    for week in complete_weeks(built.touched_days):
        run(weekly_sales_job.name, partition_key=week)
        summary.weeks.append(week)
    trained = run(train_demand_model_job.name, {"ops": {demand_model.op.name: {"config": model_config}}} if model_config else None)
    summary.demand_model = _model_figures(trained, DEMAND_MODEL, ("model", "seasonal_naive", "exponential_smoothing"), "wape")
    origin = last - dt.timedelta(days=SCORED_DAYS)
    run(demand_forecast_job.name, partition_key=origin.isoformat())
    for offset in range(SCORED_DAYS - 1, -1, -1):
        day = (last - dt.timedelta(days=offset)).isoformat()
        scored = run(demand_forecast_job.name, partition_key=day, asset_selection=SCORING)  # and published
        (materialization,) = scored.asset_materializations_for_node(forecast_accuracy.op.name)
        summary.forecast_accuracy[day] = float(materialization.metadata["wape"].value)
    run(demand_forecast_job.name, partition_key=last.isoformat())
    sentiment = run(train_sentiment_model_job.name)
    summary.sentiment_model = _model_figures(sentiment, SENTIMENT_MODEL, ("model", "lexicon"), "macro_f1")
    run(review_insights_job.name)
    summary.dashboards = build_dashboards(defs, instance, last.isoformat(), console_log_level, summary.build)
    return summary


def complete_weeks(days: list[str]) -> list[str]:
    """The weeks (their Monday) all seven of whose days are among ``days``, as the weekly automation
    waits for. Mondays are counted from the data, not the partitions: a week that begins before the
    history start has days outside it and is never complete."""
    present = {dt.date.fromisoformat(day) for day in days}
    first, last = min(present), max(present)
    mondays = [first + dt.timedelta(days=(7 - first.weekday()) % 7 + 7 * k) for k in range((last - first).days // 7 + 1)]
    return [monday.isoformat() for monday in mondays if all(monday + dt.timedelta(days=k) in present for k in range(7))]


def _model_figures(result: dg.ExecuteInProcessResult, model_key: dg.AssetKey, methods: tuple[str, ...],
                   measure: str) -> dict[str, Any]:
    """A training run's version, whether its promotable check passed, and ``measure`` of each method."""
    trained = next(e.materialization for e in result.get_asset_materialization_events() if e.asset_key == model_key)
    (check,) = [c for c in result.get_asset_check_evaluations() if c.asset_key == model_key]
    return {"version": trained.metadata["version"].value, "promoted": check.passed,
            "reason": check.metadata["reason"].value, **{m: float(trained.metadata[f"{m}/{measure}"].value) for m in methods}}
