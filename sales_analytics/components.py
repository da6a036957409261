"""The project's component types: a source and a dashboard, each declared by a ``defs.yaml``.

``dg list components`` documents their fields; ``dg scaffold defs sales_analytics.components.SourceComponent
sources/<name>`` (or ``DashboardComponent dashboards/<name>``) starts an instance that already passes
``dg check defs``. The project's instances live under ``sales_analytics/defs/``; a deployment's own under
the folders it names in ``SALES_ANALYTICS_SOURCES`` and ``SALES_ANALYTICS_DASHBOARDS``.
"""

import textwrap
from pathlib import Path
from typing import Any, ClassVar, Self

import dagster as dg
from pydantic import BaseModel

from sales_analytics.catalog import declaration_reference
from sales_analytics.dashboards.assets import dashboard_definitions
from sales_analytics.dashboards.spec import DashboardSpec, check_declared_in, dashboard_specs, declaration_file
from sales_analytics.declarations import DEFS_DIR, INSTANCE_FILE
from sales_analytics.groups import with_group_defaults
from sales_analytics.ingest.assets import extraction_asset, landing_spec
from sales_analytics.jobs import extract_job
from sales_analytics.sensors import landing_sensor, watermark_sensor
from sales_analytics.sources.spec import SourceSpec, file_sources, spec_file


def source_definitions(spec: SourceSpec) -> dg.Definitions:
    """A source's landing asset and the sensor that ingests what lands; a database source's
    extraction asset, its job and the sensor watching its watermark."""
    landing = landing_sensor(spec)
    if spec.extract is None:
        return dg.Definitions(assets=with_group_defaults([landing_spec(spec)]), sensors=[landing])
    job = extract_job(spec)
    return dg.Definitions(assets=with_group_defaults([extraction_asset(spec)]), jobs=[job],
                          sensors=[landing, watermark_sensor(spec, job.name)])


class SourceScaffolder(dg.Scaffolder):
    """A CSV source of order lines whose columns carry the canonical names: valid as scaffolded, then edited."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name
        _write_instance(request, f"""\
            # A source: where its files land, their format, and how their columns map to the canonical
            # table (`dg list components` lists every field). Check with `dg check defs`.
            name: {name}
            description: "Order lines exported by ... (one CSV a day)."
            prefix: landing/{name}/
            dated_folders: true  # files land under landing/{name}/YYYY-MM-DD/
            format: {{type: csv, delimiter: ","}}
            timezone: UTC
            source_columns: [order_id, line_no, order_ts, store_id, product_id, quantity, unit_price, currency]
            columns:
              order_id: {{from: order_id}}
              line_no: {{from: line_no}}
              order_ts: {{from: order_ts}}  # ISO 8601; else add format: "%d.%m.%Y %H:%M"
              store_id: {{from: store_id}}
              channel: {{value: store}}
              product_id: {{from: product_id}}
              quantity: {{from: quantity}}
              unit_price: {{from: unit_price}}
              discount: {{value: "0"}}
              currency: {{from: currency}}
            changes: {{negative_quantity: refund}}
            """)


class DeclaredComponent(dg.Component):
    """A component whose attributes are a declaration (a spec model), kept as ``self.spec``."""

    model: ClassVar[type[BaseModel]]

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return cls.model

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> Self:
        declared_in = context.path / INSTANCE_FILE
        if not isinstance(attributes, cls.model):
            raise TypeError(f"{declared_in}: attributes: the {cls.model.__name__} is missing")
        cls.check_declared_in(attributes, declared_in)
        return cls(attributes)

    @classmethod
    def check_declared_in(cls, spec: Any, path: Path) -> None:
        """Rules that need the declaring file; none by default."""


@dg.scaffold_with(SourceScaffolder)
class SourceComponent(DeclaredComponent):
    """A source of sales or reference data: where its files land in S3 (or the database table the
    platform extracts), their format, and how their columns map to the canonical table.

    Builds the source's landing asset and a sensor that ingests each new or changed file exactly once;
    for a database source, the extraction asset, its job and a sensor on its watermark column.
    """

    model = SourceSpec

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return source_definitions(self.spec)


class DashboardScaffolder(dg.Scaffolder):
    """A daily sales dashboard with one KPI and one chart: valid as scaffolded, then edited."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name
        _write_instance(request, f"""\
            # A dashboard: its owner, schedule, the reports it reads, KPI tiles, insights and charts
            # (`dg list components` lists every field). Check with `dg check defs`.
            name: {name}
            title: {name.replace("_", " ").capitalize()}
            owner: team:analytics
            description: What this page answers, for whom.
            schedule: {{cron: "0 7 * * *", timezone: UTC}}
            currency: EUR
            reports: [reports/daily_sales]
            kpis: [net_sales, orders]
            insights: [movers]
            charts:
              - {{type: trend, title: Net sales per day, metric: net_sales, days: 28}}
            """)


@dg.scaffold_with(DashboardScaffolder)
class DashboardComponent(DeclaredComponent):
    """A dashboard declared, not coded: its owner, schedule (cron and IANA timezone), the reports it
    reads, its KPI tiles, insights and charts, in one currency.

    Builds the dashboard's insights asset (also served from SQL and the serving store), its HTML page,
    a job over exactly those two, and its schedule. The reports it reads are built by their own jobs.
    """

    model = DashboardSpec

    @classmethod
    def check_declared_in(cls, spec: Any, path: Path) -> None:
        check_declared_in(spec, path)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return dashboard_definitions(self.spec)


def _write_instance(request: dg.ScaffoldRequest, attributes: str) -> None:
    request.target_path.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(textwrap.dedent(attributes), "  ")
    (request.target_path / INSTANCE_FILE).write_text(f"type: {request.type_name}\n\nattributes:\n{body}")


def deployment_definitions() -> dg.Definitions:
    """The instances in a deployment's own folders, built as ``dg`` builds the project's and linked
    to the files that declare them."""
    built = [_declared_in(source_definitions(spec), spec_file(spec.name))
             for spec in file_sources() if not spec_file(spec.name).is_relative_to(DEFS_DIR)]
    built += [_declared_in(dashboard_definitions(spec), declaration_file(spec.name))
              for spec in dashboard_specs() if not declaration_file(spec.name).is_relative_to(DEFS_DIR)]
    return dg.Definitions.merge(*built)


def _declared_in(defs: dg.Definitions, path: Path) -> dg.Definitions:
    reference: dict[str, Any] = declaration_reference(path)
    return defs.map_asset_specs(func=lambda spec: spec.merge_attributes(metadata=reference))
