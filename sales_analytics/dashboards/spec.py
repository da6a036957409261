"""Dashboard declarations: component instances (``defs/dashboards/<name>/defs.yaml``), validated into ``DashboardSpec``.

A dashboard names its owner, its schedule (cron and IANA timezone), the reports it reads, its KPI
tiles, its insights and its charts. Adding a dashboard is adding an instance (``dg scaffold defs``): the asset factory gives
it insight and page assets, a job over exactly those and the reports, and a schedule.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sales_analytics.declarations import (
    DASHBOARD_COMPONENT,
    DEFS_DIR,
    attribute_problems,
    deployment_folders,
    instances,
    read_instances,
)
from sales_analytics.schema import DIMENSIONS

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
    cron: str = Field(description="5-field cron schedule of refreshes")
    timezone: str = Field(default="UTC", description="IANA timezone the cron schedule is read in")

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
    type: ChartType = Field(description="the kind of chart")
    title: str = Field(min_length=1, max_length=120, description="shown above the chart")
    metric: SalesMetric = Field(default="net_sales", description="the measure drawn")
    dimension: Dimension | None = Field(default=None, description="what a breakdown splits by")
    days: int = Field(default=28, ge=1, le=371, description="how far back the chart reaches")
    limit: int = Field(default=10, ge=1, le=50, description="rows or series shown")

    @model_validator(mode="after")
    def _dimension(self) -> Chart:
        if (self.type == "breakdown") != (self.dimension is not None):
            raise ValueError("a breakdown chart needs a dimension; other charts take none")
        return self


class DashboardSpec(_Strict):
    name: str = Field(description="the instance folder's name: assets under dashboards/<name>")
    title: str = Field(min_length=1, max_length=120, description="the page's heading")
    owner: str = Field(pattern=r"^(team:[a-z0-9_-]+|[^@\s]+@[^@\s]+\.[a-z]+)$", description="team:<name> or an email")
    description: str = Field(default="", description="what the page answers, for whom")
    schedule: Schedule = Field(description="when the page is rebuilt")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="sales KPIs are in this currency's stores")
    reports: tuple[str, ...] = Field(min_length=1, description=f"the reports it reads, of {list(REPORTS)}")
    kpis: tuple[str, ...] = Field(default=(), description=f"KPI tiles, of {list(KPIS)}")
    insights: tuple[InsightKind, ...] = Field(default=(), description="written insights above the charts")
    movers_dimensions: tuple[Dimension, ...] = Field(default=("category", "product"), description="where movers are looked for")
    charts: tuple[Chart, ...] = Field(min_length=1, description="the page's charts, in order")

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
    """The dashboard declared by the component instance in ``path`` (``<name>/defs.yaml``)."""
    declared = read_instances(path, DASHBOARD_COMPONENT, DashboardSpecError)
    if len(declared) != 1:
        raise DashboardSpecError(f"{_where(path)}: expected one instance of {DASHBOARD_COMPONENT}, found {len(declared)}")
    return validate_spec(declared[0], path)


def validate_spec(attributes: object, path: Path) -> DashboardSpec:
    try:
        spec = DashboardSpec.model_validate(attributes)
    except ValidationError as err:
        problems = attribute_problems(err)
        raise DashboardSpecError(f"{_where(path)}: {problems}") from None
    check_declared_in(spec, path)
    return spec


def check_declared_in(spec: DashboardSpec, path: Path) -> None:
    """A dashboard's name is its instance folder's: the page, assets and job are found by it."""
    if spec.name != path.parent.name:
        raise DashboardSpecError(f"{_where(path)}: name {spec.name!r} must match its folder's name")


def _where(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def spec_dirs() -> list[Path]:
    """The project's ``defs`` folder, then any folders a deployment adds (``SALES_ANALYTICS_DASHBOARDS``,
    separated by ``os.pathsep``): a team adds a dashboard without touching the package."""
    return [DEFS_DIR, *deployment_folders(EXTRA_DIRS_ENV, DashboardSpecError)]


@cache
def _declared() -> tuple[tuple[Path, DashboardSpec], ...]:
    declared: dict[str, tuple[Path, DashboardSpec]] = {}
    for path, attributes in instances(DASHBOARD_COMPONENT, spec_dirs(), DashboardSpecError):
        spec = validate_spec(attributes, path)
        if spec.name in declared:
            raise DashboardSpecError(f"{path}: a dashboard named {spec.name!r} is already declared in {declared[spec.name][0]}")
        declared[spec.name] = (path, spec)
    return tuple(declared.values())


def dashboard_specs() -> tuple[DashboardSpec, ...]:
    """Every declared dashboard: the project's and the deployment's."""
    return tuple(spec for _, spec in _declared())


def declaration_file(name: str) -> Path:
    """The ``defs.yaml`` that declares dashboard ``name``."""
    return next(path for path, spec in _declared() if spec.name == name)
