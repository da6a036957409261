"""The service's doors, over real HTTP: every route but health and sign-in needs a key, each key
has a request budget, other origins are refused unless configured, and an unexpected error tells
the client an id, never a trace or SQL."""

import hmac
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.routing import APIRoute

from sales_analytics.dashboards.render import PLOTLY_PATH
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics.service.auth import KeyCheck
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.security
KEY, OTHER_KEY = "security-test-key-0123", "security-test-key-4567"
# Open by design: health, sign-in, the API docs, and the public charting library every page loads.
OPEN_ROUTES = {"/healthz", "/login", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", PLOTLY_PATH}
PATH_SAMPLES = {"period": "daily", "table": "daily_store_sales", "name": "executive_daily"}


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[dict[str, Any]]:
    env = local_resources(tmp_path)
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as report_db,
          initialized(env["serving_store"]) as serving_store):
        yield {"lake": lake, "report_db": report_db, "serving_store": serving_store, "home": tmp_path}


def _app(stores: dict[str, Any], **options: Any) -> Any:
    return create_app(stores["lake"], [KEY, OTHER_KEY], report_db=stores["report_db"],
                      serving_store=stores["serving_store"], **options)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through included routers (FastAPI keeps those as wrappers of the original router)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif getattr(route, "original_router", None) is not None:  # our routers carry no prefix
            yield from _api_routes(route.original_router.routes)


def test_every_route_but_health_and_sign_in_refuses_a_request_without_a_key(stores: dict[str, Any]) -> None:
    app = _app(stores)
    routes = [(method, route.path) for route in _api_routes(app.routes) for method in route.methods]
    assert len(routes) >= 12, routes
    with serving(app) as url:
        for method, path in routes:
            if path in OPEN_ROUTES:
                continue
            concrete = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES[m.group(1)], path)
            answer = requests.request(method, url + concrete, headers={API_KEY_HEADER: "not-a-key-but-long-enough"},
                                      timeout=30, allow_redirects=False)
            if path.startswith("/dashboards"):  # pages for people: to the sign-in form
                assert answer.status_code == 303 and answer.headers["Location"] == "/login", (method, path)
            else:
                assert answer.status_code == 401, (method, path, answer.status_code)


def test_a_presented_key_is_compared_in_constant_time_with_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest against each configured key, whichever matches and however much of it:
    neither the time per comparison nor the number of comparisons tells an attacker anything."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(presented: bytes, key: bytes) -> bool:
        compared.append(key)
        return real(presented, key)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    keys = [KEY, OTHER_KEY, "security-test-key-89ab"]
    check = KeyCheck(keys)
    for presented, valid in [(KEY, True), (keys[-1], True), (KEY[:-1], False), (KEY + "x", False), ("z" * 30, False)]:
        compared.clear()
        assert check.valid(presented) is valid
        assert compared == [k.encode() for k in keys], presented


def test_a_key_over_its_budget_gets_429_with_retry_after_while_other_keys_go_on(stores: dict[str, Any]) -> None:
    with serving(_app(stores, rate_per_key=5)) as url:  # 5 a second, bursts of 10
        def status(key: str) -> requests.Response:
            return requests.get(url + "/v1/dashboards", headers={API_KEY_HEADER: key}, timeout=30)

        answers = [status(KEY) for _ in range(14)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [200] * 10 and 429 in codes[10:], codes
        refused = next(a for a in answers if a.status_code == 429)
        assert int(refused.headers["Retry-After"]) >= 1 and refused.json() == {"detail": "too many requests for this API key"}
        assert status(OTHER_KEY).status_code == 200  # a budget is per key
        time.sleep(1.0)
        assert status(KEY).status_code == 200  # and refills


def test_other_origins_are_refused_by_default_and_only_configured_ones_allowed(stores: dict[str, Any]) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": API_KEY_HEADER}
    with serving(_app(stores)) as url:
        answer = requests.options(url + "/v1/dashboards", headers=preflight, timeout=30)
        assert "access-control-allow-origin" not in answer.headers
        answer = requests.get(url + "/v1/dashboards", headers={API_KEY_HEADER: KEY, "Origin": "https://evil.example"}, timeout=30)
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers  # the browser withholds it
    with serving(_app(stores, cors_origins=["https://bi.example"])) as url:
        allowed = requests.options(url + "/v1/dashboards", headers={**preflight, "Origin": "https://bi.example"}, timeout=30)
        assert allowed.headers.get("access-control-allow-origin") == "https://bi.example"
        refused = requests.options(url + "/v1/dashboards", headers=preflight, timeout=30)
        assert "access-control-allow-origin" not in refused.headers


def test_an_unexpected_error_is_a_500_with_an_id_and_no_trace_or_sql(stores: dict[str, Any],
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with sqlite3.connect(stores["home"] / "reports.db") as conn:  # a migration gone wrong: the table lost its columns
        conn.execute("DROP TABLE IF EXISTS daily_store_sales")
        conn.execute("CREATE TABLE daily_store_sales (note TEXT)")
    with serving(_app(stores)) as url:
        answer = requests.get(url + "/v1/reports/daily_store_sales", headers={API_KEY_HEADER: KEY}, timeout=30)
    assert answer.status_code == 500
    body = answer.json()
    assert body["detail"] == "internal error" and re.fullmatch(r"[0-9a-f]{12}", body["error_id"])
    for leak in ("Traceback", "SELECT", "daily_store_sales", "sqlite", "sqlalchemy", "no such column"):
        assert leak not in answer.text
    assert any(body["error_id"] in r.getMessage() and r.exc_info for r in caplog.records)  # the server's log has the trace
