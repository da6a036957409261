"""Parquet IO manager for the lake: one object per partition, atomic writes, no pickle.

Layout: ``<asset key path>/<partition column>=<partition key>/data.parquet`` (Hive style, so Athena
and Glue read it as-is), or ``<asset key path>/data.parquet`` for unpartitioned assets. An asset
declares its partition column in definition metadata under ``PARTITION_COLUMN``; the IO manager
splits the returned table by that column, so one run can write a whole range of partitions. An
input may name the columns it needs (``AssetIn`` metadata ``INPUT_COLUMNS``): only those are read.
"""

from __future__ import annotations

import datetime as dt
import io

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from sales_analytics.storage.lake import LakeResource
from sales_analytics.tables import split_by

PARTITION_COLUMN = "lake/partition_column"
INPUT_COLUMNS = "lake/columns"  # AssetIn metadata: load only these columns


def partition_object_key(asset_key: dg.AssetKey, partition_column: str | None, partition_key: str | None) -> str:
    base = "/".join(asset_key.path)
    if partition_key is None:
        return f"{base}/data.parquet"
    return f"{base}/{partition_column}={partition_key}/data.parquet"


def stored_partitions(lake: LakeResource, asset_key: dg.AssetKey, partition_column: str) -> dict[str, str]:
    """Partition key -> object key, for every partition of the asset in the lake: one listing, not a
    request per day."""
    prefix, marker = "/".join(asset_key.path) + "/", f"{partition_column}="
    found = {}
    for info in lake.list(prefix):
        folder = info.key.removeprefix(prefix).split("/", 1)[0]
        if folder.startswith(marker):
            found[folder.removeprefix(marker)] = info.key
    return found


def table_to_parquet_bytes(table: pa.Table, statistics: bool = True) -> bytes:
    """``statistics``: min/max per column chunk, for engines that skip data by predicate (Athena);
    objects that are only ever read whole can do without them."""
    # Serialise fully in memory before touching storage: a failure here leaves the old object.
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=statistics)
    return sink.getvalue()


def parquet_bytes_to_table(data: bytes, columns: list[str] | None = None) -> pa.Table:
    # A single in-memory file: ParquetFile skips the dataset machinery read_table sets up.
    return pq.ParquetFile(pa.BufferReader(data)).read(columns=columns)


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores ``pyarrow.Table`` outputs as Parquet objects in the lake."""

    lake: LakeResource

    def handle_output(self, context: dg.OutputContext, obj: pa.Table) -> None:
        if obj is None:
            return
        if not isinstance(obj, pa.Table):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: the lake stores pyarrow.Table outputs, "
                f"got {type(obj).__name__}"
            )
        if not context.has_asset_partitions:
            self.lake.put_bytes(partition_object_key(context.asset_key, None, None), table_to_parquet_bytes(obj))
            return
        column = _partition_column(context.definition_metadata, context.asset_key)
        keys = list(context.asset_partition_keys)
        parts = {_partition_key(value): part for value, part in split_by(obj, column).items()}
        outside = sorted(set(parts) - set(keys), key=str)
        if outside:
            raise ValueError(f"{context.asset_key.to_user_string()}: rows with {column}={outside[0]} are outside the "
                             f"partitions of this run ({keys[0]}..{keys[-1]})")
        empty = obj.schema.empty_table()
        for key in keys:  # every partition of the run is written, empty ones too: no stale leftovers
            part = parts.get(key, empty)
            object_key = partition_object_key(context.asset_key, column, key)
            self.lake.put_bytes(object_key, table_to_parquet_bytes(part))
        context.log.debug(f"wrote {obj.num_rows} rows to {len(keys)} partitions ({keys[0]}..{keys[-1]}) "
                          f"under {self.lake.uri('/'.join(context.asset_key.path))}/")

    def load_input(self, context: dg.InputContext) -> pa.Table:
        upstream = context.upstream_output
        asset_key = context.asset_key
        columns = (context.definition_metadata or {}).get(INPUT_COLUMNS)
        if not context.has_asset_partitions:
            return self._read(partition_object_key(asset_key, None, None), columns)
        column = _partition_column(upstream.definition_metadata if upstream else {}, asset_key)
        tables = [self._read(partition_object_key(asset_key, column, key), columns) for key in context.asset_partition_keys]
        return pa.concat_tables(tables) if tables else pa.table({})

    def _read(self, object_key: str, columns: list[str] | None) -> pa.Table:
        if not self.lake.exists(object_key):
            raise FileNotFoundError(
                f"{self.lake.uri(object_key)} does not exist: materialize the upstream partition first"
            )
        return parquet_bytes_to_table(self.lake.get_bytes(object_key), columns)


def read_unpartitioned(lake: LakeResource, asset_key: dg.AssetKey, columns: list[str] | None = None) -> pa.Table | None:
    """An unpartitioned asset's table (e.g. a reference table), or None if it was never materialized."""
    object_key = partition_object_key(asset_key, None, None)
    return parquet_bytes_to_table(lake.get_bytes(object_key), columns) if lake.exists(object_key) else None


def _partition_column(metadata: dict | None, asset_key: dg.AssetKey) -> str:
    column = (metadata or {}).get(PARTITION_COLUMN)
    if column is None:
        raise ValueError(f"{asset_key.to_user_string()} is partitioned but declares no {PARTITION_COLUMN!r} metadata")
    return column.value if isinstance(column, dg.TextMetadataValue) else str(column)


def _partition_key(value: object) -> str | None:
    """A partition column value as its Dagster partition key (dates as YYYY-MM-DD)."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)
