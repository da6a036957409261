"""Assets of the ``sources`` and ``raw`` groups: one landing spec per declared source."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from sales_analytics.catalog import LANDING_QUARANTINE, RAW_ORDER_LINES, landing_key
from sales_analytics.ingest.extract import database_url, extract
from sales_analytics.ingest.raw import (
    LANDING_QUARANTINE_PREFIX,
    RAW_PREFIX,
    FileIngest,
    ingest_object,
    pending_objects,
    requested_objects,
)
from sales_analytics.sources.spec import SourceSpec, order_sources
from sales_analytics.storage.lake import LakeResource


def landing_spec(source: SourceSpec) -> dg.AssetSpec:
    """Files a source system writes into the landing zone: an external asset the platform watches."""
    return dg.AssetSpec(
        landing_key(source.name),
        description=f"{source.description.strip()}\n\nLands under `{source.prefix}` as {source.format.type}.",
        group_name="sources",
        kinds={source.format.type},
        metadata={"prefix": source.prefix, "timezone": source.timezone},
    )


def extraction_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    """The platform lands a SQL source itself: extraction is an asset, not an external landing."""
    assert spec.extract is not None

    @dg.asset(key=landing_key(spec.name), group_name="sources", kinds={"postgres", "parquet"},
              description=(f"{spec.description.strip()}\n\nExtracted from `{spec.extract.table}` by "
                           f"`{spec.extract.watermark}` into `{spec.prefix}`."))
    def _extract(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        engine = sa.create_engine(database_url(spec.extract))
        try:
            result = extract(lake, spec, engine, dt.datetime.now(dt.UTC).date())
        finally:
            engine.dispose()
        context.log.info(f"extracted {result.rows} rows in {len(result.files)} batches")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": result.rows, "batches": len(result.files),
            "watermark": str(result.position[0]) if result.position else "none",
            "files": dg.MetadataValue.json(result.files),
        })

    return _extract


# Declared sources land files that raw ingestion reads: the instances under defs/sources build these assets.
order_landing = [landing_key(source.name) for source in order_sources()]


def landing_counts(ingested: list[FileIngest]) -> str:
    """Files, records, records routed to days and records quarantined, per source and landing day."""
    counts: dict[tuple[str, str], list[int]] = {}
    for r in ingested:
        cell = counts.setdefault((r.source, r.landing_day), [0, 0, 0, 0])
        for i, value in enumerate((1, r.rows, r.routed, r.quarantined)):
            cell[i] += value
    rows = [f"| {source} | {day} | {' | '.join(map(str, cell))} |" for (source, day), cell in sorted(counts.items())]
    return "| source | landing day | files | records | routed | quarantined |\n|---|---|---|---|---|---|\n" + "\n".join(rows)


class IngestConfig(dg.Config):
    objects: list[str] = Field(default_factory=list,
                               description="landing keys to ingest (a sensor's batch); empty: everything pending")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(RAW_ORDER_LINES, deps=order_landing, group_name="raw",
                     description=("Every landed order line as landed (all text), with its source, file and record "
                                  f"number, sharded by business date under `{RAW_PREFIX}/`. Each landed object "
                                  "version is ingested exactly once.")),
        dg.AssetSpec(LANDING_QUARANTINE, deps=order_landing, group_name="quarantine", kinds={"s3"},
                     description=(f"Rejected at landing, under `{LANDING_QUARANTINE_PREFIX}/`: unreadable files, "
                                  "records that do not split into columns, rows without a readable order time.")),
    ],
    check_specs=[dg.AssetCheckSpec("no_schema_drift", asset=RAW_ORDER_LINES,
                                   description="Landed files carry no columns their source spec does not know."),
                 dg.AssetCheckSpec("landing_reconciles", asset=RAW_ORDER_LINES,
                                   description="Per source and landing day: records landed = records routed to a "
                                               "day's raw shard + records quarantined at landing.")],
)
def raw_order_lines(context: dg.AssetExecutionContext, config: IngestConfig, lake: LakeResource) -> Iterator:
    ingested: list[FileIngest] = []
    todo = requested_objects(lake, config.objects) if config.objects else pending_objects(lake, order_sources())
    for spec, info in todo:
        result = ingest_object(lake, spec, info)
        ingested.append(result)
        if result.unreadable:
            context.log.warning(f"{info.key} quarantined whole: {result.unreadable}")
    touched = sorted(set().union(*(r.touched for r in ingested)))
    # One line for the batch: a log event per file costs more than ingesting a small file.
    context.log.info(f"ingested {len(ingested)} files: {sum(r.rows for r in ingested)} rows over {len(touched)} days, "
                     f"{sum(r.quarantined for r in ingested)} quarantined")
    yield dg.MaterializeResult(asset_key=RAW_ORDER_LINES, metadata={
        "files_ingested": len(ingested),
        "dagster/row_count": sum(r.rows for r in ingested),
        "touched_partitions": dg.MetadataValue.json(touched),
        "files": dg.MetadataValue.md("\n".join(f"- `{r.key}` ({r.rows} rows)" for r in ingested[:50]) or "none new"),
    })
    yield dg.MaterializeResult(asset_key=LANDING_QUARANTINE, metadata={
        "dagster/row_count": sum(r.quarantined for r in ingested),
        "files_unreadable": dg.MetadataValue.md(
            "\n".join(f"- `{r.key}`: {r.unreadable}" for r in ingested if r.unreadable) or "none"),
    })
    yield dg.AssetCheckResult(check_name="landing_reconciles", asset_key=RAW_ORDER_LINES,
                              passed=all(r.reconciles for r in ingested),
                              metadata={"per_source_and_landing_day": dg.MetadataValue.md(landing_counts(ingested)),
                                        "files_not_reconciling": dg.MetadataValue.json([r.key for r in ingested if not r.reconciles])})
    drift = {r.key: r.new_columns for r in ingested if r.new_columns}
    yield dg.AssetCheckResult(check_name="no_schema_drift", asset_key=RAW_ORDER_LINES, passed=not drift,
                              severity=dg.AssetCheckSeverity.WARN, metadata={"new_columns": dg.MetadataValue.json(drift)})
