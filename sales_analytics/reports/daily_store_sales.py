"""``daily_store_sales``: sales per store and order date.

Semantics: a returned line still counts as sold on its order date (gross, units, discounts) and
its net value is subtracted as ``returns_value``; cancelled lines count nowhere. So ``net_sales``
is the net value of lines that stayed sold.
"""


from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.catalog import DAILY_STORE_SALES_KEY
from sales_analytics.lake.assets import CLEAN_ORDER_LINES, table_metadata
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import DAILY_STORE_SALES
from sales_analytics.storage.parquet_io import INPUT_COLUMNS
from sales_analytics.tables import split_by

MONEY_DECIMALS = 2
COUNTED_STATUSES = ["sold", "returned"]  # cancelled lines are not sales
# The clean columns the report reads: loading only these keeps a month-long run's memory small.
REPORT_INPUT_COLUMNS = ["order_date", "store_id", "currency", "order_id", "status", "quantity", "unit_price", "discount"]


MEASURES = ["orders", "units_sold", "units_returned", "gross_sales", "discounts", "returns_value", "net_sales"]
COST_MEASURES = ["costed_sales", "margin"]  # where lines carry their product's unit_cost


def line_measures(lines: pa.Table, keep: list[str]) -> pa.Table:
    """Counted lines (sold or returned) as sale measures, with the ``keep`` columns to group by;
    with ``COST_MEASURES`` when the lines carry ``unit_cost``. A returned line's value and cost both
    come back, so only lines still sold earn a margin."""
    counted = lines.filter(pc.is_in(lines["status"], value_set=pa.array(COUNTED_STATUSES)))
    returned = pc.equal(counted["status"], "returned")
    quantity = pc.cast(counted["quantity"], pa.float64())
    value = pc.multiply(quantity, counted["unit_price"])
    discount = pc.multiply(value, counted["discount"])
    zero_int, zero = pa.scalar(0, pa.int64()), pa.scalar(0.0)
    measures = {
        "sale_date": counted["order_date"],
        **{column: counted[column] for column in keep},
        "order_id": counted["order_id"],
        "units_sold": counted["quantity"],
        "units_returned": pc.if_else(returned, counted["quantity"], zero_int),
        "gross_sales": value,
        "discounts": discount,
        "returns_value": pc.if_else(returned, pc.subtract(value, discount), zero),
    }
    if "unit_cost" in lines.column_names:
        kept = pc.and_(pc.invert(returned), pc.is_valid(counted["unit_cost"]))
        net_value = pc.subtract(value, discount)
        no_cost = pa.scalar(None, pa.float64())
        measures["costed_sales"] = pc.if_else(kept, net_value, no_cost)
        measures["margin"] = pc.if_else(kept, pc.subtract(net_value, pc.multiply(quantity, counted["unit_cost"])), no_cost)
    return pa.table(measures)


def aggregate_measures(measures: pa.Table, keys: list[str]) -> dict[str, pa.Array]:
    """``MEASURES`` (and ``COST_MEASURES`` when present) summed per ``keys`` (orders counted
    distinct), money rounded to cents; keys first. A group with no costed line has null cost measures."""
    costs = [c for c in COST_MEASURES if c in measures.column_names]
    grouped = measures.group_by(keys, use_threads=False).aggregate([
        ("order_id", "count_distinct"), ("units_sold", "sum"), ("units_returned", "sum"),
        ("gross_sales", "sum"), ("discounts", "sum"), ("returns_value", "sum"), *((c, "sum") for c in costs),
    ])
    gross, discounts, returns = (grouped[f"{c}_sum"] for c in ("gross_sales", "discounts", "returns_value"))
    return {
        **{key: grouped[key] for key in keys},
        "orders": grouped["order_id_count_distinct"],
        "units_sold": grouped["units_sold_sum"],
        "units_returned": grouped["units_returned_sum"],
        "gross_sales": _money(gross),
        "discounts": _money(discounts),
        "returns_value": _money(returns),
        "net_sales": _money(pc.subtract(pc.subtract(gross, discounts), returns)),
        **{c: _money(grouped[f"{c}_sum"]) for c in costs},
    }


def compute_daily_store_sales(lines: pa.Table) -> pa.Table:
    if lines.num_rows == 0:
        return DAILY_STORE_SALES.empty_table()
    columns = aggregate_measures(line_measures(lines, ["store_id", "currency"]), ["sale_date", "store_id", "currency"])
    report = pa.table(columns).select(DAILY_STORE_SALES.column_names).cast(DAILY_STORE_SALES.arrow_schema())
    return report.sort_by([(k, "ascending") for k in DAILY_STORE_SALES.key])


def _money(values: pa.Array) -> pa.Array:
    return pc.round(values, MONEY_DECIMALS)


@dg.asset(
    key=DAILY_STORE_SALES_KEY,
    ins={"order_lines": dg.AssetIn(CLEAN_ORDER_LINES, metadata={INPUT_COLUMNS: REPORT_INPUT_COLUMNS})},
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    group_name="reports",
    kinds={"parquet", "pyarrow"},
    owners=["team:analytics"],
    description=__doc__,
    metadata=table_metadata(DAILY_STORE_SALES),
    check_specs=[
        dg.AssetCheckSpec("units_reconcile_with_clean", asset=DAILY_STORE_SALES_KEY,
                          description="Units in the report equal units of sold and returned clean lines."),
        dg.AssetCheckSpec("net_not_above_gross", asset=DAILY_STORE_SALES_KEY,
                          description="net_sales <= gross_sales and no negative amounts per store-day."),
    ],
)
def daily_store_sales(context: dg.AssetExecutionContext, order_lines: pa.Table) -> Iterator[dg.Output | dg.AssetCheckResult]:
    report = compute_daily_store_sales(order_lines)
    by_day = {day.isoformat(): rows for day, rows in split_by(report, DAILY_STORE_SALES.partition_column).items()}
    no_rows = report.schema.empty_table()
    add_partition_metadata(context, {key: {
        "dagster/row_count": rows.num_rows,
        "net_sales_total": float(pc.sum(rows["net_sales"]).as_py() or 0.0),
        "preview": dg.MetadataValue.md(_preview(rows)),
    } for key, rows in ((key, by_day.get(key, no_rows)) for key in context.partition_keys)})
    yield dg.Output(report)
    counted = pc.is_in(order_lines["status"], value_set=pa.array(COUNTED_STATUSES))
    expected_units = pc.sum(order_lines["quantity"].filter(counted)).as_py() or 0
    reported_units = pc.sum(report["units_sold"]).as_py() or 0
    yield dg.AssetCheckResult(check_name="units_reconcile_with_clean", passed=expected_units == reported_units,
                              metadata={"clean_units": expected_units, "report_units": reported_units})
    bad = pc.sum(pc.or_(pc.greater(report["net_sales"], report["gross_sales"]), pc.less(report["net_sales"], -0.005))).as_py() or 0
    yield dg.AssetCheckResult(check_name="net_not_above_gross", passed=bad == 0, metadata={"bad_rows": bad})


def _preview(report: pa.Table, limit: int = 10) -> str:
    header = "| " + " | ".join(report.column_names) + " |\n|" + "---|" * report.num_columns + "\n"
    rows = ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in report.slice(0, limit).to_pylist()]
    return header + "\n".join(rows)
