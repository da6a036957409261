"""The SQL source (the on-prem POS role) against real PostgreSQL: watermark extraction in batches."""

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from sales_analytics.definitions import build_defs
from sales_analytics.ingest.extract import extract, read_position
from sales_analytics.ingest.raw import ingest_object, pending_objects, read_day_shards
from sales_analytics.lake.order_lines import clean_days
from sales_analytics.profiles import StackSettings, initialized
from sales_analytics.sensors import watermark_tick
from sales_analytics.sources.spec import file_sources, source_named

TODAY = dt.date(2026, 11, 29)
T0 = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.UTC)
SPECS = {s.name: s for s in file_sources()}


@pytest.fixture
def pos_db(stack_settings: StackSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    schema = f"src_{uuid.uuid4().hex[:8]}"
    url = stack_settings.postgres_url() + f"?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("SALES_ANALYTICS_POS_DB_URL", url)
    admin = sa.create_engine(stack_settings.postgres_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("""CREATE TABLE sales_lines (
            receipt_no text NOT NULL, line_no int NOT NULL, sold_at timestamptz NOT NULL, store_code text NOT NULL,
            sku text NOT NULL, loyalty_id text, qty int NOT NULL, price numeric(10, 2) NOT NULL,
            discount numeric(4, 2) NOT NULL, currency text NOT NULL, updated_at timestamptz NOT NULL,
            PRIMARY KEY (receipt_no, line_no))"""))
        conn.execute(sa.text("CREATE INDEX ON sales_lines (updated_at)"))
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def insert(engine: sa.Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("""INSERT INTO sales_lines VALUES (:receipt_no, :line_no, :sold_at, :store_code, :sku,
            :loyalty_id, :qty, :price, :discount, :currency, :updated_at)"""), rows)


def line(i: int, updated: dt.datetime, receipt: str | None = None) -> dict[str, Any]:
    return {"receipt_no": receipt or f"R{i // 3:05d}", "line_no": i % 3 + 1, "sold_at": T0 - dt.timedelta(minutes=i % 500),
            "store_code": f"B{i % 7}", "sku": f"SKU{i % 40}", "loyalty_id": None if i % 4 else f"L{i}", "qty": 1 + i % 3,
            "price": 2.5, "discount": 0, "currency": "EUR", "updated_at": updated}


def test_watermark_extraction_in_batches_picks_up_later_changes(stack_env: dict[str, Any], pos_db: sa.Engine) -> None:
    spec = source_named("pos_db")
    small = spec.model_copy(update={"extract": spec.extract.model_copy(update={"batch_rows": 1000})})
    # Only three distinct watermark values: batches must cut through runs of equal updated_at.
    insert(pos_db, [line(i, T0 + dt.timedelta(seconds=i % 3)) for i in range(2500)])
    with initialized(stack_env["lake"]) as lake:
        first = extract(lake, small, pos_db, TODAY)
        assert (first.rows, len(first.files)) == (2500, 3)
        assert isinstance(watermark_tick(small, lake, pos_db), dg.SkipReason)

        later = T0 + dt.timedelta(hours=2)
        with pos_db.begin() as conn:
            conn.execute(sa.text("UPDATE sales_lines SET qty = 9, updated_at = :t WHERE receipt_no < 'R00004'"), {"t": later})
        insert(pos_db, [line(5000 + i, later, receipt="V9000") for i in range(3)])
        tick = watermark_tick(small, lake, pos_db)
        assert len(tick.run_requests) == 1
        second = extract(lake, small, pos_db, TODAY)
        assert second.rows == 12 + 3 and read_position(lake, small)[0] == later

        for source, info in pending_objects(lake, (small,)):
            ingest_object(lake, source, info)
        days = clean_days({d: read_day_shards(lake, d) for d in ("2026-11-28", "2026-11-29")}, SPECS)
    lines = [r for d in days for r in d.lines.to_pylist()]
    assert len(lines) == 2503 and all(d.reconciles for d in days)
    by_key = {(r["order_id"], r["line_no"]): r for r in lines}
    assert by_key["R00000", 1]["quantity"] == 9 and by_key["R00005", 1]["quantity"] != 9  # the later version won
    assert by_key["V9000", 1]["status"] == "cancellation"
    assert sum(d.duplicates_collapsed for d in days) == 12


def test_extraction_asset_runs_through_dagster(stack_env: dict[str, Any], pos_db: sa.Engine) -> None:
    insert(pos_db, [line(i, T0) for i in range(10)])
    result = build_defs(stack_env).resolve_job_def("extract_pos_db").execute_in_process()
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["dagster/row_count"].value == 10 and metadata["batches"].value == 1
