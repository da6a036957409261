"""Assets of the ``clean`` group."""

from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.catalog import RAW_ORDER_LINES, landing_key, quarantine_key
from sales_analytics.ingest.raw import read_day_shards
from sales_analytics.lake.dimensions import build_dimension, latest_deliveries
from sales_analytics.lake.order_lines import CleanDay, clean_days
from sales_analytics.partitions import add_partition_metadata, daily_partitions, monthly_chunks
from sales_analytics.schema import DELIVERY_LINEAGE, HISTORY_LINEAGE, ORDER_LINES, QUARANTINE, TableSpec, with_lineage
from sales_analytics.sources.spec import REFERENCE_TARGETS, SNAPSHOT_TARGETS, TARGETS, file_sources, reference_sources
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import PARTITION_COLUMN

CLEAN_ORDER_LINES = dg.AssetKey(["clean", "order_lines"])
CLEAN_QUARANTINE = quarantine_key("order_lines")
# A week of raw text at a time: big enough to vectorise, small enough that a month-long run's
# memory is bounded by the week, not by the range.
CLEAN_BATCH_DAYS = 7


def column_schema(spec: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description or None) for c in spec.columns]
    )


def table_metadata(spec: TableSpec) -> dict[str, object]:
    """Definition metadata of a lake table: its column schema and, when partitioned, the column the
    IO manager splits a range's output by."""
    metadata: dict[str, object] = {"dagster/column_schema": column_schema(spec)}
    if spec.partition_column:
        metadata[PARTITION_COLUMN] = spec.partition_column
    return metadata


def _check(name: str, description: str, blocking: bool = False) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=CLEAN_ORDER_LINES, description=description, blocking=blocking)


def _partitioned_out(key: dg.AssetKey, spec: TableSpec, description: str, group: str = "clean") -> dg.AssetOut:
    return dg.AssetOut(
        key=key, group_name=group, kinds={"pyarrow"},
        description=description,
        metadata=table_metadata(spec),
    )


@dg.multi_asset(
    outs={
        "order_lines": _partitioned_out(CLEAN_ORDER_LINES, ORDER_LINES, (
            "Order lines of every source mapped onto the canonical schema by its spec, validated, one row per "
            "(source, order_id, line_no): the latest version wins.")),
        "quarantine": _partitioned_out(CLEAN_QUARANTINE, QUARANTINE, (
            "Rows of the day that failed mapping or validation, with source file, record number, column, "
            "value and reason."), group="quarantine"),
    },
    deps=[RAW_ORDER_LINES],
    partitions_def=daily_partitions,
    backfill_policy=monthly_chunks,
    check_specs=[
        _check("matches_canonical_schema", "Columns and types equal the canonical order_lines schema.", blocking=True),
        _check("unique_key", "No two rows share (source, order_id, line_no).", blocking=True),
        _check("non_negative_quantity_and_price", "quantity >= 0 and unit_price >= 0."),
        _check("reconciles_with_raw", "Per day: rows landed = rows clean + rows quarantined + duplicates collapsed."),
    ],
)
def clean_order_lines(context: dg.AssetExecutionContext, lake: LakeResource) -> Iterator[dg.Output | dg.AssetCheckResult]:
    specs = {s.name: s for s in file_sources()}
    keys = context.partition_keys
    days = [day for start in range(0, len(keys), CLEAN_BATCH_DAYS)
            for day in clean_days({key: read_day_shards(lake, key) for key in keys[start:start + CLEAN_BATCH_DAYS]}, specs)]
    lines = pa.concat_tables([d.lines for d in days])
    rejects = pa.concat_tables([d.rejects for d in days])
    if rejects.num_rows:
        context.log.warning(f"{rejects.num_rows} rows quarantined; first: {_describe(rejects.slice(0, 1).to_pylist()[0])}")
    add_partition_metadata(context, {d.day.isoformat(): {
        "dagster/row_count": d.lines.num_rows, "rows_in": d.rows_in, "rows_rejected": d.rejects.num_rows,
        "duplicates_collapsed": d.duplicates_collapsed} for d in days}, CLEAN_ORDER_LINES)
    add_partition_metadata(context, {d.day.isoformat(): {
        "dagster/row_count": d.rejects.num_rows, "preview": dg.MetadataValue.md(_rejects_markdown(d.rejects))}
        for d in days}, CLEAN_QUARANTINE)
    yield dg.Output(lines, output_name="order_lines")
    yield dg.Output(rejects, output_name="quarantine")
    yield from _clean_checks(lines, days)


def _clean_checks(lines: pa.Table, days: list[CleanDay]) -> Iterator[dg.AssetCheckResult]:
    schema_ok = lines.schema.equals(ORDER_LINES.arrow_schema())
    yield dg.AssetCheckResult(check_name="matches_canonical_schema", passed=schema_ok,
                              metadata={"schema": str(lines.schema) if not schema_ok else "canonical"})
    key_count = lines.group_by(["order_date", *ORDER_LINES.key]).aggregate([]).num_rows if lines.num_rows else 0
    yield dg.AssetCheckResult(check_name="unique_key", passed=key_count == lines.num_rows,
                              metadata={"duplicate_keys": lines.num_rows - key_count})
    negative = pc.sum(pc.or_(pc.less(lines["quantity"], 0), pc.less(lines["unit_price"], 0))).as_py() or 0
    yield dg.AssetCheckResult(check_name="non_negative_quantity_and_price", passed=negative == 0,
                              metadata={"negative_rows": negative})
    off = [d.day.isoformat() for d in days if not d.reconciles]
    yield dg.AssetCheckResult(check_name="reconciles_with_raw", passed=not off,
                              metadata={"days_not_reconciling": dg.MetadataValue.json(off)})


def _describe(reject: dict) -> str:
    return f"{reject['source_file']} row {reject['source_row']} column {reject['column']!r} value {reject['value']!r}: {reject['reason']}"


def _rejects_markdown(rejects: pa.Table, limit: int = 10) -> str:
    if rejects.num_rows == 0:
        return "No rejected rows."
    rows = [f"| {r['source_file']} | {r['source_row']} | {r['column']} | {r['value']!s:.40} | {r['reason']} |"
            for r in rejects.slice(0, limit).to_pylist()]
    more = f"\n\n…and {rejects.num_rows - limit} more." if rejects.num_rows > limit else ""
    return "| file | row | column | value | reason |\n|---|---|---|---|---|\n" + "\n".join(rows) + more


def snapshot_assets(target: str) -> dg.AssetsDefinition:
    """``clean/<target>`` from every snapshot of its sources, and ``quarantine/<target>``.

    Reference targets keep every version (SCD type 2); reviews and signals keep each key's latest delivery.
    """
    table = TARGETS[target]
    sources = reference_sources(target)
    keeps_history = target in REFERENCE_TARGETS
    check = "one_current_version_per_key" if keeps_history else "unique_key"
    description = (f"`{target}` with its history (SCD type 2): one row per version, valid_from / valid_to / "
                   "is_current, built from dated snapshots." if keeps_history else
                   f"`{target}`, one row per {' and '.join(table.key)}: the latest delivery of each.")

    @dg.multi_asset(
        name=f"clean_{target}",
        outs={
            "rows": dg.AssetOut(key=["clean", target], group_name="clean",
                                description=description,
                                metadata=table_metadata(with_lineage(table, HISTORY_LINEAGE if keeps_history
                                                                     else DELIVERY_LINEAGE))),
            "quarantine": dg.AssetOut(key=quarantine_key(target), group_name="quarantine",
                                      description=f"Rejected `{target}` rows and unreadable files, with reasons."),
        },
        deps=[landing_key(s.name) for s in sources],
        check_specs=[dg.AssetCheckSpec(check, asset=dg.AssetKey(["clean", target]), blocking=True,
                                       description="No key has more than one current row (a key a later snapshot "
                                                   "dropped has none)." if keeps_history else "Every key has one row.")],
    )
    def _snapshots(context: dg.AssetExecutionContext, lake: LakeResource) -> Iterator[dg.Output | dg.AssetCheckResult]:
        built = (build_dimension if keeps_history else latest_deliveries)(lake, sources, table)
        rows = built.history
        current = rows.filter(rows["is_current"]) if keeps_history else rows
        yield dg.Output(rows, output_name="rows", metadata={
            "dagster/row_count": rows.num_rows, "snapshots": built.snapshots, "rows_in": built.rows_in,
            "current": current.num_rows})
        yield dg.Output(built.rejects, output_name="quarantine", metadata={
            "dagster/row_count": built.rejects.num_rows, "preview": dg.MetadataValue.md(_rejects_markdown(built.rejects))})
        keys = rows.group_by(list(table.key)).aggregate([]).num_rows if rows.num_rows else 0
        current_keys = current.group_by(list(table.key)).aggregate([]).num_rows if current.num_rows else 0
        # Keys closed by a later snapshot (a store that shut) have no current row; none may have two.
        yield dg.AssetCheckResult(check_name=check, asset_key=dg.AssetKey(["clean", target]),
                                  passed=current_keys == current.num_rows,
                                  metadata={"keys": keys, "current_rows": current.num_rows, "closed_keys": keys - current_keys})

    return _snapshots


snapshot_targets = [t for t in SNAPSHOT_TARGETS if reference_sources(t)]
reference_assets = [snapshot_assets(target) for target in snapshot_targets]
