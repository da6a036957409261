"""Landing → raw → clean: typing, rejects with file/row/column, dedup, re-delivery, reconciliation."""

import datetime as dt
from typing import Any

import pyarrow as pa

from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.ingest.raw import ingest_object, pending_objects, read_day_shards, read_landing_quarantine
from sales_analytics.lake.order_lines import clean_day
from sales_analytics.profiles import initialized
from sales_analytics.sources.spec import file_sources, order_sources

SPECS = {s.name: s for s in file_sources()}

HEADER = "order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at\n"


def line(order: str, line_no: int = 1, ts: str = "2026-02-03T10:00:00Z", quantity: str = "2", status: str = "sold",
         updated: str | None = None, price: str = "9.99") -> str:
    return f"{order},{line_no},{ts},S001,store,P00001,,{quantity},{price},0.00,EUR,{status},{updated or ts}\n"


def ingest_all(lake: Any) -> list:
    return [ingest_object(lake, source, info) for source, info in pending_objects(lake, order_sources())]


def clean(lake: Any, day: str) -> Any:
    return clean_day(read_day_shards(lake, day), dt.date.fromisoformat(day), SPECS)


def test_malformed_rows_are_rejected_with_file_row_column_and_reason(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        key = "landing/orders/pos/2026-02-03/export.csv"
        lake.put_bytes(key, (HEADER + line("A1") + line("A2", quantity="two") + line("", 1) + line("A3", price="-1")
                             + line("A4", ts="2026-02-31T10:00:00Z")).encode())
        (result,) = ingest_all(lake)
        assert (result.rows, result.quarantined, result.days) == (5, 1, {"2026-02-03": 4})
        day = clean(lake, "2026-02-03")
        assert day.lines["order_id"].to_pylist() == ["A1"]
        rejects = day.rejects.to_pylist()
        assert [(r["source_file"], r["source_row"], r["column"], r["value"], r["reason"]) for r in rejects] == [
            (key, 2, "quantity", "two", "not a whole number"),
            (key, 3, "order_id", "", "missing value"),
            (key, 4, "unit_price", "-1", "negative unit price"),
        ]
        assert day.reconciles
        landing = read_landing_quarantine(lake)
        assert landing.select(["source_row", "column", "value"]).to_pylist() == [
            {"source_row": 5, "column": "order_ts", "value": "2026-02-31T10:00:00Z"}]


def test_latest_version_wins_and_exact_duplicates_collapse(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes("landing/orders/pos/2026-02-03/a.csv", (HEADER + line("A1") + line("A1") + line("A2")).encode())
        lake.put_bytes("landing/orders/pos/2026-02-05/b.csv",
                       (HEADER + line("A2", status="returned", updated="2026-02-05T09:00:00Z")).encode())
        ingest_all(lake)
        day = clean(lake, "2026-02-03")
        assert dict(zip(day.lines["order_id"].to_pylist(), day.lines["status"].to_pylist())) == {"A1": "sold", "A2": "returned"}
        assert day.lines["source_file"].to_pylist()[1] == "landing/orders/pos/2026-02-05/b.csv"
        assert (day.rows_in, day.duplicates_collapsed, day.rejects.num_rows) == (4, 2, 0)
        assert day.reconciles


def test_each_object_version_is_ingested_once_and_redelivery_replaces_it(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        key = "landing/orders/web/2026-02-03/a.csv"
        lake.put_bytes(key, (HEADER + line("A1") + line("B1", ts="2026-02-04T08:00:00Z")).encode())
        assert len(ingest_all(lake)) == 1
        assert ingest_all(lake) == []  # nothing new: nothing re-ingested
        lake.put_bytes(key, (HEADER + line("A1", quantity="5")).encode())  # corrected file, same name
        (again,) = ingest_all(lake)
        assert again.days == {"2026-02-03": 1}
        assert read_day_shards(lake, "2026-02-04") == []  # the day the old version touched is cleaned up
        assert read_day_shards(lake, "2026-02-03")[0]["quantity"].to_pylist() == ["5"]


def test_generated_files_reconcile_day_by_day(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        summary = generate(lake, GeneratorConfig(days=6, stores=3, products=30), progress=False)
        results = ingest_all(lake)
        assert sum(r.rows for r in results) == summary.order_rows
        days = sorted({d for r in results for d in r.days})
        cleaned = [clean(lake, d) for d in days]
        assert all(day.reconciles for day in cleaned)
        total = sum(d.lines.num_rows + d.rejects.num_rows + d.duplicates_collapsed for d in cleaned)
        assert total + sum(r.quarantined for r in results) == summary.order_rows
        assert sum(d.rejects.num_rows for d in cleaned) + sum(r.quarantined for r in results) == summary.malformed_rows
        statuses = set(pa.concat_tables([d.lines for d in cleaned])["status"].to_pylist())
        assert statuses == {"sold", "returned", "cancelled"}
