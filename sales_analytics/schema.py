"""The canonical schema: every table's names, types, keys and partitioning, defined once.

The lake (Arrow/Parquet), the asset checks, the SQL report store and the DynamoDB serving store
all derive their layouts from these specs, so a column is added in exactly one place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import pyarrow as pa

from sales_analytics.metrics import COST_MEASURES, LINE_STATUSES, MEASURES

# Logical types, mapped to Arrow here and to SQL / DynamoDB in the stores.
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in ARROW_TYPES:
            raise ValueError(f"column {self.name!r}: unknown type {self.type!r}")


SORT_KEY_SEPARATOR = "#"


@dataclass(frozen=True)
class ServingKey:
    """DynamoDB key schema: the item's partition (hash) key column and sort (range) key columns.

    A sort key over several columns is one attribute named and valued by joining them with ``#``
    (``target_date#origin_date`` = ``2026-12-01#2026-11-28``): each combination is its own item,
    and a query over a leading column's range still works on the string.
    """

    partition_key: str
    sort_columns: tuple[str, ...]

    @property
    def sort_key(self) -> str:
        return SORT_KEY_SEPARATOR.join(self.sort_columns)


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_column: str | None = None
    serving_key: ServingKey | None = None
    description: str = ""
    indexes: tuple[tuple[str, ...], ...] = ()  # SQL indexes beyond the key and partition column, for BI filters
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.columns}
        object.__setattr__(self, "_by_name", by_name)
        referenced = [*self.key, *([self.partition_column] if self.partition_column else [])]
        if self.serving_key:
            referenced += [self.serving_key.partition_key, *self.serving_key.sort_columns]
        referenced += [name for index in self.indexes for name in index]
        unknown = [name for name in referenced if name not in by_name]
        if unknown:
            raise ValueError(f"table {self.name!r}: unknown columns {unknown}")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return self._by_name[name]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns]
        )

    def empty_table(self) -> pa.Table:
        return self.arrow_schema().empty_table()

    def partition_value(self, partition_key: str) -> Any:
        """The partition column's value for a Dagster partition key."""
        if self.partition_column is None:
            raise ValueError(f"{self.name} is not partitioned")
        return dt.date.fromisoformat(partition_key) if self.column(self.partition_column).type == "date" else partition_key


def _cols(*specs: tuple) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


# The sales measures' columns, described by their one definition in ``sales_analytics.metrics``.
_MEASURE_COLUMNS = tuple(Column(name, "int64" if name in ("orders", "units_sold", "units_returned") else "float64", False,
                                definition) for name, definition in MEASURES.items())
_COST_COLUMNS = tuple(Column(name, "float64", True, definition) for name, definition in COST_MEASURES.items())


ORDER_LINES = TableSpec(
    name="order_lines",
    description="One row per order line from every sales source; the fact table.",
    columns=_cols(
        ("source", "string", False, "source system that produced the line"),
        ("order_id", "string", False, "order identifier within the source"),
        ("line_no", "int64", False, "line number within the order"),
        ("order_ts", "timestamp", False, "when the order was placed (UTC)"),
        ("order_date", "date", False, "UTC calendar date of order_ts; the partition"),
        ("store_id", "string", False),
        ("channel", "string", False, "store or online"),
        ("product_id", "string", False),
        ("customer_id", "string", True),
        ("quantity", "int64", False),
        ("unit_price", "float64", False),
        ("discount", "float64", False, "fraction of the line's list value, 0..1"),
        ("currency", "string", False, "ISO 4217"),
        ("status", "string", False, "sold, returned, cancelled, refund or cancellation (see sales_analytics.metrics)"),
        ("updated_at", "timestamp", False, "last change in the source; the latest wins"),
        ("source_file", "string", False, "landing object the current version came from"),
    ),
    key=("source", "order_id", "line_no"),
    partition_column="order_date",
)

ORDER_STATUSES = LINE_STATUSES

# What a snapshot-built table stores beside its spec's columns: a reference table every version
# with when it held (SCD type 2); reviews and signals each key's latest delivery.
HISTORY_LINEAGE = _cols(
    ("valid_from", "date", False, "the first day this version holds (its snapshot's day)"),
    ("valid_to", "date", True, "the day the next version, or the key's closing, starts; null while current"),
    ("is_current", "bool", False, "the newest version of a key still listed"),
    ("source", "string", False, "the source whose snapshot it came from"),
    ("source_file", "string", False, "the snapshot file"),
)
DELIVERY_LINEAGE = _cols(
    ("source", "string", False, "the source that delivered it"),
    ("source_file", "string", False, "the file it came from"),
    ("delivered_on", "date", False, "the day of that delivery"),
)


def with_lineage(spec: TableSpec, lineage: tuple[Column, ...]) -> TableSpec:
    """A table spec as stored by a snapshot-built asset: its columns, then the lineage columns."""
    return replace(spec, columns=(*spec.columns, *lineage))


CHANNELS = ("store", "online")
# A source that reports weeks dates each by the weekday it ends on (Walmart: FRI), Monday first.
WeekAnchor = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WEEKDAYS: tuple[str, ...] = get_args(WeekAnchor)

STORES = TableSpec(
    name="stores",
    columns=_cols(
        ("store_id", "string", False),
        ("name", "string", False),
        ("region", "string", False),
        ("city", "string", True),
        ("format", "string", False, "hypermarket, supermarket, express, online, or the source's own type"),
        ("currency", "string", False),
        ("opened", "date", True),
        ("size", "float64", True, ("the store's size in the source's unit (selling area, Walmart's square feet): "
                                  "the demand model's static covariate")),
    ),
    key=("store_id",),
)

PRODUCTS = TableSpec(
    name="products",
    columns=_cols(
        ("product_id", "string", False),
        ("name", "string", True),
        ("category", "string", False),
        ("brand", "string", True),
        ("price", "float64", True, "list price, where the source has one"),
        ("unit_cost", "float64", True, "what a unit costs the business, where the source has it: margins need it"),
    ),
    key=("product_id",),
)

CUSTOMERS = TableSpec(
    name="customers",
    columns=_cols(
        ("customer_id", "string", False),
        ("region", "string", False),
        ("segment", "string", False),
        ("joined", "date", False),
    ),
    key=("customer_id",),
)

CALENDAR = TableSpec(
    name="calendar",
    columns=_cols(
        ("date", "date", False),
        ("is_holiday", "bool", False),
        ("holiday_name", "string", True),
        ("is_promo_week", "bool", False),
    ),
    key=("date",),
)

SIGNALS = TableSpec(
    name="signals",
    description="Exogenous signals a source provides (temperature, fuel price, markdowns, CPI...): one value per "
                "day, signal and store, or for every store, past and planned. A weekly source dates a week's value by "
                "its anchor day. The demand model uses each as a feature known ahead, a store's own where it has one.",
    columns=_cols(
        ("date", "date", False),
        ("store_id", "string", True, "the store the value is for; empty: every store (a national signal)"),
        ("signal", "string", False, "the signal's name, e.g. temperature"),
        ("value", "float64", False),
    ),
    key=("date", "store_id", "signal"),
)

REVIEWS = TableSpec(
    name="reviews",
    description="Customer reviews with their rating: the input of review NLP.",
    columns=_cols(
        ("review_id", "string", False),
        ("product_id", "string", False),
        ("rating", "int64", False, "1 to 5 stars"),
        ("title", "string", True),
        ("text", "string", True),
        ("ts", "timestamp", True, "when it was written, where the source says"),
        ("category", "string", True, "the product's category, where the review source states it"),
    ),
    key=("review_id",),
)

QUARANTINE = TableSpec(
    name="quarantine",
    description="Every rejected row or file: where it came from, which column, what value, and why.",
    columns=_cols(
        ("order_date", "date", True, "the partition the row would have gone to, if known"),
        ("source", "string", False),
        ("source_file", "string", False),
        ("source_row", "int64", False, "1-based record number in the file; 0 for a whole file"),
        ("column", "string", True),
        ("value", "string", True),
        ("reason", "string", False),
    ),
    key=("source_file", "source_row"),
    partition_column="order_date",
)

DAILY_STORE_SALES = TableSpec(
    name="daily_store_sales",
    description="Sales per store, day and currency, from clean order lines (measures as defined in sales_analytics.metrics).",
    columns=(*_cols(
        ("sale_date", "date", False),
        ("store_id", "string", False),
        ("currency", "string", False, "amounts are never summed across currencies"),
    ), *_MEASURE_COLUMNS),
    key=("sale_date", "store_id", "currency"),
    partition_column="sale_date",
    serving_key=ServingKey(partition_key="store_id", sort_columns=("sale_date", "currency")),
)

ALL_MEMBERS = "*"  # the member of DAILY_SALES's ``total`` slice
# DAILY_SALES's dimensions -> the column holding each one's members; "total" has one member, ALL_MEMBERS.
DIMENSIONS = {"store": "store_id", "region": "region", "category": "category", "channel": "channel", "product": "product_id"}


def slice_id(dimension: str, member: str) -> str:
    """A DAILY_SALES slice's id, e.g. 'region=north' (its serving partition key)."""
    return f"{dimension}={member}"


DAILY_SALES = TableSpec(
    name="daily_sales",
    description="Sales per day sliced by one dimension at a time: the total, each store, region, category, channel "
                "and product, per currency. What dashboards and the API read; a slice is one DynamoDB partition.",
    columns=(*_cols(
        ("sale_date", "date", False),
        ("dimension", "string", False, "total, store, region, category, channel or product"),
        ("member", "string", False, "the dimension's value, e.g. S001 or grocery; '*' for the total"),
        ("slice", "string", False, "dimension=member, e.g. region=north: the serving partition key"),
        ("currency", "string", False, "amounts are never summed across currencies"),
    ), *_MEASURE_COLUMNS, *_COST_COLUMNS),
    key=("sale_date", "dimension", "member", "currency"),
    partition_column="sale_date",
    serving_key=ServingKey(partition_key="slice", sort_columns=("sale_date", "currency")),
    indexes=(("dimension", "member", "sale_date"),),
)

WEEKLY_SALES = replace(
    DAILY_SALES,
    name="weekly_sales",
    description="Sales per ISO week (Monday to Sunday) sliced like daily_sales: the sum of the week's seven days.",
    columns=(Column("week_start", "date", False, "Monday of the week"), *DAILY_SALES.columns[1:]),
    key=("week_start", "dimension", "member", "currency"),
    partition_column="week_start",
    serving_key=ServingKey(partition_key="slice", sort_columns=("week_start", "currency")),
    indexes=(("dimension", "member", "week_start"),),
)

SALES_BY_SERIES = TableSpec(
    name="sales_by_series",
    description="Daily demand per store and product, the finest forecasting grain, with the product's category "
                "and the store's region and format as they were that day: coarser series (store x category, "
                "region x category) are sums of it.",
    columns=_cols(
        ("sale_date", "date", False),
        ("store_id", "string", False),
        ("product_id", "string", False),
        ("category", "string", False, "'unknown' for products the product master does not list"),
        ("region", "string", False, "'unknown' for stores the store master does not list"),
        ("store_format", "string", False, "'unknown' for stores the store master does not list"),
        ("units", "int64", False, f"units_sold: {MEASURES['units_sold']}"),
        ("net_sales", "float64", False, MEASURES["net_sales"]),
    ),
    key=("sale_date", "store_id", "product_id"),
    partition_column="sale_date",
)

DEMAND_FORECAST = TableSpec(
    name="demand_forecast",
    description="Forecasts made on each origin day by the model then promoted: P10 / P50 / P90 per series and "
                "target day, kept per origin so accuracy can be scored as actuals arrive.",
    columns=_cols(
        ("origin_date", "date", False, "the last day of data the forecast saw"),
        ("level", "string", False, "what a series is: store_category, store_product or region_category"),
        ("series_id", "string", False, "the level's keys joined by '|', e.g. S001|grocery"),
        ("target_date", "date", False),
        ("step", "int64", False, "days ahead of the origin"),
        ("p10", "float64", False),
        ("p50", "float64", False),
        ("p90", "float64", False),
        ("model_version", "string", False),
        ("target", "string", False, "units or net_sales"),
    ),
    key=("origin_date", "series_id", "target_date"),
    partition_column="origin_date",
    # Every origin's forecast of a day is its own item, so re-publishing an older origin never
    # replaces a newer forecast; a reader takes the latest origin per target day.
    serving_key=ServingKey(partition_key="series_id", sort_columns=("target_date", "origin_date")),
)

FORECAST_ACCURACY = TableSpec(
    name="forecast_accuracy",
    description="Every past forecast of a day next to what happened: which model version, how many days ahead, "
                "the error per series. Built when the day's actuals land.",
    columns=_cols(
        ("target_date", "date", False),
        ("origin_date", "date", False),
        ("level", "string", False),
        ("series_id", "string", False),
        ("model_version", "string", False),
        ("step", "int64", False, "days ahead the forecast was made"),
        ("actual", "float64", False, "zero where the series sold nothing that day"),
        ("p10", "float64", False),
        ("p50", "float64", False),
        ("p90", "float64", False),
        ("abs_error", "float64", False, "|actual - p50|"),
        ("in_band", "bool", False, "P10 <= actual <= P90"),
    ),
    key=("target_date", "origin_date", "level", "series_id"),
    partition_column="target_date",
    serving_key=ServingKey(partition_key="series_id", sort_columns=("target_date", "origin_date")),
)

MODEL_BACKTEST = TableSpec(
    name="model_backtest",
    description="The rolling-origin backtest of every trained model version: the model and both baselines "
                "scored on the same days, per window and over all windows.",
    columns=_cols(
        ("model_version", "string", False),
        ("window_origin", "string", False, "the last day of data a window's model saw; 'all' for every window pooled"),
        ("method", "string", False, "model, seasonal_naive, seasonal_naive_yearly or exponential_smoothing"),
        ("wape", "float64", False, "weighted absolute percentage error of P50"),
        ("mase", "float64", True, "mean absolute error over the in-sample seasonal-naive error"),
        ("bias", "float64", False, "(forecast - actual) / actual, summed"),
        ("weighted_quantile_loss", "float64", True, "P10 / P50 / P90 pinball loss, scaled (model only)"),
        ("coverage_p10_p90", "float64", True, "share of actuals inside P10..P90 (model only)"),
        ("points", "int64", False, "series-days scored"),
    ),
    key=("model_version", "window_origin", "method"),
    partition_column="model_version",
)


REVIEW_SCORES = TableSpec(
    name="review_scores",
    description="Every review scored by the champion sentiment model, with the aspects it mentions.",
    columns=_cols(
        ("review_id", "string", False),
        ("product_id", "string", False),
        ("category", "string", False, "the review's own, else the product's current category, else 'unknown'"),
        ("week_start", "date", False, "Monday of the week it was written (or delivered, where the source has no date)"),
        ("rating", "int64", False),
        ("sentiment", "string", False, "negative, neutral or positive"),
        ("p_negative", "float64", False, "the polarity's probability of negative"),
        ("p_neutral", "float64", False, "the neutrality's probability of neutral (on its own scale)"),
        ("p_positive", "float64", False, "the polarity's probability of positive (1 - p_negative)"),
        ("aspects", "string", False, "aspects its sentences mention, comma-separated"),
        ("negative_aspects", "string", False, "aspects mentioned in a negative sentence, comma-separated"),
        ("model_version", "string", False),
    ),
    key=("review_id",),
)

ALL_PRODUCTS = "*"  # the product_id of a category's own row in REVIEW_SENTIMENT

REVIEW_SENTIMENT = TableSpec(
    name="review_sentiment",
    description="Review sentiment per week, by product and by category (product_id '*').",
    columns=_cols(
        ("week_start", "date", False),
        ("category", "string", False),
        ("product_id", "string", False, "'*' for the whole category"),
        ("reviews", "int64", False),
        ("mean_rating", "float64", False),
        ("negative_share", "float64", False),
        ("neutral_share", "float64", False),
        ("positive_share", "float64", False),
        ("top_negative_aspect", "string", True, "the aspect most mentioned in negative sentences"),
    ),
    key=("week_start", "category", "product_id"),
    partition_column="week_start",
    # A product's weeks in one query; a category's own rows are under product '*', told apart by category.
    serving_key=ServingKey(partition_key="product_id", sort_columns=("week_start", "category")),
)

REVIEW_ASPECTS = TableSpec(
    name="review_aspects",
    description="What reviews talk about, per week and category: mentions of each aspect and their sentiment.",
    columns=_cols(
        ("week_start", "date", False),
        ("category", "string", False),
        ("aspect", "string", False),
        ("mentions", "int64", False, "sentences mentioning the aspect"),
        ("negative_share", "float64", False),
        ("positive_share", "float64", False),
        ("top_negative_terms", "string", False, "over all weeks: the words that mark its negative mentions"),
        ("top_positive_terms", "string", False, "over all weeks: the words that mark its positive mentions"),
    ),
    key=("week_start", "category", "aspect"),
    partition_column="week_start",
)

NEGATIVE_REVIEW_SPIKES = TableSpec(
    name="negative_review_spikes",
    description="Products whose share of negative reviews jumped in a week, against their four weeks before.",
    columns=_cols(
        ("week_start", "date", False),
        ("product_id", "string", False),
        ("category", "string", False),
        ("reviews", "int64", False),
        ("negative_reviews", "int64", False),
        ("negative_share", "float64", False),
        ("expected_share", "float64", False, "the four weeks before, shrunk toward the category's share"),
        ("p_value", "float64", False, "chance of this many negative reviews at the expected share"),
        ("main_aspect", "string", True, "the aspect most mentioned in the week's negative sentences"),
        ("narrative", "string", False),
    ),
    key=("week_start", "product_id"),
    partition_column="week_start",
)

RECEIPTS = TableSpec(
    name="receipts",
    description="Scanned receipts read by OCR: vendor, date and total with a confidence each; accepted or queued for review.",
    columns=_cols(
        ("landed_on", "date", False, "the landing folder's day"),
        ("receipt_id", "string", False, "sha256 of the image bytes (16 hex): the same scan twice is one receipt"),
        ("image_key", "string", False, "where the image is in the landing zone"),
        ("store_id", "string", True, "the store folder it was uploaded to"),
        ("vendor", "string", True),
        ("receipt_date", "date", True),
        ("total", "float64", True),
        ("currency", "string", True, "the store's currency that day (clean/stores); the receipt's text only confirms it"),
        ("vendor_confidence", "float64", False, "0..1; 0 when not found"),
        ("date_confidence", "float64", False),
        ("total_confidence", "float64", False),
        ("ocr_confidence", "float64", False, "the OCR engine's mean confidence in what it read"),
        ("status", "string", False, "accepted (became an order line) or review"),
        ("reason", "string", True, "why it needs review"),
        ("text", "string", True, "the text as read"),
    ),
    key=("landed_on", "receipt_id"),
    partition_column="landed_on",
)

RECEIPT_REVIEW_QUEUE = replace(RECEIPTS, name="receipt_review_queue",
                               description="Receipts OCR could not read with confidence: the image, what was read, and why.")

INSIGHTS = TableSpec(
    name="dashboard_insights",
    description="What a dashboard says: KPI deltas, anomalies and their drivers, movers, forecast misses and review "
                "shifts, each with the numbers its one-line narrative is built from.",
    columns=_cols(
        ("dashboard", "string", False),
        ("insight_id", "string", False, "kind:metric:subject:period:day, unique within the dashboard"),
        ("as_of", "date", False, "the newest day (or week) of data the insight saw"),
        ("kind", "string", False, "kpi, anomaly, driver, mover, forecast_miss or review_shift"),
        ("rank", "int64", False, "order within its kind, most important first"),
        ("metric", "string", False),
        ("subject", "string", False, "what it is about: total, region=north, product=P00012, a series or category"),
        ("period", "string", False, "day, week or year (what the value is compared with)"),
        ("day", "date", True, "the day (or week start) the value is of"),
        ("value", "float64", True),
        ("reference", "float64", True, "what the value is compared with: the earlier period, expected or forecast"),
        ("change", "float64", True, "value - reference"),
        ("change_pct", "float64", True, "change / reference"),
        ("score", "float64", True, "robust z-score (anomaly), share of the change (driver), usual weekly swings moved (mover), days outside P10-P90 (miss)"),
        ("narrative", "string", False, "a sentence made only of this row's numbers"),
    ),
    key=("dashboard", "insight_id"),
    partition_column="dashboard",
    serving_key=ServingKey(partition_key="dashboard", sort_columns=("insight_id",)),
    indexes=(("kind",),),
)
