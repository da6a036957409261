"""API latency under a fixed request rate, from a second process on loopback.

    .venv/bin/python bench/api.py [--days 90] [--stores 8] [--rate 100] [--seconds 30] [--json out.json]

Builds a history on the embedded profile (not timed), starts the service as ``sales-analytics
serve`` runs it (one uvicorn process), then drives each endpoint with ``loadgen.py`` in its own
process at the same rate: first ``/healthz`` (the framework's floor, the baseline), then the sales
slices (serving store), report rows (SQL store), a dashboard's insights, and its page. Paths rotate
over stores and date windows so no single response is hot. Prints p50/p99 against the baseline's,
the achieved rate, errors, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from measure import peak_rss_mb_of

BENCH = Path(__file__).resolve().parent
DASHBOARD = "executive_daily"


def build_history(home: Path, days: int, stores: int, products: int) -> tuple[str, list[str]]:
    """The reports and dashboards of ``days`` of generated sales; the last day and the store ids."""
    import dagster as dg

    from sales_analytics.definitions import build_defs
    from sales_analytics.generator import GeneratorConfig, SalesGenerator, generate
    from sales_analytics.profiles import initialized, local_resources
    from sales_analytics.runner import build_dashboards, ingest_and_build

    env = local_resources(home)
    config = GeneratorConfig(days=days, stores=stores, products=products, start=dt.date.today() - dt.timedelta(days=days + 1))
    with initialized(env["lake"]) as lake:
        generate(lake, config, progress=False)
    defs = build_defs(env)
    with dg.DagsterInstance.ephemeral() as instance:
        last = ingest_and_build(defs, instance).touched_days[-1]
        built = build_dashboards(defs, instance, last)
    assert built[DASHBOARD] == "built", built
    return last, [s["store_id"] for s in SalesGenerator(config).stores]


def endpoints(last_day: str, stores: list[str]) -> dict[str, list[str]]:
    last = dt.date.fromisoformat(last_day)
    windows = [((last - dt.timedelta(days=back + span)).isoformat(), (last - dt.timedelta(days=back)).isoformat())
               for back in (0, 7, 14) for span in (6, 27)]
    return {
        "baseline: /healthz": ["/healthz"],
        "sales slice (serving)": [f"/v1/sales/daily?from={a}&to={b}&store={s}" for s in stores for a, b in windows],
        "report rows (SQL)": [f"/v1/reports/daily_store_sales?from={a}&to={b}&store_id={s}" for s in stores for a, b in windows],
        "dashboard insights": [f"/v1/dashboards/{DASHBOARD}/insights"],
        "dashboard page": [f"/dashboards/{DASHBOARD}"],
    }


def start_server(home: Path, key: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "SALES_ANALYTICS_HOME": str(home), "SALES_ANALYTICS_PROFILE": "local",
           "SALES_ANALYTICS_API_KEYS": key}
    server = subprocess.Popen([str(Path(sys.executable).parent / "sales-analytics"), "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the service did not answer /healthz within 60 s")


def probe(port: int, key: str, path: str) -> None:
    """The endpoint answers with data, so the load below measures real work, not a fast 404."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    if response.headers.get_content_type() == "application/json":
        payload = json.loads(body)
        assert payload.get("rows", payload.get("insights", [None])), f"{path} answered with no rows"


def drive(port: int, key: str, paths: list[str], rate: float, seconds: float) -> dict:
    """loadgen.py in its own process; a short warm-up at the same rate first, not counted."""
    probe(port, key, paths[0])
    command = [sys.executable, str(BENCH / "loadgen.py"), "--base", f"http://127.0.0.1:{port}", "--rate", str(rate),
               "--header", f"X-API-Key: {key}", "--paths", *paths]
    subprocess.run([*command, "--seconds", "2"], check=True, capture_output=True)
    return json.loads(subprocess.run([*command, "--seconds", str(seconds)], check=True, capture_output=True, text=True).stdout)


def run(days: int, stores: int, products: int, rate: float, seconds: float) -> list[dict]:
    """One row per endpoint: latencies, the ratios to the baseline's, and the server's peak RSS so far."""
    from sales_analytics_tests.helpers import free_port

    home = Path(tempfile.mkdtemp(prefix="bench-api-"))
    key = secrets.token_urlsafe(24)
    rows = []
    try:
        last, store_ids = build_history(home / "local", days, stores, products)  # where the local profile looks
        port = free_port()
        server = start_server(home, key, port)
        try:
            for name, paths in endpoints(last, store_ids).items():
                rows.append({"endpoint": name, **drive(port, key, paths, rate, seconds),
                             "server_peak_rss_mb": peak_rss_mb_of(server.pid)})
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["p50_x_baseline"], row["p99_x_baseline"] = row["p50_ms"] / base["p50_ms"], row["p99_ms"] / base["p99_ms"]
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'endpoint':<24}{'rate/s':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'p50 ×':>8}{'p99 ×':>8}{'server RSS MB':>15}")
    for r in rows:
        print(f"{r['endpoint']:<24}{r['achieved_rate']:>8.1f}{sum(r['errors'].values()):>8}{r['p50_ms']:>9.2f}"
              f"{r['p99_ms']:>9.2f}{r['p50_x_baseline']:>8.2f}{r['p99_x_baseline']:>8.2f}{r['server_peak_rss_mb']:>15.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stores", type=int, default=8)
    parser.add_argument("--products", type=int, default=150)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, every endpoint")
    parser.add_argument("--seconds", type=float, default=30.0, help="per endpoint")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = run(args.days, args.stores, args.products, args.rate, args.seconds)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
