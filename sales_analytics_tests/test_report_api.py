"""Report data and dashboards over real HTTP, served from DynamoDB Local and PostgreSQL (the
`stack` servers): filters, pages, caching, auth failures and bad parameters."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import requests

from sales_analytics.dashboards.assets import AS_OF_TAG
from sales_analytics.dashboards.render import PLOTLY_PATH
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import weekly_sales_job
from sales_analytics.profiles import initialized
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES, DIMENSIONS, INSIGHTS, WEEKLY_SALES
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics.service.auth import KEY_COOKIE
from sales_analytics.service.report_api import AD_HOC_TABLES, SALES
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.stack
KEY = "report-api-key-0123456789"
CONFIG = GeneratorConfig(days=12, stores=3, products=20, orders_per_store_day=10)  # 2026-01-01..12
WEEK = "2026-01-05"  # the one whole week


@pytest.fixture(scope="module")
def served(stack_env_module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    env = stack_env_module
    with initialized(env["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
    defs = build_defs(env)
    instance = dg.DagsterInstance.ephemeral()
    days = ingest_and_build(defs, instance).touched_days
    assert defs.resolve_job_def("dashboard_executive_daily").execute_in_process(instance=instance, tags={AS_OF_TAG: days[-1]}).success
    assert defs.resolve_job_def(weekly_sales_job.name).execute_in_process(instance=instance, partition_key=WEEK).success
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as report_db,
          initialized(env["serving_store"]) as serving_store,
          serving(create_app(lake, [KEY], report_db=report_db, serving_store=serving_store)) as url):
        yield {"url": url, "days": days, "report_db": report_db}


def get(served: dict[str, Any], path: str, key: str | None = KEY, **params: Any) -> requests.Response:
    headers = {API_KEY_HEADER: key} if key else {}
    return requests.get(served["url"] + path, params=params, headers=headers, timeout=30, allow_redirects=False)


def all_pages(served: dict[str, Any], path: str, **params: Any) -> tuple[list[dict], int]:
    rows, pages, token = [], 0, None
    while True:
        answer = get(served, path, **params, **({"page_token": token} if token else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["rows"]
        pages += 1
        token = body["next_page_token"]
        if token is None:
            return rows, pages


def test_a_slice_from_dynamodb_pages_through_exactly_the_sql_rows(served: dict[str, Any]) -> None:
    first, last = served["days"][2], served["days"][8]
    rows, pages = all_pages(served, "/v1/sales/daily", **{"from": first, "to": last, "region": "north", "limit": 3})
    want = [r for r in served["report_db"].read(DAILY_SALES) if r["slice"] == "region=north" and first <= str(r["sale_date"]) <= last]
    assert pages >= 3 and len(rows) == len(want) > 0
    key = lambda r: (str(r["sale_date"]), r["currency"])
    assert [key(r) for r in rows] == sorted(key(r) for r in want)  # in sort-key order, across pages
    for got, expected in zip(rows, sorted(want, key=key), strict=True):
        assert got["net_sales"] == pytest.approx(expected["net_sales"]) and got["orders"] == expected["orders"]
    total = get(served, "/v1/sales/daily", **{"from": first, "to": first}).json()
    assert total["slice"] == "total=*" and {r["dimension"] for r in total["rows"]} == {"total"}


def test_weekly_slices_and_dashboard_insights_come_from_dynamodb(served: dict[str, Any]) -> None:
    weekly = get(served, "/v1/sales/weekly", **{"from": WEEK, "to": WEEK, "category": "grocery"}).json()["rows"]
    want = [r for r in served["report_db"].read(WEEKLY_SALES) if r["slice"] == "category=grocery"]
    assert len(weekly) == len(want) > 0 and weekly[0]["week_start"] == WEEK
    assert weekly[0]["net_sales"] == pytest.approx(want[0]["net_sales"])
    insights = get(served, "/v1/dashboards/executive_daily/insights").json()["insights"]
    in_sql = {r["insight_id"]: r for r in served["report_db"].read(INSIGHTS, "executive_daily")}
    assert {i["insight_id"] for i in insights} == set(in_sql) and any(i["kind"] == "kpi" for i in insights)
    for item in insights:
        assert item["narrative"] == in_sql[item["insight_id"]]["narrative"]
        assert item["value"] == pytest.approx(in_sql[item["insight_id"]]["value"])
    assert get(served, "/v1/dashboards/customer_voice/insights").status_code == 404  # not built here


def test_answers_carry_caching_headers_and_revalidate(served: dict[str, Any]) -> None:
    params = {"from": served["days"][0], "to": served["days"][3], "store": "S001"}
    first = get(served, "/v1/sales/daily", **params)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, max-age=60" and first.headers["ETag"]
    again = requests.get(served["url"] + "/v1/sales/daily", params=params, timeout=30,
                         headers={API_KEY_HEADER: KEY, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_any_report_table_ad_hoc_from_sql_with_filters_and_pages(served: dict[str, Any]) -> None:
    first, last = served["days"][1], served["days"][9]
    rows, pages = all_pages(served, "/v1/reports/daily_store_sales", **{"from": first, "to": last, "store_id": "S002", "limit": 4})
    want = [r for r in served["report_db"].read(DAILY_STORE_SALES) if r["store_id"] == "S002" and first <= str(r["sale_date"]) <= last]
    assert pages == -(-len(want) // 4) and [r["sale_date"] for r in rows] == [str(r["sale_date"]) for r in want]
    categories, _ = all_pages(served, "/v1/reports/daily_sales", dimension="category", currency="EUR", limit=500)
    assert categories and {r["dimension"] for r in categories} == {"category"}


@pytest.mark.parametrize("path", ["/v1/sales/daily?from=2026-01-01&to=2026-01-02", "/v1/reports/daily_sales",
                                  "/v1/dashboards", "/v1/dashboards/executive_daily/insights"])
@pytest.mark.parametrize("key", [None, "not-the-key-but-long-enough", KEY[:-1]])
def test_every_data_endpoint_needs_the_key(served: dict[str, Any], path: str, key: str | None) -> None:
    answer = get(served, path, key=key)
    assert answer.status_code == 401 and answer.json() == {"detail": "missing or unknown API key"}


@pytest.mark.parametrize(("path", "params", "status", "says"), [
    ("/v1/sales/daily", {"from": "2026-01-05", "to": "2026-01-01"}, 400, "to (2026-01-01) is before from (2026-01-05)"),
    ("/v1/sales/daily", {"from": "2024-01-01", "to": "2026-01-01"}, 400, "at most 366 days"),
    ("/v1/sales/daily", {"from": "2026-01-01", "to": "2026-01-02", "store": "S001", "region": "north"}, 400, "one of store"),
    ("/v1/sales/daily", {"from": "2026-01-01", "to": "2026-01-02", "page_token": "bm90LWEtdG9rZW4"}, 400, "not one this API issued"),
    ("/v1/sales/daily", {"from": "2026-01-01"}, 422, "Field required"),
    ("/v1/sales/daily", {"from": "2026-13-01", "to": "2026-01-02"}, 422, "valid date"),
    ("/v1/sales/daily", {"from": "2026-01-01", "to": "2026-01-02", "store": "S1'; DROP TABLE x;--"}, 422, "should match"),
    ("/v1/reports/daily_store_sales", {"shop": "S001"}, 400, "unknown filter 'shop' for daily_store_sales; filter on store_id"),
    ("/v1/reports/daily_store_sales", {"page_token": "WyJ4Il0"}, 400, "not one this API issued"),
    ("/v1/reports/orders_secret", {}, 422, "Input should be 'daily_sales'"),
    ("/v1/reports/model_backtest", {"from": "2026-01-01"}, 400, "has no date to filter on"),
    ("/v1/reports/daily_sales", {"limit": "5000"}, 422, "less than or equal to 500"),
])
def test_bad_parameters_get_a_clear_4xx_and_leak_nothing(served: dict[str, Any], path: str, params: dict, status: int,
                                                         says: str) -> None:
    answer = get(served, path, **params)
    assert answer.status_code == status and says in answer.text
    for leak in ("Traceback", "SELECT", "sqlalchemy", "psycopg", "DROP TABLE", "botocore"):
        assert leak not in answer.text


CLASSIC_PAYLOADS = ["S001' OR '1'='1", "' OR 1=1 --", "x'; DROP TABLE {table}; --", '" OR ""="', "1) OR (1=1",
                    "' UNION SELECT NULL --", "%' OR '%'='", "'; SELECT pg_sleep(5); --", "admin'/*", "\\' OR 1=1 --"]


@pytest.mark.security
def test_classic_injection_payloads_in_every_filter_match_nothing_and_harm_nothing(served: dict[str, Any]) -> None:
    """Every text filter of every report table (PostgreSQL), and every slice filter of the sales
    endpoints (DynamoDB): a payload is a value that matches no row, never SQL or a key expression."""
    before = {name: len(served["report_db"].read(spec)) for name, spec in AD_HOC_TABLES.items()}
    tried = 0
    for name, spec in AD_HOC_TABLES.items():
        for column in (c.name for c in spec.columns if c.type == "string"):
            for payload in CLASSIC_PAYLOADS:
                answer = get(served, f"/v1/reports/{name}", **{column: payload.format(table=name)})
                assert answer.status_code == 200 and answer.json()["rows"] == [], (name, column, payload, answer.text)
                tried += 1
    for period in SALES:
        for dimension in DIMENSIONS:
            for payload in CLASSIC_PAYLOADS:
                answer = get(served, f"/v1/sales/{period}", **{"from": served["days"][0], "to": served["days"][-1], dimension: payload})
                assert answer.status_code in (200, 422), answer.text  # 422: outside the members' alphabet
                assert answer.status_code == 422 or answer.json()["rows"] == [], (period, dimension, payload)
                tried += 1
    assert tried > 300
    assert {name: len(served["report_db"].read(spec)) for name, spec in AD_HOC_TABLES.items()} == before
    assert all_pages(served, "/v1/reports/daily_store_sales", store_id="S001")[0]  # and the filter still works


def test_people_sign_in_and_open_a_dashboard(served: dict[str, Any]) -> None:
    session = requests.Session()
    assert session.get(served["url"] + "/dashboards/executive_daily", allow_redirects=False).headers["Location"] == "/login"
    refused = session.post(served["url"] + "/login", data={"api_key": "wrong-key-of-some-length"}, allow_redirects=False)
    assert refused.status_code == 401 and KEY_COOKIE not in session.cookies
    signed = session.post(served["url"] + "/login", data={"api_key": KEY}, allow_redirects=False)
    assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"] and "SameSite=strict" in signed.headers["set-cookie"]
    index = session.get(served["url"] + "/dashboards")
    assert index.status_code == 200 and 'href="/dashboards/executive_daily"' in index.text
    page = session.get(served["url"] + "/dashboards/executive_daily")
    assert page.status_code == 200 and "<title>Executive daily summary</title>" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"] and page.headers["ETag"]
    # Plotly is a static file the browser keeps (its path names its version), not 4.8 MB inlined per page.
    assert f'<script src="{PLOTLY_PATH}"></script>' in page.text and len(page.content) < 500_000
    library = requests.get(served["url"] + PLOTLY_PATH)
    assert library.status_code == 200 and library.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in library.headers["Cache-Control"] and len(library.content) > 3_000_000
    assert requests.get(served["url"] + PLOTLY_PATH, headers={"If-None-Match": library.headers["ETag"]}).status_code == 304
    not_built = session.get(served["url"] + "/dashboards/customer_voice")  # declared, not built here
    assert not_built.status_code == 404 and not_built.headers["Content-Type"].startswith("text/html")
    assert "not been built yet" in not_built.text and "<code>dashboard_customer_voice</code>" in not_built.text
    for unknown in ("nope", "Not-A-Name", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"):
        answer = session.get(served["url"] + "/dashboards/" + unknown)
        assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/html"), unknown
        assert "No such dashboard" in answer.text and "<script>" not in answer.text
    api_error = get(served, "/v1/dashboards/customer_voice/insights")  # the API's errors stay JSON
    assert api_error.status_code == 404 and api_error.headers["Content-Type"] == "application/json"
    listed = get(served, "/v1/dashboards").json()
    assert {d["name"]: d["built"] for d in listed} == {"executive_daily": True, "store_performance": False,
                                                        "demand_planning": False, "customer_voice": False}
