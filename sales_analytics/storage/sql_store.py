"""SQL report store (the RDS role): SQLite by default, PostgreSQL on the stack and on AWS.

Tables are created from the canonical ``TableSpec``; a partition is replaced in one transaction
(delete + insert with bound parameters), so re-running a partition is idempotent and a failed
write leaves the previous rows in place.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from sales_analytics.schema import TableSpec

_SQL_TYPES: dict[str, Any] = {
    "string": sa.Text,
    "int64": sa.BigInteger,
    "float64": sa.Float(precision=53),
    "bool": sa.Boolean,
    "date": sa.Date,
    "timestamp": sa.DateTime(timezone=True),
}


class SqlLayoutError(RuntimeError):
    """A stored report table whose key differs from its spec: a copy to drop and republish."""


def _add_new_columns(conn: sa.Connection, table: sa.Table, spec: TableSpec) -> None:
    """A table created by an earlier release gains the spec's new columns (null on its old rows);
    a changed key cannot be migrated in place and is named instead."""
    inspector = sa.inspect(conn)
    stored = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
    key = inspector.get_pk_constraint(table.name, schema=table.schema)["constrained_columns"]
    if sorted(key) != sorted(spec.key):
        raise SqlLayoutError(f"report table {table.fullname} is keyed by {key}, its spec by {list(spec.key)}: drop it "
                             "(it is a copy of the lake) and republish its partitions")
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        if column.name not in stored:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.quote(column.name)} {kind}"))


class SqlReportStore(dg.ConfigurableResource):
    """Report tables for BI. ``url`` is a SQLAlchemy URL; on AWS it comes from ``dg.EnvVar``."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///.data/local/reports.db")
    schema_name: str | None = Field(default=None, description="PostgreSQL schema for report tables")

    _engine: sa.Engine | None = PrivateAttr(default=None)
    _metadata: sa.MetaData | None = PrivateAttr(default=None)

    def engine(self) -> sa.Engine:
        if self._engine is None:
            url = sa.make_url(self.url)
            if url.get_backend_name() == "sqlite" and url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(url, pool_pre_ping=True)
            self._metadata = sa.MetaData(schema=self.schema_name)
        return self._engine

    def sql_table(self, spec: TableSpec) -> sa.Table:
        self.engine()
        assert self._metadata is not None
        qualified = f"{self.schema_name}.{spec.name}" if self.schema_name else spec.name
        if qualified in self._metadata.tables:
            return self._metadata.tables[qualified]
        columns = [
            sa.Column(c.name, _SQL_TYPES[c.type], nullable=c.nullable, primary_key=c.name in spec.key, comment=c.description or None)
            for c in spec.columns
        ]
        indexed = [(spec.partition_column,)] if spec.partition_column else []
        indexes = [sa.Index(f"ix_{spec.name}_{'_'.join(columns)}", *columns) for columns in [*indexed, *spec.indexes]]
        return sa.Table(spec.name, self._metadata, *columns, *indexes, comment=spec.description or None)

    def ensure_table(self, spec: TableSpec) -> sa.Table:
        table = self.sql_table(spec)
        with self.engine().begin() as conn:
            if self.schema_name:
                conn.execute(sa.schema.CreateSchema(self.schema_name, if_not_exists=True))
            table.create(conn, checkfirst=True)
            _add_new_columns(conn, table, spec)
        return table

    def replace_partition(self, spec: TableSpec, partition_key: str, rows: pa.Table) -> int:
        """Make the table's rows for one partition exactly ``rows``, atomically."""
        value = spec.partition_value(partition_key)
        table = self.ensure_table(spec)
        with self.engine().begin() as conn:
            conn.execute(sa.delete(table).where(table.c[spec.partition_column] == sa.bindparam("p")), {"p": value})
            return self._insert(conn, table, spec, rows)

    def replace_table(self, spec: TableSpec, rows: pa.Table) -> int:
        """Make the whole table exactly ``rows``, atomically: for reports rebuilt whole."""
        table = self.ensure_table(spec)
        with self.engine().begin() as conn:
            conn.execute(sa.delete(table))
            return self._insert(conn, table, spec, rows)

    def read(self, spec: TableSpec, partition_key: str | None = None) -> list[dict[str, Any]]:
        table = self.ensure_table(spec)
        query = sa.select(table).order_by(*[table.c[k] for k in spec.key])
        if partition_key is not None:
            query = query.where(table.c[spec.partition_column] == spec.partition_value(partition_key))
        with self.engine().connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def page(self, spec: TableSpec, equals: dict[str, str], date_range: tuple[str, dt.date | None, dt.date | None] | None,
             limit: int, after: tuple | None = None) -> tuple[list[dict[str, Any]], tuple | None]:
        """Up to ``limit`` rows in key order with ``column = value`` for each of ``equals`` and the date
        column in range, after the key ``after`` (keyset paging: stable while rows are added); and the
        key to continue after, None on the last page. Every value is a bound parameter."""
        table = self.ensure_table(spec)
        key = [table.c[k] for k in spec.key]
        query = sa.select(table).order_by(*key).limit(limit + 1)
        for column, value in equals.items():
            query = query.where(table.c[column] == value)
        if date_range is not None:
            column, first, last = date_range
            query = query.where(table.c[column] >= first) if first else query
            query = query.where(table.c[column] <= last) if last else query
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*[sa.literal(v, type_=c.type) for v, c in zip(after, key, strict=True)]))
        with self.engine().connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        page = rows[:limit]
        return page, (tuple(page[-1][k] for k in spec.key) if len(rows) > limit else None)

    @staticmethod
    def _insert(conn: sa.Connection, table: sa.Table, spec: TableSpec, rows: pa.Table) -> int:
        records = rows.select(spec.column_names).to_pylist()
        if records:
            conn.execute(sa.insert(table), records)
        return len(records)
