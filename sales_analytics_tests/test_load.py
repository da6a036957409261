"""The API under a steady load from a second process on loopback: a fixed request rate held for 20
seconds over the report, slice and insight endpoints, with no errors (``bench/api.py`` holds it for
longer per endpoint and reports the latencies)."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sales_analytics.profiles import initialized
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.load
LOADGEN = Path(__file__).resolve().parents[1] / "bench" / "loadgen.py"
KEY = "load-test-key-0123456789"
# The suite runs a worker per core and one more: beside two workers' CPU-bound tests the server gets about half
# a core, and at 100 requests a second (bench/api.py's rate, measured alone) it fell 7.6 s behind. The test asks
# whether a fixed rate is held without errors; how fast is the benchmark's to say.
RATE, SECONDS = 30, 20


def _paths(last_day: str) -> list[str]:
    last = dt.date.fromisoformat(last_day)
    windows = [((last - dt.timedelta(days=back + 13)).isoformat(), (last - dt.timedelta(days=back)).isoformat())
               for back in (0, 7, 21)]
    return [*(f"/v1/sales/daily?from={a}&to={b}&store={s}" for a, b in windows for s in ("S001", "S002", "S003")),
            *(f"/v1/reports/daily_store_sales?from={a}&to={b}&store_id=S001" for a, b in windows),
            "/v1/dashboards/executive_daily/insights", "/v1/reports/review_sentiment", "/v1/dashboards"]


def test_the_api_holds_a_fixed_rate_without_errors(dashboard_world: dict[str, Any], artifacts: Path) -> None:
    env = dashboard_world["env"]
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as db,
          initialized(env["serving_store"]) as serving_store,
          serving(create_app(lake, [KEY], report_db=db, serving_store=serving_store)) as url):
        run = subprocess.run([sys.executable, str(LOADGEN), "--base", url, "--rate", str(RATE), "--seconds", str(SECONDS),
                              "--header", f"{API_KEY_HEADER}: {KEY}", "--paths", *_paths(dashboard_world["last_day"])],
                             check=False, capture_output=True, text=True, timeout=SECONDS + 120)
    assert run.returncode == 0, run.stderr
    load = json.loads(run.stdout)
    (artifacts / "api-load.json").write_text(json.dumps(load, indent=2))  # p50 / p99 for the record
    assert load["sent"] == RATE * SECONDS and load["errors"] == {} and load["ok"] == load["sent"], load
    assert load["offered_rate"] > 0.98 * RATE, load  # the load was the rate asked for
    # Kept up: a server falling behind its load queues requests for longer and longer, and latency counts from
    # each request's scheduled time. The bound is loose on purpose: beside other work (the suite's other workers
    # on two cores) the p99 reached 1.4 s and the last answers came 3.6 s after the last request left; a server
    # that cannot keep up lags by the seconds of the run.
    assert load["p99_ms"] < 5000, load
