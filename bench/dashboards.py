"""Dashboard refresh cost against history length: insights and page read a bounded window.

    .venv/bin/python bench/dashboards.py [--days 120,480] [--stores 8] [--products 150] [--json out.json]

For each history length: generate and build the sales reports (not timed), then in fresh
processes measure
- **ours**: the executive dashboard's insights and page assets (KPI deltas, anomalies with
  drivers, movers, three charts), as its scheduled run executes them;
- **baseline**: reading the whole ``daily_sales`` history from the lake into pandas, which is what
  a dashboard tool that queries the full table would start with.
Ours should stay flat as history grows; the baseline grows with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import measure

DASHBOARD = "executive_daily"


def build_history(home: Path, days: int, stores: int, products: int) -> str:
    import dagster as dg

    from sales_analytics.definitions import build_defs
    from sales_analytics.generator import GeneratorConfig, generate
    from sales_analytics.profiles import initialized, local_resources
    from sales_analytics.runner import ingest_and_build

    env = local_resources(home)
    start = dt.date.today() - dt.timedelta(days=days + 1)  # daily partitions end today: history ends yesterday
    with initialized(env["lake"]) as lake:
        generate(lake, GeneratorConfig(days=days, stores=stores, products=products, start=start), progress=False)
    return ingest_and_build(build_defs(env), dg.DagsterInstance.ephemeral()).touched_days[-1]


def refresh_dashboard(home: str, day: str) -> int:
    import dagster as dg

    from sales_analytics.dashboards.assets import AS_OF_TAG, insights_key
    from sales_analytics.dashboards.spec import dashboard_job_name
    from sales_analytics.definitions import build_defs
    from sales_analytics.profiles import local_resources

    defs = build_defs(local_resources(Path(home)))  # as its schedule runs it: the whole job, as of the last day
    result = defs.resolve_job_def(dashboard_job_name(DASHBOARD)).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags={AS_OF_TAG: day})
    assert result.success
    return int(result.asset_value(insights_key(DASHBOARD)).num_rows)


def read_whole_history(home: str) -> int:
    import dagster as dg
    import pandas as pd

    from sales_analytics.profiles import initialized, local_resources
    from sales_analytics.storage.parquet_io import LakeReader, parquet_bytes_to_table

    with initialized(local_resources(Path(home))["lake"]) as lake:
        keys = LakeReader(lake).stored_partitions(dg.AssetKey(["reports", "daily_sales"]), "sale_date").values()
        frame = pd.concat([parquet_bytes_to_table(lake.get_bytes(k)).to_pandas() for k in keys], ignore_index=True)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", default="120,480", help="history lengths, comma-separated")
    parser.add_argument("--stores", type=int, default=8)
    parser.add_argument("--products", type=int, default=150)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for days in (int(d) for d in args.days.split(",")):
        home = Path(tempfile.mkdtemp(prefix=f"bench-dash-{days}-"))
        try:
            last = build_history(home, days, args.stores, args.products)
            ours = measure(refresh_dashboard, str(home), last)
            baseline = measure(read_whole_history, str(home))
        finally:
            shutil.rmtree(home, ignore_errors=True)
        rows.append({"history_days": days, "ours_s": ours.seconds, "ours_rss_mb": ours.peak_rss_mb,
                     "insights": ours.result, "baseline_s": baseline.seconds, "baseline_rss_mb": baseline.peak_rss_mb,
                     "history_rows": baseline.result, "time_x_baseline": ours.seconds / baseline.seconds})
    print(f"{'history days':>12} {'report rows':>12} {'ours s':>8} {'baseline s':>11} {'× baseline':>10} "
          f"{'ours RSS MB':>12} {'baseline RSS MB':>16}")
    for r in rows:
        print(f"{r['history_days']:>12} {r['history_rows']:>12,} {r['ours_s']:>8.2f} {r['baseline_s']:>11.2f} "
              f"{r['time_x_baseline']:>10.2f} {r['ours_rss_mb']:>12.0f} {r['baseline_rss_mb']:>16.0f}")
    first, last_row = rows[0], rows[-1]
    print(f"history ×{last_row['history_days'] / first['history_days']:.1f}: ours ×{last_row['ours_s'] / first['ours_s']:.2f} time, "
          f"baseline ×{last_row['baseline_s'] / first['baseline_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
