"""Incremental extraction of a SQL source into the landing zone, by watermark, in bounded batches.

Rows are read in (watermark, tiebreak...) order, strictly after the last row extracted, so many
rows sharing one ``updated_at`` never straddle a batch boundary unseen. Each batch lands as a
Parquet file in today's dated folder and is then ingested like any other landed file; a row
changed after its extraction has a newer watermark and comes with a later batch (the latest
version wins downstream). The position is kept in the lake (``raw/_extract/<source>.json``) and
written after its batch, so a crash re-extracts a batch rather than skipping one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from sales_analytics.sources.spec import SourceSpec, SqlExtract
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import table_to_parquet_bytes

STATE_PREFIX = "raw/_extract"


@dataclass
class ExtractResult:
    files: list[str] = field(default_factory=list)
    rows: int = 0
    position: list[Any] | None = None


def state_key(spec: SourceSpec) -> str:
    return f"{STATE_PREFIX}/{spec.name}.json"


def read_position(lake: LakeResource, spec: SourceSpec) -> list[Any] | None:
    """The (watermark, tiebreak...) of the last extracted row, or None before the first extraction."""
    key = state_key(spec)
    if not lake.exists(key):
        return None
    return [_decode(v) for v in json.loads(lake.get_bytes(key))["position"]]


def _encode(value: Any) -> Any:
    return {"datetime": value.isoformat()} if isinstance(value, dt.datetime) else value


def _decode(value: Any) -> Any:
    return dt.datetime.fromisoformat(value["datetime"]) if isinstance(value, dict) else value


def database_url(extract: SqlExtract) -> str:
    url = os.environ.get(extract.url_env)
    if not url:
        raise RuntimeError(f"set {extract.url_env} to the source database's SQLAlchemy URL")
    return url


def _table(engine: sa.Engine, extract: SqlExtract, columns: list[str]) -> sa.Table:
    schema, _, name = extract.table.rpartition(".")
    table = sa.Table(name, sa.MetaData(schema=schema or None), autoload_with=engine)  # reflection: a real table only
    missing = sorted(set(columns) - set(table.c.keys()))
    if missing:
        raise ValueError(f"{extract.table} lacks columns {missing} named in the source spec")
    return table


def latest_watermark(engine: sa.Engine, spec: SourceSpec) -> Any:
    assert spec.extract is not None
    table = _table(engine, spec.extract, spec.source_columns)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(table.c[spec.extract.watermark]))).scalar()


def extract(lake: LakeResource, spec: SourceSpec, engine: sa.Engine, today: dt.date) -> ExtractResult:
    assert spec.extract is not None
    ex = spec.extract
    table = _table(engine, ex, spec.source_columns)
    order = [table.c[ex.watermark], *(table.c[k] for k in ex.tiebreak)]
    position = read_position(lake, spec)
    result = ExtractResult(position=position)
    with engine.connect() as conn:
        for _ in range(ex.max_batches_per_run):
            query = sa.select(*(table.c[c] for c in spec.source_columns)).order_by(*order).limit(ex.batch_rows)
            if position is not None:
                query = query.where(sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in position)))
            rows = [dict(r._mapping) for r in conn.execute(query)]
            if not rows:
                break
            key = _land_batch(lake, spec, rows, position, today)
            position = [rows[-1][ex.watermark], *(rows[-1][k] for k in ex.tiebreak)]
            lake.put_bytes(state_key(spec), json.dumps({"position": [_encode(v) for v in position]}).encode())
            result.files.append(key)
            result.rows += len(rows)
            if len(rows) < ex.batch_rows:
                break
    result.position = position
    return result


def _land_batch(lake: LakeResource, spec: SourceSpec, rows: list[dict], start: list[Any] | None, today: dt.date) -> str:
    # Named by where the batch starts: a batch re-extracted after a crash replaces itself.
    digest = hashlib.sha256(json.dumps([_encode(v) for v in start or []], default=str).encode()).hexdigest()[:16]
    key = f"{spec.prefix}{today:%Y-%m-%d}/{spec.name}-{digest}.parquet"
    lake.put_bytes(key, table_to_parquet_bytes(pa.Table.from_pylist(rows)))
    return key
