"""Slowly changing reference data (stores, products): every version kept, valid from / to (SCD type 2).

Each delivery of a reference file is a full snapshot that holds from its dated folder's day (or
the spec's ``effective_from``). The history is rebuilt from all snapshots in date order: a key
gets a new version whenever its attributes differ from its previous version, the previous one is
closed the day the new one starts, and the newest is current. A key a later snapshot of its source
no longer lists (a store closed) is closed that day and has no current version until it returns.
Facts join the version valid on their order date (``as_of``), so a store's region is the region it
had when it sold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import pairwise

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.lake.coerce import quarantine_rows, unsplit_records, validate
from sales_analytics.schema import DELIVERY_LINEAGE, HISTORY_LINEAGE, QUARANTINE, TableSpec, with_lineage
from sales_analytics.sources.mapping import map_rows
from sales_analytics.sources.readers import UnreadableFile, read_source_file
from sales_analytics.sources.spec import TARGETS, SourceSpec
from sales_analytics.storage.lake import LakeResource
from sales_analytics.tables import same_as_neighbour, with_constants

GONE = "_gone"  # marks a departure row while versions are built


@dataclass(frozen=True)
class Dimension:
    history: pa.Table  # the target's columns + HISTORY_LINEAGE (or DELIVERY_LINEAGE), sorted by key and valid_from
    rejects: pa.Table  # QUARANTINE schema
    rows_in: int
    snapshots: int


def history_schema(table: TableSpec) -> pa.Schema:
    return with_lineage(table, HISTORY_LINEAGE).arrow_schema()


def snapshot_date(spec: SourceSpec, key: str) -> dt.date:
    if spec.dated_folders:
        return dt.date.fromisoformat(key.removeprefix(spec.prefix).split("/", 1)[0])
    assert spec.effective_from is not None
    return spec.effective_from


@dataclass
class Snapshots:
    valid: list[pa.Table] = field(default_factory=list)  # valid rows of each file, with date and lineage
    rejects: list[pa.Table] = field(default_factory=list)  # QUARANTINE schema
    rows_in: int = 0
    listed: list[pa.Table] = field(default_factory=list)  # each readable file's keys (rows valid or not), date, lineage


def read_snapshots(lake: LakeResource, specs: tuple[SourceSpec, ...]) -> Snapshots:
    read = Snapshots()
    for spec in specs:
        table = TARGETS[spec.target]
        for info in lake.list(spec.prefix):
            try:
                read_back = read_source_file(lake.get_bytes(info.key), info.key, spec)
            except UnreadableFile as err:
                read.rejects.append(quarantine_rows(spec.name, info.key, [0], [f"file not read: {err}"]))
                read.rows_in += 1
                continue
            read.rejects.append(unsplit_records(spec.name, info.key, read_back.broken))
            landed = with_constants(read_back.table, {"source": spec.name, "source_file": info.key})
            mapped = map_rows(landed, spec)
            result = validate(mapped, table, landed)
            read.rows_in += landed.num_rows + len(read_back.broken)
            lineage = {"valid_from": snapshot_date(spec, info.key), "source": spec.name, "source_file": info.key}
            read.valid.append(with_constants(result.valid, lineage))
            read.rejects.append(result.rejects)
            keys = pa.table({k: mapped[k].parsed for k in table.key}).drop_null()
            if keys.num_rows:  # a snapshot listing no key at all is broken, not every key closed
                read.listed.append(with_constants(keys, lineage))
    return read


def departures(listed: list[pa.Table], key: list[str]) -> pa.Table:
    """Keys a full snapshot no longer lists (a store closed, a product delisted): one row per key
    and source, dated the first snapshot day without it. A rejected row still lists its key, and
    an unreadable file lists nothing, so neither closes anything."""
    if not listed:
        return pa.table({})
    every = pa.concat_tables(listed)
    gone: list[pa.Table] = []
    for source in pc.unique(every["source"]).to_pylist():
        of_source = every.filter(pc.equal(every["source"], source))
        days = sorted(pc.unique(of_source["valid_from"]).to_pylist())
        for before, day in pairwise(days):
            earlier = of_source.filter(pc.equal(of_source["valid_from"], before)).select(key)
            now = of_source.filter(pc.equal(of_source["valid_from"], day))
            missing = earlier.group_by(key).aggregate([]).join(now.select(key), keys=key, join_type="left anti")
            gone.append(with_constants(missing, {"valid_from": day, "source": source,
                                                  "source_file": now["source_file"][0].as_py()}))
    return pa.concat_tables(gone) if gone else every.slice(0, 0)


def build_history(snapshots: list[pa.Table], table: TableSpec, gone: pa.Table | None = None) -> pa.Table:
    """Versions from dated snapshots: a new version where a key's attributes change; ``gone``
    (see ``departures``) closes a key's version on the day it left, with no version after it."""
    schema = history_schema(table)
    if not snapshots or not sum(s.num_rows for s in snapshots):
        return schema.empty_table()
    rows = pa.concat_tables(snapshots).append_column(GONE, pa.array([False] * sum(s.num_rows for s in snapshots)))
    if gone is not None and gone.num_rows:
        rows = pa.concat_tables([rows, gone.append_column(GONE, pa.array([True] * gone.num_rows))],
                                promote_options="default")
    key, attributes = list(table.key), [c for c in table.column_names if c not in table.key]
    # Within one day a later snapshot (file key) wins; then one row per key and day.
    rows = rows.sort_by([*((k, "ascending") for k in key), ("valid_from", "ascending"), ("source_file", "descending")])
    rows = _first_per(rows, [*key, "valid_from"])
    fingerprint = pc.binary_join_element_wise(*(pc.fill_null(pc.cast(rows[a], pa.string()), "\x00") for a in [*attributes, GONE]), "\x1f")
    same_key = same_as_neighbour(rows, key, 1)
    changed = pc.or_(pc.invert(same_key), pc.invert(same_as_neighbour(pa.table({"fingerprint": fingerprint}), ["fingerprint"], 1)))
    versions = rows.filter(changed)
    next_same_key = same_as_neighbour(versions, key, -1)
    next_from = pa.concat_arrays([versions["valid_from"].combine_chunks()[1:], pa.nulls(1, pa.date32())])
    valid_to = pc.if_else(next_same_key, next_from, pa.scalar(None, pa.date32()))
    history = versions.append_column("valid_to", valid_to).append_column("is_current", pc.is_null(valid_to))
    history = history.filter(pc.invert(history[GONE]))  # a departure only ends the version before it
    return history.select(schema.names).cast(schema)


def _first_per(rows: pa.Table, group: list[str]) -> pa.Table:
    return rows.filter(pc.invert(same_as_neighbour(rows, group, 1)))


def build_dimension(lake: LakeResource, specs: tuple[SourceSpec, ...], table: TableSpec) -> Dimension:
    read = read_snapshots(lake, specs)
    history = build_history(read.valid, table, departures(read.listed, list(table.key)))
    return Dimension(history, pa.concat_tables([QUARANTINE.empty_table(), *read.rejects]), read.rows_in, len(read.valid))


def latest_deliveries(lake: LakeResource, specs: tuple[SourceSpec, ...], table: TableSpec) -> Dimension:
    """Reviews, signals: one row per key, the latest delivery (by file date, then file) winning, with
    the day it was delivered."""
    read = read_snapshots(lake, specs)
    rejects = pa.concat_tables([QUARANTINE.empty_table(), *read.rejects])
    lineage = ["source", "source_file", "valid_from"]
    schema = with_lineage(table, DELIVERY_LINEAGE).arrow_schema()
    if not read.valid:
        return Dimension(schema.empty_table(), rejects, read.rows_in, 0)
    rows = pa.concat_tables(read.valid).sort_by([(k, "ascending") for k in table.key] + [("valid_from", "descending"),
                                                                                       ("source_file", "descending")])
    latest = _first_per(rows, list(table.key)).select([*table.column_names, *lineage]).rename_columns(schema.names)
    return Dimension(latest.cast(schema), rejects, read.rows_in, len(read.valid))


def as_of(facts: pa.Table, history: pa.Table, key: str, date_column: str, columns: list[str]) -> pa.Table:
    """``facts`` with the dimension's ``columns`` as they were on each fact's ``date_column``."""
    right = history.select([key, "valid_from", *columns]).rename_columns([key, date_column, *columns])
    # As-of joins need the "on" column globally sorted; tolerance is in days, backwards.
    left = facts.sort_by(date_column)
    right = right.sort_by(date_column)
    return left.join_asof(right, on=date_column, by=key, tolerance=-1_000_000)
