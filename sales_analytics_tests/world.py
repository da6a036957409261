"""A small but complete world on the embedded profile: the whole mission (``runner.build_mission``,
what ``make demo`` builds) over a generated history: every source landed, receipts read, every
report, both models trained and promoted, forecasts scored against actuals, all dashboards built.

The browser, API and load tests open it as a user would; building it once per session keeps them fast.
"""

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import BuildSummary, MissionSummary, build_mission

START, DAYS = dt.date(2026, 1, 5), 120
CONFIG = GeneratorConfig(days=DAYS, stores=3, products=30, start=START, orders_per_store_day=8)
MODEL_CONFIG = {"history_days": DAYS, "horizon": 14, "backtest_windows": 1, "max_iter": 30}


def open_world(folder: Path) -> dict[str, Any]:
    """The world under ``folder``: built there the first time, opened as it is afterwards (another
    test process may have built it: its summary is kept beside it as JSON)."""
    summary = folder / "mission.json"
    if not summary.exists():
        mission, floats = build_mission_in(folder / "local")
        summary.write_text(json.dumps({**dataclasses.asdict(mission), "metadata_floats": floats}))
    stored = json.loads(summary.read_text())
    floats = stored.pop("metadata_floats")
    mission = MissionSummary(build=BuildSummary(**stored.pop("build")), **stored)
    return {"env": local_resources(folder / "local"), "mission": mission, "last_day": mission.build.touched_days[-1],
            "metadata_floats": floats}


def build_mission_in(home: Path) -> tuple[MissionSummary, list[tuple[str, str, float]]]:
    """The mission, and every number with a fraction in its materializations' metadata (as the UI shows them)."""
    env, instance = local_resources(home), dg.DagsterInstance.ephemeral()
    defs = build_defs(env)
    with initialized(env["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
        mission = build_mission(defs, instance, lake, MODEL_CONFIG)
    floats = [(key.to_user_string(), name, number)
              for key in defs.resolve_asset_graph().get_all_asset_keys()
              for record in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=10_000).records
              for name, entry in record.asset_materialization.metadata.items()
              for number in _floats(entry.value)]
    return mission, floats


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return []
