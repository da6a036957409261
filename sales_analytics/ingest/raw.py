"""Landing objects → raw shards, exactly once per object version, nothing lost.

A landed file is read as declared by its source spec and kept as landed (every column as text)
plus lineage (``source``, ``source_file``, ``source_row``), sharded by business date into
``raw/order_lines/order_date=<day>/<file id>.parquet``. A clean partition then reads only its own
day's shards, so its cost is bounded by the day, not by history, and a late line for an old day
lands in that day's folder.

What cannot be sharded goes to ``quarantine/landing/<file id>.parquet`` with its reason: records
that do not split into the header's columns, rows without a readable order time, and whole files
that cannot be read (wrong format, truncated gzip, missing required columns). Other files go on.

A manifest per ingested file version, ``_manifest/<file id>/<version>.json``, records the days it
touched. It is written last, so a crash mid-ingest just re-ingests the file (shard names are
deterministic), and finding what is pending costs two listings, not a read per file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.alerts import precondition_failed
from sales_analytics.lake.coerce import quarantine_rows, unsplit_records
from sales_analytics.partitions import FIRST_DAY, HISTORY_START_ENV, latest_plausible_day
from sales_analytics.schema import QUARANTINE
from sales_analytics.sources.mapping import order_days
from sales_analytics.sources.readers import UnreadableFile, read_source_file
from sales_analytics.sources.spec import DATED_FOLDER, LANDED_AT, SourceSpec, order_sources
from sales_analytics.storage.lake import LakeResource, ObjectInfo, is_safe_key
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, table_to_parquet_bytes
from sales_analytics.tables import split_by, with_constants

RAW_PREFIX = "raw/order_lines"
MANIFEST_PREFIX = f"{RAW_PREFIX}/_manifest"
LANDING_QUARANTINE_PREFIX = "quarantine/landing"


@dataclass
class FileIngest:
    key: str
    version: str
    source: str = ""
    rows: int = 0  # records in the file, good or bad
    quarantined: int = 0  # records quarantined at landing (unsplittable, no order time, unreadable file)
    unreadable: str | None = None  # the reason, when the whole file was quarantined
    new_columns: list[str] = field(default_factory=list)  # schema drift: columns the spec does not know
    days: dict[str, int] = field(default_factory=dict)
    dropped_days: list[str] = field(default_factory=list)  # days an earlier version of the file had, this one not
    landing_day: str = ""  # the dated folder it landed in, else the day it landed (UTC)

    @property
    def routed(self) -> int:
        return sum(self.days.values())

    @property
    def reconciles(self) -> bool:
        """Every record of the file is in a day's raw shard or in the landing quarantine."""
        return self.rows == self.routed + self.quarantined

    @property
    def touched(self) -> set[str]:
        """Partitions to rebuild: the days this version lands in and the days it took rows away from."""
        return set(self.days) | set(self.dropped_days)


def file_id(landing_key: str) -> str:
    return landing_key.removeprefix("landing/").replace("/", "__")


def shard_key(day: str, landing_key: str) -> str:
    return f"{RAW_PREFIX}/order_date={day}/{file_id(landing_key)}.parquet"


def landing_quarantine_key(landing_key: str) -> str:
    return f"{LANDING_QUARANTINE_PREFIX}/{file_id(landing_key)}.parquet"


def manifest_key(landing_key: str, version: str) -> str:
    return f"{MANIFEST_PREFIX}/{file_id(landing_key)}/{version}.json"


def ingested_versions(lake: LakeResource) -> dict[str, set[str]]:
    """file id -> object versions already ingested, from one listing of the manifests."""
    versions: dict[str, set[str]] = {}
    for info in lake.list(f"{MANIFEST_PREFIX}/"):
        fid, version = info.key.removeprefix(f"{MANIFEST_PREFIX}/").removesuffix(".json").split("/", 1)
        versions.setdefault(fid, set()).add(version)
    return versions


def pending_objects(lake: LakeResource, sources: tuple[SourceSpec, ...]) -> Iterator[tuple[SourceSpec, ObjectInfo]]:
    """Landed objects whose current version has not been ingested yet."""
    done = ingested_versions(lake)
    for source in sources:
        for info in lake.list(source.prefix):
            if info.version not in done.get(file_id(info.key), ()):
                yield source, info


def requested_objects(lake: LakeResource, keys: list[str]) -> Iterator[tuple[SourceSpec, ObjectInfo]]:
    """The named landed objects not ingested at their current version (gone ones are skipped).

    One small listing per object (its own manifests): a sensor's run costs the same at any history."""
    specs = order_sources()
    for key in keys:
        spec = next((s for s in specs if key.startswith(s.prefix)), None)
        if spec is None or not is_safe_key(key):
            raise precondition_failed(f"run config names {key!r}: not an object under a declared source's landing prefix")
        info = lake.info(key)
        if info is not None and info.version not in {m.version for _, m in _previous_manifests(lake, key)}:
            yield spec, info


def _previous_manifests(lake: LakeResource, landing_key: str) -> list[tuple[str, FileIngest]]:
    return [(o.key, FileIngest(**json.loads(lake.get_bytes(o.key))))
            for o in lake.list(f"{MANIFEST_PREFIX}/{file_id(landing_key)}/")]


def _read(lake: LakeResource, spec: SourceSpec, info: ObjectInfo, result: FileIngest) -> tuple[pa.Table | None, pa.Table]:
    """(landed rows, or None for an unreadable file; quarantine rows so far)."""
    try:
        landed = read_source_file(lake.get_bytes(info.key), info.key, spec)
    except UnreadableFile as err:
        result.unreadable, result.quarantined = str(err), 1
        return None, quarantine_rows(spec.name, info.key, [0], [f"file not ingested: {err}"])
    result.new_columns = [c for c in landed.table.column_names if c not in (*spec.source_columns, "source_row")]
    quarantine = unsplit_records(spec.name, info.key, landed.broken)
    table = with_constants(landed.table, {"source": spec.name, "source_file": info.key, LANDED_AT: info.modified})
    return table, quarantine


def _routable(days: pa.Array) -> pa.Array:
    """Per row, whether it has a day partition: a readable date within the deployment's history."""
    within = pc.and_(pc.greater_equal(days, pa.scalar(FIRST_DAY, pa.date32())),
                     pc.less_equal(days, pa.scalar(latest_plausible_day(), pa.date32())))
    return pc.fill_null(within, False)


def _unroutable_reasons(days: pa.Array) -> list[str]:
    """Why each of these rows (all without a day partition) has none: no readable date, a date before the
    deployment's history, or one implausibly in the future. Worded only for these few rows, not every row."""
    first, latest = FIRST_DAY, latest_plausible_day()
    return ["no readable order time: the row has no business date" if day is None
            else f"order date {day} is before the history start {first} ({HISTORY_START_ENV})" if day < first
            else f"order date {day} is implausibly in the future (after {latest})" for day in days.to_pylist()]


def landing_day(spec: SourceSpec, info: ObjectInfo) -> dt.date:
    """The day a file landed: its dated folder's, else the day the object was written (UTC)."""
    folder = info.key.removeprefix(spec.prefix).split("/", 1)[0]
    if spec.dated_folders and DATED_FOLDER.fullmatch(folder):
        return dt.date.fromisoformat(folder)
    return info.modified.astimezone(dt.UTC).date()


def ingest_object(lake: LakeResource, spec: SourceSpec, info: ObjectInfo) -> FileIngest:
    landed_on = landing_day(spec, info)
    result = FileIngest(key=info.key, version=info.version, source=spec.name, landing_day=landed_on.isoformat())
    table, quarantine = _read(lake, spec, info, result)
    if table is not None:
        result.rows = table.num_rows + quarantine.num_rows
        days = order_days(table, spec)
        routable = _routable(days)
        unrouted = pc.invert(routable)
        unroutable = table.filter(unrouted)
        routed = table.append_column("_day", days)
        if unroutable.num_rows:  # else no copy of the file's rows
            routed = routed.filter(routable)
        shards = split_by(routed, "_day")
        # shards are read whole, by day: no statistics to write
        lake.put_objects({shard_key(day.isoformat(), info.key): table_to_parquet_bytes(shard.drop_columns(["_day"]), statistics=False)
                          for day, shard in shards.items()})
        result.days.update((day.isoformat(), shard.num_rows) for day, shard in shards.items())
        order_ts = spec.columns["order_ts"].source_columns()
        shown = unroutable[order_ts[0]] if order_ts and order_ts[0] in unroutable.column_names else pa.nulls(unroutable.num_rows, pa.string())
        quarantine = pa.concat_tables([quarantine, quarantine_rows(
            spec.name, info.key, unroutable["source_row"].to_pylist(), _unroutable_reasons(days.filter(unrouted)),
            ["order_ts"] * unroutable.num_rows, shown.to_pylist())])
        result.quarantined = quarantine.num_rows
    else:
        result.rows = 1
    if quarantine.num_rows:  # dated by the landing day: the reconciliation counts them per source and day
        dated = quarantine.set_column(quarantine.schema.get_field_index("order_date"), "order_date",
                                      pa.repeat(pa.scalar(landed_on, pa.date32()), quarantine.num_rows))
        lake.put_bytes(landing_quarantine_key(info.key), table_to_parquet_bytes(dated))
    _finish(lake, info, result)
    return result


def _finish(lake: LakeResource, info: ObjectInfo, result: FileIngest) -> None:
    # Order matters for crash safety: superseded objects go before the new manifest marks the
    # version done; the old manifest goes last, once nothing it describes is left.
    superseded = [(key, m) for key, m in _previous_manifests(lake, info.key) if m.version != info.version]
    for _, manifest in superseded:
        for day in sorted(set(manifest.days) - set(result.days)):
            lake.delete(shard_key(day, info.key))
            result.dropped_days.append(day)
        if manifest.quarantined and not result.quarantined:
            lake.delete(landing_quarantine_key(info.key))
    lake.put_bytes(manifest_key(info.key, info.version), json.dumps(asdict(result), sort_keys=True).encode())
    for key, _ in superseded:
        lake.delete(key)


def read_day_shards(lake: LakeResource, day: str) -> list[pa.Table]:
    """Every raw shard landed so far for one business date (every version of every line)."""
    return [parquet_bytes_to_table(lake.get_bytes(o.key)) for o in lake.list(f"{RAW_PREFIX}/order_date={day}/")]


def read_landing_quarantine(lake: LakeResource) -> pa.Table:
    parts = [parquet_bytes_to_table(lake.get_bytes(o.key)) for o in lake.list(f"{LANDING_QUARANTINE_PREFIX}/")]
    return pa.concat_tables(parts) if parts else QUARANTINE.empty_table()
