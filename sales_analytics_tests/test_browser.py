"""Every dashboard page in a real headless Chromium (Debian's package), as a person opens it:
sign in, open each page, no console errors, charts drawn, a screenshot kept."""

import csv
import datetime as dt
import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from playwright.sync_api import Browser, sync_playwright

from sales_analytics.dashboards.assets import AS_OF_TAG
from sales_analytics.dashboards.spec import dashboard_specs, page_object_key
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import review_insights_job, train_sentiment_model_job
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.service.app import create_app
from sales_analytics_tests.helpers import serving

pytestmark = [pytest.mark.browser, pytest.mark.security]
KEY = "browser-test-key-0123456789"
CHROMIUM = "/usr/bin/chromium"
# As root, without a sandbox; no background traffic, which this machine's closed network refuses.
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(dashboard_world: dict[str, Any]) -> Iterator[str]:
    env = dashboard_world["env"]
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as db,
          initialized(env["serving_store"]) as serving_store,
          serving(create_app(lake, [KEY], report_db=db, serving_store=serving_store)) as url):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which("chromium") == CHROMIUM, "Debian's chromium is installed by `make setup` (scripts/install-system-deps.sh)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_every_dashboard_loads_signed_in_with_charts_and_no_console_errors(site: str, browser: Browser,
                                                                           artifacts: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site}/dashboards")
    assert page.url.endswith("/login")
    page.fill("input[name=api_key]", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/dashboards")
    for spec in dashboard_specs():
        name = spec.name
        page.click(f'a[href="/dashboards/{name}"]')
        page.wait_for_selector(".chart .main-svg", timeout=30_000)
        charts = page.locator("div.chart")
        assert charts.count() >= 1, name
        for index in range(charts.count()):  # every chart drew marks, not just an empty frame
            assert charts.nth(index).locator("svg.main-svg path").count() > 3, (name, index)
        assert page.locator("h1").inner_text() == spec.title
        assert page.locator("#as-of").inner_text() not in ("", "no data yet")
        assert page.locator(".tile").count() == len(spec.kpis)
        page.screenshot(path=str(artifacts / f"dashboard-{name}.png"), full_page=True)
        assert (artifacts / f"dashboard-{name}.png").stat().st_size > 20_000
        page.go_back()
    assert errors == []


def test_an_unknown_dashboard_is_a_page_that_says_so(site: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{site}/login")
    page.fill("input[name=api_key]", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/dashboards")
    response = page.goto(f"{site}/dashboards/weekly_<b>board</b>")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "No such dashboard"
    assert page.locator("code").inner_text() == "weekly_<b>board</b>"  # shown as typed, as text
    page.click("text=All dashboards")
    page.wait_for_url(f"{site}/dashboards")


def test_a_page_without_signing_in_is_not_shown(site: str, browser: Browser) -> None:
    page = browser.new_page()
    response = page.goto(f"{site}/dashboards/executive_daily")
    assert page.url.endswith("/login") and response is not None and "Executive daily summary" not in page.content()


def _plant(lake: Any, key: str, change: Callable[[dict[str, str]], None]) -> None:
    """Rewrite a landed CSV export, each row through ``change``."""
    rows = list(csv.DictReader(io.StringIO(lake.get_bytes(key).decode())))
    for row in rows:
        change(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    lake.put_bytes(key, out.getvalue().encode())


def test_markup_planted_in_the_data_is_shown_as_text_and_never_run(browser: Browser, tmp_path: Path) -> None:
    """Product names and categories, and every review's title and text, carry markup: the executive
    and customer-voice pages show the planted category as text (charts, movers, review spikes)
    and no planted script runs."""
    env = local_resources(tmp_path / "local")
    start = dt.date.today() - dt.timedelta(days=31)
    planted = "apparel"  # the generator's review spike is an apparel product: the category reaches both pages
    with initialized(env["lake"]) as lake:
        # Enough stores for enough reviews (30 of each sentiment) to train the sentiment model on.
        generate(lake, GeneratorConfig(days=29, stores=10, products=12, orders_per_store_day=4, start=start), progress=False)

        def hostile_product(row: dict[str, str]) -> None:
            if row["category"] == planted:
                row["category"], row["name"] = f"{HOSTILE}{planted}", f"{HOSTILE}{row['name']}"

        def hostile_review(row: dict[str, str]) -> None:
            row["title"], row["text"] = f"{HOSTILE}{row['title']}", f"{row['text']} {HOSTILE}"

        _plant(lake, f"landing/reference/products/{start:%Y-%m-%d}/products.csv", hostile_product)
        for review_export in lake.list("landing/reviews/"):
            _plant(lake, review_export.key, hostile_review)
    defs = build_defs(env)
    instance = dg.DagsterInstance.ephemeral()
    last = ingest_and_build(defs, instance).touched_days[-1]
    for job in ("dashboard_executive_daily", train_sentiment_model_job.name, review_insights_job.name, "dashboard_customer_voice"):
        assert defs.resolve_job_def(job).execute_in_process(instance=instance, tags={AS_OF_TAG: last}).success, job
    with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as db,
          initialized(env["serving_store"]) as serving_store,
          serving(create_app(lake, [KEY], report_db=db, serving_store=serving_store)) as url):
        page = browser.new_page()
        page.goto(f"{url}/login")
        page.fill("input[name=api_key]", KEY)
        page.click("button[type=submit]")
        for name in ("executive_daily", "customer_voice"):
            assert "<script>window.__pwned" not in lake.get_bytes(page_object_key(name)).decode()
            page.goto(f"{url}/dashboards/{name}")
            page.wait_for_selector(".chart .main-svg", timeout=30_000)
            page.wait_for_timeout(500)  # an onerror handler would have fired by now
            assert page.evaluate("window.__pwned") is None, name
            assert f"{HOSTILE}{planted}" in page.locator("body").inner_text(), name  # shown, as the text it is
