"""A year's backfill the ways a user runs it, against the same work in process.

    .venv/bin/python bench/backfill.py [--rows 2000000] [--days 365] [--json out.json]

Generates ``--days`` of history (``bench/ingest.py``'s generator: a POS and a web export a day) and
backfills it twice, from identical copies of the lake, on a persistent Dagster instance (the SQLite
instance ``sales-analytics demo`` and ``make ui`` configure: ``storage/instance.py``), one run after another:

- in process: reference data, the ingest run, then ``daily_sales`` over each range of touched days
  (a month at most), every run ``execute_in_process`` in this one process (``runner.ingest_and_build``);
- CLI: the same runs as a user launches them from a terminal, each ``dagster job execute`` of the
  code location, with the executor the project configures; each run pays a process start and a
  load of the definitions, as a run the daemon launches does;
- UI: ``dagster-webserver`` and ``dagster-daemon`` on the instance (servers already up, every sensor and
  schedule stopped, one run at a time), then what a user clicks: the reference and ingest jobs
  launched, then a backfill of the touched days over the daily job's assets, which the daemon splits
  into runs of a month at most (the assets' backfill policy) and the run queue launches.

Prints each path's time, its ratio to in process, the fixed cost per run and each side's peak RSS (CLI
and UI: their largest run process). For the UI also when the backfill's last run ended: the reports are
ready then, and the backfill daemon's next look at the backfill (Dagster's fixed 30 s loop) marks it complete.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from ingest import generate_lake
from measure import measured, own_peak_rss_mb, peak_rss_mb_of

from sales_analytics.catalog import RAW_ORDER_LINES
from sales_analytics.jobs import daily_sales_job, ingest_job, reference_job
from sales_analytics.partitions import day_ranges, partition_days, range_tags
from sales_analytics.profiles import HOME_ENV, build_resources
from sales_analytics.storage.instance import ensure_instance

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
REPO = Path(__file__).resolve().parents[1]
LOCATION = {"repositoryLocationName": "sales_analytics", "repositoryName": "__repository__"}
TIMEOUT = 3600.0


def in_process(home: str) -> dict:
    from sales_analytics.runner import ingest_and_build

    with dg.DagsterInstance.from_config(str(ensure_instance(Path(home) / "dagster"))) as instance:
        summary = ingest_and_build(_defs(home), instance, console_log_level="ERROR")
    assert all(summary.checks.values()), summary.checks
    return {"runs": len(summary.run_ids), "rows": summary.rows.get("clean/order_lines", 0), "peak_rss_mb": own_peak_rss_mb()}


def cli(home: str) -> dict:
    env = {**os.environ, HOME_ENV: home, "DAGSTER_HOME": str(Path(home) / "dagster")}
    ensure_instance(Path(env["DAGSTER_HOME"]))
    Path(env["DAGSTER_HOME"], "quiet.yaml").write_text(json.dumps(QUIET))  # JSON is YAML
    peaks = [_execute(env, reference_job.name), _execute(env, ingest_job.name)]
    for first, last in day_ranges(_touched_days(env["DAGSTER_HOME"])):
        peaks.append(_execute(env, daily_sales_job.name, range_tags(first, last)))
    return {"runs": len(peaks), "rows": _clean_rows(env["DAGSTER_HOME"]), "peak_rss_mb": max(peaks)}


def ui(home: str) -> dict:
    env = {**os.environ, HOME_ENV: home, "DAGSTER_HOME": str(ensure_instance(Path(home) / "dagster", max_concurrent_runs=1))}
    with _servers(env) as (url, daemon), _run_peaks(daemon) as peaks:
        started, started_at = time.perf_counter(), time.time()
        for job in (reference_job.name, ingest_job.name):
            _finished(url, _graphql(url, """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                                    {"p": {"selector": {**LOCATION, "jobName": job}}})["launchRun"]["run"]["runId"])
        daily_assets = [{"path": list(key.path)} for key in
                        _defs(home).resolve_job_def(daily_sales_job.name).asset_layer.selected_asset_keys]
        launched = _graphql(url, """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                            {"p": {"assetSelection": daily_assets, "partitionNames": _touched_days(env["DAGSTER_HOME"])}}
                            )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        runs, last_run_ended = _backfill_runs(url, launched["backfillId"])
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "reports_ready_seconds": last_run_ended - started_at, "runs": 2 + runs,
            "rows": _clean_rows(env["DAGSTER_HOME"]), "peak_rss_mb": max(peaks.values()), "processes_peak_rss_mb": peaks}


def _defs(home: str) -> dg.Definitions:
    os.environ[HOME_ENV] = home
    from sales_analytics.definitions import build_defs

    return build_defs(build_resources())


@contextmanager
def _servers(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The webserver up, every sensor and schedule stopped through it (as a user can), then the daemon started;
    the GraphQL address and the daemon's process id."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    processes = [subprocess.Popen([str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait(lambda: _answers(url), "dagster-webserver up")
        repository = _graphql(url, """query($s: RepositorySelector!) { repositoryOrError(repositorySelector: $s) {
            ... on Repository { sensors { id sensorState { status } } schedules { id scheduleState { status } } } } }""",
                              {"s": LOCATION})["repositoryOrError"]
        for sensor in (s for s in repository["sensors"] if s["sensorState"]["status"] == "RUNNING"):
            _graphql(url, "mutation($id: String) { stopSensor(id: $id) { __typename } }", {"id": sensor["id"]})
        for schedule in (s for s in repository["schedules"] if s["scheduleState"]["status"] == "RUNNING"):
            _graphql(url, "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }", {"id": schedule["id"]})
        processes.append(subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            _wait(lambda: {"SENSOR", "QUEUED_RUN_COORDINATOR", "BACKFILL"} <= set(instance.get_daemon_heartbeats()), "daemon up")
        yield url, processes[-1].pid
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


@contextmanager
def _run_peaks(daemon: int) -> Iterator[dict[str, float]]:
    """Peak RSS of every process the daemon starts (its code server, the run workers), sampled while the block runs."""
    peaks: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            for proc in Path("/proc").iterdir():
                try:
                    if proc.name.isdigit() and proc.name != str(daemon) and _session(proc) == str(daemon):
                        peaks[f"{proc.name} {_command(proc)[:80]}"] = peak_rss_mb_of(proc.name)
                except (OSError, StopIteration):
                    continue  # ended between the listing and the read, or ending (a zombie has no memory figures)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        done.set()
        sampler.join()


def _command(proc: Path) -> str:
    return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _session(proc: Path) -> str:
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()[3]  # after the command name: state, ppid, pgrp, session


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    if "errors" in payload:
        raise RuntimeError(payload["errors"])
    return payload["data"]


def _answers(url: str) -> bool:
    try:
        return bool(_graphql(url, "{ version }").get("version"))
    except OSError:
        return False


def _wait(condition: Callable[[], bool], what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {TIMEOUT:.0f} s")


def _final_status(status: Callable[[], str], pending: set[str], what: str) -> str:
    """``status()`` polled until it leaves ``pending``; the status it ended in."""
    last = {}

    def settled() -> bool:
        last["status"] = status()
        return last["status"] not in pending

    _wait(settled, what, poll=0.2)
    return last["status"]


def _finished(url: str, run_id: str) -> None:
    ended = _final_status(lambda: _graphql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                                           {"id": run_id})["runOrError"]["status"],
                          {"QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "CANCELING"}, f"run {run_id}")
    if ended != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {ended}")


def _backfill_runs(url: str, backfill_id: str) -> tuple[int, float]:
    """Waits for the daemon to mark the backfill complete; how many runs it took and when the last ended (epoch
    seconds): the reports are ready then, and the daemon's next look at the backfill, up to 30 s on, marks it complete."""
    ended = _final_status(lambda: _graphql(url, """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
        ... on PartitionBackfill { status } } }""", {"id": backfill_id})["partitionBackfillOrError"]["status"],
                          {"REQUESTED", "CANCELING", "FAILING"}, f"backfill {backfill_id}")
    if ended not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise RuntimeError(f"backfill {backfill_id} ended {ended}")
    runs = _graphql(url, """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { endTime } } } }""",
                    {"f": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}})["runsOrError"]["results"]
    return len(runs), max(run["endTime"] for run in runs)


def _touched_days(dagster_home: str) -> list[str]:
    """The days the ingest run's lines fell on, as the touched-days sensor reads them."""
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        raw = instance.get_latest_materialization_event(RAW_ORDER_LINES).asset_materialization
        return partition_days(list(raw.metadata["touched_partitions"].value))


def _clean_rows(dagster_home: str) -> int:
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        return sum(int(event.asset_materialization.metadata["dagster/row_count"].value)
                   for event in instance.fetch_materializations(dg.AssetKey(["clean", "order_lines"]), limit=10_000).records)


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
        shutil.copytree(f"{scratch}/first", f"{scratch}/third")
        results = {"in process": measured(in_process, f"{scratch}/first")}
        started = time.perf_counter()
        results["CLI: dagster job execute"] = {**cli(f"{scratch}/second"), "seconds": time.perf_counter() - started}
        results["UI: webserver + daemon"] = ui(f"{scratch}/third")
    base = results["in process"]
    assert all(r["rows"] == base["rows"] for r in results.values()), results
    print(f"\n{landed['rows']:,} landed lines over {args.days} days\n")
    print(f"{'path':<28}{'runs':>6}{'seconds':>9}{'x in process':>14}{'peak RSS MB':>13}{'fixed s/run':>13}")
    for name, r in results.items():
        fixed = (r["seconds"] - base["seconds"]) / r["runs"]
        print(f"{name:<28}{r['runs']:>6}{r['seconds']:>9.1f}{r['seconds'] / base['seconds']:>14.2f}{r['peak_rss_mb']:>13,.0f}"
              f"{fixed:>13.1f}")
        if "reports_ready_seconds" in r:
            ready = r["reports_ready_seconds"]
            print(f"{'  reports ready (last run ended)':<34}{ready:>9.1f}{ready / base['seconds']:>14.2f}")
    if args.json:
        args.json.write_text(json.dumps({"landed": landed, "days": args.days, "results": results}, indent=2))


if __name__ == "__main__":
    main()
