"""The Dagster code location: every asset, check, job, schedule and sensor, wired to the active profile."""

import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_celery import celery_executor

from sales_analytics.catalog import DAILY_STORE_SALES_KEY
from sales_analytics.components import deployment_definitions
from sales_analytics.curated.assets import sales_by_series
from sales_analytics.groups import with_group_defaults
from sales_analytics.ingest.assets import raw_order_lines
from sales_analytics.jobs import (
    daily_sales_job,
    daily_sales_schedule,
    demand_forecast_job,
    demand_forecast_schedule,
    ingest_and_build_job,
    ingest_job,
    receipts_job,
    receipts_schedule,
    reference_job,
    review_insights_job,
    review_insights_schedule,
    train_demand_model_job,
    train_demand_model_schedule,
    train_sentiment_model_job,
    train_sentiment_model_schedule,
    weekly_sales_job,
)
from sales_analytics.lake.assets import clean_order_lines, reference_assets
from sales_analytics.ml.assets import (
    DEMAND_FORECAST_KEY,
    FORECAST_ACCURACY_KEY,
    demand_forecast,
    demand_model,
    demand_model_champion,
    forecast_accuracy,
    model_backtest_report,
)
from sales_analytics.nlp.assets import (
    review_insights,
    review_published_reports,
    sentiment_model,
    sentiment_model_champion,
)
from sales_analytics.ocr.assets import RECEIPT_SCANS, receipt_extraction, receipt_ocr_evaluation, receipt_review_queue
from sales_analytics.profiles import build_resources
from sales_analytics.reports.daily_sales import DAILY_SALES_KEY, daily_sales
from sales_analytics.reports.daily_store_sales import daily_store_sales
from sales_analytics.reports.publish import publish_assets
from sales_analytics.reports.weekly_sales import weekly_sales, weekly_sales_published
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES, DEMAND_FORECAST, FORECAST_ACCURACY
from sales_analytics.sensors import (
    champion_drift,
    receipt_scans_sensor,
    run_failure_alerts,
    touched_partitions_sensor,
    weekly_reports_automation,
)

EXECUTOR_ENV = "SALES_ANALYTICS_EXECUTOR"
CELERY_BROKER_ENV = "SALES_ANALYTICS_CELERY_BROKER"


def step_executor() -> dg.ExecutorDefinition:
    """Where a run's steps execute, from ``SALES_ANALYTICS_EXECUTOR``:
    - ``in_process`` (the default): one after another in the run's own process. The platform's steps
      take seconds and a process per step costs about as much again, so a run is fastest this way;
    - ``multiprocess``: each step in a process of its own on the run's machine, independent steps in
      parallel;
    - ``celery``: Celery tasks on the workers listening on the broker in ``SALES_ANALYTICS_CELERY_BROKER``
      (dagster-celery; start them with ``dagster-celery worker start``), for steps heavier than one machine."""
    choice = os.environ.get(EXECUTOR_ENV, "in_process")
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "celery":
        return celery_executor.configured({"broker": {"env": CELERY_BROKER_ENV}, "backend": "rpc://"})
    raise ValueError(f"{EXECUTOR_ENV}={choice!r}: choose in_process, multiprocess or celery")


def build_defs(resources: dict[str, Any]) -> dg.Definitions:
    """The same graph over any set of resources (a profile's, or a test's isolated ones): the platform's
    own assets, the sources and dashboards declared under ``defs/``, and a deployment's own."""
    return dg.Definitions.merge(platform_defs(resources), declared_defs(), deployment_definitions())


@cache
def declared_defs() -> dg.Definitions:
    """The component instances under ``sales_analytics/defs/`` (the project's sources and dashboards)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def platform_defs(resources: dict[str, Any]) -> dg.Definitions:
    return dg.Definitions(
        assets=with_code_references(with_group_defaults([
            raw_order_lines,
            clean_order_lines,
            *reference_assets,
            daily_store_sales,
            daily_sales,
            sales_by_series,
            demand_model,
            demand_model_champion,
            demand_forecast,
            forecast_accuracy,
            model_backtest_report,
            sentiment_model,
            sentiment_model_champion,
            review_insights,
            *review_published_reports,
            RECEIPT_SCANS,
            receipt_extraction,
            receipt_review_queue,
            receipt_ocr_evaluation,
            *publish_assets(DAILY_STORE_SALES, DAILY_STORE_SALES_KEY),
            *publish_assets(DAILY_SALES, DAILY_SALES_KEY),
            weekly_sales,
            *weekly_sales_published,
            *publish_assets(DEMAND_FORECAST, DEMAND_FORECAST_KEY, backfill_policy=None),
            *publish_assets(FORECAST_ACCURACY, FORECAST_ACCURACY_KEY, backfill_policy=None),
        ])),
        jobs=[ingest_job, ingest_and_build_job, daily_sales_job, weekly_sales_job, reference_job, train_demand_model_job, demand_forecast_job, train_sentiment_model_job,
              review_insights_job, receipts_job],
        schedules=[daily_sales_schedule, train_demand_model_schedule, demand_forecast_schedule, train_sentiment_model_schedule,
                   review_insights_schedule, receipts_schedule],
        sensors=[touched_partitions_sensor, receipt_scans_sensor, weekly_reports_automation,
                 champion_drift, run_failure_alerts],
        resources=resources,
        executor=step_executor(),
    )


def with_code_references(assets: list[Any]) -> list[Any]:
    """Each asset linked to the Python that defines it (the UI's code references; a beta API)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.with_source_code_references(assets)


defs = build_defs(build_resources())
