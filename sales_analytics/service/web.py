"""Dashboards in the browser: a sign-in with an API key, the list of dashboards, each page as
rendered into the lake by its asset (Plotly, which every page uses, served once as a static file a
browser keeps), and the list as JSON (``/v1/dashboards``) for programs.
A dashboard's insights are report data: ``/v1/dashboards/{name}/insights`` in ``report_api``."""

import html
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from plotly.offline import get_plotlyjs

from sales_analytics.dashboards.render import PLOTLY_PATH
from sales_analytics.dashboards.spec import DashboardSpec, dashboard_job_name, dashboard_specs, page_object_key
from sales_analytics.service.auth import KEY_COOKIE, KeyCheck
from sales_analytics.service.caching import cached_json, cached_response
from sales_analytics.storage.lake import LakeResource

PAGE_MAX_AGE = 300
STATIC_MAX_AGE = 365 * 24 * 3600
# Pages carry their own inline scripts and styles and fetch nothing but the web app's Plotly.
PAGE_SECURITY = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
                               "font-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LOGIN_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · sales_analytics</title>
<style>body{{font-family:system-ui,sans-serif;max-width:420px;margin:80px auto}}input{{width:100%;padding:8px;margin:8px 0}}
.error{{color:#b00020}}</style></head><body><h1>Dashboards</h1>{error}
<form method="post" action="/login"><label>API key <input type="password" name="api_key" autocomplete="current-password"
required></label><button type="submit">Sign in</button></form></body></html>"""


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_SECURITY)


def _notice(title: str, message: str, status: int) -> HTMLResponse:
    """A page for people where a dashboard cannot be shown: what happened and what to do about it."""
    return _html(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                 f'<style>body{{font-family:system-ui,sans-serif;max-width:640px;margin:80px auto}}</style></head>'
                 f'<body><h1>{html.escape(title)}</h1><p>{message}</p><p><a href="/dashboards">All dashboards</a></p>'
                 f'</body></html>', status=status)


def dashboards_router(lake: LakeResource, keys: KeyCheck) -> APIRouter:
    router = APIRouter(tags=["dashboards"])
    specs = {spec.name: spec for spec in dashboard_specs()}

    def not_built(spec: DashboardSpec) -> HTMLResponse:
        job = dashboard_job_name(spec.name)
        return _notice(f"{spec.title}: not built yet",
                       f"This dashboard has not been built yet. The job <code>{html.escape(job)}</code> builds it "
                       f"({html.escape(spec.schedule.cron)} {html.escape(spec.schedule.timezone)}); run it from the "
                       f"Dagster UI, or wait for its schedule.", status=404)

    @router.get(PLOTLY_PATH, include_in_schema=False)
    def plotly_library(request: Request) -> Response:
        response = cached_response(request, _plotly_js(), "text/javascript; charset=utf-8", STATIC_MAX_AGE)
        response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}, immutable"  # its path names its version
        return response

    @router.get("/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return _html(LOGIN_FORM.format(error=""))

    @router.post("/login", include_in_schema=False)
    def login(request: Request, api_key: Annotated[str, Form(max_length=512)]) -> Response:
        if not keys.valid(api_key):
            return _html(LOGIN_FORM.format(error='<p class="error">Unknown API key.</p>'), status=401)
        response = RedirectResponse("/dashboards", status_code=303)
        response.set_cookie(KEY_COOKIE, api_key, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    @router.get("/dashboards", include_in_schema=False)
    def index(request: Request) -> Response:
        if not keys.admitted(request):
            return RedirectResponse("/login", status_code=303)
        items = "".join(
            f'<li><a href="/dashboards/{spec.name}">{html.escape(spec.title)}</a> — {html.escape(spec.description)} '
            f'<small>({html.escape(spec.owner)}; {html.escape(spec.schedule.cron)} {html.escape(spec.schedule.timezone)}; '
            f'{"built" if lake.exists(page_object_key(spec.name)) else "not built yet"})</small></li>'
            for spec in specs.values())
        return _html(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dashboards</title>'
                     f'<style>body{{font-family:system-ui,sans-serif;margin:40px}}li{{margin:8px 0}}</style></head>'
                     f'<body><h1>Dashboards</h1><ul>{items}</ul></body></html>')

    @router.get("/dashboards/{name:path}", include_in_schema=False)
    def page(request: Request, name: str) -> Response:
        if not keys.admitted(request):
            return RedirectResponse("/login", status_code=303)
        if name not in specs:  # any name a person types: answered as a page, never echoed unescaped
            return _notice("No such dashboard", f"There is no dashboard called <code>{html.escape(name[:80])}</code>.",
                           status=404)
        spec = specs[name]
        key = page_object_key(spec.name)
        if not lake.exists(key):
            return not_built(spec)
        response = cached_response(request, lake.get_bytes(key), "text/html; charset=utf-8", PAGE_MAX_AGE)
        response.headers.update(PAGE_SECURITY)
        return response

    api = APIRouter(tags=["dashboards"], dependencies=[Depends(keys.dependency())])

    @api.get("/v1/dashboards", summary="Declared dashboards and where to open them")
    def list_dashboards(request: Request) -> Response:
        return cached_json(request, [_describe(spec, lake) for spec in specs.values()])

    router.include_router(api)
    return router


def _describe(spec: DashboardSpec, lake: LakeResource) -> dict[str, Any]:
    return {"name": spec.name, "title": spec.title, "owner": spec.owner, "description": spec.description,
            "schedule": {"cron": spec.schedule.cron, "timezone": spec.schedule.timezone}, "reports": list(spec.reports),
            "url": f"/dashboards/{spec.name}", "built": lake.exists(page_object_key(spec.name))}


@cache
def _plotly_js() -> bytes:
    return get_plotlyjs().encode()
