"""A small but complete world on the embedded profile: the whole mission (``runner.build_mission``,
what ``make demo`` builds) over a generated history: every source landed, receipts read, every
report, both models trained and promoted, forecasts scored against actuals, all dashboards built.

The browser, API and load tests open it as a user would; building it once per session keeps them fast.
"""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import build_mission

START, DAYS = dt.date(2026, 1, 5), 150
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=30, start=START, orders_per_store_day=8)
MODEL_CONFIG = {"history_days": DAYS, "horizon": 14, "backtest_windows": 1, "max_iter": 30}


def build_world(home: Path, instance: dg.DagsterInstance) -> dict[str, Any]:
    env = local_resources(home)
    with initialized(env["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
        mission = build_mission(build_defs(env), instance, lake, MODEL_CONFIG)
    return {"env": env, "mission": mission, "last_day": mission.build.touched_days[-1]}
