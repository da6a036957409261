"""``reports/weekly_sales``: each ISO week's sales, sliced like ``daily_sales`` (sum of its seven days).

An order has one order date, so a week's distinct orders are the sum of its days'. Declarative
automation keeps it current: a week is rebuilt once every one of its days is in ``daily_sales``
and whenever one of them changes (a late line or a correction for an old day), by the
``weekly_reports_automation`` sensor.
"""

import datetime as dt

import dagster as dg
import pyarrow as pa

from sales_analytics.lake.assets import table_metadata
from sales_analytics.metrics import COST_MEASURES, MEASURES, money
from sales_analytics.partitions import weekly_partitions
from sales_analytics.reports.daily_sales import DAILY_SALES_KEY
from sales_analytics.reports.publish import publish_assets
from sales_analytics.schema import DAILY_SALES, WEEKLY_SALES
from sales_analytics.storage.parquet_io import LakeView

WEEKLY_SALES_KEY = dg.AssetKey(["reports", "weekly_sales"])
SLICE_COLUMNS = ["dimension", "member", "slice", "currency"]
# eager() without its latest-window limit: a correction to an old day must rebuild that old week too.
# The trigger is remembered until handled, so a week whose last day lands later is still built. On
# its first evaluation (a new deployment, or the demo's history opened in `make ui`) a missing week
# whose days are all there is built too: "newly" missing and "updated" only see what happens after.
WHEN_DAYS_CHANGE = (
    ((dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
     | (dg.AutomationCondition.missing() & dg.AutomationCondition.initial_evaluation()))
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


def compute_weekly_sales(days: pa.Table, week_start: dt.date) -> pa.Table:
    if days.num_rows == 0:
        return WEEKLY_SALES.empty_table()
    summed = [*MEASURES, *COST_MEASURES]  # a week with no costed day keeps null cost measures
    grouped = days.group_by(SLICE_COLUMNS, use_threads=False).aggregate([(m, "sum") for m in summed])
    week = pa.table({"week_start": pa.array([week_start] * grouped.num_rows, pa.date32()),
                     **{c: grouped[c] for c in SLICE_COLUMNS}, **{m: grouped[f"{m}_sum"] for m in summed}})
    # Sums of cents can pick up float noise: round back to cents.
    amounts = [m for m in summed if WEEKLY_SALES.column(m).type == "float64"]
    week = week.select(WEEKLY_SALES.column_names).cast(WEEKLY_SALES.arrow_schema())
    for column in amounts:
        week = week.set_column(week.schema.get_field_index(column), column, money(week[column]))
    return week.sort_by([(k, "ascending") for k in WEEKLY_SALES.key])


@dg.asset(
    key=WEEKLY_SALES_KEY,
    ins={"days": dg.AssetIn(DAILY_SALES_KEY)},  # weekly on daily: Dagster maps each week to its seven days
    partitions_def=weekly_partitions,
    automation_condition=WHEN_DAYS_CHANGE,
    group_name="reports",
    kinds={"pyarrow"},
    description=__doc__,
    metadata=table_metadata(WEEKLY_SALES),
)
def weekly_sales(context: dg.AssetExecutionContext, days: LakeView) -> pa.Table:
    """``days``: the week's days in daily_sales, those built (automation waits for all seven)."""
    stored = days.partitions()
    read = days.read(stored)
    week_start = context.partition_time_window.start.date()
    report = compute_weekly_sales(read if read is not None else DAILY_SALES.empty_table(), week_start)
    context.add_output_metadata({"dagster/row_count": report.num_rows, "days_read": len(stored)})
    return report


weekly_sales_published = publish_assets(WEEKLY_SALES, WEEKLY_SALES_KEY, backfill_policy=None, partitions_def=weekly_partitions,
                                        automation_condition=WHEN_DAYS_CHANGE)
