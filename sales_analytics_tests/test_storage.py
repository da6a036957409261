"""The storage layer on the embedded profile and on the real stack servers."""

import datetime as dt
import http.client
import io
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from dagster_aws.s3 import S3Resource

from sales_analytics.ml.assets import latest_forecasts
from sales_analytics.profiles import initialized
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES, DEMAND_FORECAST, ServingKey
from sales_analytics.storage import parquet_io
from sales_analytics.storage.lake import LakeResource, UnsafeKeyError
from sales_analytics.storage.parquet_io import INPUT_COLUMNS, PARTITION_COLUMN, partition_object_key
from sales_analytics.storage.serving_store import (
    BATCH_WRITE_LIMIT,
    PARTITION_INDEX,
    PUBLISHING,
    ServingLayoutError,
    to_item,
)
from sales_analytics.storage.sql_store import SqlLayoutError
from sales_analytics_tests.helpers import failure_text

DAY = "2026-03-02"


def report_rows(day: str, stores: range, net: float = 100.0) -> pa.Table:
    rows = [{
        "sale_date": dt.date.fromisoformat(day), "store_id": f"S{i:03d}", "currency": "EUR", "orders": i,
        "units_sold": 10 * i, "units_returned": i % 2, "gross_sales": net + 10.25, "discounts": 5.0,
        "returns_value": 5.25, "cancellations": 0.0, "net_sales": net,
    } for i in stores]
    return pa.Table.from_pylist(rows, schema=DAILY_STORE_SALES.arrow_schema())


# -- lake object store ----------------------------------------------------------------------
def test_lake_round_trip_listing_and_delete(any_env: dict[str, Any]) -> None:
    with initialized(any_env["lake"]) as lake:
        lake.ensure_bucket()
        keys = [f"clean/t/order_date=2026-01-{d:02d}/data.parquet" for d in range(1, 4)]
        for i, key in enumerate(keys):
            lake.put_bytes(key, f"v{i}".encode())
        assert [o.key for o in lake.list("clean/t/")] == keys
        assert lake.get_bytes(keys[1]) == b"v1"
        first_version = next(iter(lake.list("clean/t/"))).version
        lake.put_bytes(keys[0], b"changed")
        assert next(iter(lake.list("clean/t/"))).version != first_version
        lake.delete(keys[2])
        assert not lake.exists(keys[2]) and lake.exists(keys[0])


def test_lake_lists_past_one_thousand_keys(stack_env: dict[str, Any]) -> None:
    with initialized(stack_env["lake"]) as lake:
        for i in range(1005):
            lake.put_bytes(f"landing/many/{i:05d}.csv", b"x")
        assert sum(1 for _ in lake.list("landing/many/")) == 1005


@pytest.mark.security
@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", "a/./b", "a//b", "a\\b", "a\x00b", "a\nb", ""])
def test_lake_rejects_keys_that_escape(local_env: dict[str, Any], key: str) -> None:
    with initialized(local_env["lake"]) as lake, pytest.raises(UnsafeKeyError):
        lake.put_bytes(key, b"x")


def test_file_names_people_give_are_fine(local_env: dict[str, Any]) -> None:
    key = "landing/orders/pos/2026-03-02/Umsätze (März) #2, final.csv"
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(key, b"x")
        assert [o.key for o in lake.list("landing/orders/pos/")] == [key] and lake.get_bytes(key) == b"x"


@pytest.mark.security
def test_unsafe_keys_s3_lists_are_skipped_with_a_warning(local_env: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """S3 accepts any key, "../" and backslashes included; SeaweedFS normalises them away, so this
    listing is faked: the lake yields the safe keys and names each unsafe one in a warning."""
    keys = ["landing/pos/a.csv", "landing/pos/../../models/x.csv", "landing/pos//b.csv", "landing/pos/c\\d.csv", "landing/pos/e.csv"]

    class Paginator:
        def paginate(self, **_: Any) -> list[dict]:
            return [{"Contents": [{"Key": k, "Size": 1, "ETag": '"e"', "LastModified": dt.datetime.now(dt.UTC)} for k in keys]}]

    class Client:
        def get_paginator(self, _: str) -> Paginator:
            return Paginator()

    lake = LakeResource(root="s3://bucket", s3=S3Resource())
    lake._client = Client()
    assert [o.key for o in lake.list("landing/pos/")] == ["landing/pos/a.csv", "landing/pos/e.csv"]
    assert sum("unsafe key" in r.getMessage() for r in caplog.records) == 3


def test_local_write_failing_midway_keeps_previous_object(local_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes("clean/t/data.parquet", b"previous")

        def crash(_fd: int) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(os, "fsync", crash)
        with pytest.raises(OSError, match="disk gone"):
            lake.put_bytes("clean/t/data.parquet", b"new version, half written")
        assert lake.get_bytes("clean/t/data.parquet") == b"previous"
        assert [o.key for o in lake.list("clean/t/")] == ["clean/t/data.parquet"]  # no temp left behind


def test_a_batch_whose_sync_fails_replaces_none_of_its_objects(local_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with initialized(local_env["lake"]) as lake:
        lake.put_objects({f"clean/t/day={d}/data.parquet": f"previous {d}".encode() for d in range(3)})
        synced: list[int] = []

        def third_sync_fails(fd: int) -> None:
            synced.append(fd)
            if len(synced) == 3:
                raise OSError("disk gone")

        monkeypatch.setattr(os, "fsync", third_sync_fails)
        with pytest.raises(OSError, match="disk gone"):
            lake.put_objects({f"clean/t/day={d}/data.parquet": b"new version" for d in range(3)})
        assert [lake.get_bytes(f"clean/t/day={d}/data.parquet") for d in range(3)] == [f"previous {d}".encode() for d in range(3)]
        assert sorted(f.name for f in Path(lake.root, "clean", "t").rglob("*") if f.is_file()) == ["data.parquet"] * 3  # no temp left


def test_s3_upload_breaking_midway_keeps_previous_object(stack_env: dict[str, Any]) -> None:
    """The property put_bytes relies on, against the real server: a connection that drops
    mid-upload never replaces the object."""
    key = "clean/t/data.parquet"
    with initialized(stack_env["lake"]) as lake:
        lake.put_bytes(key, b"previous")
        url = urlsplit(lake._s3_client().generate_presigned_url(
            "put_object", Params={"Bucket": lake.bucket, "Key": key}, ExpiresIn=60))

        def upload(body: bytes, declared_length: int) -> None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            conn.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
            conn.putheader("Content-Length", str(declared_length))
            conn.endheaders()
            conn.send(body)
            if len(body) == declared_length:
                assert conn.getresponse().status == 200
            conn.close()

        upload(b"x" * 64 * 1024, declared_length=1024 * 1024)  # the client dies a sixteenth of the way in
        time.sleep(1)
        assert lake.get_bytes(key) == b"previous"
        upload(b"complete", declared_length=8)  # the same path does replace the object when it completes
        assert lake.get_bytes(key) == b"complete"


# -- Parquet IO manager ---------------------------------------------------------------------
def _report_asset(fail_serialising: bool = False) -> dg.AssetsDefinition:
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")

    @dg.asset(key=["reports", "t"], partitions_def=partitions,
              metadata={PARTITION_COLUMN: DAILY_STORE_SALES.partition_column})
    def report(context: dg.AssetExecutionContext) -> pa.Table:
        return report_rows(context.partition_key, range(3 if not fail_serialising else 5))

    return report


def test_io_manager_writes_one_object_per_partition_and_loads_ranges(any_env: dict[str, Any]) -> None:
    report = _report_asset()
    for day in ("2026-03-01", "2026-03-02"):
        assert dg.materialize([report], resources=any_env, partition_key=day).success

    loaded: list[tuple[int, list[str]]] = []

    @dg.asset(partitions_def=report.partitions_def,
              ins={"rows": dg.AssetIn(report.key, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1),
                                      metadata={INPUT_COLUMNS: ["sale_date", "net_sales"]})})
    def two_days(rows: pa.Table) -> None:
        loaded.append((rows.num_rows, rows.column_names))

    with initialized(any_env["lake"]) as lake:
        keys = [o.key for o in lake.list("reports/t/")]
        assert keys == [partition_object_key(report.key, "sale_date", d) for d in ("2026-03-01", "2026-03-02")]
        table = pq.read_table(io.BytesIO(lake.get_bytes(keys[0])))
        assert table.schema.equals(DAILY_STORE_SALES.arrow_schema()) and table.num_rows == 3
    upstream = dg.AssetSpec(report.key, partitions_def=report.partitions_def,
                            metadata={PARTITION_COLUMN: DAILY_STORE_SALES.partition_column})
    assert dg.materialize([upstream, two_days], resources=any_env, partition_key="2026-03-02", selection=[two_days.key]).success
    assert loaded == [(6, ["sale_date", "net_sales"])]  # only the columns the input asked for
    missing = dg.materialize([upstream, two_days], resources=any_env, partition_key="2026-03-01",
                             selection=[two_days.key], raise_on_error=False)
    assert not missing.success  # 2026-02-28 was never written: a clear error, not an empty frame
    assert "sale_date=2026-02-28/data.parquet does not exist" in failure_text(missing)


def test_failed_partition_write_leaves_previous_partition_intact(any_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert dg.materialize([_report_asset()], resources=any_env, partition_key=DAY).success
    with initialized(any_env["lake"]) as lake:
        before = lake.get_bytes(partition_object_key(dg.AssetKey(["reports", "t"]), "sale_date", DAY))

    def write_half_then_fail(table: pa.Table, where: Any, **_: Any) -> None:
        where.write(b"PAR1 half a file")
        raise OSError("killed while serialising")

    monkeypatch.setattr(parquet_io.pq, "write_table", write_half_then_fail)
    result = dg.materialize([_report_asset(fail_serialising=True)], resources=any_env, partition_key=DAY, raise_on_error=False)
    assert not result.success
    monkeypatch.undo()
    with initialized(any_env["lake"]) as lake:
        after = lake.get_bytes(partition_object_key(dg.AssetKey(["reports", "t"]), "sale_date", DAY))
    assert after == before
    assert pq.read_table(io.BytesIO(after)).num_rows == 3


def test_io_manager_refuses_non_arrow_outputs(local_env: dict[str, Any]) -> None:
    @dg.asset
    def not_a_table() -> dict:
        return {"a": 1}

    result = dg.materialize([not_a_table], resources=local_env, raise_on_error=False)
    assert not result.success
    assert "stores pyarrow.Table outputs, got dict" in failure_text(result)


# -- SQL report store -----------------------------------------------------------------------
def test_sql_table_created_from_spec(any_env: dict[str, Any]) -> None:
    with initialized(any_env["report_db"]) as db:
        db.ensure_table(DAILY_STORE_SALES)
        inspector = sa.inspect(db.engine())
        columns = {c["name"] for c in inspector.get_columns(DAILY_STORE_SALES.name, schema=db.schema_name)}
        assert columns == set(DAILY_STORE_SALES.column_names)
        assert inspector.get_pk_constraint(DAILY_STORE_SALES.name, schema=db.schema_name)["constrained_columns"] == [
            "sale_date", "store_id", "currency"]
        indexed = [i["column_names"] for i in inspector.get_indexes(DAILY_STORE_SALES.name, schema=db.schema_name)]
        assert ["sale_date"] in indexed


def test_sql_table_of_an_earlier_release_gains_new_columns_and_a_changed_key_is_named(any_env: dict[str, Any]) -> None:
    older = replace(DAILY_SALES, columns=tuple(c for c in DAILY_SALES.columns if c.name != "cancellations"))
    rekeyed = replace(DAILY_STORE_SALES, key=("sale_date", "store_id"))
    with initialized(any_env["report_db"]) as db:
        db.ensure_table(older)
        db.ensure_table(rekeyed)
    with initialized(any_env["report_db"]) as db:  # the next release's process
        db.ensure_table(DAILY_SALES)
        columns = {c["name"] for c in sa.inspect(db.engine()).get_columns(DAILY_SALES.name, schema=db.schema_name)}
        assert "cancellations" in columns
        with pytest.raises(SqlLayoutError, match=r"keyed by \['sale_date', 'store_id'\].*drop it"):
            db.ensure_table(DAILY_STORE_SALES)


def test_sql_replace_partition_is_idempotent_and_drops_stale_rows(any_env: dict[str, Any]) -> None:
    with initialized(any_env["report_db"]) as db:
        db.replace_partition(DAILY_STORE_SALES, "2026-03-01", report_rows("2026-03-01", range(4)))
        db.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(5)))
        db.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(5)))
        assert len(db.read(DAILY_STORE_SALES, DAY)) == 5
        db.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(2), net=7.5))
        rows = db.read(DAILY_STORE_SALES, DAY)
        assert [r["store_id"] for r in rows] == ["S000", "S001"] and {r["net_sales"] for r in rows} == {7.5}
        assert len(db.read(DAILY_STORE_SALES, "2026-03-01")) == 4  # other partitions untouched


def test_sql_failed_replace_rolls_back(any_env: dict[str, Any]) -> None:
    with initialized(any_env["report_db"]) as db:
        db.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(3)))
        broken = report_rows(DAY, range(3)).to_pylist()
        broken[2]["currency"] = None  # NOT NULL: the insert fails after the delete ran
        with pytest.raises(sa.exc.IntegrityError):
            db.replace_partition(DAILY_STORE_SALES, DAY, pa.Table.from_pylist(broken))
        assert len(db.read(DAILY_STORE_SALES, DAY)) == 3


def test_sql_values_are_bound_not_spliced(any_env: dict[str, Any]) -> None:
    hostile = "S1'); DROP TABLE daily_store_sales; --"
    rows = report_rows(DAY, range(1)).to_pylist()
    rows[0]["store_id"] = hostile
    with initialized(any_env["report_db"]) as db:
        db.replace_partition(DAILY_STORE_SALES, DAY, pa.Table.from_pylist(rows, schema=DAILY_STORE_SALES.arrow_schema()))
        assert [r["store_id"] for r in db.read(DAILY_STORE_SALES, DAY)] == [hostile]


# -- serving store --------------------------------------------------------------------------
def test_serving_replace_partition_leaves_no_stale_items(any_env: dict[str, Any]) -> None:
    with initialized(any_env["serving_store"]) as store:
        store.replace_partition(DAILY_STORE_SALES, "2026-03-01", report_rows("2026-03-01", range(3)))
        first = store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(60)))
        again = store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(60)))
        assert (first.written, first.deleted, again.deleted) == (60, 0, 0)
        shrunk = store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(10), net=1.5))
        assert shrunk.deleted == 50
        assert len(store.partition_keys(DAILY_STORE_SALES, DAY)) == 10
        items = store.query(DAILY_STORE_SALES, "S001")
        assert [i["sale_date"] for i in items] == ["2026-03-01", DAY]  # sort key order
        assert float(items[1]["net_sales"]) == 1.5 and items[1]["units_sold"] == 10
        assert store.query(DAILY_STORE_SALES, "S042") == []  # deleted with the shrink
        assert [i["sale_date"] for i in store.query(DAILY_STORE_SALES, "S001", sort_from=DAY)] == [DAY]
        assert [i["sale_date"] for i in store.query(DAILY_STORE_SALES, "S001", sort_to="2026-03-01#\uffff")] == ["2026-03-01"]


def forecast_rows(origin: dt.date, p50: float) -> pa.Table:
    rows = [{"origin_date": origin, "level": "store_category", "series_id": "S1|tea",
             "target_date": origin + dt.timedelta(days=k), "step": k, "p10": p50 - 1, "p50": p50, "p90": p50 + 1,
             "model_version": "v1", "target": "units"} for k in (1, 2)]
    return pa.Table.from_pylist(rows, schema=DEMAND_FORECAST.arrow_schema())


def test_serving_keeps_every_origin_and_an_older_one_republished_never_hides_the_newer(any_env: dict[str, Any]) -> None:
    older, newer = dt.date(2026, 3, 1), dt.date(2026, 3, 2)
    with initialized(any_env["serving_store"]) as store:
        for origin, p50 in ((older, 5.0), (newer, 7.0), (older, 5.0)):
            store.replace_partition(DEMAND_FORECAST, origin.isoformat(), forecast_rows(origin, p50))
        items = store.query(DEMAND_FORECAST, "S1|tea")
        assert [i["target_date#origin_date"] for i in items] == [
            "2026-03-02#2026-03-01", "2026-03-03#2026-03-01", "2026-03-03#2026-03-02", "2026-03-04#2026-03-02"]
        served = latest_forecasts(store, "S1|tea", dt.date(2026, 3, 2), dt.date(2026, 3, 4))
        assert [(i["target_date"], i["origin_date"], float(i["p50"])) for i in served] == [
            ("2026-03-02", "2026-03-01", 5.0), ("2026-03-03", "2026-03-02", 7.0), ("2026-03-04", "2026-03-02", 7.0)]


def test_dynamodb_table_key_schema_from_spec(stack_env: dict[str, Any]) -> None:
    with initialized(stack_env["serving_store"]) as store:
        store.ensure_table(DAILY_STORE_SALES)
        table = store.client().describe_table(TableName=store.table_name(DAILY_STORE_SALES))["Table"]
        assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"store_id": "HASH", "sale_date#currency": "RANGE"}
        index = table["GlobalSecondaryIndexes"][0]
        assert index["IndexName"] == PARTITION_INDEX
        assert {k["AttributeName"]: k["KeyType"] for k in index["KeySchema"]} == {"sale_date": "HASH", "sale_date#currency": "RANGE"}


def test_a_dynamodb_table_keyed_by_an_earlier_release_is_named_not_written_under_the_wrong_key(stack_env: dict[str, Any]) -> None:
    older = replace(DAILY_STORE_SALES, key=("sale_date", "store_id"),
                    serving_key=ServingKey(partition_key="store_id", sort_columns=("sale_date",)))
    with initialized(stack_env["serving_store"]) as store:
        store.ensure_table(older)
    with initialized(stack_env["serving_store"]) as store, pytest.raises(ServingLayoutError, match="delete it"):
        store.ensure_table(DAILY_STORE_SALES)


def test_a_partition_being_replaced_is_hidden_from_readers_until_it_is_whole(any_env: dict[str, Any]) -> None:
    """A replacement goes in batches; a run that dies midway leaves its marker, and readers see the
    partition as absent, never half-written, until a re-run completes it."""
    key = DAILY_STORE_SALES.serving_key
    with initialized(any_env["serving_store"]) as store:
        store.replace_partition(DAILY_STORE_SALES, "2026-03-01", report_rows("2026-03-01", range(3)))
        store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(3)))
        # What a run killed mid-write leaves behind: the marker, and one of the new day's items.
        store.write_items(DAILY_STORE_SALES, [{key.partition_key: PUBLISHING, key.sort_key: DAY}], [])
        store.write_items(DAILY_STORE_SALES, [to_item(DAILY_STORE_SALES, report_rows(DAY, range(1, 2), net=9.0).to_pylist()[0])], [])
        assert store.being_replaced(DAILY_STORE_SALES) == {DAY}
        assert [i["sale_date"] for i in store.query(DAILY_STORE_SALES, "S001")] == ["2026-03-01"]
        assert store.query_page(DAILY_STORE_SALES, "S001", DAY, DAY + "#\uffff", 10)[0] == []
        store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(4)))  # the re-run
        assert store.being_replaced(DAILY_STORE_SALES) == set()
        assert [(i["sale_date"], float(i["net_sales"])) for i in store.query(DAILY_STORE_SALES, "S001")] == [
            ("2026-03-01", 100.0), (DAY, 100.0)]
        assert len(store.partition_keys(DAILY_STORE_SALES, DAY)) == 4


def test_dynamodb_batches_of_25_and_unprocessed_items_retried(stack_env: dict[str, Any]) -> None:
    """Throttling cannot be provoked on DynamoDB Local, so the first answers are doctored in-process."""
    with initialized(stack_env["serving_store"]) as store:
        client = store.client()
        real_batch_write = client.batch_write_item
        sizes: list[int] = []

        def flaky_batch_write(RequestItems: dict) -> dict:
            (table, requests), = RequestItems.items()
            sizes.append(len(requests))
            if len(sizes) <= 3 and len(requests) > 3:  # throttle: only part of the batch is processed
                real_batch_write(RequestItems={table: requests[:3]})
                return {"UnprocessedItems": {table: requests[3:]}}
            return real_batch_write(RequestItems=RequestItems)

        client.batch_write_item = flaky_batch_write
        stats = store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(60)))
        assert stats.written == 60
        assert max(sizes) == BATCH_WRITE_LIMIT
        assert sizes[0] == sizes[-1] == 1  # the marker that hides the partition while it is written, then its removal
        assert sizes[1:4] == [25, 22, 19]  # retries shrink as items get through
        assert len(store.partition_keys(DAILY_STORE_SALES, DAY)) == 60 and not store.being_replaced(DAILY_STORE_SALES)


def test_dynamodb_gives_up_after_bounded_retries(stack_env: dict[str, Any]) -> None:
    with initialized(stack_env["serving_store"]) as store:
        store.ensure_table(DAILY_STORE_SALES)
        store.client().batch_write_item = lambda RequestItems: {"UnprocessedItems": RequestItems}
        object.__setattr__(store, "max_batch_attempts", 3)
        with pytest.raises(RuntimeError, match="still unprocessed after 3 attempts"):
            store.replace_partition(DAILY_STORE_SALES, DAY, report_rows(DAY, range(2)))
