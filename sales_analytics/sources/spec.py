"""The source spec model, its YAML loader, and the validation that gives clear errors.

A spec maps canonical columns (``sales_analytics.schema``) to the source: each canonical column is
taken ``from`` a source column (parsed with an optional ``format``, ``decimal`` separator and value
``map``), is a constant ``value``, a ``template`` over source columns (``"R{Store}"``) or an
arithmetic ``expr`` over numeric source columns (``"{Sales} / {Quantity}"``).
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sales_analytics.declarations import (
    DEFS_DIR,
    SOURCE_COMPONENT,
    attribute_problems,
    deployment_folders,
    instances,
    read_instances,
)
from sales_analytics.schema import (
    CALENDAR,
    CUSTOMERS,
    ORDER_LINES,
    PRODUCTS,
    REVIEWS,
    SIGNALS,
    STORES,
    TableSpec,
    WeekAnchor,
)

SOURCE_DIRS_ENV = "SALES_ANALYTICS_SOURCES"
TARGETS: dict[str, TableSpec] = {"order_lines": ORDER_LINES, "stores": STORES, "products": PRODUCTS, "customers": CUSTOMERS,
                                  "calendar": CALENDAR, "reviews": REVIEWS, "signals": SIGNALS}
REFERENCE_TARGETS = ("stores", "products", "customers", "calendar")  # slowly changing: every delivery is a full snapshot
# Read whole at each build, dated by folder or effective_from; reviews and signals keep each key's latest delivery.
SNAPSHOT_TARGETS = (*REFERENCE_TARGETS, "reviews", "signals")
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
ROW_NUMBER = "__row__"  # placeholder for the record number in the file (sources without a line id)
DATED_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")  # a dated folder's name: <prefix><YYYY-MM-DD>/
LANDED_AT = "source_landed_at"  # lineage column of raw rows: when their file landed (orders deliveries)
_EXPRESSION_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub,
                     ast.Constant, ast.Name, ast.Load)


class SourceSpecError(ValueError):
    """A spec that does not validate; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    from_: str | None = Field(default=None, alias="from", description="the source column it is read from")
    value: str | None = Field(default=None, description="a constant, the same on every row")
    template: str | None = Field(default=None, description='text over source columns, e.g. "R{Store}"')
    expr: str | None = Field(default=None, description='arithmetic over numeric source columns, e.g. "{Sales} / {Quantity}"')
    format: str | None = Field(default=None, description="strptime format for dates and timestamps")
    decimal: str = Field(default=".", description="decimal separator of numbers")
    map: dict[str, str] | None = Field(default=None, description="value mapping applied to the text")

    @model_validator(mode="after")
    def _one_source(self) -> ColumnMapping:
        given = [k for k in ("from_", "value", "template", "expr") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of from / value / template / expr")
        if self.expr is not None:
            check_expression(self.expr)
        return self

    def source_columns(self) -> list[str]:
        if self.from_ is not None:
            return [self.from_]
        if self.template is not None:
            return PLACEHOLDER.findall(self.template)
        if self.expr is not None:
            return PLACEHOLDER.findall(self.expr)
        return []


class CsvFormat(_Strict):
    type: Literal["csv"] = Field(description="delimited text")
    delimiter: str = Field(default=",", description="the field separator")
    quote: str = Field(default='"', description="the quote character")
    encoding: str = Field(default="utf-8", description="text encoding; a byte-order mark overrides it")
    compression: Literal["auto", "gzip", "none"] = Field(default="auto", description="auto: gzip when the bytes say so")


class JsonLinesFormat(_Strict):
    type: Literal["jsonl"] = Field(description="one JSON object per line")
    encoding: str = Field(default="utf-8", description="text encoding")
    compression: Literal["auto", "gzip", "none"] = Field(default="auto", description="auto: gzip when the bytes say so")


class ParquetFormat(_Strict):
    type: Literal["parquet"] = Field(description="Apache Parquet files")


class ExcelFormat(_Strict):
    type: Literal["excel"] = Field(description="an .xlsx workbook")
    sheet: str | int = Field(default=0, description="the sheet read, by name or position")


FileFormat = CsvFormat | JsonLinesFormat | ParquetFormat | ExcelFormat


class Changes(_Strict):
    """How a source marks cancellations, returns and corrections (line kinds of ``sales_analytics.metrics``)."""

    cancellation_prefix: dict[str, str] | None = Field(
        default=None, description="{column: prefix}: a document whose id starts with prefix (a C invoice, a void "
                                  "receipt) cancels an earlier sale: its lines are cancellation lines")
    negative_quantity: Literal["invalid", "refund", "cancellation"] = Field(
        default="invalid", description="what a line with a negative quantity is: a refund of that many units, a "
                                       "cancellation, or invalid (quarantined)")
    negative_price: Literal["invalid", "refund"] = Field(
        default="invalid", description="what a line with a negative unit price is: a refund of that value (a period's "
                                       "aggregate whose returns exceed its sales), or invalid (quarantined)")
    original_order: str | None = Field(
        default=None, description="source column naming the order a line gives back: such a line is a refund "
                                  "(or a cancellation where the prefix says so)")
    delivery_replaces_order: bool = Field(
        default=False, description="each delivery of an order carries all its lines: a later file's lines of an "
                                   "order replace the earlier file's, so lines left out of a correction are gone")


class SqlExtract(_Strict):
    """A database table (the on-prem POS role) extracted incrementally into the landing zone.

    Rows come in ``watermark`` order with ``tiebreak`` columns making the order total, so batches
    resume exactly where the last one stopped even when many rows share a watermark value.
    """

    url_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="environment variable holding the SQLAlchemy URL")
    table: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$", description="[schema.]table")
    watermark: str = Field(description="column that grows whenever a row changes (e.g. updated_at)")
    tiebreak: list[str] = Field(min_length=1, description="key columns ordering rows that share a watermark")
    batch_rows: int = Field(default=50_000, ge=1, le=1_000_000, description="rows per landed Parquet batch")
    max_batches_per_run: int = Field(default=20, ge=1, description="batches one extraction run lands at most")


class SourceSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the source's name: its landing asset is landing/<name>")
    description: str = Field(description="what the source is, shown in the UI")
    kind: Literal["files", "sql"] = Field(default="files", description="files land in S3; sql: the platform extracts a table")
    extract: SqlExtract | None = Field(default=None, description="for kind sql: the table to extract")
    target: Literal["order_lines", "stores", "products", "customers", "calendar", "reviews", "signals"] = Field(
        default="order_lines", description="the canonical table its rows go to")
    effective_from: dt.date | None = Field(
        default=None, description="reference data without dated folders: the date its one snapshot holds from")
    prefix: str = Field(description="landing-zone folder the source drops into, ending in /")
    dated_folders: bool = Field(default=False, description="objects land under <prefix><YYYY-MM-DD>/")
    lookback_days: int = Field(default=3, ge=0, le=60,
                               description="dated folders the landing sensor lists: today's and this many before")
    poll_seconds: int = Field(default=60, ge=5, le=3600,
                              description="how often the landing sensor lists those folders: the longest a new file waits "
                                          "to be noticed (on S3, each look is a LIST request per folder)")
    format: FileFormat = Field(discriminator="type", description="how the files are written")
    timezone: str = Field(default="UTC", description="zone of timestamps and dates given without one")
    week_anchor: WeekAnchor | None = Field(
        default=None, description="for sales reported by week, not by day: the weekday each week is dated by (Walmart: "
                                  "FRI). A line dated another day is quarantined; the demand model (grain: source) "
                                  "models the series by that week")
    source_columns: list[str] = Field(description="the header the source is expected to send")
    columns: dict[str, ColumnMapping] = Field(description="each canonical column: from, value, template or expr")
    changes: Changes = Field(default=Changes(), description="how the source marks cancellations, refunds and corrections")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not prefix.startswith("landing/") or not prefix.endswith("/") or ".." in prefix:
            raise ValueError("must be a folder under landing/, ending in '/'")
        return prefix

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {zone!r}") from err
        return zone

    @model_validator(mode="after")
    def _sql_lands_as_parquet(self) -> SourceSpec:
        if (self.kind == "sql") != (self.extract is not None):
            raise ValueError("kind sql needs an extract section, and only kind sql has one")
        if self.kind == "sql" and (self.format.type != "parquet" or not self.dated_folders):
            raise ValueError("a sql source lands its batches as parquet in dated folders")
        if self.extract and not {self.extract.watermark, *self.extract.tiebreak} <= set(self.source_columns):
            raise ValueError("extract.watermark and extract.tiebreak must be in source_columns")
        return self

    @model_validator(mode="after")
    def _weeks_are_sales(self) -> SourceSpec:
        if self.week_anchor is not None and self.target != "order_lines":
            raise ValueError("week_anchor is for sales (target order_lines) reported by week")
        return self

    @model_validator(mode="after")
    def _reference_snapshots_are_dated(self) -> SourceSpec:
        if self.target in SNAPSHOT_TARGETS and not self.dated_folders and self.effective_from is None:
            raise ValueError(f"{self.target} needs dated_folders or effective_from: when does a snapshot hold?")
        if self.target not in SNAPSHOT_TARGETS and self.effective_from is not None:
            raise ValueError("effective_from is for reference data and reviews")
        return self

    @model_validator(mode="after")
    def _complete(self) -> SourceSpec:
        table = TARGETS[self.target]
        derived = {"order_date", "source", "source_file", "updated_at", "status"} if self.target == "order_lines" else set()
        missing = [c.name for c in table.columns if not c.nullable and c.name not in self.columns and c.name not in derived]
        if missing:
            raise ValueError(f"no mapping for required {self.target} columns {missing}")
        unknown = sorted(set(self.columns) - set(table.column_names))
        if unknown:
            raise ValueError(f"{unknown} are not {self.target} columns")
        referenced = {c for m in self.columns.values() for c in m.source_columns()}
        referenced |= {*(self.changes.cancellation_prefix or {}), *([self.changes.original_order] if self.changes.original_order else [])}
        undeclared = sorted(referenced - set(self.source_columns) - {ROW_NUMBER})
        if undeclared:
            raise ValueError(f"mapping uses {undeclared}, which are not in source_columns")
        return self

    @property
    def table(self) -> TableSpec:
        return TARGETS[self.target]

    def required_source_columns(self) -> set[str]:
        """Source columns without which a file cannot produce a valid row."""
        return {c for name, m in self.columns.items() if not self.table.column(name).nullable for c in m.source_columns()}


def check_expression(expr: str) -> None:
    """Only + - * /, numbers and {columns}: an expression is arithmetic, never code."""
    names = PLACEHOLDER.findall(expr)
    source = PLACEHOLDER.sub(lambda m: f"_c{names.index(m.group(1))}", expr)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"expression {expr!r} does not parse: {err.msg}") from err
    for node in ast.walk(tree):
        if not isinstance(node, _EXPRESSION_NODES) or (isinstance(node, ast.Constant) and not isinstance(node.value, int | float)):
            raise ValueError(f"expression {expr!r}: only + - * /, numbers and {{columns}} are allowed")  # noqa: TRY004 - pydantic reports ValueError


def load_spec(path: Path) -> SourceSpec:
    """The source declared by the component instance in ``path`` (a ``defs.yaml``)."""
    declared = read_instances(path, SOURCE_COMPONENT, SourceSpecError)
    if len(declared) != 1:
        raise SourceSpecError(f"{path}: expected one instance of {SOURCE_COMPONENT}, found {len(declared)}")
    return validate_spec(declared[0], path)


def validate_spec(attributes: object, path: Path) -> SourceSpec:
    try:
        return SourceSpec.model_validate(attributes)
    except ValidationError as err:
        problems = attribute_problems(err)
        raise SourceSpecError(f"{path}: {problems}") from None


def check_spec_set(declared: list[tuple[Path, SourceSpec]]) -> None:
    """Names unique, and no landing prefix inside another's (a file would belong to two sources)."""
    names = [s.name for _, s in declared]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceSpecError(f"source names used twice: {duplicates}")
    prefixes = sorted(s.prefix for _, s in declared)
    for outer, inner in pairwise(prefixes):
        if inner.startswith(outer):
            raise SourceSpecError(f"landing prefixes overlap: {outer} contains {inner}")


def spec_dirs() -> list[Path]:
    """The project's ``defs`` folder, then any folders a deployment adds (``SALES_ANALYTICS_SOURCES``,
    separated by ``os.pathsep``): a deployment adds a source without touching the package."""
    return [DEFS_DIR, *deployment_folders(SOURCE_DIRS_ENV, SourceSpecError)]


@cache
def _declared() -> tuple[tuple[Path, SourceSpec], ...]:
    declared = [(path, validate_spec(attributes, path))
                for path, attributes in instances(SOURCE_COMPONENT, spec_dirs(), SourceSpecError)]
    check_spec_set(declared)
    return tuple(declared)


def file_sources() -> tuple[SourceSpec, ...]:
    """Every declared source: the package's specs and the deployment's."""
    return tuple(spec for _, spec in _declared())


def spec_file(name: str) -> Path:
    """The YAML file that declares source ``name``."""
    return next(path for path, spec in _declared() if spec.name == name)


def order_sources() -> tuple[SourceSpec, ...]:
    """File sources of order lines (SQL sources included: they land files too)."""
    return tuple(s for s in file_sources() if s.target == "order_lines")


def reference_sources(target: str) -> tuple[SourceSpec, ...]:
    return tuple(s for s in file_sources() if s.target == target)


def sql_sources() -> tuple[SourceSpec, ...]:
    return tuple(s for s in file_sources() if s.extract is not None)


def source_named(name: str) -> SourceSpec:
    for spec in file_sources():
        if spec.name == name:
            return spec
    raise KeyError(f"no source spec named {name!r}")
