"""Jobs and schedules."""

from typing import Any

import dagster as dg

from sales_analytics.alerts import NETWORK_RETRY
from sales_analytics.catalog import LANDING_QUARANTINE, RAW_ORDER_LINES, landing_key, published_key, quarantine_key
from sales_analytics.sources.spec import SNAPSHOT_TARGETS, SourceSpec

# Dashboards refresh on their own schedules and weekly reports by automation: the jobs that feed
# them stop before them.
REFRESHED_ON_THEIR_OWN = (dg.AssetSelection.groups("dashboards")
                          | dg.AssetSelection.assets(["reports", "weekly_sales"]).downstream())


# Every schedule runs once deployed, as the UI shows it; stop one there to pause it.
ON = dg.DefaultScheduleStatus.RUNNING


def asset_job(name: str, **kwargs: Any) -> Any:  # what dg.define_asset_job returns (its class is not public)
    """Every job of the platform: its steps retry transient failures with backoff and jitter."""
    return dg.define_asset_job(name, op_retry_policy=NETWORK_RETRY, **kwargs)


INGEST_ASSETS = (RAW_ORDER_LINES, LANDING_QUARANTINE)
INGEST = dg.AssetSelection.assets(*INGEST_ASSETS)
DAILY_BUILD = (dg.AssetSelection.assets(["clean", "order_lines"], quarantine_key("order_lines"), ["curated", "sales_by_series"])
               | (dg.AssetSelection.assets(["reports", "daily_store_sales"], ["reports", "daily_sales"]).downstream()
                  - REFRESHED_ON_THEIR_OWN))

ingest_job = asset_job(
    "ingest_landing",
    selection=INGEST,
    description="Ingest every landed object version not ingested yet into the raw zone.",
)

daily_sales_job = asset_job(
    "daily_sales",
    selection=DAILY_BUILD,
    description="Clean order lines, the curated series and the daily sales reports (lake, SQL, serving) for "
                "order-date partitions.",
)

# A new daily export's way to the reports in one run, not two (each run pays a sensor's tick, the queue and a
# process start): the order sources' landing sensors run this job, its partitions the days the files landed under.
ingest_and_build_job = asset_job(
    "ingest_and_build",
    selection=INGEST | DAILY_BUILD,
    description="Ingest the named landed objects, then rebuild the days they landed under (a landing sensor's run; "
                "the days their late lines touch follow in daily_sales runs). A run for a backlog of many days, or "
                "of today's files only, ingests alone.",
)

# Yesterday's partition once a day, after the night's exports have landed.
daily_sales_schedule = dg.build_schedule_from_partitioned_job(daily_sales_job, hour_of_day=3, minute_of_hour=0,
                                                              default_status=ON)

weekly_sales_job = asset_job(
    "weekly_sales",
    selection=dg.AssetSelection.assets(["reports", "weekly_sales"]).downstream() - dg.AssetSelection.groups("dashboards"),
    description="A week's sales report in the lake, SQL and serving stores. weekly_reports_automation runs these assets "
                "when a week's days are in; this job is for building or re-building weeks by hand.",
)


reference_job = asset_job(
    "reference_data",
    selection=dg.AssetSelection.assets(*[["clean", t] for t in SNAPSHOT_TARGETS], *[quarantine_key(t) for t in SNAPSHOT_TARGETS]),
    description="Rebuild stores and products (with their history) and reviews from every snapshot.",
)

def extract_job(spec: SourceSpec) -> Any:
    return asset_job(
        f"extract_{spec.name}",
        selection=dg.AssetSelection.assets(landing_key(spec.name)),
        description=f"Extract the next batches of the {spec.name} database table into the landing zone.",
    )


train_demand_model_job = asset_job(
    "train_demand_model",
    selection=dg.AssetSelection.assets(["ml", "demand_model"], ["ml", "demand_model_champion"],
                                       published_key("rds", "model_backtest")),
    description="Train and backtest a new demand model; promote it only if its promotable check passes.",
)
# Weekly, Monday 05:00 UTC, after the weekend's sales are curated.
train_demand_model_schedule = dg.ScheduleDefinition(job=train_demand_model_job, cron_schedule="0 5 * * 1", default_status=ON)

demand_forecast_job = asset_job(
    "demand_forecast",
    selection=dg.AssetSelection.assets(["ml", "demand_forecast"]).downstream() - REFRESHED_ON_THEIR_OWN,
    description="The champion's forecast as of the day, the scoring of every past forecast of that day, both "
                "published to the SQL and serving stores.",
)
# Yesterday's partition at 04:00 UTC, after daily_sales (03:00) has curated it.
demand_forecast_schedule = dg.build_schedule_from_partitioned_job(demand_forecast_job, hour_of_day=4, minute_of_hour=0,
                                                                  default_status=ON)

train_sentiment_model_job = asset_job(
    "train_sentiment_model",
    selection=dg.AssetSelection.assets(["ml", "sentiment_model"], ["ml", "sentiment_model_champion"]),
    description="Train the review sentiment model on rated reviews; promote it only if its promotable check passes.",
)
# Weekly, Monday 05:30 UTC, after the week's review exports have landed.
train_sentiment_model_schedule = dg.ScheduleDefinition(job=train_sentiment_model_job, cron_schedule="30 5 * * 1",
                                                      default_status=ON)

review_insights_job = asset_job(
    "review_insights",
    selection=dg.AssetSelection.assets(["ml", "review_scores"]).required_multi_asset_neighbors().downstream() - REFRESHED_ON_THEIR_OWN,
    description="Score every review with the champion sentiment model; weekly sentiment, aspect and negative-spike "
                "reports in the lake and the SQL store.",
)
# Daily 06:00 UTC: reviews of any day are in the weekly reports by the next morning.
review_insights_schedule = dg.ScheduleDefinition(job=review_insights_job, cron_schedule="0 6 * * *", default_status=ON)

receipts_job = asset_job(
    "receipts",
    selection=dg.AssetSelection.assets(["ml", "receipt_extraction"], published_key("rds", "receipt_review_queue")),
    description="Read a day's scanned receipts: confident ones exported as order lines, the rest to the review queue.",
)
# Yesterday's scans at 02:00 UTC, before the daily sales build (03:00) picks up their order lines.
receipts_schedule = dg.build_schedule_from_partitioned_job(receipts_job, hour_of_day=2, minute_of_hour=0, default_status=ON)
