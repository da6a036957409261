"""Report data for end users: daily sales slices from the serving store (DynamoDB), any report
table ad hoc from the SQL store (RDS). Both page with an opaque ``page_token``.

- ``GET /v1/sales/{daily|weekly}?from=&to=[&store=|region=|category=|channel=|product=]``: one
  slice of ``daily_sales`` or ``weekly_sales`` (the total without a filter), one DynamoDB query per page;
- ``GET /v1/dashboards/{name}/insights``: a dashboard's insights, one DynamoDB query;
- ``GET /v1/reports/{table}?[from=&to=][&<text column>=<value>...]``: rows of a report table in
  key order, filtered on its date column and on any of its text columns.
"""

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from sales_analytics.dashboards.spec import dashboard_specs
from sales_analytics.schema import (
    ALL_MEMBERS,
    DAILY_SALES,
    DAILY_STORE_SALES,
    DEMAND_FORECAST,
    DIMENSIONS,
    FORECAST_ACCURACY,
    INSIGHTS,
    MODEL_BACKTEST,
    NEGATIVE_REVIEW_SPIKES,
    REVIEW_ASPECTS,
    REVIEW_SENTIMENT,
    SORT_KEY_SEPARATOR,
    WEEKLY_SALES,
    TableSpec,
    slice_id,
)
from sales_analytics.service.caching import cached_json
from sales_analytics.storage.serving_store import ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

MAX_RANGE_DAYS = 366
MAX_PAGE = 500
MEMBER = r"^[A-Za-z0-9 _.&'+-]{1,80}$"
AD_HOC_TABLES = {spec.name: spec for spec in (DAILY_SALES, WEEKLY_SALES, DAILY_STORE_SALES, DEMAND_FORECAST, FORECAST_ACCURACY,
                                              MODEL_BACKTEST, REVIEW_SENTIMENT, REVIEW_ASPECTS, NEGATIVE_REVIEW_SPIKES, INSIGHTS)}
SALES = {"daily": DAILY_SALES, "weekly": WEEKLY_SALES}  # weeks are keyed and filtered by their Monday
PAGING_PARAMETERS = {"from", "to", "limit", "page_token"}
SALES_SORT_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}#[A-Z]{3}$")

ReportTable = Literal[tuple(sorted(AD_HOC_TABLES))]  # an enum in the OpenAPI spec
Member = Annotated[str | None, Query(pattern=MEMBER)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows per page")]
PageToken = Annotated[str | None, Query(max_length=2000, description="next_page_token of the previous page")]


def _bad_request(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def encode_token(value: Any) -> str | None:
    return None if value is None else base64.urlsafe_b64encode(json.dumps(value, default=str).encode()).decode()


def decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise _bad_request("page_token is not one this API issued") from err


def _date_range(first: dt.date | None, last: dt.date | None, required: bool) -> None:
    if required and (first is None or last is None):
        raise _bad_request("give both from and to (YYYY-MM-DD)")
    if first and last and last < first:
        raise _bad_request(f"to ({last}) is before from ({first})")
    if first and last and (last - first).days >= MAX_RANGE_DAYS:
        raise _bad_request(f"a range of at most {MAX_RANGE_DAYS} days, please")


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: whole ones as int, the rest as float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def reports_router(report_db: SqlReportStore, serving_store: ServingStore, authenticated: Callable[..., None]) -> APIRouter:
    router = APIRouter(dependencies=[Depends(authenticated)], tags=["reports"])
    # The declared dashboards as an enum: the spec tells clients (and schemathesis) the valid names.
    DashboardName = Literal[tuple(spec.name for spec in dashboard_specs())]

    @router.get("/v1/sales/{period}", summary="Daily or weekly sales of one slice (serving store)",
                responses={400: {"description": "bad range, filters or page token"}})
    def sales(request: Request, period: Literal["daily", "weekly"], first: Annotated[dt.date, Query(alias="from")], last: Annotated[dt.date, Query(alias="to")],
                    store: Member = None, region: Member = None, category: Member = None, channel: Member = None,
                    product: Member = None, limit: Limit = 100, page_token: PageToken = None) -> Response:
        _date_range(first, last, required=True)
        given = {d: v for d, v in (("store", store), ("region", region), ("category", category), ("channel", channel),
                                   ("product", product)) if v is not None}
        if len(given) > 1:
            raise _bad_request(f"filter by one of {', '.join(DIMENSIONS)} at a time (each is its own slice); "
                               "for combinations use /v1/reports/daily_store_sales")
        dimension, member = next(iter(given.items()), ("total", ALL_MEMBERS))
        low, high = first.isoformat(), last.isoformat() + SORT_KEY_SEPARATOR + "\uffff"
        after = decode_token(page_token) if page_token else None
        if after is not None and not (isinstance(after, str) and SALES_SORT_KEY.match(after) and low <= after <= high):
            raise _bad_request("page_token is not one this API issued")
        spec = SALES[period]
        items, last_key = serving_store.query_page(spec, slice_id(dimension, member), low, high, limit, after)
        rows = [{c: _plain(item.get(c)) for c in spec.column_names} for item in items]
        return cached_json(request, {"slice": slice_id(dimension, member), "rows": rows, "next_page_token": encode_token(last_key)})

    @router.get("/v1/reports/{table}", summary="Rows of a report table (SQL store), filtered and paged",
                responses={400: {"description": "unknown filter, bad range or page token"}})
    def report_rows(request: Request, table: ReportTable,
                    first: Annotated[dt.date | None, Query(alias="from")] = None,
                    last: Annotated[dt.date | None, Query(alias="to")] = None,
                    limit: Limit = 100, page_token: PageToken = None) -> Response:
        spec = AD_HOC_TABLES[table]
        _date_range(first, last, required=False)
        date_column = next((c.name for c in spec.columns if c.type == "date" and c.name in spec.key), None)
        if (first or last) and date_column is None:
            raise _bad_request(f"{table} has no date to filter on")
        equals = _text_filters(spec, request)
        after = _key_after(spec, decode_token(page_token)) if page_token else None
        rows, last_key = report_db.page(spec, equals, (date_column, first, last) if date_column else None, limit, after)
        return cached_json(request, {"table": table, "rows": rows, "next_page_token": encode_token(last_key)})

    @router.get("/v1/dashboards/{name}/insights", summary="A dashboard's insights with their numbers (serving store)",
                responses={404: {"description": "the dashboard has not been built yet"}})
    def dashboard_insights(request: Request, name: DashboardName) -> Response:
        items = serving_store.query(INSIGHTS, name)
        if not items:
            raise HTTPException(status_code=404, detail=f"no insights for dashboard {name!r} yet (not built)")
        rows = [{c: _plain(item.get(c)) for c in INSIGHTS.column_names} for item in items]
        return cached_json(request, {"dashboard": name, "insights": rows})

    return router


def _text_filters(spec: TableSpec, request: Request) -> dict[str, str]:
    text_columns = [c.name for c in spec.columns if c.type == "string"]
    filters = {}
    for name, value in request.query_params.multi_items():
        if name in PAGING_PARAMETERS:
            continue
        if name not in text_columns:
            raise _bad_request(f"unknown filter {name!r} for {spec.name}; filter on {', '.join(text_columns)}")
        if name in filters or len(value) > 200:
            raise _bad_request(f"filter {name!r}: give it once, at most 200 characters")
        filters[name] = value
    return filters


def _key_after(spec: TableSpec, values: Any) -> tuple:
    """A page token's key values, typed by the table's key columns."""
    if not isinstance(values, list) or len(values) != len(spec.key) or not all(isinstance(v, str | int) for v in values):
        raise _bad_request("page_token is not one this API issued")
    parsers: dict[str, Callable[[Any], Any]] = {"date": lambda v: dt.date.fromisoformat(str(v)), "int64": int}
    try:
        return tuple(parsers.get(spec.column(k).type, str)(v) for k, v in zip(spec.key, values, strict=True))
    except ValueError as err:
        raise _bad_request("page_token is not one this API issued") from err
