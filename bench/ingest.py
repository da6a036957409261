"""Ingestion benchmark: a full backfill of N order lines and a one-file increment, against Polars.

    .venv/bin/python bench/ingest.py [--rows 10000000] [--days 730] [--json out.json]

Generates N order lines as daily CSV files (a POS and a web export per day, with the generator's
late lines, corrections, duplicates and malformed rows) into a local lake, then measures, each in
a fresh process with its own peak RSS:

- baselines: hand-written scripts doing the same work on the same files — typed parse, drop invalid
  rows, latest version per key, date-partitioned Parquet, daily per-store aggregates — the fastest
  we could write, each with its peak RSS: Polars' streaming engine with one global sort by version
  (the first reference), Polars sorting by key and version then ``unique(keep="last")``, and DuckDB
  with typed columns and ``QUALIFY``; each must produce the same lines and report rows, and every
  other stage is compared with the fastest;
- ours, backfill: the real Dagster jobs through the embedded profile, as a run queue with two slots
  runs them — the landing sensors' ingest runs, then clean lake + quarantine + ``daily_store_sales``
  in runs of up to a month of partitions (publishing to the SQL and serving stores is left out, as
  the reference does not do it); every run recorded in the persistent instance ``make ui`` configures,
  with the executor the project configures (in process; the process a launched run adds is
  ``bench/backfill.py``'s measure);
- ours, increment: one new daily file end to end (its sensor's ingest run + the days it touches),
  after a history of one month and after the full history — it must cost the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl
from measure import measured, own_peak_rss_mb

from sales_analytics.catalog import RAW_ORDER_LINES
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ingest.assets import raw_order_lines
from sales_analytics.ingest.raw import pending_objects
from sales_analytics.jobs import daily_sales_job, ingest_job
from sales_analytics.partitions import day_ranges, range_tags
from sales_analytics.profiles import local_resources
from sales_analytics.runner import BuildSummary, collect_run, release_run_memory
from sales_analytics.sensors import MAX_OBJECTS_PER_TICK
from sales_analytics.sources.spec import order_sources
from sales_analytics.storage.instance import ensure_instance
from sales_analytics.storage.lake import LakeResource, ObjectInfo

START = dt.date(2024, 1, 1)
LAKE_ASSETS = [dg.AssetKey(["clean", "order_lines"]), dg.AssetKey(["quarantine", "rejected_order_lines"]),
               dg.AssetKey(["reports", "daily_store_sales"])]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def generate_lake(home: str, rows: int, days: int) -> dict:
    stores = 40
    per_store_day = rows / (days * (stores + 4) * 2.9)  # ~2.9 lines per order incl. weekly/yearly factors
    config = GeneratorConfig(days=days, stores=stores, products=3000, start=START, orders_per_store_day=per_store_day)
    summary = generate(local_resources(Path(home))["lake"], config, progress=True)
    return {"rows": summary.order_rows, "files": len([f for f in summary.files if "/orders/" in f])}


TEXT_COLUMNS = ("order_id", "line_no", "order_ts", "store_id", "channel", "product_id", "customer_id", "quantity",
                "unit_price", "discount", "currency", "status", "updated_at")
KEY = ["order_date", "order_id", "line_no"]


def _order_files(home: str) -> list[str]:
    return sorted(str(p) for p in (Path(home) / "lake" / "landing" / "orders").rglob("*.csv"))


def _typed_valid_lines(home: str) -> pl.LazyFrame:
    """Polars: the export's text typed, rows that do not parse (or sell negative units) dropped."""
    return (
        pl.scan_csv(_order_files(home), schema=dict.fromkeys(TEXT_COLUMNS, pl.Utf8))
        .with_columns(
            pl.col("order_ts").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False),
            pl.col("updated_at").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False),
            pl.col("line_no").cast(pl.Int64, strict=False),
            pl.col("quantity").cast(pl.Int64, strict=False),
            pl.col("unit_price").cast(pl.Float64, strict=False),
            pl.col("discount").cast(pl.Float64, strict=False),
        )
        .filter(pl.all_horizontal(pl.col("order_ts", "updated_at", "line_no", "quantity", "unit_price", "discount").is_not_null())
                & (pl.col("order_id") != "") & (pl.col("quantity") >= 0))
        .with_columns(pl.col("order_ts").dt.date().alias("order_date"))
    )


def _polars_report(out: str) -> dict:
    """The written lines' count and value, and the daily per-store report (orders, units, value)."""
    lines = pl.scan_parquet(f"{out}/**/*.parquet", hive_partitioning=True)
    report = (
        lines.filter(pl.col("status") != "cancelled")
        .with_columns((pl.col("quantity") * pl.col("unit_price")).alias("value"))
        .group_by("order_date", "store_id").agg(pl.col("order_id").n_unique(), pl.col("quantity").sum(), pl.col("value").sum())
    ).collect(engine="streaming")
    totals = lines.select(pl.len(), (pl.col("quantity") * pl.col("unit_price")).sum()).collect()
    return {"rows": totals.item(0, 0), "value": round(totals.item(0, 1), 2), "report_rows": report.height}


def polars_global_sort(home: str, out: str) -> dict:
    """The first reference: Polars' streaming engine, one global sort of every row by version."""
    (_typed_valid_lines(home).sort("updated_at", descending=True).unique(subset=KEY, keep="first")
     .sink_parquet(pl.PartitionBy(out, key="order_date"), mkdir=True))
    return _polars_report(out)


def polars_sort_unique(home: str, out: str) -> dict:
    """Polars sorting by key then version, the last of each key kept: the sort groups each key's versions,
    so no global order by version is needed."""
    (_typed_valid_lines(home).sort([*KEY, "updated_at"]).unique(subset=KEY, keep="last", maintain_order=True)
     .sink_parquet(pl.PartitionBy(out, key="order_date"), mkdir=True))
    return _polars_report(out)


def duckdb_qualify(home: str, out: str) -> dict:
    """DuckDB: typed columns straight from the CSV reader, the latest version per key by ``QUALIFY``."""
    import duckdb

    types = {**dict.fromkeys(TEXT_COLUMNS, "VARCHAR"), "line_no": "BIGINT", "quantity": "BIGINT",
             "unit_price": "DOUBLE", "discount": "DOUBLE"}
    with duckdb.connect() as db:
        db.execute("SET preserve_insertion_order = false")
        db.execute(f"""
            COPY (
                SELECT * EXCLUDE (order_ts, updated_at), order_ts::DATE AS order_date, order_ts, updated_at FROM (
                    SELECT * REPLACE (try_strptime(order_ts, '%Y-%m-%dT%H:%M:%SZ') AS order_ts,
                                      try_strptime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS updated_at)
                    FROM read_csv($files, header = true, columns = $types, ignore_errors = true, store_rejects = false))
                WHERE order_ts IS NOT NULL AND updated_at IS NOT NULL AND line_no IS NOT NULL AND quantity >= 0
                      AND unit_price IS NOT NULL AND discount IS NOT NULL AND order_id <> ''
                QUALIFY row_number() OVER (PARTITION BY order_ts::DATE, order_id, line_no ORDER BY updated_at DESC) = 1
            ) TO '{out}' (FORMAT parquet, PARTITION_BY (order_date))""", {"files": _order_files(home), "types": types})
        rows, value = db.execute(f"SELECT count(*), round(sum(quantity * unit_price), 2) FROM '{out}/**/*.parquet'").fetchone()
        report_rows = db.execute(f"""
            SELECT count(*) FROM (SELECT order_date, store_id, count(DISTINCT order_id), sum(quantity), sum(quantity * unit_price)
                                  FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true)
                                  WHERE status <> 'cancelled' GROUP BY ALL)""").fetchone()[0]
    return {"rows": rows, "value": value, "report_rows": report_rows}


BASELINES = {"baseline: polars global sort": polars_global_sort, "baseline: polars sort + unique": polars_sort_unique,
             "baseline: duckdb typed + qualify": duckdb_qualify}


def ours_backfill(home: str, concurrent_runs: int = 2) -> dict:
    """As the platform runs a backfill under a run queue with ``concurrent_runs`` slots: the landing
    sensors' ingest runs (per source, up to MAX_OBJECTS_PER_TICK objects each), then the touched
    days in ranges of up to a month. Each run executes in a worker process of its slot."""
    batches = _sensor_batches(local_resources(Path(home))["lake"])
    _instance(home).dispose()  # its databases created once, before two processes open them
    with ProcessPoolExecutor(max_workers=concurrent_runs, mp_context=mp.get_context("spawn")) as pool:
        ingested = list(pool.map(_run_ingest, [home] * len(batches), batches))
        ranges = day_ranges(sorted(set().union(*(r["touched_days"] for r in ingested))))
        built = list(pool.map(_run_days, [home] * concurrent_runs, [ranges[i::concurrent_runs] for i in range(concurrent_runs)]))
    peaks = sorted((r["peak_rss_mb"] for r in ingested), reverse=True)
    return {"rows": sum(b["rows"] for b in built), "report_rows": sum(b["report_rows"] for b in built),
            "runs": len(batches) + len(ranges),
            # the slots together, at most: the sum of the largest worker peaks of either phase
            "peak_rss_mb": max(sum(peaks[:concurrent_runs]), sum(b["peak_rss_mb"] for b in built))}


def _sensor_batches(lake: LakeResource) -> list[list[str]]:
    """Pending objects in the batches the landing sensors would request, largest first."""
    by_source: dict[str, list[ObjectInfo]] = {}
    for spec, info in pending_objects(lake, order_sources()):
        by_source.setdefault(spec.name, []).append(info)
    batches = [infos[i:i + MAX_OBJECTS_PER_TICK] for infos in by_source.values()
               for i in range(0, len(infos), MAX_OBJECTS_PER_TICK)]
    return [[o.key for o in batch] for batch in sorted(batches, key=lambda b: -sum(o.size for o in b))]


def _instance(home: str) -> dg.DagsterInstance:
    """The slots' shared instance: runs, events and partition status on disk, as a deployment keeps them."""
    return dg.DagsterInstance.from_config(str(ensure_instance(Path(home) / "dagster")))


def _run_ingest(home: str, objects: list[str]) -> dict:
    with _instance(home) as instance:
        result = _defs(home).resolve_job_def(ingest_job.name).execute_in_process(
            instance=instance, run_config={"ops": {raw_order_lines.op.name: {"config": {"objects": objects}}}, **QUIET})
    raw = next(e.materialization for e in result.get_asset_materialization_events() if e.asset_key == RAW_ORDER_LINES)
    return {"touched_days": set(raw.metadata["touched_partitions"].value), "peak_rss_mb": own_peak_rss_mb()}


def _run_days(home: str, ranges: list[tuple[str, str]]) -> dict:
    """The given day ranges, one run each."""
    job = _defs(home).resolve_job_def(daily_sales_job.name)
    summary = BuildSummary()
    with _instance(home) as instance:
        # What lives across runs (imports, definitions, the instance) is not the runs' garbage: frozen, each run's
        # collection walks only what that run made, as a run in its own process never collects at all.
        gc.collect()
        gc.freeze()
        for first, last in ranges:
            collect_run(job.execute_in_process(instance=instance, tags=range_tags(first, last), asset_selection=LAKE_ASSETS,
                                               run_config=QUIET), summary)
            release_run_memory()
    assert all(summary.checks.values()), summary.checks
    return {"rows": summary.rows.get("clean/order_lines", 0), "report_rows": summary.rows.get("reports/daily_store_sales", 0),
            "peak_rss_mb": own_peak_rss_mb()}


def _defs(home: str) -> dg.Definitions:
    os.environ["SALES_ANALYTICS_HOME"] = home
    from sales_analytics.definitions import build_defs

    return build_defs(local_resources(Path(home)))


def ours_increment(home: str, first_day: str, repeats: int = 3) -> dict:
    """One more daily export (a copy of the last day's, moved on), ingested as its landing sensor's
    run does (the object named), then the days it touches rebuilt; ``repeats`` days in a row, the
    median reported (the first run in a process pays one-off warm-up costs)."""
    from sales_analytics.runner import ingest_and_build

    lake = local_resources(Path(home))["lake"]
    defs = _defs(home)
    seconds = []
    for offset in range(repeats):
        key, rows = land_next_day(lake, (dt.date.fromisoformat(first_day) + dt.timedelta(days=offset)).isoformat())
        with _instance(home) as instance:
            start = time.perf_counter()
            ingest_and_build(defs, instance, daily_assets=LAKE_ASSETS, objects=[key])
            seconds.append(time.perf_counter() - start)
    return {"rows": rows, "increment_seconds": statistics.median(seconds), "all_seconds": seconds}


def land_next_day(lake: LakeResource, day: str) -> tuple[str, int]:
    """The newest POS export, moved on to ``day`` and landed as that day's file; its key and lines."""
    last = max(o.key for o in lake.list("landing/orders/pos/"))
    text = lake.get_bytes(last).decode().replace(last.split("/")[3], day)
    key = f"landing/orders/pos/{day}/pos_orders_{day}.csv"
    lake.put_bytes(key, text.encode())
    return key, text.count("\n") - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as full, tempfile.TemporaryDirectory() as month:
        landed = measured(generate_lake, full, args.rows, args.days)
        csv_mb = sum(p.stat().st_size for p in Path(full, "lake", "landing", "orders").rglob("*.csv")) / 2**20
        measured(generate_lake, month, args.rows * 31 // args.days, 31)
        for name, baseline in BASELINES.items():
            results[name] = measured(baseline, full, str(Path(full) / "baseline_out"))
            shutil.rmtree(Path(full) / "baseline_out", ignore_errors=True)
        outputs = {name: (results[name]["rows"], results[name]["value"], results[name]["report_rows"]) for name in BASELINES}
        assert len(set(outputs.values())) == 1, f"the baselines disagree: {outputs}"
        results["ours: full backfill"] = measured(ours_backfill, full)
        measured(ours_backfill, month)
        next_day = (START + dt.timedelta(days=args.days)).isoformat()
        results["ours: one file, 1 month history"] = measured(ours_increment, month, (START + dt.timedelta(days=31)).isoformat())
        results[f"ours: one file, {args.days} days history"] = measured(ours_increment, full, next_day)
    fastest = min(BASELINES, key=lambda name: results[name]["seconds"])
    base = results[fastest]["seconds"]
    print(f"\n{landed['rows']:,} landed lines in {landed['files']} CSV files ({csv_mb:,.0f} MB); fastest baseline: {fastest}\n")
    print(f"{'stage':<34}{'seconds':>9}{'x fastest':>10}{'rows/s':>12}{'peak RSS MB':>13}")
    for name, r in results.items():
        seconds = r.get("increment_seconds", r["seconds"])
        print(f"{name:<34}{seconds:>9.2f}{seconds / base:>10.2f}{r['rows'] / seconds:>12,.0f}{r['peak_rss_mb']:>13,.0f}")
    one, full_history = (results[k].get("increment_seconds") for k in list(results)[-2:])
    print(f"\nincrement cost, full history vs one month: {full_history / one:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"landed": landed, "csv_mb": csv_mb, "fastest_baseline": fastest, "results": results},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
