"""A year's backfill the way a user runs it, against the same work in process.

    .venv/bin/python bench/backfill.py [--rows 2000000] [--days 365] [--json out.json]

Generates ``--days`` of history (``bench/ingest.py``'s generator: a POS and a web export a day) and
backfills it twice, from identical copies of the lake, on a persistent Dagster instance (the SQLite
instance ``sales-analytics demo`` and ``make ui`` configure: ``storage/instance.py``), one run after another:

- in process: reference data, the ingest run, then ``daily_sales`` over each range of touched days
  (a month at most), every run ``execute_in_process`` in this one process (``runner.ingest_and_build``);
- CLI: the same runs as a user launches them from a terminal, each ``dagster job execute`` of the
  code location, with the executor the project configures; each run pays a process start and a
  load of the definitions, as a run the daemon launches does.

Prints both times, their ratio, the fixed cost per run and each side's peak RSS (the CLI side: its
largest run process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from ingest import generate_lake
from measure import measured, own_peak_rss_mb

from sales_analytics.catalog import RAW_ORDER_LINES
from sales_analytics.jobs import daily_sales_job, ingest_job, reference_job
from sales_analytics.partitions import day_ranges, partition_days, range_tags
from sales_analytics.profiles import HOME_ENV, build_resources
from sales_analytics.storage.instance import ensure_instance

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def in_process(home: str) -> dict:
    os.environ[HOME_ENV] = home
    from sales_analytics.definitions import build_defs
    from sales_analytics.runner import ingest_and_build

    with dg.DagsterInstance.from_config(str(ensure_instance(Path(home) / "dagster"))) as instance:
        summary = ingest_and_build(build_defs(build_resources()), instance, console_log_level="ERROR")
    assert all(summary.checks.values()), summary.checks
    return {"runs": len(summary.run_ids), "rows": summary.rows.get("clean/order_lines", 0), "peak_rss_mb": own_peak_rss_mb()}


def cli(home: str) -> dict:
    env = {**os.environ, HOME_ENV: home, "DAGSTER_HOME": str(Path(home) / "dagster")}
    ensure_instance(Path(env["DAGSTER_HOME"]))
    Path(env["DAGSTER_HOME"], "quiet.yaml").write_text(json.dumps(QUIET))  # JSON is YAML
    peaks = [_execute(env, reference_job.name), _execute(env, ingest_job.name)]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        raw = instance.get_latest_materialization_event(RAW_ORDER_LINES).asset_materialization
        ranges = day_ranges(partition_days(list(raw.metadata["touched_partitions"].value)))
    for first, last in ranges:
        peaks.append(_execute(env, daily_sales_job.name, range_tags(first, last)))
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        rows = sum(int(event.asset_materialization.metadata["dagster/row_count"].value)
                   for event in instance.fetch_materializations(dg.AssetKey(["clean", "order_lines"]), limit=10_000).records)
    return {"runs": len(peaks), "rows": rows, "peak_rss_mb": max(peaks)}


def _execute(env: dict[str, str], job: str, tags: dict[str, str] | None = None) -> float:
    """One ``dagster job execute`` run; the peak RSS of its process, in MB."""
    command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "sales_analytics.definitions",
               "-j", job, "-c", str(Path(env["DAGSTER_HOME"], "quiet.yaml")), *(["--tags", json.dumps(tags)] if tags else [])]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read() if process.stderr else ""
    if process.returncode:
        raise RuntimeError(f"dagster job execute -j {job} {tags or ''} failed:\n{error[-3000:]}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        # The embedded profile's data lives in <SALES_ANALYTICS_HOME>/local, where the CLI's code location looks.
        landed = measured(generate_lake, f"{scratch}/first/local", args.rows, args.days)
        shutil.copytree(f"{scratch}/first", f"{scratch}/second")
        results = {"in process": measured(in_process, f"{scratch}/first")}
        started = time.perf_counter()
        results["CLI: dagster job execute"] = {**cli(f"{scratch}/second"), "seconds": time.perf_counter() - started}
    base, cli_side = results["in process"], results["CLI: dagster job execute"]
    assert cli_side["rows"] == base["rows"], results
    print(f"\n{landed['rows']:,} landed lines over {args.days} days, {base['runs']} runs each way\n")
    print(f"{'path':<28}{'seconds':>9}{'x in process':>14}{'peak RSS MB':>13}")
    for name, r in results.items():
        print(f"{name:<28}{r['seconds']:>9.1f}{r['seconds'] / base['seconds']:>14.2f}{r['peak_rss_mb']:>13,.0f}")
    print(f"\nfixed cost of a CLI run: {(cli_side['seconds'] - base['seconds']) / cli_side['runs']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"landed": landed, "days": args.days, "results": results}, indent=2))


if __name__ == "__main__":
    main()
