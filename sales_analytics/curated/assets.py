"""Assets of the ``curated`` group."""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.catalog import CLEAN_PRODUCTS, CLEAN_STORES, SALES_BY_SERIES_KEY
from sales_analytics.lake.assets import CLEAN_ORDER_LINES, table_metadata
from sales_analytics.lake.dimensions import as_of
from sales_analytics.metrics import LINE_INPUT, aggregate_measures, line_measures
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import SALES_BY_SERIES
from sales_analytics.storage.parquet_io import INPUT_COLUMNS
from sales_analytics.tables import split_by

UNKNOWN = "unknown"
PRODUCT_ATTRIBUTES = {"category": "category"}  # dimension column -> curated column
STORE_ATTRIBUTES = {"region": "region", "format": "store_format"}


def compute_sales_by_series(lines: pa.Table, products: pa.Table, stores: pa.Table) -> pa.Table:
    """``units_sold`` and ``net_sales`` (``sales_analytics.metrics``) per (day, store, product)."""
    measures = line_measures(lines, ["store_id", "product_id"])
    if measures.num_rows == 0:
        return SALES_BY_SERIES.empty_table()
    facts = measures.rename_columns({"sale_date": "order_date"})
    facts = with_dimension_attributes(facts, products, "product_id", PRODUCT_ATTRIBUTES)
    facts = with_dimension_attributes(facts, stores, "store_id", STORE_ATTRIBUTES)
    keys = ["order_date", "store_id", "product_id", "category", "region", "store_format"]
    grouped = aggregate_measures(facts, keys)
    series = pa.table({"sale_date": grouped["order_date"], **{k: grouped[k] for k in keys[1:]},
                       "units": grouped["units_sold"], "net_sales": grouped["net_sales"]})
    return series.cast(SALES_BY_SERIES.arrow_schema()).sort_by([(k, "ascending") for k in SALES_BY_SERIES.key])


def with_dimension_attributes(facts: pa.Table, history: pa.Table, key: str, attributes: dict[str, str]) -> pa.Table:
    """The dimension's attributes as they were on each fact's day; 'unknown' where it has no such key."""
    if history.num_rows:
        facts = as_of(facts, history, key, "order_date", list(attributes))
    else:
        for column in attributes:
            facts = facts.append_column(column, pa.nulls(facts.num_rows, pa.string()))
    for column, curated in attributes.items():
        filled = pc.fill_null(pc.cast(facts[column], pa.string()), UNKNOWN)
        facts = facts.set_column(facts.schema.get_field_index(column), curated, filled)
    return facts


def dimension_history(history: pa.Table | None, id_column: str, attributes: list[str]) -> pa.Table:
    """A reference table's versions; none yet (reference data not built) means every attribute is unknown."""
    if history is None:
        return pa.table({id_column: pa.array([], pa.string()), **{a: pa.array([], pa.string()) for a in attributes},
                         "valid_from": pa.array([], pa.date32())})
    return history


def dimension_input(key: dg.AssetKey, id_column: str, attributes: list[str]) -> dg.AssetIn:
    """A reference table's history as an input: the key, the attributes and when each version began."""
    return dg.AssetIn(key, metadata={INPUT_COLUMNS: [id_column, *attributes, "valid_from"]})


@dg.asset(
    key=SALES_BY_SERIES_KEY,
    ins={"order_lines": dg.AssetIn(CLEAN_ORDER_LINES, metadata={INPUT_COLUMNS: ["order_date", "store_id", "product_id",
                                                                                 *LINE_INPUT]}),
         "products": dimension_input(CLEAN_PRODUCTS, "product_id", list(PRODUCT_ATTRIBUTES)),
         "stores": dimension_input(CLEAN_STORES, "store_id", list(STORE_ATTRIBUTES))},
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    group_name="curated",
    description=SALES_BY_SERIES.description,
    metadata=table_metadata(SALES_BY_SERIES),
)
def sales_by_series(context: dg.AssetExecutionContext, order_lines: pa.Table, products: pa.Table | None,
                    stores: pa.Table | None) -> pa.Table:
    series = compute_sales_by_series(order_lines, dimension_history(products, "product_id", list(PRODUCT_ATTRIBUTES)),
                                     dimension_history(stores, "store_id", list(STORE_ATTRIBUTES)))
    rows = {day.isoformat(): part.num_rows for day, part in split_by(series, "sale_date").items()}
    add_partition_metadata(context, {key: {"dagster/row_count": rows.get(key, 0)} for key in context.partition_keys})
    return series
