"""Benchmark of the first slice on the embedded profile: ingest, clean, report.

Each stage runs in a fresh process so its peak RSS is its own. Ratios are against a baseline
measured in the same run: reading the same landed CSVs with pyarrow and writing them back as
Parquet (the bare I/O any ingestion must pay). A second pass cleans one day after 4x the history
to show per-partition cost does not grow with history.

    .venv/bin/python bench/bench_slice.py [--days 60] [--stores 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import tempfile
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from measure import measure

# Imported here, not in the stages, so import time is not counted against any stage.
from sales_analytics.generator import GeneratorConfig
from sales_analytics.generator import generate as run_generator
from sales_analytics.ingest.raw import ingest_object, pending_objects, read_day_shards
from sales_analytics.lake.order_lines import clean_day
from sales_analytics.profiles import local_resources
from sales_analytics.reports.daily_store_sales import compute_daily_store_sales
from sales_analytics.sources.spec import file_sources, order_sources
from sales_analytics.storage.lake import LakeResource


def _lake(home: str) -> LakeResource:
    return local_resources(Path(home))["lake"]


def generate(home: str, days: int, stores: int) -> int:
    return run_generator(_lake(home), GeneratorConfig(days=days, stores=stores, products=300), progress=False).order_rows


def baseline_csv_to_parquet(home: str) -> int:
    lake, rows = _lake(home), 0
    for info in lake.list("landing/orders/"):
        table = pacsv.read_csv(io.BytesIO(lake.get_bytes(info.key)))
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        rows += table.num_rows
    return rows


def ingest(home: str) -> int:
    lake = _lake(home)
    return sum(ingest_object(lake, s, i).rows for s, i in list(pending_objects(lake, order_sources())))


def clean_and_report(home: str, days: list[str]) -> int:
    specs = {s.name: s for s in file_sources()}
    lake, rows = _lake(home), 0
    for day in days:
        cleaned = clean_day(read_day_shards(lake, day), dt.date.fromisoformat(day), specs)
        compute_daily_store_sales(cleaned.lines)
        rows += cleaned.rows_in
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as short, tempfile.TemporaryDirectory() as long:
        landed = measure(generate, short, args.days, args.stores).result
        all_days = [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
        for name, fn, fn_args in (("baseline: csv→parquet", baseline_csv_to_parquet, (short,)),
                                  ("ingest landing→raw", ingest, (short,)),
                                  ("clean + report, all days", clean_and_report, (short, all_days)),
                                  ("clean + report, one day", clean_and_report, (short, all_days[-8:-7]))):
            stage = measure(fn, *fn_args)
            results[name] = {"seconds": stage.seconds, "peak_rss_mb": stage.peak_rss_mb, "rows": stage.result}
        measure(generate, long, args.days * 4, args.stores)
        measure(ingest, long)
        stage = measure(clean_and_report, long, all_days[-8:-7])
        results["clean + report, one day, 4x history"] = {"seconds": stage.seconds, "peak_rss_mb": stage.peak_rss_mb,
                                                          "rows": stage.result}
    base = results["baseline: csv→parquet"]["seconds"]
    print(f"{landed:,} landed rows, {args.days} days, {args.stores} stores\n")
    print(f"{'stage':<38}{'seconds':>9}{'x baseline':>12}{'rows/s':>12}{'peak RSS MB':>13}")
    for name, r in results.items():
        print(f"{name:<38}{r['seconds']:>9.2f}{r['seconds'] / base:>12.2f}{r['rows'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>13.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
