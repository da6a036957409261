"""Each declared dashboard becomes two assets, a job and a schedule.

- ``dashboards/<name>/insights``: KPI deltas, anomalies with drivers, movers, forecast misses and
  review shifts from bounded windows of the dashboard's reports (Parquet in the lake, and the
  dashboard's rows of ``dashboard_insights`` in the SQL and serving stores);
- ``dashboards/<name>/page``: the rendered page, ``dashboards/<name>/index.html`` in the lake,
  with its KPIs, narratives and a link in the asset's metadata;
- job ``dashboard_<name>``: exactly the page and its insights; the reports they read are kept fresh,
  and published, by the jobs, schedules and automation that build them;
- schedule ``dashboard_<name>_schedule``: the declared cron in the declared timezone; its run's
  insights stop at the last complete UTC day at the tick (tag ``dashboard/as_of``).
"""

import datetime as dt
import os
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from sales_analytics.dashboards import insights as ins
from sales_analytics.dashboards.data import ReportReader, asset_key, input_name, is_partitioned
from sales_analytics.dashboards.render import (
    Freshness,
    chart_section,
    currencies_in,
    markdown_preview,
    page_warnings,
    render_page,
)
from sales_analytics.dashboards.spec import (
    DAILY_SALES,
    FORECAST_ACCURACY,
    NEGATIVE_REVIEW_SPIKES,
    REVIEW_SENTIMENT,
    DashboardSpec,
    dashboard_job_name,
    page_object_key,
)
from sales_analytics.groups import with_group_defaults
from sales_analytics.jobs import ON, asset_job
from sales_analytics.lake.assets import table_metadata
from sales_analytics.schema import INSIGHTS
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import LakeView
from sales_analytics.storage.serving_store import ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

DAY = dt.timedelta(days=1)
WEB_URL_ENV = "SALES_ANALYTICS_WEB_URL"  # where `sales-analytics serve` is reachable, for links in the UI
AS_OF_TAG = "dashboard/as_of"  # a scheduled run: the last complete UTC day at the tick
# Sales insights read the anomaly baseline (8 weeks before the last week) plus a week's slack, and a
# week a year back: about 80 daily partitions, whatever the history.
RECENT_DAYS = ins.LOOKBACK_DAYS + ins.WEEK * (ins.BASELINE_WEEKS + 1)
ACCURACY_DAYS = 2 * ins.WEEK


def insights_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["dashboards", f"{name}_insights"])


def page_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["dashboards", f"{name}_page"])


def page_url(name: str) -> str:
    return f"{os.environ.get(WEB_URL_ENV, 'http://127.0.0.1:8080').rstrip('/')}/dashboards/{name}"


def compute_insights(spec: DashboardSpec, reader: ReportReader, not_after: dt.date | None) -> tuple[dt.date | None, pa.Table]:
    """Every insight the dashboard declares, as of its newest data (not after ``not_after``)."""
    found: list[ins.Insight] = []
    as_of = None
    if DAILY_SALES in spec.reports and (day := reader.newest_day(DAILY_SALES, not_after)):
        as_of = day
        found += _sales_insights(spec, reader, day)
    if FORECAST_ACCURACY in spec.reports and (day := reader.newest_day(FORECAST_ACCURACY, not_after)):
        as_of = as_of or day
        accuracy = reader.window(FORECAST_ACCURACY, day - DAY * (ACCURACY_DAYS - 1), day)
        found += ins.kpi_insights(ins.accuracy_daily(accuracy), ins.ACCURACY_KPIS, spec.kpis, day, "",
                                  day_column="target_date", periods=("day", "week"))
        if "forecast_misses" in spec.insights:
            found += ins.forecast_miss_insights(accuracy, day)
    if REVIEW_SENTIMENT in spec.reports:
        sentiment = reader.whole(REVIEW_SENTIMENT)
        week, kpis = ins.review_kpi_insights(sentiment, spec.kpis)
        as_of = as_of or week
        found += kpis
        if "review_shifts" in spec.insights:
            found += ins.review_shift_insights(sentiment, reader.whole(NEGATIVE_REVIEW_SPIKES))
    return as_of, ins.to_table(spec.name, as_of or dt.date.min, found)


def _sales_insights(spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> list[ins.Insight]:
    recent_first = as_of - DAY * (RECENT_DAYS - 1)
    year_last = as_of - DAY * ins.YEAR_DAYS
    year_first = year_last - DAY * (ins.WEEK - 1)
    recent = reader.window(DAILY_SALES, recent_first, as_of)
    sales = pd.concat([recent, reader.window(DAILY_SALES, year_first, year_last)], ignore_index=True)
    stored = reader.present(DAILY_SALES, recent_first, as_of) | reader.present(DAILY_SALES, year_first, year_last)
    found = ins.kpi_insights(ins.daily_values(sales, spec.currency, stored), ins.SALES_KPIS, spec.kpis, as_of, spec.currency)
    if "anomalies" in spec.insights:
        found += ins.anomaly_insights(recent, reader.present(DAILY_SALES, recent_first, as_of), spec.currency, as_of)
    if "movers" in spec.insights:
        found += ins.mover_insights(recent, reader.present(DAILY_SALES, recent_first, as_of), spec.currency, as_of,
                                    spec.movers_dimensions)
    return found


def _as_of(context: dg.AssetExecutionContext) -> dt.date | None:
    """The day a scheduled run is for: insights stop there, even if later days exist."""
    tag = context.run.tags.get(AS_OF_TAG)
    return dt.date.fromisoformat(tag) if tag else None


def freshness(spec: DashboardSpec, reader: ReportReader, refreshed: dt.datetime) -> list[Freshness]:
    """Each report's newest day (or week), and whether it is older than the schedule's period allows
    (a day's data arrives the day after; a week's, a week after its start)."""
    found = []
    for report in spec.reports:
        if is_partitioned(report):
            newest, grain = reader.newest_day(report), 1
        else:
            table = reader.whole(report)
            newest, grain = (pd.to_datetime(table["week_start"]).max().date() if not table.empty else None), ins.WEEK
        age = (refreshed.date() - newest).days if newest else None
        stale = age is not None and age > spec.schedule.period_days + grain
        found.append(Freshness(report, newest.isoformat() if newest else "none yet", age, stale))
    return found


def _report_ins(reports: list[str]) -> dict[str, dg.AssetIn]:
    """Each report as an input the asset reads windows of (a LakeView): every partition is declared."""
    return {input_name(r): dg.AssetIn(asset_key(r), dagster_type=LakeView) for r in reports}


def _reader(reports: list[str], views: dict[str, LakeView]) -> ReportReader:
    return ReportReader({r: views[input_name(r)] for r in reports})


def dashboard_definitions(spec: DashboardSpec) -> dg.Definitions:
    """A dashboard's insight and page assets, its job over exactly those, and its schedule."""
    common = {"group_name": "dashboards", "owners": [spec.owner], "tags": {"dashboard": spec.name}}
    read_by_insights = list(spec.insight_reports())

    @dg.asset(key=insights_key(spec.name), ins=_report_ins(read_by_insights), kinds={"pandas", "parquet"},
              metadata=table_metadata(INSIGHTS),
              description=f"Insights of the '{spec.title}' dashboard: {', '.join(['kpis', *spec.insights])}.", **common)
    def dashboard_insights(context: dg.AssetExecutionContext, report_db: SqlReportStore, serving_store: ServingStore,
                           **reports: LakeView) -> dg.Output[pa.Table]:
        as_of, table = compute_insights(spec, _reader(read_by_insights, reports), _as_of(context))
        # Served as they are computed: BI reads them from SQL, the API from the serving store.
        report_db.replace_partition(INSIGHTS, spec.name, table)
        serving_store.replace_partition(INSIGHTS, spec.name, table)
        narratives = "\n".join(f"- {text}" for text in table["narrative"].to_pylist()[:15])
        return dg.Output(table, metadata={"dagster/row_count": table.num_rows, "as_of": str(as_of),
                                          "narratives": dg.MetadataValue.md(narratives or "no data yet")})

    @dg.asset(key=page_key(spec.name), ins={"insights": dg.AssetIn(insights_key(spec.name)), **_report_ins(list(spec.reports))},
              kinds={"plotly", "html"}, description=f"The '{spec.title}' dashboard page: {spec.description}", **common)
    def dashboard_page(insights: pa.Table, lake: LakeResource, **reports: LakeView) -> dg.MaterializeResult:
        reader, refreshed = _reader(list(spec.reports), reports), dt.datetime.now(dt.UTC)
        frame = insights.to_pandas()
        as_of = frame["as_of"].iloc[0] if len(frame) and frame["as_of"].iloc[0] != dt.date.min else None
        sections = [chart_section(chart, spec, reader, as_of or refreshed.date()) for chart in spec.charts]
        fresh = freshness(spec, reader, refreshed)
        currencies = (currencies_in(reader.window(DAILY_SALES, (as_of or refreshed.date()) - DAY * (RECENT_DAYS - 1),
                                                  as_of or refreshed.date()), spec.currency)
                      if DAILY_SALES in spec.reports else [])
        warnings = page_warnings(spec, fresh, currencies)
        html = render_page(spec, frame, sections, fresh, as_of, refreshed, warnings)
        lake.put_bytes(page_object_key(spec.name), html.encode())
        link = page_url(spec.name)
        return dg.MaterializeResult(metadata={
            "preview": dg.MetadataValue.md(markdown_preview(spec, frame, link)),
            "dashboard_url": dg.MetadataValue.url(link),
            "page": dg.MetadataValue.path(lake.uri(page_object_key(spec.name))),
            "page_bytes": len(html),
            "charts": sum(len(s.figures) for s in sections),
            "as_of": str(as_of),
            "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none"),
        })

    # The dashboard's own assets only: its reports are kept fresh (and published) by their own jobs.
    job = asset_job(
        dashboard_job_name(spec.name),
        selection=dg.AssetSelection.assets(page_key(spec.name), insights_key(spec.name)),
        description=f"Rebuild the '{spec.title}' dashboard's insights and page from its reports as they stand.",
        tags={"dashboard": spec.name},
    )
    return dg.Definitions(assets=with_group_defaults([dashboard_insights, dashboard_page]), jobs=[job], schedules=[_schedule(spec, job)])


def _schedule(spec: DashboardSpec, job: Any) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"dashboard_{spec.name}_schedule", job=job, cron_schedule=spec.schedule.cron, default_status=ON,
                 execution_timezone=spec.schedule.timezone, description=f"'{spec.title}' for {spec.owner}")
    def dashboard_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick_utc = context.scheduled_execution_time.astimezone(dt.UTC)
        return dg.RunRequest(tags={AS_OF_TAG: (tick_utc.date() - DAY).isoformat()})  # the last complete UTC day

    return dashboard_schedule

