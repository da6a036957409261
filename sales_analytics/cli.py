"""``sales-analytics``: generate sample data, run the whole graph, manage the local stack."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sales_analytics.profiles import active_profile, build_resources, data_home, initialized
from sales_analytics.storage.instance import ensure_instance

if TYPE_CHECKING:
    from sales_analytics.runner import MissionSummary


def _generate(args: argparse.Namespace) -> None:
    from sales_analytics.generator import GeneratorConfig, generate

    config = GeneratorConfig(days=args.days, stores=args.stores, products=args.products, seed=args.seed,
                             start=dt.date.fromisoformat(args.start))
    with initialized(build_resources()["lake"]) as lake:
        summary = generate(lake, config, progress=not args.quiet)
        landing = lake.uri("landing")
    print(f"generated {summary.order_rows:,} order rows in {len(summary.files)} files "
          f"({summary.first_day}..{summary.last_day}) under {landing}")
    print(f"  planted: {summary.late_rows} late, {summary.correction_rows} corrections, "
          f"{summary.duplicate_rows} duplicates, {summary.malformed_rows} malformed rows")


# The demo's model: two-week forecasts, backtested on two windows, on the four months it generates
# (training needs 56 days of history before each backtest origin).
DEMO_DAYS = 120
DEMO_MODEL_CONFIG = {"history_days": 365, "horizon": 14, "backtest_windows": 2}


def _demo(args: argparse.Namespace) -> None:
    import dagster as dg

    from sales_analytics.catalog import LANDING_QUARANTINE, RAW_ORDER_LINES
    from sales_analytics.dashboards.assets import page_url
    from sales_analytics.runner import build_mission

    started = time.monotonic()
    _generate(args)
    _ensure_dagster_home()
    from sales_analytics.definitions import defs

    resources = build_resources()
    with dg.DagsterInstance.get() as instance, initialized(resources["lake"]) as lake:
        try:
            mission = build_mission(defs, instance, lake, DEMO_MODEL_CONFIG)
        except RuntimeError as err:
            sys.exit(f"demo: {err}")
        lake_uri = lake.uri("clean")
    with initialized(resources["report_db"]) as report_db:
        report_url = report_db.engine().url.render_as_string(hide_password=True)
    summary = mission.build
    print(f"\nbuilt profile '{active_profile()}' in {time.monotonic() - started:.1f}s "
          f"({len(summary.run_ids)} runs, {len(summary.touched_days)} order dates, {len(mission.weeks)} complete weeks)")
    for asset, partitions in sorted(summary.partitions.items()):
        print(f"  {asset:<40} {partitions:>4} materializations  {summary.rows.get(asset, 0):>9,} rows")
    rows, counts = summary.rows, summary.counts
    print(f"  reconciled: {rows.get(RAW_ORDER_LINES.to_user_string(), 0):,} landed = {rows.get('clean/order_lines', 0):,} clean + "
          f"{rows.get(LANDING_QUARANTINE.to_user_string(), 0) + counts.get('rows_rejected', 0):,} quarantined + "
          f"{counts.get('duplicates_collapsed', 0):,} duplicates collapsed")
    failed = [name for name, ok in summary.checks.items() if not ok]
    print(f"  checks: {len(summary.checks) - len(failed)} passed, {len(failed)} failed {failed or ''}")
    for line in _ml_lines(mission):
        print(f"  {line}")
    for name, state in mission.dashboards.items():
        print(f"  dashboard {name:<20} {page_url(name) if state == 'built' else state}")
    print(f"  lake:      {lake_uri}")
    print(f"  report DB: {report_url}")
    print(f"  Dagster runs recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}: `make ui` shows them")
    print("  open the dashboards: SALES_ANALYTICS_API_KEYS=<a key of 16+ characters> make serve")
    if "failed" in mission.dashboards.values():
        sys.exit(1)


def _ml_lines(mission: MissionSummary) -> list[str]:
    """The models' figures, each against what it must beat."""
    demand, sentiment, accuracy = mission.demand_model, mission.sentiment_model, mission.forecast_accuracy
    return [
        (f"demand model {demand['version']}: backtest WAPE {demand['model']:.3f} vs seasonal naive {demand['seasonal_naive']:.3f}, "
         f"exponential smoothing {demand['exponential_smoothing']:.3f}; {'promoted' if demand['promoted'] else 'not promoted'} "
         f"({demand['reason']})"),
        f"forecast accuracy: WAPE {min(accuracy.values()):.3f}-{max(accuracy.values()):.3f} on the last {len(accuracy)} days' actuals",
        (f"sentiment model {sentiment['version']}: macro-F1 {sentiment['model']:.3f} vs lexicon {sentiment['lexicon']:.3f} on "
         f"held-out reviews; {'promoted' if sentiment['promoted'] else 'not promoted'}"),
        (f"receipts: {mission.receipts.get('accepted', 0)} accepted into the facts, {mission.receipts.get('review', 0)} in the "
         f"review queue"),
    ]


def _ensure_dagster_home() -> None:
    """The instance ``dagster dev`` uses too (README), so demo runs show up in the UI."""
    ensure_instance(Path(os.environ.setdefault("DAGSTER_HOME", str(data_home() / "dagster"))))


def _stack(args: argparse.Namespace) -> None:
    from sales_analytics import stack

    try:
        if args.action == "start":
            started = stack.start()
            print(f"started: {', '.join(started) or 'nothing (already running)'}")
        elif args.action == "stop":
            stack.stop()
        for service, state in stack.status().items():
            print(f"{service:<10} {state}")
    except stack.StackError as err:
        sys.exit(f"stack: {err}")


def _serve(args: argparse.Namespace) -> None:
    """The service (predictions, report data, dashboards) against the active profile; keys from
    SALES_ANALYTICS_API_KEYS, requests a second per key from SALES_ANALYTICS_API_RATE_LIMIT, origins
    allowed cross-origin from SALES_ANALYTICS_CORS_ORIGINS (none by default)."""
    import uvicorn

    from sales_analytics.service.app import create_app
    from sales_analytics.service.auth import DEFAULT_RATE_PER_KEY

    keys = _env_list("SALES_ANALYTICS_API_KEYS")
    resources = build_resources()
    with (initialized(resources["lake"]) as lake, initialized(resources["report_db"]) as report_db,
          initialized(resources["serving_store"]) as serving_store):
        app = create_app(lake, keys, report_db=report_db, serving_store=serving_store,
                         rate_per_key=float(os.environ.get("SALES_ANALYTICS_API_RATE_LIMIT", DEFAULT_RATE_PER_KEY)),
                         cors_origins=_env_list("SALES_ANALYTICS_CORS_ORIGINS"))
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")


def _env_list(name: str) -> list[str]:
    """A comma-separated environment variable's non-empty items."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sales-analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, help_text, days in (("generate", _generate, "write sample data to the landing zone", 60),
                                           ("demo", _demo, "generate sample data and build the whole mission on it", DEMO_DAYS)):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--days", type=int, default=days)
        command.add_argument("--stores", type=int, default=8)
        command.add_argument("--products", type=int, default=120)
        command.add_argument("--seed", type=int, default=7)
        command.add_argument("--start", default="2026-01-01", help="first order date (YYYY-MM-DD)")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        command.set_defaults(handler=handler)
    stack_command = commands.add_parser("stack", help="start, stop or check the local `stack` servers")
    stack_command.add_argument("action", choices=["start", "stop", "status"])
    stack_command.set_defaults(handler=_stack)
    serve_command = commands.add_parser("serve", help="run the service (predictions, report data, dashboards) against the active profile")
    serve_command.add_argument("--host", default="127.0.0.1")
    serve_command.add_argument("--port", type=int, default=8080)
    serve_command.set_defaults(handler=_serve)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
