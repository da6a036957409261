"""Cost growth: how each stage's time and peak memory grow with history length and with series.

    .venv/bin/python bench/growth.py [--days 120 360 1080] [--stores 4 20 80] [--long-history 1080 3240 10800]
                                     [--json out.json]

Builds one world per size on the embedded profile — the history axis at the smallest store count,
the series axis at the shortest history (they share the smallest world) — and runs every stage of
the platform's day and week on it, each in a fresh process, as its job runs it:

- backfill: reference data, ingest, every day's clean/curated/report runs (work: the landed rows);
- one new day: its file ingested and the day rebuilt, median of three days (work: one day's rows);
- demand model: training and backtest on the whole history (work: series × days);
- forecast a day: the champion's forecast and its scoring (work: series × horizon);
- sentiment model, review insights: training on and scoring of the reviews (work: every review);
- dashboards: every dashboard refreshed for the day (work: a bounded window of the reports).

The long-history axis takes the backfill and one new day alone to 10× the longest history (thirty years at
the fewest stores): a backfill's time should grow with the rows and its memory not at all (runs of a month
of partitions at most), one new day's neither.

For each stage and axis it prints the growth exponent b of time ≈ size^b between the smallest and
largest size next to the exponent of the work the stage must do. A stage whose time grows faster
than its work (b above the work's exponent + 0.25) is flagged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import measure, measured

from sales_analytics.partitions import HISTORY_START_ENV

PRODUCTS = 100
ONLINE_STORES = 4  # the generator adds one online store per region
SPARE_DAYS = 3  # days after the history, landed one at a time by the increment stage


@dataclass(frozen=True)
class Stage:
    name: str
    work_exponent: dict[str, float]  # how the work it must do grows along each axis


STAGES = [
    Stage("backfill", {"history": 1, "series": 1}),
    Stage("one new day", {"history": 0, "series": 1}),
    Stage("demand model", {"history": 1, "series": 1}),
    Stage("forecast a day", {"history": 0, "series": 1}),
    Stage("sentiment model", {"history": 1, "series": 1}),
    Stage("review insights", {"history": 1, "series": 1}),
    Stage("dashboards", {"history": 0, "series": 1}),
]
TOLERANCE = 0.25
LONG_HISTORY_STAGES = ("backfill", "one new day")  # the first two stages: they need nothing built after them
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _env(home: str) -> tuple:
    import dagster as dg

    from sales_analytics.definitions import build_defs
    from sales_analytics.profiles import local_resources
    from sales_analytics.storage.instance import ensure_instance

    resources = local_resources(Path(home))
    # Kept across the stages' processes, as a deployment's instance is; configured as `make ui` configures it.
    instance_dir = ensure_instance(Path(home) / "dagster")
    return build_defs(resources), dg.DagsterInstance.from_config(str(instance_dir)), resources


def _start(days: int) -> dt.date:
    return dt.date.today() - dt.timedelta(days=days + SPARE_DAYS + 1)  # the spare days still end before today


def generate(home: str, days: int, stores: int) -> dict:
    from sales_analytics.generator import GeneratorConfig
    from sales_analytics.generator import generate as run_generator
    from sales_analytics.profiles import initialized, local_resources

    with initialized(local_resources(Path(home))["lake"]) as lake:
        summary = run_generator(lake, GeneratorConfig(days=days, stores=stores, products=PRODUCTS, start=_start(days)),
                                progress=False)
    return {"rows": summary.order_rows}


def _clocked(work: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """The stage's own work, timed without the fresh process's imports and definitions."""
    started = time.perf_counter()
    result = work(*args, **kwargs)
    return result, time.perf_counter() - started


def backfill(home: str) -> dict:
    from sales_analytics.runner import ingest_and_build

    defs, instance, _ = _env(home)
    summary, seconds = _clocked(ingest_and_build, defs, instance, console_log_level="ERROR")
    assert all(summary.checks.values()), summary.checks
    return {"seconds": seconds, "rows": summary.rows.get("clean/order_lines", 0)}


def one_new_day(home: str, days: int) -> dict:
    from ingest import land_next_day

    from sales_analytics.profiles import initialized
    from sales_analytics.runner import ingest_and_build

    defs, instance, resources = _env(home)
    seconds = []
    with initialized(resources["lake"]) as lake:
        for offset in range(SPARE_DAYS):  # the first run in a process pays one-off warm-up costs: take the median
            key, rows = land_next_day(lake, (_start(days) + dt.timedelta(days=days + offset)).isoformat())
            # What a new order export sets off (its landing sensor's run): no reference data, whose sensors run
            # it when a snapshot lands.
            seconds.append(_clocked(ingest_and_build, defs, instance, "ERROR", objects=[key], reference=False)[1])
    return {"seconds": statistics.median(seconds), "rows": rows}


def run_job(home: str, job: str, partition_key: str | None = None, run_config: dict | None = None) -> dict:
    defs, instance, _ = _env(home)
    result, seconds = _clocked(defs.resolve_job_def(job).execute_in_process, instance=instance,
                             partition_key=partition_key, run_config={**QUIET, **(run_config or {})})
    assert result.success
    return {"seconds": seconds, **{f"{'/'.join(e.asset_key.path)}: series": e.materialization.metadata["series"].value
                                   for e in result.get_asset_materialization_events() if "series" in e.materialization.metadata}}


def refresh_dashboards(home: str, day: str) -> dict:
    from sales_analytics.runner import build_dashboards

    defs, instance, _ = _env(home)
    outcome, seconds = _clocked(build_dashboards, defs, instance, day, "ERROR")
    assert all(v == "built" for v in outcome.values()), outcome
    return {"seconds": seconds, "dashboards": len(outcome)}


def measure_world(days: int, stores: int, stages: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Every stage (or just ``stages``, which lead the order) on one freshly generated world; stage -> seconds,
    peak RSS and what it reports."""
    from sales_analytics.jobs import (
        demand_forecast_job,
        review_insights_job,
        train_demand_model_job,
        train_sentiment_model_job,
    )
    from sales_analytics.ml.assets import demand_model

    home = tempfile.mkdtemp(prefix=f"bench-growth-{days}d-{stores}s-")
    try:
        landed = measure(generate, home, days, stores).result["rows"]
        last_day = (_start(days) + dt.timedelta(days=days + SPARE_DAYS - 1)).isoformat()
        model_config = {"ops": {demand_model.op.name: {"config": {"history_days": days + SPARE_DAYS,
                                                                     "backtest_windows": 1}}}}
        steps = {"backfill": (backfill, home), "one new day": (one_new_day, home, days),
                 "demand model": (run_job, home, train_demand_model_job.name, None, model_config),
                 "forecast a day": (run_job, home, demand_forecast_job.name, last_day),
                 "sentiment model": (run_job, home, train_sentiment_model_job.name),
                 "review insights": (run_job, home, review_insights_job.name),
                 "dashboards": (refresh_dashboards, home, last_day)}
        results = {name: measured(*step) for name, step in steps.items()  # in order: each builds on the last
                   if stages is None or name in stages}
        results["backfill"]["landed_rows"] = landed
        return results
    finally:
        shutil.rmtree(home, ignore_errors=True)


def growth_exponent(small: float, large: float, ratio: float) -> float:
    return math.log(large / small) / math.log(ratio)


def growth_row(stage: Stage, axis: str, sizes: list[int], worlds: list[dict[str, dict]], ratio: float) -> dict:
    times = [world[stage.name]["seconds"] for world in worlds]
    memory = [world[stage.name]["peak_rss_mb"] for world in worlds]
    b = growth_exponent(times[0], times[-1], ratio)
    work = stage.work_exponent["history" if axis == "long history" else axis]
    return {"stage": stage.name, "axis": axis, "sizes": sizes, "seconds": times, "peak_rss_mb": memory, "time_exponent": b,
            "memory_exponent": growth_exponent(memory[0], memory[-1], ratio), "work_exponent": work,
            "super_linear": b > work + TOLERANCE}


def run(history: list[int], stores: list[int], long_history: list[int], long_history_only: bool = False) -> dict:
    worlds = {} if long_history_only else {(days, stores[0]): measure_world(days, stores[0]) for days in history}
    worlds |= {} if long_history_only else {(history[0], s): measure_world(history[0], s) for s in stores[1:]}
    axes = {} if long_history_only else {"history": [(d, stores[0]) for d in history],
                                         "series": [(history[0], s) for s in stores]}
    table = []
    for stage in STAGES:
        for axis, sizes in axes.items():
            ratio = (sizes[-1][0] / sizes[0][0] if axis == "history"
                     else (sizes[-1][1] + ONLINE_STORES) / (sizes[0][1] + ONLINE_STORES))
            table.append(growth_row(stage, axis, [s[0] if axis == "history" else s[1] for s in sizes],
                                    [worlds[size] for size in sizes], ratio))
    # Thirty years of history start before the platform's first partition (2015 by default): move it for them.
    os.environ[HISTORY_START_ENV] = _start(max(long_history)).isoformat()
    long_worlds = {}
    for days in long_history:  # hours at the largest size: each is printed as it is done
        long_worlds[days] = measure_world(days, stores[0], LONG_HISTORY_STAGES)
        print(f"{days} days: " + ", ".join(f"{stage} {r['seconds']:.1f} s, {r['peak_rss_mb']:.0f} MB"
                                          for stage, r in long_worlds[days].items()), flush=True)
    for stage in (s for s in STAGES if s.name in LONG_HISTORY_STAGES and len(long_history) > 1):
        table.append(growth_row(stage, "long history", long_history, list(long_worlds.values()),
                                long_history[-1] / long_history[0]))
    return {"table": table, "worlds": {**{f"{d}d x {s} stores": w for (d, s), w in worlds.items()},
                                       **{f"{d}d x {stores[0]} stores (long history)": w for d, w in long_worlds.items()}}}


def print_table(table: list[dict]) -> None:
    print(f"{'stage':<17}{'axis':<14}{'sizes':<14}{'seconds':<22}{'peak RSS MB':<18}{'b time':>7}{'b mem':>7}{'b work':>7}")
    for r in table:
        flag = "  ← grows faster than its work" if r["super_linear"] else ""
        print(f"{r['stage']:<17}{r['axis']:<14}{'/'.join(map(str, r['sizes'])):<14}"
              f"{' / '.join(f'{s:.1f}' for s in r['seconds']):<22}{' / '.join(f'{m:.0f}' for m in r['peak_rss_mb']):<18}"
              f"{r['time_exponent']:>7.2f}{r['memory_exponent']:>7.2f}{r['work_exponent']:>7.0f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs=3, default=[120, 360, 1080], help="history lengths (≥ 120)")
    parser.add_argument("--stores", type=int, nargs=3, default=[4, 20, 80], help="physical stores (+4 online)")
    parser.add_argument("--long-history", type=int, nargs="+", default=[1080, 3240, 10800],
                        help="history lengths for the backfill and one new day alone, at the fewest stores: up to 10x --days")
    parser.add_argument("--long-history-only", action="store_true", help="just the long-history axis")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.days, args.stores, args.long_history, args.long_history_only)
    print_table(result["table"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
