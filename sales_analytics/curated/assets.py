"""Assets of the ``curated`` group."""

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.lake.assets import CLEAN_ORDER_LINES, table_metadata
from sales_analytics.lake.dimensions import as_of
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import SALES_BY_SERIES
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import (
    INPUT_COLUMNS,
    parquet_bytes_to_table,
    partition_object_key,
)
from sales_analytics.tables import split_by

SALES_BY_SERIES_KEY = dg.AssetKey(["curated", "sales_by_series"])
CLEAN_PRODUCTS = dg.AssetKey(["clean", "products"])
UNKNOWN_CATEGORY = "unknown"


def compute_sales_by_series(lines: pa.Table, products: pa.Table) -> pa.Table:
    """Net units and sales per (day, store, category); returns count against the day they belong to."""
    counted = lines.filter(pc.is_in(lines["status"], value_set=pa.array(["sold", "returned"])))
    if counted.num_rows == 0:
        return SALES_BY_SERIES.empty_table()
    sign = pc.if_else(pc.equal(counted["status"], "returned"), -1, 1)
    value = pc.multiply(pc.multiply(pc.cast(counted["quantity"], pa.float64()), counted["unit_price"]),
                        pc.subtract(1.0, counted["discount"]))
    facts = pa.table({"order_date": counted["order_date"], "store_id": counted["store_id"], "product_id": counted["product_id"],
                      "units": pc.multiply(counted["quantity"], pc.cast(sign, pa.int64())),
                      "net_sales": pc.multiply(value, pc.cast(sign, pa.float64()))})
    if products.num_rows:
        facts = as_of(facts, products, "product_id", "order_date", ["category"])
    else:
        facts = facts.append_column("category", pa.nulls(facts.num_rows, pa.string()))
    facts = facts.set_column(facts.schema.get_field_index("category"), "category",
                             pc.fill_null(facts["category"], UNKNOWN_CATEGORY))
    grouped = facts.group_by(["order_date", "store_id", "category"], use_threads=False).aggregate(
        [("units", "sum"), ("net_sales", "sum")])
    series = pa.table({"sale_date": grouped["order_date"], "store_id": grouped["store_id"], "category": grouped["category"],
                       "units": grouped["units_sum"], "net_sales": pc.round(grouped["net_sales_sum"], 2)})
    return series.cast(SALES_BY_SERIES.arrow_schema()).sort_by([(k, "ascending") for k in SALES_BY_SERIES.key])


def product_history(lake: LakeResource) -> pa.Table:
    """clean/products' versions; none yet (reference data not built) means every category is unknown."""
    key = partition_object_key(CLEAN_PRODUCTS, None, None)
    if not lake.exists(key):
        return pa.table({"product_id": pa.array([], pa.string()), "category": pa.array([], pa.string()),
                         "valid_from": pa.array([], pa.date32())})
    return parquet_bytes_to_table(lake.get_bytes(key), ["product_id", "category", "valid_from"])


@dg.asset(
    key=SALES_BY_SERIES_KEY,
    ins={"order_lines": dg.AssetIn(CLEAN_ORDER_LINES, metadata={INPUT_COLUMNS: [
             "order_date", "store_id", "product_id", "status", "quantity", "unit_price", "discount"]})},
    deps=[CLEAN_PRODUCTS],
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    group_name="curated",
    kinds={"parquet", "pyarrow"},
    owners=["team:data-science"],
    description=SALES_BY_SERIES.description,
    metadata=table_metadata(SALES_BY_SERIES),
)
def sales_by_series(context: dg.AssetExecutionContext, order_lines: pa.Table, lake: LakeResource) -> pa.Table:
    series = compute_sales_by_series(order_lines, product_history(lake))
    rows = {day.isoformat(): part.num_rows for day, part in split_by(series, "sale_date").items()}
    add_partition_metadata(context, {key: {"dagster/row_count": rows.get(key, 0)} for key in context.partition_keys})
    return series
