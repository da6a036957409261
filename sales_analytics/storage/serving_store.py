"""Serving store (the DynamoDB role): DynamoDB / DynamoDB Local, or an embedded equivalent.

Items follow DynamoDB's model: a partition (hash) key and a sort (range) key taken from the
table spec's ``serving_key``, attribute values in DynamoDB's typed form. Each table also has a
``by_partition`` index on the spec's partition column, so that re-writing a lake partition can
find and delete the items it no longer contains.

A partition is replaced in batches of 25, so it cannot change atomically. Readers see it whole or
not at all instead: a ``PUBLISHING`` marker item hides the partition while it is being written; a
run killed midway leaves it hidden (absent, never partial) until a re-run completes it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field, PrivateAttr

from sales_analytics.schema import SORT_KEY_SEPARATOR, TableSpec

BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
PARTITION_INDEX = "by_partition"
# A partition being replaced has a marker item under this partition key (its sort key: the
# partition, or WHOLE_TABLE) from before the first write until after the last; readers skip it.
PUBLISHING = "__publishing__"
WHOLE_TABLE = "*"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]  # attribute name -> python value (str, Decimal, bool)


@dataclass(frozen=True)
class ReplaceStats:
    written: int
    deleted: int


def to_item(spec: TableSpec, row: dict[str, Any]) -> Item:
    """A row of the spec's table as a DynamoDB item (dates/timestamps as ISO strings)."""
    item: Item = {}
    for column in spec.columns:
        value = row.get(column.name)
        if value is None:
            continue
        if isinstance(value, dt.datetime | dt.date):
            value = value.isoformat()
        elif isinstance(value, float):
            value = Decimal(repr(value))
        item[column.name] = value
    key = spec.serving_key
    if key is not None and len(key.sort_columns) > 1:
        item[key.sort_key] = SORT_KEY_SEPARATOR.join(str(item[c]) for c in key.sort_columns)
    return item


def _check_key_schema(spec: TableSpec, name: str, key_schema: list[dict[str, str]]) -> None:
    """A table created by an earlier release with another key would take items under the wrong key."""
    assert spec.serving_key is not None
    stored = {k["KeyType"]: k["AttributeName"] for k in key_schema}
    wanted = {"HASH": spec.serving_key.partition_key, "RANGE": spec.serving_key.sort_key}
    if stored != wanted:
        raise ServingLayoutError(f"DynamoDB table {name} is keyed {stored}, its spec {wanted}: delete it (it is a copy "
                                 "of the lake) and republish its partitions")


class ServingLayoutError(RuntimeError):
    """A serving table whose key differs from its spec."""


def _check_serving_spec(spec: TableSpec) -> None:
    if spec.serving_key is None or spec.partition_column is None:
        raise ValueError(f"{spec.name} has no serving key or partition column; it is not served")
    for name in (spec.serving_key.partition_key, *spec.serving_key.sort_columns, spec.partition_column):
        if spec.column(name).type not in ("string", "date"):
            raise ValueError(f"{spec.name}.{name}: serving keys must be string or date columns")


class ServingStore(dg.ConfigurableResource, ABC):
    """What report assets need from a serving store; implemented by DynamoDB and an embedded one."""

    table_prefix: str = Field(default="sales_analytics_", description="prefix of every table name")

    def table_name(self, spec: TableSpec) -> str:
        return f"{self.table_prefix}{spec.name}"

    @abstractmethod
    def ensure_table(self, spec: TableSpec) -> None: ...

    @abstractmethod
    def partition_keys(self, spec: TableSpec, partition_value: str) -> list[tuple[str, str]]:
        """(partition key, sort key) of every item currently in a lake partition."""

    @abstractmethod
    def write_items(self, spec: TableSpec, puts: list[Item], deletes: list[tuple[str, str]]) -> None: ...

    @abstractmethod
    def _query(self, spec: TableSpec, key_value: str, sort_from: str | None = None, sort_to: str | None = None) -> list[Item]: ...

    @abstractmethod
    def _query_page(self, spec: TableSpec, key_value: str, sort_from: str, sort_to: str, limit: int,
                    after: str | None) -> tuple[list[Item], str | None]: ...

    @abstractmethod
    def _all_keys(self, spec: TableSpec) -> list[tuple[str, str]]: ...

    def query(self, spec: TableSpec, key_value: str, sort_from: str | None = None, sort_to: str | None = None) -> list[Item]:
        """Items with this partition key, optionally with the sort key in [sort_from, sort_to]."""
        return self._visible(spec, self._query(spec, key_value, sort_from, sort_to))

    def query_page(self, spec: TableSpec, key_value: str, sort_from: str, sort_to: str, limit: int,
                   after: str | None = None) -> tuple[list[Item], str | None]:
        """Up to ``limit`` items with this partition key and sort key in [sort_from, sort_to], after
        the sort key ``after``; and the sort key to continue after, None on the last page."""
        items, last = self._query_page(spec, key_value, sort_from, sort_to, limit, after)
        return self._visible(spec, items), last

    def all_keys(self, spec: TableSpec) -> list[tuple[str, str]]:
        """(partition key, sort key) of every item of the table: for reports replaced whole."""
        return [k for k in self._all_keys(spec) if k[0] != PUBLISHING]

    def being_replaced(self, spec: TableSpec) -> set[str]:
        """The partitions (or ``WHOLE_TABLE``) a run is writing now, or was when it died."""
        key = spec.serving_key
        assert key is not None
        return {str(item[key.sort_key]) for item in self._query(spec, PUBLISHING)}

    def _visible(self, spec: TableSpec, items: list[Item]) -> list[Item]:
        hidden = self.being_replaced(spec) if items else set()
        if WHOLE_TABLE in hidden:
            return []
        return [i for i in items if str(i.get(spec.partition_column)) not in hidden] if hidden else items

    def replace_partition(self, spec: TableSpec, partition_value: str, rows: pa.Table) -> ReplaceStats:
        """Make the items of one lake partition exactly ``rows``: upsert them, delete the rest."""
        return self._replace(spec, rows, partition_value, lambda: self.partition_keys(spec, partition_value))

    def replace_all(self, spec: TableSpec, rows: pa.Table) -> ReplaceStats:
        """Make the table's items exactly ``rows`` (a report rebuilt whole)."""
        return self._replace(spec, rows, WHOLE_TABLE, lambda: self.all_keys(spec))

    def _replace(self, spec: TableSpec, rows: pa.Table, marked: str, existing: Callable[[], list[tuple[str, str]]]) -> ReplaceStats:
        _check_serving_spec(spec)
        self.ensure_table(spec)
        key = spec.serving_key
        assert key is not None
        items = [to_item(spec, row) for row in rows.to_pylist()]
        wanted = {(i[key.partition_key], i[key.sort_key]) for i in items}
        stale = [k for k in existing() if k not in wanted and k[0] != PUBLISHING]
        self.write_items(spec, [{key.partition_key: PUBLISHING, key.sort_key: marked}], [])  # hidden from readers
        self.write_items(spec, items, stale)
        self.write_items(spec, [], [(PUBLISHING, marked)])  # whole again
        return ReplaceStats(written=len(items), deleted=len(stale))


class DynamoDBServingStore(ServingStore, ResourceWithBoto3Configuration):
    """DynamoDB (AWS) or DynamoDB Local (``endpoint_url``)."""

    create_tables: bool = Field(default=True, description="create missing tables (off on AWS)")
    max_batch_attempts: int = Field(default=8, description="attempts per batch with UnprocessedItems")

    _client: Any = PrivateAttr(default=None)
    _ready: set = PrivateAttr(default_factory=set)

    def client(self) -> Any:
        if self._client is None:
            session = self._session()
            self._client = session.client("dynamodb", endpoint_url=self.endpoint_url, use_ssl=self.use_ssl, verify=self.verify)
        return self._client

    def _session(self) -> boto3.session.Session:
        return boto3.session.Session(
            region_name=self.region_name,
            profile_name=self.profile_name,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )

    def ensure_table(self, spec: TableSpec) -> None:
        name = self.table_name(spec)
        if name in self._ready:
            return
        client = self.client()
        try:
            described = client.describe_table(TableName=name)["Table"]
        except client.exceptions.ResourceNotFoundException:
            if not self.create_tables:
                raise
            self._create_table(spec, name)
        else:
            _check_key_schema(spec, name, described["KeySchema"])
        self._ready.add(name)

    def _create_table(self, spec: TableSpec, name: str) -> None:
        _check_serving_spec(spec)
        key, part = spec.serving_key, spec.partition_column
        assert key is not None and part is not None
        index_sort = key.partition_key if part == key.sort_key else key.sort_key
        attributes = sorted({key.partition_key, key.sort_key, part, index_sort})
        client = self.client()
        try:
            client.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
                KeySchema=[
                    {"AttributeName": key.partition_key, "KeyType": "HASH"},
                    {"AttributeName": key.sort_key, "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": PARTITION_INDEX,
                        "KeySchema": [
                            {"AttributeName": part, "KeyType": "HASH"},
                            {"AttributeName": index_sort, "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
            )
        except client.exceptions.ResourceInUseException:
            pass  # created concurrently by another run
        client.get_waiter("table_exists").wait(TableName=name)

    def partition_keys(self, spec: TableSpec, partition_value: str) -> list[tuple[str, str]]:
        key = spec.serving_key
        assert key is not None
        items = self._paginate_query(
            TableName=self.table_name(spec),
            IndexName=PARTITION_INDEX,
            KeyConditionExpression="#p = :p",
            ExpressionAttributeNames={"#p": spec.partition_column},
            ExpressionAttributeValues={":p": {"S": partition_value}},
        )
        return [(i[key.partition_key], i[key.sort_key]) for i in items]

    def _query(self, spec: TableSpec, key_value: str, sort_from: str | None = None, sort_to: str | None = None) -> list[Item]:
        key = spec.serving_key
        assert key is not None
        self.ensure_table(spec)
        names, values = {"#pk": key.partition_key}, {":pk": {"S": key_value}}
        condition = "#pk = :pk"
        bounds = {":lo": sort_from, ":hi": sort_to}
        if sort_from is not None or sort_to is not None:
            names["#sk"] = key.sort_key
            condition += {
                (True, True): " AND #sk BETWEEN :lo AND :hi",
                (True, False): " AND #sk >= :lo",
                (False, True): " AND #sk <= :hi",
            }[(sort_from is not None, sort_to is not None)]
            values |= {k: {"S": v} for k, v in bounds.items() if v is not None}
        return list(
            self._paginate_query(
                TableName=self.table_name(spec),
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        )

    def _all_keys(self, spec: TableSpec) -> list[tuple[str, str]]:
        key = spec.serving_key
        assert key is not None
        self.ensure_table(spec)
        pages = self.client().get_paginator("scan").paginate(
            TableName=self.table_name(spec), ProjectionExpression="#pk, #sk",
            ExpressionAttributeNames={"#pk": key.partition_key, "#sk": key.sort_key})
        return [(i[key.partition_key]["S"], i[key.sort_key]["S"]) for page in pages for i in page["Items"]]

    def _query_page(self, spec: TableSpec, key_value: str, sort_from: str, sort_to: str, limit: int,
                    after: str | None) -> tuple[list[Item], str | None]:
        key = spec.serving_key
        assert key is not None
        self.ensure_table(spec)
        request: dict[str, Any] = {
            "TableName": self.table_name(spec), "Limit": limit,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#pk": key.partition_key, "#sk": key.sort_key},
            "ExpressionAttributeValues": {":pk": {"S": key_value}, ":lo": {"S": sort_from}, ":hi": {"S": sort_to}},
        }
        if after is not None:
            request["ExclusiveStartKey"] = {key.partition_key: {"S": key_value}, key.sort_key: {"S": after}}
        page = self.client().query(**request)
        items = [{k: _deserializer.deserialize(v) for k, v in raw.items()} for raw in page["Items"]]
        last = page.get("LastEvaluatedKey")
        return items, (last[key.sort_key]["S"] if last else None)

    def _paginate_query(self, **kwargs: Any) -> Iterator[Item]:
        for page in self.client().get_paginator("query").paginate(**kwargs):
            for raw in page["Items"]:
                yield {k: _deserializer.deserialize(v) for k, v in raw.items()}

    def write_items(self, spec: TableSpec, puts: list[Item], deletes: list[tuple[str, str]]) -> None:
        key = spec.serving_key
        assert key is not None
        requests = [{"PutRequest": {"Item": {k: _serializer.serialize(v) for k, v in i.items()}}} for i in puts]
        requests += [
            {"DeleteRequest": {"Key": {key.partition_key: {"S": pk}, key.sort_key: {"S": sk}}}} for pk, sk in deletes
        ]
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            self._write_batch(self.table_name(spec), requests[start : start + BATCH_WRITE_LIMIT])

    def _write_batch(self, table: str, requests: list[dict]) -> None:
        pending = {table: requests}
        for attempt in range(self.max_batch_attempts):
            response = self.client().batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(backoff_delay(attempt))
        unprocessed = sum(len(v) for v in pending.values())
        raise RuntimeError(f"{table}: {unprocessed} items still unprocessed after {self.max_batch_attempts} attempts")


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Exponential backoff with full jitter (the AWS-recommended form)."""
    return random.uniform(0, min(cap, base * 2**attempt))


class EmbeddedServingStore(ServingStore):
    """DynamoDB's item model (hash + range key, typed attributes) in a local SQLite file."""

    path: str = Field(description="SQLite file holding the items")

    def _connect(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS items (tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL, "
            "part TEXT NOT NULL, item TEXT NOT NULL, PRIMARY KEY (tbl, pk, sk))"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS items_by_partition ON items (tbl, part)")
        return conn

    def ensure_table(self, spec: TableSpec) -> None:
        _check_serving_spec(spec)

    def partition_keys(self, spec: TableSpec, partition_value: str) -> list[tuple[str, str]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT pk, sk FROM items WHERE tbl = ? AND part = ?", (self.table_name(spec), partition_value))
            return [(pk, sk) for pk, sk in rows]

    def write_items(self, spec: TableSpec, puts: list[Item], deletes: list[tuple[str, str]]) -> None:
        key = spec.serving_key
        assert key is not None and spec.partition_column is not None
        name = self.table_name(spec)
        rows = [  # (a marker item has no partition column: no partition lists it)
            (name, i[key.partition_key], i[key.sort_key], i.get(spec.partition_column, ""), _encode(i)) for i in puts
        ]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)", rows)
            conn.executemany("DELETE FROM items WHERE tbl = ? AND pk = ? AND sk = ?", [(name, pk, sk) for pk, sk in deletes])

    def _query(self, spec: TableSpec, key_value: str, sort_from: str | None = None, sort_to: str | None = None) -> list[Item]:
        sql = "SELECT item FROM items WHERE tbl = ? AND pk = ? AND sk BETWEEN ? AND ? ORDER BY sk"
        args = (self.table_name(spec), key_value, sort_from or "", sort_to or "\uffff")
        with self._connect() as conn:
            return [_decode(text) for (text,) in conn.execute(sql, args)]

    def _all_keys(self, spec: TableSpec) -> list[tuple[str, str]]:
        with self._connect() as conn:
            return [(pk, sk) for pk, sk in conn.execute("SELECT pk, sk FROM items WHERE tbl = ?", (self.table_name(spec),))]

    def _query_page(self, spec: TableSpec, key_value: str, sort_from: str, sort_to: str, limit: int,
                    after: str | None) -> tuple[list[Item], str | None]:
        sql = ("SELECT sk, item FROM items WHERE tbl = ? AND pk = ? AND sk BETWEEN ? AND ? AND sk > ? "
               "ORDER BY sk LIMIT ?")
        args = (self.table_name(spec), key_value, sort_from, sort_to, after or "", limit + 1)
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        page = rows[:limit]
        # Like DynamoDB's LastEvaluatedKey: where to continue, only when there may be more.
        return [_decode(text) for _, text in page], (page[-1][0] if len(rows) > limit else None)


def _encode(item: Item) -> str:
    return json.dumps({k: _serializer.serialize(v) for k, v in item.items()}, sort_keys=True)


def _decode(text: str) -> Item:
    return {k: _deserializer.deserialize(v) for k, v in json.loads(text).items()}

