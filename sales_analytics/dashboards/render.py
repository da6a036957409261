"""A dashboard as one self-contained HTML page: KPI tiles, narratives, Plotly charts and tables.

Plotly's JavaScript is inlined, so the page opens from the lake, a mail or the web app with no
network. Data never reaches the page unescaped: text goes through Jinja's autoescaping, chart data
is JSON with ``<`` escaped inside a ``type="application/json"`` script, parsed by a fixed loader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

import jinja2
import pandas as pd
import plotly
import plotly.graph_objects as go

from sales_analytics.dashboards.data import ReportReader
from sales_analytics.dashboards.insights import LABELS, PERIOD_WORDS, accuracy_daily, daily_values, fmt, fmt_change
from sales_analytics.dashboards.spec import Chart, DashboardSpec
from sales_analytics.schema import ALL_MEMBERS

# Plotly's 4.8 MB library is one static file of the web app, versioned so a browser keeps it for a year,
# not inlined in every page.
PLOTLY_PATH = f"/static/plotly-{plotly.__version__}.min.js"

DAY = dt.timedelta(days=1)


@dataclass
class Section:
    title: str
    figures: list[str] = field(default_factory=list)  # Plotly figure JSON
    table: pd.DataFrame | None = None
    note: str = ""


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    changes: list[str]


@dataclass(frozen=True)
class Freshness:
    report: str
    newest: str
    age_days: int | None
    stale: bool = False  # older than the schedule's period allows


def page_warnings(spec: DashboardSpec, freshness: list[Freshness], currencies: list[str]) -> list[str]:
    """What a reader must know before reading the numbers: stale reports and currencies left out."""
    warnings = [f"Stale data: the newest day of {f.report} is {f.newest}, {f.age_days} days before this refresh; "
                f"this page is refreshed at least every {spec.schedule.period_days} day(s)." for f in freshness if f.stale]
    others = [c for c in currencies if c != spec.currency]
    if others:
        warnings.append(f"KPIs and insights are in {spec.currency} only: sales in {', '.join(others)} are not added in "
                        "(no exchange rates are configured); charts and tables show each currency on its own.")
    return warnings


def currencies_in(sales: pd.DataFrame, first_currency: str) -> list[str]:
    """The currencies of some sales rows, the dashboard's own first."""
    found = set(sales["currency"]) if not sales.empty else set()
    return [first_currency, *sorted(found - {first_currency})] if first_currency in found else sorted(found)


def _figure(fig: go.Figure) -> str:
    fig.update_layout(margin={"l": 50, "r": 20, "t": 30, "b": 40}, height=340, template="plotly_white",
                      legend={"orientation": "h", "y": -0.2})
    return fig.to_json().replace("<", "\\u003c")  # a "</script>" inside data cannot end the script element


def chart_section(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    return CHART_BUILDERS[chart.type](chart, spec, reader, as_of)


def _trend(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    first = as_of - DAY * (chart.days - 1)
    sales = reader.window("reports/daily_sales", first, as_of)
    stored = reader.present("reports/daily_sales", first, as_of)
    section = Section(chart.title)
    for currency in currencies_in(sales, spec.currency):  # never one axis for two currencies
        daily = daily_values(sales, currency, stored).sort_values("sale_date")
        values = daily[chart.metric].astype(float)
        fig = go.Figure([go.Scatter(x=daily["sale_date"].astype(str), y=values, mode="lines+markers", name=LABELS[chart.metric]),
                         go.Scatter(x=daily["sale_date"].astype(str), y=values.rolling(7, min_periods=1).mean(), mode="lines",
                                    name="7-day average", line={"dash": "dot"})])
        fig.update_layout(title={"text": currency, "font": {"size": 13}})
        fig.update_yaxes(title=f"{LABELS[chart.metric]} ({currency})" if chart.metric in ("net_sales", "gross_sales") else None)
        section.figures.append(_figure(fig))
    if not section.figures:
        section.note = "No sales stored for these days yet."
    return section


def _breakdown(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    first = as_of - DAY * (chart.days - 1)
    sales = reader.window("reports/daily_sales", first, as_of)
    section = Section(chart.title)
    for currency in currencies_in(sales, spec.currency):
        rows = sales[(sales["dimension"] == chart.dimension) & (sales["currency"] == currency)]
        totals = rows.groupby("member")[chart.metric].sum().sort_values(ascending=False).head(chart.limit)
        fig = go.Figure(go.Bar(x=totals.values[::-1], y=[str(m) for m in totals.index[::-1]], orientation="h",
                               name=LABELS[chart.metric]))
        fig.update_layout(title={"text": currency, "font": {"size": 13}})
        section.figures.append(_figure(fig))
    if not section.figures:
        section.note = "No sales stored for these days yet."
    return section


def _store_table(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    """Stores ranked by net sales within their currency (a rank across currencies means nothing)."""
    stores = reader.window("reports/daily_store_sales", as_of - DAY * (chart.days - 1), as_of)
    if stores.empty:
        return Section(chart.title, note="No sales stored for these days yet.")
    table = stores.groupby(["currency", "store_id"]).agg(
        orders=("orders", "sum"), units_sold=("units_sold", "sum"), units_returned=("units_returned", "sum"),
        discounts=("discounts", "sum"), net_sales=("net_sales", "sum")).reset_index()
    table["returns_rate"] = (table["units_returned"] / table["units_sold"].where(table["units_sold"] > 0)).map(
        lambda r: "" if pd.isna(r) else f"{r:.1%}")
    order = {c: i for i, c in enumerate(currencies_in(table, spec.currency))}
    table = table.sort_values("net_sales", ascending=False).groupby("currency", sort=False).head(chart.limit)
    table.insert(0, "rank", table.groupby("currency").cumcount() + 1)
    table = table.sort_values(["currency", "rank"], key=lambda c: c.map(order) if c.name == "currency" else c)
    for money in ("discounts", "net_sales"):
        table[money] = [f"{currency} {v:,.2f}" for currency, v in zip(table["currency"], table[money], strict=True)]
    return Section(chart.title, table=table[["currency", "rank", *[c for c in table.columns if c not in ("currency", "rank")]]])


def _forecast_band(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    origin = reader.newest_day("ml/demand_forecast", as_of)
    if origin is None:
        return Section(chart.title, note="No forecast stored yet.")
    forecast = reader.window("ml/demand_forecast", origin, origin)
    largest = forecast.groupby("series_id")["p50"].sum().sort_values(ascending=False).head(chart.limit).index
    section = Section(chart.title, note=f"Forecast made with data up to {origin:%d %b %Y} by model "
                                        f"{forecast['model_version'].iloc[0]}.")
    for series in largest:
        rows = forecast[forecast["series_id"] == series].sort_values("target_date")
        x = rows["target_date"].astype(str)
        fig = go.Figure([
            go.Scatter(x=x, y=rows["p90"], mode="lines", line={"width": 0}, name="P90", showlegend=False),
            go.Scatter(x=x, y=rows["p10"], mode="lines", line={"width": 0}, fill="tonexty", name="P10-P90"),
            go.Scatter(x=x, y=rows["p50"], mode="lines+markers", name="P50"),
        ])
        fig.update_layout(title={"text": str(series), "font": {"size": 13}})
        section.figures.append(_figure(fig))
    return section


def _accuracy_trend(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    newest = reader.newest_day("ml/forecast_accuracy", as_of)
    if newest is None:
        return Section(chart.title, note="No forecast has been scored against actuals yet.")
    daily = accuracy_daily(reader.window("ml/forecast_accuracy", newest - DAY * (chart.days - 1), newest))
    x = daily["target_date"].astype(str)
    wape = daily["abs_error"] / daily["actual"].where(daily["actual"] > 0)
    fig = go.Figure([go.Scatter(x=x, y=wape, mode="lines+markers", name="WAPE"),
                     go.Scatter(x=x, y=daily["in_band"] / daily["points"], mode="lines+markers", name="P10-P90 coverage")])
    fig.update_yaxes(tickformat=".0%")
    return Section(chart.title, figures=[_figure(fig)])


def _sentiment_trend(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    sentiment = reader.whole("reports/review_sentiment")
    if sentiment.empty:
        return Section(chart.title, note="No reviews scored yet.")
    categories = sentiment[sentiment["product_id"] == ALL_MEMBERS].copy()
    categories["week_start"] = pd.to_datetime(categories["week_start"]).dt.date
    categories = categories[categories["week_start"] > max(categories["week_start"]) - DAY * chart.days]
    fig = go.Figure([go.Scatter(x=rows["week_start"].astype(str), y=rows["negative_share"], mode="lines+markers", name=str(category))
                     for category, rows in categories.sort_values("week_start").groupby("category")])
    fig.update_yaxes(tickformat=".0%")
    return Section(chart.title, figures=[_figure(fig)])


def _aspects(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    aspects = reader.whole("reports/review_aspects")
    if aspects.empty:
        return Section(chart.title, note="No reviews scored yet.")
    week = aspects[aspects["week_start"] == aspects["week_start"].max()]
    mentions = week.assign(negative=week["mentions"] * week["negative_share"]).groupby("aspect").agg(
        mentions=("mentions", "sum"), negative=("negative", "sum")).sort_values("mentions").tail(chart.limit)
    fig = go.Figure([go.Bar(x=mentions["mentions"] - mentions["negative"], y=list(mentions.index), orientation="h", name="not negative"),
                     go.Bar(x=mentions["negative"], y=list(mentions.index), orientation="h", name="negative")])
    fig.update_layout(barmode="stack")
    return Section(chart.title, figures=[_figure(fig)])


def _spikes_table(chart: Chart, spec: DashboardSpec, reader: ReportReader, as_of: dt.date) -> Section:
    spikes = reader.whole("reports/negative_review_spikes")
    if spikes.empty:
        return Section(chart.title, note="No product's reviews turned unusually negative.")
    table = spikes.sort_values(["week_start", "p_value"], ascending=[False, True]).head(chart.limit)
    return Section(chart.title, table=table[["week_start", "product_id", "category", "reviews", "negative_reviews",
                                             "main_aspect", "narrative"]])


CHART_BUILDERS = {"trend": _trend, "breakdown": _breakdown, "store_table": _store_table, "forecast_band": _forecast_band,
                  "accuracy_trend": _accuracy_trend, "sentiment_trend": _sentiment_trend, "aspects": _aspects,
                  "spikes_table": _spikes_table}


def kpi_tiles(insights: pd.DataFrame, currency: str) -> list[Tile]:
    """One tile per KPI: its week (the last 7 days, or the newest review week) against the week
    before and a year before, and the last day against the day before."""
    kpis = insights[insights["kind"] == "kpi"]
    tiles = []
    for metric, rows in kpis.sort_values("rank").groupby("metric", sort=False):
        by_period = {r.period: r for r in rows.itertuples()}
        main = by_period.get("week") or next(iter(by_period.values()))
        value = "n/a" if pd.isna(main.value) else fmt(metric, main.value, currency)
        changes = [f"{fmt_change(metric, r.change, None if pd.isna(r.change_pct) else r.change_pct, currency)} "
                   f"on {PERIOD_WORDS[period]}" for period, r in by_period.items() if period != "day" and not pd.isna(r.change)]
        if (day := by_period.get("day")) is not None and not pd.isna(day.value):
            changes.append(f"last day {fmt(metric, day.value, currency)}"
                           + ("" if pd.isna(day.change) else f", {fmt_change(metric, day.change, None, currency)}"))
        label = LABELS[metric] + (" (last 7 days)" if "day" in by_period else "")
        tiles.append(Tile(label, value, changes))
    return tiles


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("sales_analytics.dashboards", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("dashboard.html.j2")


def render_page(spec: DashboardSpec, insights: pd.DataFrame, sections: list[Section], freshness: list[Freshness],
                as_of: dt.date | None, refreshed: dt.datetime, warnings: list[str]) -> str:
    narratives = insights[insights["kind"] != "kpi"]  # in the order computed: each anomaly followed by its drivers
    return _template().render(
        spec=spec, as_of=as_of, warnings=warnings, refreshed=refreshed.strftime("%Y-%m-%d %H:%M UTC"), freshness=freshness,
        tiles=kpi_tiles(insights, spec.currency), narratives=list(narratives.itertuples()), sections=sections,
        figure_ids=[[f"chart-{i}-{j}" for j in range(len(s.figures))] for i, s in enumerate(sections)],
        plotly_src=PLOTLY_PATH,
    )


def markdown_preview(spec: DashboardSpec, insights: pd.DataFrame, link: str) -> str:
    """What the Dagster UI shows for the page: tiles and narratives, and where the page is."""
    lines = [f"**{spec.title}** — [open the dashboard]({link})", "", "| KPI | value | change |", "|---|---|---|"]
    lines += [f"| {t.label} | {t.value} | {'; '.join(t.changes) or '—'} |" for t in kpi_tiles(insights, spec.currency)]
    lines += ["", *[f"- {text}" for text in insights[insights["kind"] != "kpi"]["narrative"].head(12)]]
    return "\n".join(lines)

