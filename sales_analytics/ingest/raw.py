"""Landing objects → raw shards, exactly once per object version.

A landed file is kept as landed (every column as text) plus lineage (``source``,
``source_file``, ``source_row``), and sharded by order date into
``raw/order_lines/order_date=<day>/<file id>.parquet``. A clean partition then reads only its
own day's shards, so its cost is bounded by the day, not by history, and a late line for an old
day lands in that day's folder. Rows whose order date cannot be read go to ``_unroutable/``.

A manifest object per ingested file version, ``_manifest/<file id>/<version>.json``, records the
days it touched. It is written last, so a crash mid-ingest just re-ingests the file (shard names
are deterministic), and finding what is pending costs two listings, not a read per file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sales_analytics.ingest.sources import LandingSource
from sales_analytics.lake.coerce import parse_timestamps
from sales_analytics.storage.lake import LakeResource, ObjectInfo
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, table_to_parquet_bytes

RAW_PREFIX = "raw/order_lines"
UNROUTABLE = "_unroutable"
MANIFEST_PREFIX = f"{RAW_PREFIX}/_manifest"
LINEAGE_COLUMNS = ("source", "source_file", "source_row")


@dataclass
class FileIngest:
    key: str
    version: str
    rows: int = 0
    unroutable: int = 0
    days: dict[str, int] = field(default_factory=dict)


def file_id(landing_key: str) -> str:
    return landing_key.removeprefix("landing/").replace("/", "__")


def shard_key(day: str, landing_key: str) -> str:
    return f"{RAW_PREFIX}/order_date={day}/{file_id(landing_key)}.parquet"


def unroutable_key(landing_key: str) -> str:
    return f"{RAW_PREFIX}/{UNROUTABLE}/{file_id(landing_key)}.parquet"


def manifest_key(landing_key: str, version: str) -> str:
    return f"{MANIFEST_PREFIX}/{file_id(landing_key)}/{version}.json"


def ingested_versions(lake: LakeResource) -> dict[str, set[str]]:
    """file id -> object versions already ingested, from one listing of the manifests."""
    versions: dict[str, set[str]] = {}
    for info in lake.list(f"{MANIFEST_PREFIX}/"):
        fid, version = info.key.removeprefix(f"{MANIFEST_PREFIX}/").removesuffix(".json").split("/", 1)
        versions.setdefault(fid, set()).add(version)
    return versions


def pending_objects(lake: LakeResource, sources: tuple[LandingSource, ...]) -> Iterator[tuple[LandingSource, ObjectInfo]]:
    """Landed objects whose current version has not been ingested yet."""
    done = ingested_versions(lake)
    for source in sources:
        for info in lake.list(source.prefix):
            if info.version not in done.get(file_id(info.key), ()):
                yield source, info


def _previous_manifests(lake: LakeResource, landing_key: str) -> list[tuple[str, FileIngest]]:
    return [(o.key, FileIngest(**json.loads(lake.get_bytes(o.key))))
            for o in lake.list(f"{MANIFEST_PREFIX}/{file_id(landing_key)}/")]


def read_landed_csv(data: bytes, landing_key: str) -> pa.Table:
    """Every column as text, exactly as landed, with 1-based data-row numbers."""
    header = next(csv.reader(io.StringIO(data[:65536].decode("utf-8-sig", errors="replace"))), [])
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding="utf8"),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in header}),
        )
    except pa.ArrowInvalid as err:
        raise ValueError(f"{landing_key}: cannot be read as CSV: {err}") from err
    return table.append_column("source_row", pa.array(range(1, table.num_rows + 1), pa.int64()))


def order_day(raw: pa.Table) -> pa.Array:
    """UTC order date as ``YYYY-MM-DD`` text, null where order_ts does not parse."""
    if "order_ts" not in raw.column_names:
        return pa.nulls(raw.num_rows, pa.string())
    return pc.strftime(parse_timestamps(raw["order_ts"]), format="%Y-%m-%d")


def ingest_object(lake: LakeResource, source: LandingSource, info: ObjectInfo) -> FileIngest:
    raw = read_landed_csv(lake.get_bytes(info.key), info.key)
    raw = raw.append_column("source", pa.array([source.name] * raw.num_rows, pa.string()))
    raw = raw.append_column("source_file", pa.array([info.key] * raw.num_rows, pa.string()))
    days = order_day(raw)
    result = FileIngest(key=info.key, version=info.version, rows=raw.num_rows)
    routable = pc.is_valid(days)
    for day in pc.unique(days.filter(routable)).to_pylist():
        shard = raw.filter(pc.equal(days, day))
        lake.put_bytes(shard_key(day, info.key), table_to_parquet_bytes(shard))
        result.days[day] = shard.num_rows
    unroutable = raw.filter(pc.invert(routable))
    result.unroutable = unroutable.num_rows
    if unroutable.num_rows:
        lake.put_bytes(unroutable_key(info.key), table_to_parquet_bytes(unroutable))
    # Order matters for crash safety: superseded shards go before the new manifest marks the
    # version done; the old manifest goes last, once nothing it describes is left.
    superseded = [(key, m) for key, m in _previous_manifests(lake, info.key) if m.version != info.version]
    for _, manifest in superseded:
        _drop_superseded_shards(lake, manifest, result)
    lake.put_bytes(manifest_key(info.key, info.version), json.dumps(result.__dict__, sort_keys=True).encode())
    for key, _ in superseded:
        lake.delete(key)
    return result


def _drop_superseded_shards(lake: LakeResource, previous: FileIngest, current: FileIngest) -> None:
    """A re-delivered file replaces its earlier version, including days it no longer touches."""
    for day in set(previous.days) - set(current.days):
        lake.delete(shard_key(day, current.key))
    if previous.unroutable and not current.unroutable:
        lake.delete(unroutable_key(current.key))


def read_day(lake: LakeResource, day: str) -> pa.Table | None:
    """All raw rows landed so far for one order date (every version of every line)."""
    shards = [parquet_bytes_to_table(lake.get_bytes(o.key)) for o in lake.list(f"{RAW_PREFIX}/order_date={day}/")]
    if not shards:
        return None
    return pa.concat_tables(shards, promote_options="permissive")


def read_unroutable(lake: LakeResource) -> pa.Table | None:
    shards = [parquet_bytes_to_table(lake.get_bytes(o.key)) for o in lake.list(f"{RAW_PREFIX}/{UNROUTABLE}/")]
    return pa.concat_tables(shards, promote_options="permissive") if shards else None
