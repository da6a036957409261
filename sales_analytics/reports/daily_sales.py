"""``reports/daily_sales``: each day's sales sliced by one dimension at a time.

One row per (day, dimension, member, currency) for the total and every store, region, category,
channel and product. Dashboards and the API read slices of it (``region=north`` over a date range
is one DynamoDB query), so none of them aggregates order lines at request time. Region and
category are the store's and product's as they were on the day (as in ``curated/sales_by_series``).
"""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.catalog import CLEAN_PRODUCTS, CLEAN_STORES, DAILY_SALES_KEY
from sales_analytics.curated.assets import (
    PRODUCT_ATTRIBUTES,
    dimension_history,
    dimension_input,
    with_dimension_attributes,
)
from sales_analytics.lake.assets import CLEAN_ORDER_LINES, table_metadata
from sales_analytics.lake.dimensions import as_of
from sales_analytics.metrics import LINE_INPUT, aggregate_measures, line_measures
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import ALL_MEMBERS, DAILY_SALES, DIMENSIONS, slice_id
from sales_analytics.storage.parquet_io import INPUT_COLUMNS
from sales_analytics.tables import split_by

REGION = {"region": "region"}  # the one store attribute sliced by
INPUT = ["order_date", "store_id", "channel", "product_id", "currency", *LINE_INPUT]


def compute_daily_sales(lines: pa.Table, products: pa.Table, stores: pa.Table) -> pa.Table:
    """``products``: its history with category and unit_cost; ``stores``: its history with region."""
    measures = line_measures(with_unit_cost(lines, products), ["store_id", "channel", "product_id", "currency"])
    if measures.num_rows == 0:
        return DAILY_SALES.empty_table()
    measures = with_dimension_attributes(measures.rename_columns({"sale_date": "order_date"}), products, "product_id",
                                         PRODUCT_ATTRIBUTES)
    measures = with_dimension_attributes(measures, stores, "store_id", REGION).rename_columns(
        {"order_date": "sale_date"})
    slices = [_slice(measures, "total", None), *(_slice(measures, d, column) for d, column in DIMENSIONS.items())]
    report = pa.concat_tables(slices).cast(DAILY_SALES.arrow_schema())
    return report.sort_by([(k, "ascending") for k in DAILY_SALES.key])


def with_unit_cost(lines: pa.Table, products: pa.Table) -> pa.Table:
    """Each line with its product's unit cost as it was on the order date (null where none is known)."""
    costs = products.filter(pc.is_valid(products["unit_cost"])) if "unit_cost" in products.column_names else products.slice(0, 0)
    if lines.num_rows == 0 or costs.num_rows == 0:
        return lines.append_column("unit_cost", pa.nulls(lines.num_rows, pa.float64()))
    return as_of(lines, costs, "product_id", "order_date", ["unit_cost"])


def _slice(measures: pa.Table, dimension: str, column: str | None) -> pa.Table:
    columns = aggregate_measures(measures, ["sale_date", "currency", *([column] if column else [])])
    members = columns.pop(column) if column else pa.array([ALL_MEMBERS] * len(columns["sale_date"]))
    prefix = pa.scalar(slice_id(dimension, ""))
    return pa.table({
        "sale_date": columns.pop("sale_date"),
        "dimension": pa.array([dimension] * len(members)),
        "member": members,
        "slice": pc.binary_join_element_wise(prefix, pc.cast(members, pa.string()), ""),
        "currency": columns.pop("currency"),
        **columns,
    }).select(DAILY_SALES.column_names)


@dg.asset(
    key=DAILY_SALES_KEY,
    ins={"order_lines": dg.AssetIn(CLEAN_ORDER_LINES, metadata={INPUT_COLUMNS: INPUT}),
         "products": dimension_input(CLEAN_PRODUCTS, "product_id", [*PRODUCT_ATTRIBUTES, "unit_cost"]),
         "stores": dimension_input(CLEAN_STORES, "store_id", list(REGION))},
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    group_name="reports",
    kinds={"pyarrow"},
    description=__doc__,
    metadata=table_metadata(DAILY_SALES),
    check_specs=[dg.AssetCheckSpec("slices_sum_to_total", asset=DAILY_SALES_KEY,
                                   description="Every dimension's members sum to the day's total, per currency.")],
)
def daily_sales(context: dg.AssetExecutionContext, order_lines: pa.Table, products: pa.Table | None,
                stores: pa.Table | None) -> Iterator[dg.Output | dg.AssetCheckResult]:
    report = compute_daily_sales(order_lines, dimension_history(products, "product_id", [*PRODUCT_ATTRIBUTES, "unit_cost"]),
                                 dimension_history(stores, "store_id", list(REGION)))
    rows = {day.isoformat(): part.num_rows for day, part in split_by(report, "sale_date").items()}
    add_partition_metadata(context, {key: {"dagster/row_count": rows.get(key, 0)} for key in context.partition_keys})
    yield dg.Output(report)
    mismatched = slices_not_summing_to_total(report)
    yield dg.AssetCheckResult(check_name="slices_sum_to_total", passed=not mismatched,
                              metadata={"mismatched_slices": ", ".join(mismatched[:20]) or "none"})


def slices_not_summing_to_total(report: pa.Table) -> list[str]:
    """'dimension@currency' pairs whose members' units or net sales differ from the total's
    (net sales by more than each member's rounding to the cent)."""
    sums = report.group_by(["dimension", "currency"], use_threads=False).aggregate(
        [("units_sold", "sum"), ("net_sales", "sum"), ("member", "count")]).to_pylist()
    totals = {r["currency"]: r for r in sums if r["dimension"] == "total"}
    return [f"{r['dimension']}@{r['currency']}" for r in sums
            if r["units_sold_sum"] != totals[r["currency"]]["units_sold_sum"]
            or abs(r["net_sales_sum"] - totals[r["currency"]]["net_sales_sum"]) > 0.005 * r["member_count"] + 0.01]
