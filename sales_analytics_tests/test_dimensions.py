"""Reference data: every version kept (valid from / to), facts join the version of their day; reviews; signals."""

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from sales_analytics.catalog import CLEAN_CALENDAR, CLEAN_SIGNALS, CLEAN_STORES, view
from sales_analytics.definitions import build_defs
from sales_analytics.lake.dimensions import as_of, build_dimension, latest_deliveries
from sales_analytics.ml.history import known_ahead
from sales_analytics.profiles import initialized
from sales_analytics.schema import PRODUCTS, REVIEWS, STORES
from sales_analytics.sources.spec import reference_sources, source_named
from sales_analytics_tests.helpers import REAL_DATA, csv_records

DATA = REAL_DATA
HEADER = "store_id,name,region,city,format,currency,opened"


def snapshot(lake: Any, day: str, *rows: str, name: str = "stores.csv") -> None:
    lake.put_bytes(f"landing/reference/stores/{day}/{name}", "\n".join([HEADER, *rows, ""]).encode())


def test_history_keeps_every_version_and_facts_join_the_one_valid_then(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        snapshot(lake, "2026-01-01", "S1,One,north,Hamburg,express,EUR,2020-01-01", "S2,Two,south,Munich,express,EUR,2021-05-01")
        snapshot(lake, "2026-02-01", "S1,One,north,Berlin,express,EUR,2020-01-01", "S2,Two,south,Munich,express,EUR,2021-05-01",
                 "S3,Three,west,,hypermarket,EUR,")  # S1 moved, S3 opened (no city or date yet: nullable)
        snapshot(lake, "2026-03-01", "S1,One,north,Berlin,express,EUR,2020-01-01", "S2,Two,south,Munich,supermarket,EUR,bad-date",
                 "S3,Three,west,Cologne,hypermarket,EUR,2026-02-15")
        dimension = build_dimension(lake, reference_sources("stores"), STORES)
    versions = [(r["store_id"], r["city"], r["format"], str(r["valid_from"]), str(r["valid_to"]), r["is_current"])
                for r in dimension.history.to_pylist()]
    assert versions == [
        ("S1", "Hamburg", "express", "2026-01-01", "2026-02-01", False),
        ("S1", "Berlin", "express", "2026-02-01", "None", True),
        ("S2", "Munich", "express", "2026-01-01", "None", True),  # its March row was rejected: the old version stays
        ("S3", None, "hypermarket", "2026-02-01", "2026-03-01", False),
        ("S3", "Cologne", "hypermarket", "2026-03-01", "None", True),
    ]
    assert [(r["source_row"], r["column"], r["value"]) for r in dimension.rejects.to_pylist()] == [(2, "opened", "bad-date")]
    assert (dimension.rows_in, dimension.snapshots) == (8, 3)  # 7 valid rows collapse into 5 versions
    facts = pa.table({"store_id": ["S1", "S1", "S3"],
                      "order_date": pa.array([dt.date(2026, 1, 20), dt.date(2026, 2, 20), dt.date(2026, 3, 2)], pa.date32())})
    joined = {(r["store_id"], str(r["order_date"])): r["city"] for r in as_of(facts, dimension.history, "store_id", "order_date", ["city"]).to_pylist()}
    assert joined == {("S1", "2026-01-20"): "Hamburg", ("S1", "2026-02-20"): "Berlin", ("S3", "2026-03-02"): "Cologne"}


def test_real_reference_tables_load_every_row(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        for source, relative in (("rossmann_stores", "rossmann_subset/rossmann-store.csv"),
                                 ("completejourney_products", "completejourney/products.csv")):
            lake.put_bytes(f"{source_named(source).prefix}{Path(relative).name}", (DATA / relative).read_bytes())
        stores = build_dimension(lake, (source_named("rossmann_stores"),), STORES)
        products = build_dimension(lake, (source_named("completejourney_products"),), PRODUCTS)
    listed = {relative: csv_records(DATA / relative) for relative in ("rossmann_subset/rossmann-store.csv", "completejourney/products.csv")}
    assert (stores.rows_in, stores.history.num_rows, stores.rejects.num_rows) == (listed["rossmann_subset/rossmann-store.csv"],) * 2 + (0,)
    assert products.rows_in == products.history.num_rows + products.rejects.num_rows == listed["completejourney/products.csv"]
    assert products.rejects.num_rows < 0.01 * products.rows_in
    assert {r["reason"] for r in products.rejects.to_pylist()} <= {"missing value"}  # products without a department


def test_reference_job_materializes_dimensions_with_their_check(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        snapshot(lake, "2026-01-01", "S1,One,north,Hamburg,express,EUR,2020-01-01")
        lake.put_bytes("landing/reference/stores/2026-01-05/stores.csv",  # S1 closed, S2 opened, with its size
                       f"{HEADER},size\nS2,Two,south,Munich,express,EUR,2026-01-05,1250\n".encode())
        lake.put_bytes("landing/reference/products/2026-01-01/products.csv", b"product_id,name,category,brand,price\nP1,Tea,grocery,A,1.5\n")
        lake.put_bytes("landing/reference/customers/2026-01-01/customers.csv", b"customer_id,region,segment,joined\nC1,north,consumer,2025-03-01\n")
        lake.put_bytes("landing/reference/calendar/2026-01-01/calendar.csv",
                       b"date,is_holiday,holiday_name,is_promo_week\n2026-01-01,true,New Year,false\n2026-01-02,No,,YES\n2026-01-03,maybe,,false\n")
        lake.put_bytes("landing/reference/signals/2026-01-01/weather.csv",
                       b"date,signal,value\n2026-01-01,temperature,4.0\n2026-01-02,temperature,6.0\n2026-01-01,fuel_price,1.71\n")
        lake.put_bytes("landing/reference/signals/2026-01-02/weather.csv",  # restates the 2nd, one value unreadable
                       b"date,signal,value\n2026-01-02,temperature,9.5\n2026-01-03,temperature,warm\n")
        lake.put_bytes("landing/reference/signals/2026-01-02/stores.csv",  # a store's own, beside the national value
                       b"date,store_id,signal,value\n2026-01-02,S2,temperature,11.0\n2026-01-03,S2,markdown,250\n")
    result = build_defs(local_env).resolve_job_def("reference_data").execute_in_process()
    assert result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {**{(f"clean/{t}", "one_current_version_per_key"): True for t in ("stores", "products", "customers", "calendar")},
                      ("clean/reviews", "unique_key"): True, ("clean/signals", "unique_key"): True}
    stores_check = next(c for c in result.get_asset_check_evaluations() if c.asset_key.path == ["clean", "stores"])
    assert stores_check.metadata["closed_keys"].value == 1 and stores_check.metadata["current_rows"].value == 1
    with initialized(local_env["lake"]) as lake:  # what the demand model knows ahead of each day
        known = known_ahead(*(view(lake, key).whole() for key in (CLEAN_CALENDAR, CLEAN_SIGNALS, CLEAN_STORES)))
    assert known.calendar.loc["2026-01-01"].to_dict() == {"is_holiday": 1.0, "is_promo_week": 0.0,
                                                          "signal_fuel_price": 1.71, "signal_temperature": 4.0}
    assert known.calendar.loc["2026-01-02", "signal_temperature"] == 9.5  # the later delivery wins
    by_store = known.by_store.set_index(["date", "store_id"]).stack().to_dict()  # the signals each store has
    assert by_store == {(dt.datetime(2026, 1, 2), "S2", "signal_temperature"): 11.0,
                        (dt.datetime(2026, 1, 3), "S2", "signal_markdown"): 250.0}
    assert known.stores["store_size"].to_dict() == {"S2": 1250.0}  # the current store master's
    assert [(r["column"], r["value"]) for r in result.output_for_node("clean_signals", "quarantine").to_pylist()] == [("value", "warm")]
    calendar = result.output_for_node("clean_calendar", "rows").to_pylist()
    assert [(str(r["date"]), r["is_holiday"], r["is_promo_week"]) for r in calendar] == [("2026-01-01", True, False),
                                                                                          ("2026-01-02", False, True)]
    rejected = result.output_for_node("clean_calendar", "quarantine").to_pylist()
    assert [(r["column"], r["value"]) for r in rejected] == [("is_holiday", "maybe")]
    graph = build_defs(local_env).resolve_asset_graph()
    for target in ("stores", "products", "customers", "calendar", "reviews", "signals"):  # the UI's schema is what is stored
        declared = graph.get(dg.AssetKey(["clean", target])).metadata["dagster/column_schema"].columns
        assert [c.name for c in declared] == result.output_for_node(f"clean_{target}", "rows").column_names, target


def test_clothing_reviews_ingest_with_every_row_accounted_for(local_env: dict[str, Any]) -> None:
    path = DATA / "womens_clothing_reviews" / "womens_clothing_ecommerce_reviews.csv"
    spec = source_named("clothing_reviews")
    with initialized(local_env["lake"]) as lake:
        lake.put_bytes(f"{spec.prefix}{path.name}", path.read_bytes())
        reviews = latest_deliveries(lake, (spec,), REVIEWS)
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert reviews.rows_in == len(records) == reviews.history.num_rows + reviews.rejects.num_rows
    assert reviews.rejects.num_rows == 0
    rows = reviews.history.to_pylist()
    assert {r["rating"] for r in rows} == {1, 2, 3, 4, 5}
    assert sum(1 for r in rows if r["text"] is None) == sum(1 for r in records if not r["Review Text"])  # empty texts kept


def test_a_key_a_later_snapshot_no_longer_lists_is_closed_and_can_return(local_env: dict[str, Any]) -> None:
    s1, s2 = "S1,One,north,Hamburg,express,EUR,2020-01-01", "S2,Two,south,Munich,express,EUR,2021-05-01"
    with initialized(local_env["lake"]) as lake:
        snapshot(lake, "2026-01-01", s1, s2)
        snapshot(lake, "2026-02-01", s1)  # S2 closed
        snapshot(lake, "2026-03-01", s1, "S2,Two,south,Munich,express,EUR,bad-date")  # rejected, but still listed
        snapshot(lake, "2026-04-01", s1)  # gone again
        lake.put_bytes("landing/reference/stores/2026-05-01/stores.csv", b"garbage\n1\n")  # unreadable: closes nothing
        dimension = build_dimension(lake, reference_sources("stores"), STORES)
    versions = [(r["store_id"], str(r["valid_from"]), str(r["valid_to"]), r["is_current"]) for r in dimension.history.to_pylist()]
    assert versions == [
        ("S1", "2026-01-01", "None", True),
        ("S2", "2026-01-01", "2026-02-01", False),
    ]
    reasons = [(r["column"], r["value"] or r["reason"]) for r in dimension.rejects.to_pylist()]
    assert reasons[0] == ("opened", "bad-date") and "missing required columns" in reasons[1][1]
