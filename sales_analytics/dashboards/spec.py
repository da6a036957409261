"""Dashboard declarations: YAML files under ``specs/``, validated into ``DashboardSpec``.

A dashboard names its owner, its schedule (cron and IANA timezone), the reports it reads, its KPI
tiles, its insights and its charts. Adding a dashboard is adding a file: the asset factory gives
it insight and page assets, a job over exactly those and the reports, and a schedule.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sales_analytics.schema import DIMENSIONS

SPEC_DIR = Path(__file__).parent / "specs"
EXTRA_DIRS_ENV = "SALES_ANALYTICS_DASHBOARDS"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

# Reports a dashboard can read, by asset key. Each is read as a bounded window, never whole history.
DAILY_SALES = "reports/daily_sales"
DAILY_STORE_SALES = "reports/daily_store_sales"
DEMAND_FORECAST = "ml/demand_forecast"
FORECAST_ACCURACY = "ml/forecast_accuracy"
REVIEW_SENTIMENT = "reports/review_sentiment"
REVIEW_ASPECTS = "reports/review_aspects"
NEGATIVE_REVIEW_SPIKES = "reports/negative_review_spikes"
REPORTS = (DAILY_SALES, DAILY_STORE_SALES, DEMAND_FORECAST, FORECAST_ACCURACY, REVIEW_SENTIMENT, REVIEW_ASPECTS,
           NEGATIVE_REVIEW_SPIKES)

# KPI tile -> the report it is computed from.
KPIS = {
    "net_sales": DAILY_SALES, "orders": DAILY_SALES, "units_sold": DAILY_SALES, "average_basket": DAILY_SALES,
    "returns_rate": DAILY_SALES, "margin_rate": DAILY_SALES, "forecast_wape": FORECAST_ACCURACY, "forecast_coverage": FORECAST_ACCURACY,
    "reviews": REVIEW_SENTIMENT, "negative_share": REVIEW_SENTIMENT,
}
# Insight kind -> the reports it reads.
INSIGHTS = {
    "anomalies": (DAILY_SALES,),
    "movers": (DAILY_SALES,),
    "forecast_misses": (FORECAST_ACCURACY,),
    "review_shifts": (REVIEW_SENTIMENT, NEGATIVE_REVIEW_SPIKES),
}
# Chart type -> the report it draws.
CHARTS = {
    "trend": DAILY_SALES, "breakdown": DAILY_SALES, "store_table": DAILY_STORE_SALES,
    "forecast_band": DEMAND_FORECAST, "accuracy_trend": FORECAST_ACCURACY,
    "sentiment_trend": REVIEW_SENTIMENT, "aspects": REVIEW_ASPECTS, "spikes_table": NEGATIVE_REVIEW_SPIKES,
}
SALES_METRICS = ("net_sales", "orders", "units_sold", "units_returned", "gross_sales", "discounts")
# The allowed values of each declared field, derived from the tables above.
ChartType = Literal[tuple(CHARTS)]  # type: ignore[valid-type]
InsightKind = Literal[tuple(INSIGHTS)]  # type: ignore[valid-type]
SalesMetric = Literal[SALES_METRICS]  # type: ignore[valid-type]
Dimension = Literal[tuple(DIMENSIONS)]  # type: ignore[valid-type]


def dashboard_job_name(name: str) -> str:
    """The job that builds a dashboard's insights and page."""
    return f"dashboard_{name}"


def page_object_key(name: str) -> str:
    """Where a dashboard's rendered page lives in the lake (the web app serves it from there)."""
    return f"dashboards/{name}/index.html"


class DashboardSpecError(ValueError):
    """A declaration that does not validate; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Strict):
    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:  # Dagster's own check, so a declaration fails here rather than when the schedule is built
            dg.ScheduleDefinition(name="validate", cron_schedule=value, job_name="validate")
        except dg.DagsterInvalidDefinitionError as err:
            raise ValueError(f"not a 5-field cron schedule: {value!r}") from err
        return value

    @property
    def period_days(self) -> int:
        """The longest wait between two runs, in whole days: a page is stale when its data is older."""
        day_of_month, month, weekdays = self.cron.split()[2:5]
        if day_of_month != "*" or month != "*":
            return 31
        days = sorted(_weekdays(weekdays))
        return max((later - earlier) % 7 or 7 for earlier, later in zip(days, [*days[1:], days[0]], strict=True))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA timezone {value!r}") from err
        return value


WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> set[int]:
    """The days of week (0 = Sunday) a cron day-of-week field names: *, lists, ranges, steps, names."""
    if field == "*":
        return set(range(7))
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        ends = [WEEKDAY_NAMES.index(e[:3]) if e[:3] in WEEKDAY_NAMES else int(e) for e in span.split("-")] if span != "*" else [0, 6]
        days |= {d % 7 for d in range(ends[0], ends[-1] + 1, int(step or 1))}
    return days


class Chart(_Strict):
    type: ChartType
    title: str = Field(min_length=1, max_length=120)
    metric: SalesMetric = "net_sales"
    dimension: Dimension | None = None
    days: int = Field(default=28, ge=1, le=371, description="how far back the chart reaches")
    limit: int = Field(default=10, ge=1, le=50, description="rows or series shown")

    @model_validator(mode="after")
    def _dimension(self) -> Chart:
        if (self.type == "breakdown") != (self.dimension is not None):
            raise ValueError("a breakdown chart needs a dimension; other charts take none")
        return self


class DashboardSpec(_Strict):
    name: str
    title: str = Field(min_length=1, max_length=120)
    owner: str = Field(pattern=r"^(team:[a-z0-9_-]+|[^@\s]+@[^@\s]+\.[a-z]+)$", description="team:<name> or an email")
    description: str = ""
    schedule: Schedule
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="sales KPIs are in this currency's stores")
    reports: tuple[str, ...] = Field(min_length=1)
    kpis: tuple[str, ...] = ()
    insights: tuple[InsightKind, ...] = ()
    movers_dimensions: tuple[Dimension, ...] = ("category", "product")
    charts: tuple[Chart, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r}: lower-case letters, digits and _ (2-41), starting with a letter")
        return value

    @model_validator(mode="after")
    def _references(self) -> DashboardSpec:
        unknown = [r for r in self.reports if r not in REPORTS]
        if unknown:
            raise ValueError(f"unknown reports {unknown}; known: {list(REPORTS)}")
        unknown_kpis = [k for k in self.kpis if k not in KPIS]
        if unknown_kpis:
            raise ValueError(f"unknown kpis {unknown_kpis}; known: {list(KPIS)}")
        needed = {f"kpi {k}": KPIS[k] for k in self.kpis}
        needed |= {f"insight {i}": r for i in self.insights for r in INSIGHTS[i]}
        needed |= {f"chart {c.title!r}": CHARTS[c.type] for c in self.charts}
        missing = sorted(f"{what} reads {report}" for what, report in needed.items() if report not in self.reports)
        if missing:
            raise ValueError(f"not in reports: {'; '.join(missing)}")
        unused = sorted(set(self.reports) - set(needed.values()))
        if unused:
            raise ValueError(f"reports {unused} are listed but nothing reads them")
        return self


    def insight_reports(self) -> tuple[str, ...]:
        """The reports its KPIs and insights read (charts may read more)."""
        needed = {KPIS[k] for k in self.kpis} | {r for i in self.insights for r in INSIGHTS[i]}
        return tuple(r for r in self.reports if r in needed)


def load_spec(path: Path) -> DashboardSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DashboardSpecError(f"{path.name}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise DashboardSpecError(f"{path.name}: expected a mapping at the top level")
    try:
        spec = DashboardSpec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'dashboard'}: {e['msg']}" for e in err.errors())
        raise DashboardSpecError(f"{path.name}: {problems}") from err
    if spec.name != path.stem:
        raise DashboardSpecError(f"{path.name}: name {spec.name!r} must match the file name")
    return spec


def spec_dirs() -> list[Path]:
    """The packaged declarations, then any folders a deployment adds (``SALES_ANALYTICS_DASHBOARDS``,
    separated by ``os.pathsep``): a team adds a dashboard without touching the package."""
    extra = [Path(p) for p in os.environ.get(EXTRA_DIRS_ENV, "").split(os.pathsep) if p]
    return [SPEC_DIR, *extra]


@cache
def dashboard_specs() -> tuple[DashboardSpec, ...]:
    specs: dict[str, DashboardSpec] = {}
    for folder in spec_dirs():
        if not folder.is_dir():
            raise DashboardSpecError(f"{EXTRA_DIRS_ENV}: {folder} is not a folder")
        for path in sorted(folder.glob("*.yaml")):
            spec = load_spec(path)
            if spec.name in specs:
                raise DashboardSpecError(f"{path}: a dashboard named {spec.name!r} is already declared")
            specs[spec.name] = spec
    return tuple(specs.values())
