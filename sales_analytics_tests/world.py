"""A small but complete world on the embedded profile: every source landed, every report, both
models trained and promoted, forecasts scored against actuals, and all dashboards built.

The browser test and the webserver test open it as a user would; building it once per session
keeps them fast.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from sales_analytics.dashboards.assets import dashboards
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import (
    demand_forecast_job,
    review_insights_job,
    train_demand_model_job,
    train_sentiment_model_job,
)
from sales_analytics.ml.assets import demand_model, forecast_accuracy
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import ingest_and_build

START, DAYS = dt.date(2026, 1, 5), 150
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=30, start=START, orders_per_store_day=8)
MODEL_CONFIG = {"ops": {demand_model.op.name: {"config": {"history_days": DAYS, "horizon": 14, "backtest_windows": 1,
                                                           "max_iter": 30}}}}
SCORED_DAYS = 10  # forecasts made this many days before the last day, scored day by day since


def build_world(home: Path, instance: dg.DagsterInstance) -> dict[str, Any]:
    env = local_resources(home)
    with initialized(env["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
    defs = build_defs(env)
    last = ingest_and_build(defs, instance).touched_days[-1]

    def run(job: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def(job).execute_in_process(instance=instance, **kwargs)

    assert run(train_demand_model_job.name, run_config=MODEL_CONFIG).success
    last_day = dt.date.fromisoformat(last)
    origin = (last_day - dt.timedelta(days=SCORED_DAYS)).isoformat()
    assert run(demand_forecast_job.name, partition_key=origin).success
    for offset in range(SCORED_DAYS - 1, -1, -1):
        day = (last_day - dt.timedelta(days=offset)).isoformat()
        assert run(demand_forecast_job.name, partition_key=day, asset_selection=[forecast_accuracy.key]).success
    assert run(demand_forecast_job.name, partition_key=last).success
    assert run(train_sentiment_model_job.name).success
    assert run(review_insights_job.name).success
    for dashboard in dashboards:
        partitioned = defs.resolve_job_def(dashboard.job.name).partitions_def is not None
        assert run(dashboard.job.name, **({"partition_key": last} if partitioned else {})).success
    return {"env": env, "defs": defs, "last_day": last}
