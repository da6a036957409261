"""Assets of the ``sources`` and ``raw`` groups."""


import dagster as dg

from sales_analytics.ingest.raw import RAW_PREFIX, ingest_object, pending_objects
from sales_analytics.ingest.sources import ORDER_SOURCES
from sales_analytics.storage.lake import LakeResource

landing_specs = [
    dg.AssetSpec(
        ["landing", f"orders_{source.name}"],
        description=f"{source.description} Lands under `{source.prefix}`.",
        group_name="sources",
        kinds={"s3", "csv"},
        owners=["team:data-engineering"],
        metadata={"prefix": source.prefix},
    )
    for source in ORDER_SOURCES
]


@dg.asset(
    key=["raw", "order_lines"],
    deps=landing_specs,
    group_name="raw",
    kinds={"s3", "parquet"},
    owners=["team:data-engineering"],
    description=(
        "Every landed order line as landed (all text), with its source file and row, sharded by "
        f"order date under `{RAW_PREFIX}/`. Ingests each landed object version exactly once."
    ),
)
def raw_order_lines(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    ingested = []
    for source, info in pending_objects(lake, ORDER_SOURCES):
        result = ingest_object(lake, source, info)
        context.log.info(f"ingested {info.key}: {result.rows} rows over {len(result.days)} days, {result.unroutable} unroutable")
        ingested.append(result)
    touched = sorted({day for r in ingested for day in r.days})
    unroutable = sum(r.unroutable for r in ingested)
    return dg.MaterializeResult(
        metadata={
            "files_ingested": len(ingested),
            "dagster/row_count": sum(r.rows for r in ingested),
            "rows_unroutable": dg.MetadataValue.int(unroutable),
            "touched_partitions": dg.MetadataValue.json(touched),
            "files": dg.MetadataValue.md("\n".join(f"- `{r.key}` ({r.rows} rows)" for r in ingested[:50]) or "none new"),
        }
    )
