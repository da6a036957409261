"""``daily_store_sales``: sales per store, order date and currency.

Every figure is a measure of ``sales_analytics.metrics`` (cancelled lines count nowhere; refunds
and cancellation documents reduce units and net sales on their own day).
"""


import functools
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.catalog import DAILY_STORE_SALES_KEY
from sales_analytics.lake.assets import CLEAN_ORDER_LINES, table_metadata
from sales_analytics.metrics import LINE_INPUT, aggregate_measures, line_measures, net_units
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import DAILY_STORE_SALES
from sales_analytics.storage.parquet_io import INPUT_COLUMNS
from sales_analytics.tables import split_by

# The clean columns the report reads: loading only these keeps a month-long run's memory small.
REPORT_INPUT_COLUMNS = ["order_date", "store_id", "currency", *LINE_INPUT]


def compute_daily_store_sales(lines: pa.Table) -> pa.Table:
    if lines.num_rows == 0:
        return DAILY_STORE_SALES.empty_table()
    columns = aggregate_measures(line_measures(lines, ["store_id", "currency"]), ["sale_date", "store_id", "currency"])
    report = pa.table(columns).select(DAILY_STORE_SALES.column_names).cast(DAILY_STORE_SALES.arrow_schema())
    return report.sort_by([(k, "ascending") for k in DAILY_STORE_SALES.key])


@dg.asset(
    key=DAILY_STORE_SALES_KEY,
    ins={"order_lines": dg.AssetIn(CLEAN_ORDER_LINES, metadata={INPUT_COLUMNS: REPORT_INPUT_COLUMNS})},
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    group_name="reports",
    kinds={"pyarrow"},
    description=__doc__,
    metadata=table_metadata(DAILY_STORE_SALES),
    check_specs=[
        dg.AssetCheckSpec("units_reconcile_with_clean", asset=DAILY_STORE_SALES_KEY,
                          description="Units in the report equal the clean lines' net units (sold less returned and cancelled)."),
        dg.AssetCheckSpec("net_not_above_gross", asset=DAILY_STORE_SALES_KEY,
                          description="net_sales <= gross_sales - discounts and no negative component, per store-day."),
    ],
)
def daily_store_sales(context: dg.AssetExecutionContext, order_lines: pa.Table) -> Iterator[dg.Output | dg.AssetCheckResult]:
    report = compute_daily_store_sales(order_lines)
    by_day = {day.isoformat(): rows for day, rows in split_by(report, DAILY_STORE_SALES.partition_column).items()}
    no_rows = report.schema.empty_table()
    net_sales = net_sales_per_day_and_currency(report)
    add_partition_metadata(context, {key: {
        "dagster/row_count": rows.num_rows,
        "net_sales_per_currency": dg.MetadataValue.json(net_sales.get(key, {})),
        "preview": dg.MetadataValue.md(_preview(rows)),
    } for key, rows in ((key, by_day.get(key, no_rows)) for key in context.partition_keys)})
    yield dg.Output(report)
    expected_units = net_units(order_lines)
    reported_units = pc.sum(report["units_sold"]).as_py() or 0
    yield dg.AssetCheckResult(check_name="units_reconcile_with_clean", passed=expected_units == reported_units,
                              metadata={"clean_units": expected_units, "report_units": reported_units})
    components = [report[c] for c in ("gross_sales", "discounts", "returns_value", "cancellations")]
    negative = [pc.less(c, -0.005) for c in components]
    # gross and discounts are each in cents: their difference may sit a cent under the net figure
    above = pc.greater(report["net_sales"], pc.add(pc.subtract(report["gross_sales"], report["discounts"]), 0.011))
    bad = pc.sum(functools.reduce(pc.or_, negative, above)).as_py() or 0
    yield dg.AssetCheckResult(check_name="net_not_above_gross", passed=bad == 0, metadata={"bad_rows": bad})


def net_sales_per_day_and_currency(report: pa.Table) -> dict[str, dict[str, float]]:
    """Net sales of a report's rows per day and currency (amounts of different currencies are never added), in
    one grouping: a grouping per day costs its fixed start-up a month's run 31 times."""
    day = DAILY_STORE_SALES.partition_column
    sums = report.group_by([day, "currency"], use_threads=False).aggregate([("net_sales", "sum")]).to_pylist()
    by_day: dict[str, dict[str, float]] = {}
    for row in sorted(sums, key=lambda r: (r[day], r["currency"])):
        by_day.setdefault(row[day].isoformat(), {})[row["currency"]] = round(row["net_sales_sum"], 2)
    return by_day


def _preview(report: pa.Table, limit: int = 10) -> str:
    header = "| " + " | ".join(report.column_names) + " |\n|" + "---|" * report.num_columns + "\n"
    rows = ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in report.slice(0, limit).to_pylist()]
    return header + "\n".join(rows)
