"""One new daily export, end to end through the real daemon, after a short and a long history.

    .venv/bin/python bench/new_file.py [--lines-per-day 15000] [--days 31 730] [--files 3] [--json out.json]

For each history length: ``bench/ingest.py``'s generator lands that many days (a POS and a web export a
day), they are backfilled in process onto a persistent Dagster instance (the SQLite instance
``sales-analytics demo`` and ``make ui`` configure), then ``dagster-daemon run`` starts on that instance
with the project's workspace, as a deployment runs it. The weekly automation is stopped first: after a
backfill it would build every week at once, which is not the steady state measured here.

Then ``--files`` times, one after another: the next day's POS export lands in the lake, and the clock
runs until the run that rebuilds that day has succeeded — the landing sensor's tick, the run queue, the
run's process start, the ingest and the day's clean lines, curated series, reports, SQL and serving copies
(``ingest_and_build``) — and then until the days its late lines touch are rebuilt too (the touched-days
sensor's ``daily_sales`` runs). It prints the medians, each hop's and the ratio of the long history's
median to the short one's (flat: about 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from ingest import land_next_day
from measure import measured

from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.partitions import RANGE_END_TAG, RANGE_START_TAG
from sales_analytics.profiles import HOME_ENV, build_resources
from sales_analytics.storage.instance import ensure_instance

REPO = Path(__file__).resolve().parents[1]
STOPPED = ["weekly_reports_automation"]
TIMEOUT = 300.0
IDLE_SECONDS = 20  # four looks of the daemon at its sensors without a run


def history_start(days: int, files: int) -> dt.date:
    """The history ends ``files`` days ago, so the new files are dated up to yesterday: the days the landing
    sensors watch (an older folder is only swept, a month of folders per tick)."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days + files)


def backfilled_home(home: str, start: dt.date, days: int, lines_per_day: int) -> dict:
    """``days`` of generated history from ``start``, landed and backfilled in process onto the home's instance."""
    os.environ[HOME_ENV] = home
    stores = 40
    config = GeneratorConfig(days=days, stores=stores, products=3000, start=start,
                             orders_per_store_day=lines_per_day / ((stores + 4) * 2 * 2.9))
    resources = build_resources("local")  # the home's, as the daemon's code location builds them
    landed = generate(resources["lake"], config, progress=False)
    from sales_analytics.definitions import build_defs
    from sales_analytics.runner import ingest_and_build

    with dg.DagsterInstance.from_config(str(ensure_instance(Path(home) / "dagster"))) as instance:
        summary = ingest_and_build(build_defs(resources), instance, console_log_level="ERROR")
    assert all(summary.checks.values()), summary.checks
    return {"rows": landed.order_rows, "runs": len(summary.run_ids)}


def new_files(home: str, start: dt.date, days: int, files: int) -> list[dict]:
    """Start the daemon on the backfilled home, land ``files`` new days one after another, time each."""
    os.environ[HOME_ENV] = home
    env = {**os.environ, "DAGSTER_HOME": str(Path(home) / "dagster")}
    for name in STOPPED:
        subprocess.run([sys.executable, "-m", "dagster", "sensor", "stop", "-w", "workspace.yaml", name], cwd=REPO, env=env,
                       check=True, capture_output=True)
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    lake = build_resources("local")["lake"]
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            _wait_for_daemon(instance)
            timings = []
            for offset in range(files):
                day = (start + dt.timedelta(days=days + offset)).isoformat()
                landed_at = time.time()
                land_next_day(lake, day)
                timings.append(_end_to_end(instance, day, landed_at))
            return timings
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def _wait_for_daemon(instance: dg.DagsterInstance) -> None:
    """Until the daemon is running and idle: on a fresh start its sensors have no cursors yet, so they ask again
    for the files in their windows and the reference snapshots; a file landed before that is done would time the
    start-up, not a new file."""
    deadline, idle_since = time.monotonic() + TIMEOUT, None
    while time.monotonic() < deadline:
        busy = instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                                               dg.DagsterRunStatus.STARTED]))
        if "SENSOR" not in instance.get_daemon_heartbeats() or busy:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_SECONDS:
            return
        time.sleep(1)
    raise TimeoutError(f"dagster-daemon was not up and idle within {TIMEOUT:.0f} s")


def _end_to_end(instance: dg.DagsterInstance, day: str, landed_at: float) -> dict:
    """Seconds from landing to the run that rebuilt ``day`` succeeding, with its hops; then, once the runs the
    file started are over (the days its late lines touch), the seconds to the last of them."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        runs = _runs_since(instance, landed_at)
        rebuilt = [r for r in runs if r.dagster_run.tags.get(RANGE_START_TAG, "") <= day <= r.dagster_run.tags.get(RANGE_END_TAG, "")]
        if rebuilt and rebuilt[-1].dagster_run.status == dg.DagsterRunStatus.SUCCESS:
            while any(not r.dagster_run.is_finished for r in runs) and time.monotonic() < deadline:
                time.sleep(0.2)
                runs = _runs_since(instance, landed_at)
            twice = [r for r in runs if r.dagster_run.tags.get(RANGE_START_TAG, "") <= day <= r.dagster_run.tags.get(RANGE_END_TAG, "")]
            assert len(twice) == 1, f"{day} was rebuilt by {len(twice)} runs: {[r.dagster_run.job_name for r in twice]}"
            return {**_hops(landed_at, rebuilt[-1]), "runs": [r.dagster_run.job_name for r in runs],
                    "all_days_seconds": max(r.end_time or time.time() for r in runs) - landed_at}
        if rebuilt and rebuilt[-1].dagster_run.is_finished:
            raise RuntimeError(f"the run rebuilding {day} ended {rebuilt[-1].dagster_run.status}")
        time.sleep(0.2)
    raise TimeoutError(f"no run rebuilt {day} within {TIMEOUT:.0f} s of its file landing")


def _runs_since(instance: dg.DagsterInstance, landed_at: float) -> list[dg.RunRecord]:
    """The runs created after the file landed, oldest first."""
    records = instance.get_run_records(dg.RunsFilter(job_name=None, created_after=dt.datetime.fromtimestamp(landed_at, dt.UTC)))
    return sorted(records, key=lambda r: r.create_timestamp)


def _hops(landed_at: float, run: dg.RunRecord) -> dict:
    marks = {"landed": landed_at, "run queued": run.create_timestamp.timestamp(), "run started": run.start_time,
             "run ended": run.end_time}
    names = list(marks)
    return {"seconds": marks["run ended"] - landed_at, "job": run.dagster_run.job_name,
            "hops": {f"{a} -> {b}": marks[b] - marks[a] for a, b in itertools.pairwise(names)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines-per-day", type=int, default=15_000)
    parser.add_argument("--days", type=int, nargs="+", default=[31, 730])
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for days in args.days:
        home = tempfile.mkdtemp(prefix=f"new_file_{days}_")
        try:
            start = history_start(days, args.files)
            history = measured(backfilled_home, home, start, days, args.lines_per_day)
            timings = new_files(home, start, days, args.files)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        median = statistics.median(t["seconds"] for t in timings)
        hops = {hop: statistics.median(t["hops"][hop] for t in timings) for hop in timings[0]["hops"]}
        late = statistics.median(t["all_days_seconds"] for t in timings)
        results[days] = {"history_rows": history["rows"], "backfill_seconds": history["seconds"], "median_seconds": median,
                         "all_seconds": [t["seconds"] for t in timings], "median_hops": hops,
                         "median_all_days_seconds": late, "runs": [t["runs"] for t in timings]}
        print(f"\n{days} days of history ({history['rows']:,} lines, backfilled in {history['seconds']:.0f} s): "
              f"a new file's day rebuilt {median:.1f} s after it landed (median of "
              f"{[round(t['seconds'], 1) for t in timings]}), the days its late lines touch {late:.1f} s after")
        for hop, seconds in hops.items():
            print(f"  {hop:<34}{seconds:>6.1f} s")
    if len(results) > 1:
        short, long = results[min(results)]["median_seconds"], results[max(results)]["median_seconds"]
        print(f"\nafter {max(results)} days vs {min(results)} days of history: {long / short:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
