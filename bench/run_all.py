"""The whole benchmark suite in one command: one table, one JSON file.

    .venv/bin/pip install -e '.[bench]'      # Polars, DuckDB and statsforecast, for the baselines
    .venv/bin/python bench/run_all.py [--quick] [--json bench/results.json]

Runs each benchmark script in turn, in its own process, with nothing else running (each prints
its own detailed table as it goes), then prints one summary: every stage with its time or latency,
its ratio against the baseline measured in the same run, and its peak RSS; and the cost-growth
exponents. ``--quick`` runs every suite at a small size, to check the suite works (minutes, not the
half hour of the full sizes); its numbers are not the ones to quote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Suite:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    summarise: Callable[[object], list[dict]]


def _row(suite: str, stage: str, value: str, ratio: float | None, rss: float | None) -> dict:
    return {"suite": suite, "stage": stage, "value": value, "x_baseline": ratio, "peak_rss_mb": rss}


def _ingestion(data: dict) -> list[dict]:
    results = data["results"]
    base = results[data["fastest_baseline"]]["seconds"]
    rows = []
    for stage, r in results.items():
        seconds = r.get("increment_seconds", r["seconds"])
        rows.append(_row("ingestion", stage, f"{seconds:.2f} s, {r['rows'] / seconds:,.0f} rows/s",
                         seconds / base if "increment_seconds" not in r else None, r["peak_rss_mb"]))
    return rows


def _backfill(data: dict) -> list[dict]:
    base = data["results"]["in process"]["seconds"]
    rows = []
    for path, r in data["results"].items():
        rows.append(_row("backfill", f"{data['days']} days, {r['runs']} runs: {path}", f"{r['seconds']:.1f} s",
                         r["seconds"] / base, r["peak_rss_mb"]))
        if "reports_ready_seconds" in r:
            ready = r["reports_ready_seconds"]
            rows.append(_row("backfill", f"{path}: reports ready (its last run ended)", f"{ready:.1f} s", ready / base, None))
    return rows


def _new_file(data: dict) -> list[dict]:
    shortest = data[min(data, key=int)]["median_seconds"]
    return [_row("new file via the daemon", f"after {days} days of history",
                 f"its day in {r['median_seconds']:.1f} s, its late days in {r['median_all_days_seconds']:.1f} s",
                 r["median_seconds"] / shortest, None) for days, r in data.items()]


def _lake_to_reports(data: dict) -> list[dict]:
    base = data["baseline: csv→parquet"]["seconds"]
    return [_row("lake → reports", stage, f"{r['seconds']:.2f} s, {r['rows'] / r['seconds']:,.0f} rows/s",
                 r["seconds"] / base, r["peak_rss_mb"]) for stage, r in data.items()]


def _forecasting(data: list[dict]) -> list[dict]:
    rows = []
    for size in data:
        seconds, wape = size["seconds"], size["wape"]
        for method, label in (("auto_ets", "baseline: AutoETS"), ("seasonal_naive", "seasonal naive"), ("model", "ours")):
            kind = "weekly series" if "weeks" in size else "daily series"
            rows.append(_row("forecasting", f"{size['series']:,} {kind}: {label}",
                             f"{seconds[method]:.1f} s, WAPE {wape[method]:.3f}", seconds[method] / seconds["auto_ets"],
                             size["peak_rss_mb"] if method == "model" else None))
    return rows


def _dashboards(data: list[dict]) -> list[dict]:
    rows = []
    for r in data:
        rows.append(_row("dashboards", f"{r['history_days']} days: baseline, read the history",
                         f"{r['baseline_s']:.2f} s", 1.0, r["baseline_rss_mb"]))
        rows.append(_row("dashboards", f"{r['history_days']} days: refresh", f"{r['ours_s']:.2f} s",
                         r["time_x_baseline"], r["ours_rss_mb"]))
    return rows


def _api(data: list[dict]) -> list[dict]:
    return [_row("API", f"{r['endpoint']} @ {r['achieved_rate']:.0f}/s",
                 f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {sum(r['errors'].values())} errors",
                 r["p99_x_baseline"], r["server_peak_rss_mb"]) for r in data]


def _growth(data: dict) -> list[dict]:
    return [_row("cost growth", f"{r['stage']} × {r['axis']} {'/'.join(map(str, r['sizes']))}",
                 f"time ~ n^{r['time_exponent']:.2f}, memory ~ n^{r['memory_exponent']:.2f} (work n^{r['work_exponent']:.0f})"
                 + (" FASTER THAN ITS WORK" if r["super_linear"] else ""), None, max(r["peak_rss_mb"]))
            for r in data["table"]]


SUITES = [
    Suite("ingestion", "ingest.py", [], ["--rows", "200000", "--days", "60"], _ingestion),
    Suite("backfill", "backfill.py", [], ["--rows", "100000", "--days", "60"], _backfill),
    Suite("new file via the daemon", "new_file.py", [], ["--days", "10", "40", "--files", "2", "--lines-per-day", "2000"],
          _new_file),
    Suite("lake → reports", "bench_slice.py", [], ["--days", "14", "--stores", "4"], _lake_to_reports),
    Suite("forecasting", "forecast.py", ["--sizes", "1000", "--weekly", "300"], ["--sizes", "200", "--weekly", "60"], _forecasting),
    Suite("dashboards", "dashboards.py", ["--days", "120,960"], ["--days", "30,60", "--products", "40"], _dashboards),
    Suite("API", "api.py", ["--rate", "100", "--seconds", "30"], ["--days", "20", "--stores", "2", "--seconds", "3"], _api),
    Suite("cost growth", "growth.py", [], ["--days", "120", "130", "140", "--stores", "2", "3", "4"], _growth),
]


def run_suite(suite: Suite, quick: bool, scratch: Path) -> tuple[object, float]:
    """The suite's results and seconds; a suite that fails raises CalledProcessError (its output is above)."""
    out = scratch / f"{suite.script}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(BENCH / suite.script), *(suite.quick if quick else suite.full), "--json", str(out)],
                   check=True, cwd=BENCH.parent)
    return json.loads(out.read_text()), time.perf_counter() - started


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def print_summary(rows: list[dict]) -> None:
    width = max(len(r["stage"]) for r in rows) + 2
    print(f"\n{'suite':<16}{'stage':<{width}}{'× baseline':>11}{'peak RSS MB':>13}  measured")
    for r in rows:
        ratio = f"{r['x_baseline']:.2f}" if r["x_baseline"] is not None else "—"
        rss = f"{r['peak_rss_mb']:,.0f}" if r["peak_rss_mb"] is not None else "—"
        print(f"{r['suite']:<16}{r['stage']:<{width}}{ratio:>11}{rss:>13}  {r['value']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every suite at a small size: checks the suite, not the numbers")
    parser.add_argument("--only", nargs="+", choices=[s.script.removesuffix(".py") for s in SUITES], help="run just these")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json")
    args = parser.parse_args()
    chosen = [s for s in SUITES if not args.only or s.script.removesuffix(".py") in args.only]
    report = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "quick": args.quick, "machine": machine(),
              "suites": {}, "summary": []}
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for suite in chosen:  # the file is rewritten after each suite: a late failure keeps the earlier results
            print(f"\n=== {suite.name} ({suite.script}) ===", flush=True)
            try:
                data, seconds = run_suite(suite, args.quick, Path(scratch))
            except subprocess.CalledProcessError as error:
                failed.append(suite.name)
                report["suites"][suite.name] = {"failed": f"exit status {error.returncode}"}
            else:
                report["suites"][suite.name] = {"seconds": seconds, "results": data}
                report["summary"] += suite.summarise(data)
            args.json.write_text(json.dumps(report, indent=2, default=str))
    if report["summary"]:
        print_summary(report["summary"])
    print(f"\nwrote {args.json}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)} (their output is above)")


if __name__ == "__main__":
    main()
