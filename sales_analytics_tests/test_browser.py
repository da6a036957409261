"""Every dashboard page in a real headless Chromium (Debian's package), as a person opens it:
sign in, open each page, no console errors, charts drawn, a screenshot kept."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from sales_analytics.dashboards.assets import dashboards
from sales_analytics.profiles import initialized
from sales_analytics.service.app import create_app
from sales_analytics_tests.helpers import serving

pytestmark = pytest.mark.browser
KEY = "browser-test-key-0123456789"
CHROMIUM = "/usr/bin/chromium"
# As root, without a sandbox; no background traffic, which this machine's closed network refuses.
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
    for dashboard in dashboards:
        name = dashboard.spec.name
        page.click(f'a[href="/dashboards/{name}"]')
        page.wait_for_selector(".chart .main-svg", timeout=30_000)
        charts = page.locator("div.chart")
        assert charts.count() >= 1, name
        for index in range(charts.count()):  # every chart drew marks, not just an empty frame
            assert charts.nth(index).locator("svg.main-svg path").count() > 3, (name, index)
        assert page.locator("h1").inner_text() == dashboard.spec.title
        assert page.locator("#as-of").inner_text() not in ("", "no data yet")
        assert page.locator(".tile").count() == len(dashboard.spec.kpis)
        page.screenshot(path=str(artifacts / f"dashboard-{name}.png"), full_page=True)
        assert (artifacts / f"dashboard-{name}.png").stat().st_size > 20_000
        page.go_back()
    assert errors == []


def test_a_page_without_signing_in_is_not_shown(site: str, browser: Browser) -> None:
    page = browser.new_page()
    response = page.goto(f"{site}/dashboards/executive_daily")
    assert page.url.endswith("/login") and response is not None and "Executive daily summary" not in page.content()
