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
import multiprocessing as mp
import resource
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Imported here, not in the stages, so import time is not counted against any stage.
from sales_analytics.generator import GeneratorConfig
from sales_analytics.generator import generate as run_generator
from sales_analytics.ingest.raw import ingest_object, pending_objects, read_day_shards
from sales_analytics.lake.order_lines import clean_day
from sales_analytics.profiles import local_resources
from sales_analytics.reports.daily_store_sales import compute_daily_store_sales
from sales_analytics.sources.spec import file_sources
from sales_analytics.storage.lake import LakeResource


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(fn: Callable[..., int], *args: object) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, rows) of fn(*args) run in a fresh process."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_timed, fn, *args).result()


def _timed(fn: Callable[..., int], *args: object) -> tuple[float, float, int]:
    start = time.perf_counter()
    rows = fn(*args)
    return time.perf_counter() - start, _peak_rss_mb(), rows


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
    return sum(ingest_object(lake, s, i).rows for s, i in list(pending_objects(lake, file_sources())))


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
        _, _, landed = _in_child(generate, short, args.days, args.stores)
        all_days = [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
        for name, fn, fn_args in (("baseline: csv→parquet", baseline_csv_to_parquet, (short,)),
                                  ("ingest landing→raw", ingest, (short,)),
                                  ("clean + report, all days", clean_and_report, (short, all_days)),
                                  ("clean + report, one day", clean_and_report, (short, all_days[-8:-7]))):
            seconds, rss, rows = _in_child(fn, *fn_args)
            results[name] = {"seconds": seconds, "peak_rss_mb": rss, "rows": rows}
        _in_child(generate, long, args.days * 4, args.stores)
        _in_child(ingest, long)
        seconds, rss, rows = _in_child(clean_and_report, long, all_days[-8:-7])
        results["clean + report, one day, 4x history"] = {"seconds": seconds, "peak_rss_mb": rss, "rows": rows}
    base = results["baseline: csv→parquet"]["seconds"]
    print(f"{landed:,} landed rows, {args.days} days, {args.stores} stores\n")
    print(f"{'stage':<38}{'seconds':>9}{'x baseline':>12}{'rows/s':>12}{'peak RSS MB':>13}")
    for name, r in results.items():
        print(f"{name:<38}{r['seconds']:>9.2f}{r['seconds'] / base:>12.2f}{r['rows'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>13.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
