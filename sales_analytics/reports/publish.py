"""Publishing a lake report to the BI store (RDS/PostgreSQL role) and the serving store (DynamoDB).

One factory for every report: each gets two partitioned assets downstream of its lake asset,
so the lineage shows where a report is served from and each store can be re-published alone.
"""


import dagster as dg
import pyarrow as pa

from sales_analytics.catalog import published_key
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import TableSpec
from sales_analytics.storage.serving_store import ServingStore
from sales_analytics.storage.sql_store import SqlReportStore
from sales_analytics.tables import split_by


def _partitions(report: pa.Table, spec: TableSpec, keys: list[str]) -> list[tuple[str, pa.Table]]:
    """Every partition of the run with its rows (empty ones too: publishing them removes stale rows)."""
    parts = {str(value): rows for value, rows in split_by(report, spec.partition_column).items()}
    empty = report.schema.empty_table()
    return [(key, parts.get(key, empty)) for key in keys]


PUBLISHING_GROUP = "publishing"  # the SQL and DynamoDB copies, apart from the lake's reports in the lineage


def publish_assets(spec: TableSpec, report_key: dg.AssetKey,
                   backfill_policy: dg.BackfillPolicy | None = monthly_chunks,
                   partitions_def: dg.PartitionsDefinition = daily_partitions,
                   automation_condition: dg.AutomationCondition | None = None) -> list[dg.AssetsDefinition]:
    """``backfill_policy`` and ``partitions_def`` match the report's own, so a job running both
    plans the same runs; ``automation_condition`` for reports kept current by automation."""
    common = {
        "ins": {"report": dg.AssetIn(report_key)},
        "partitions_def": partitions_def,
        "backfill_policy": backfill_policy,
        "automation_condition": automation_condition,
        "group_name": PUBLISHING_GROUP,
    }

    @dg.asset(key=published_key("rds", spec.name), kinds={"postgres", "sql"},
              description=f"`{spec.name}` in the SQL report store (RDS PostgreSQL; SQLite locally), for BI.", **common)
    def publish_sql(context: dg.AssetExecutionContext, report: pa.Table, report_db: SqlReportStore) -> dg.MaterializeResult:
        written = {key: report_db.replace_partition(spec, key, rows) for key, rows in _partitions(report, spec, context.partition_keys)}
        add_partition_metadata(context, {key: {"dagster/row_count": n} for key, n in written.items()})
        return dg.MaterializeResult(metadata={"table": spec.name})

    @dg.asset(key=published_key("dynamodb", spec.name), kinds={"dynamodb"},
              description=f"`{spec.name}` items in the serving store (DynamoDB; embedded locally), for the API.", **common)
    def publish_serving(context: dg.AssetExecutionContext, report: pa.Table, serving_store: ServingStore) -> dg.MaterializeResult:
        stats = {key: serving_store.replace_partition(spec, key, rows) for key, rows in _partitions(report, spec, context.partition_keys)}
        add_partition_metadata(context, {key: {"dagster/row_count": s.written, "stale_items_deleted": s.deleted}
                                         for key, s in stats.items()})
        return dg.MaterializeResult(metadata={"table": serving_store.table_name(spec)})

    return [publish_sql, publish_serving]


def publish_whole_assets(spec: TableSpec, report_key: dg.AssetKey) -> list[dg.AssetsDefinition]:
    """An unpartitioned report rebuilt whole (e.g. the weekly review reports): the SQL table replaced
    in one transaction, and the serving items too when the spec has a serving key."""
    common = {"ins": {"report": dg.AssetIn(report_key)}, "group_name": PUBLISHING_GROUP, }

    @dg.asset(key=published_key("rds", spec.name), kinds={"postgres", "sql"},
              description=f"`{spec.name}` in the SQL report store (RDS PostgreSQL; SQLite locally), for BI.", **common)
    def publish_sql(report: pa.Table, report_db: SqlReportStore) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/row_count": report_db.replace_table(spec, report)})

    @dg.asset(key=published_key("dynamodb", spec.name), kinds={"dynamodb"},
              description=f"`{spec.name}` items in the serving store (DynamoDB; embedded locally), for the API.", **common)
    def publish_serving(report: pa.Table, serving_store: ServingStore) -> dg.MaterializeResult:
        stats = serving_store.replace_all(spec, report)
        return dg.MaterializeResult(metadata={"dagster/row_count": stats.written, "stale_items_deleted": stats.deleted,
                                              "table": serving_store.table_name(spec)})

    return [publish_sql, publish_serving] if spec.serving_key else [publish_sql]
