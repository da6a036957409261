"""The first vertical slice end to end: landing → raw → clean → report → SQL + serving stores."""

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import Any

import dagster as dg
import pyarrow.compute as pc
import pytest

from sales_analytics.catalog import DAILY_STORE_SALES_KEY, LANDING_QUARANTINE, RAW_ORDER_LINES, quarantine_key
from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, generate
from sales_analytics.jobs import daily_sales_job
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES, ORDER_STATUSES
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, partition_object_key

CONFIG = GeneratorConfig(days=8, stores=3, products=40, orders_per_store_day=15)


def latest_lines(files: dict[str, bytes]) -> list[dict[str, Any]]:
    """The latest valid version of every landed order line, in plain Python, sharing no code with the platform."""
    latest: dict[tuple, tuple] = {}
    for key in sorted(files):
        source = key.split("/")[2]
        for row in csv.DictReader(io.StringIO(files[key].decode())):
            try:
                ts = dt.datetime.fromisoformat(row["order_ts"])
                updated = dt.datetime.fromisoformat(row["updated_at"])
                quantity, price, discount = int(row["quantity"]), float(row["unit_price"]), float(row["discount"])
                assert row["order_id"] and row["store_id"] and row["status"] in ORDER_STATUSES
                assert quantity >= 0 and price >= 0 and 0 <= discount <= 1
            except (ValueError, AssertionError):
                continue
            line_key = (source, row["order_id"], int(row["line_no"]))
            candidate = (updated, key, {**row, "day": ts.date().isoformat(), "quantity": quantity, "price": price,
                                        "discount": discount})
            if line_key not in latest or candidate[:2] >= latest[line_key][:2]:
                latest[line_key] = candidate
    return [line for _, _, line in latest.values()]


def expected_report(files: dict[str, bytes]) -> dict[tuple[str, str], dict[str, float]]:
    """daily_store_sales recomputed from the landing files."""
    report: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    orders: dict[tuple[str, str], set] = defaultdict(set)
    for line in latest_lines(files):
        if line["status"] == "cancelled":
            continue
        cell = report[line["day"], line["store_id"]]
        value = line["quantity"] * line["price"]
        cell["units_sold"] += line["quantity"] if line["status"] == "sold" else 0  # a returned line's units came back
        cell["gross_sales"] += value
        cell["discounts"] += value * line["discount"]
        if line["status"] == "returned":
            cell["units_returned"] += line["quantity"]
            cell["returns_value"] += value * (1 - line["discount"])
        orders[line["day"], line["store_id"]].add(line["order_id"])
    for cell_key, cell in report.items():
        cell["orders"] = len(orders[cell_key])
        cell["net_sales"] = cell["gross_sales"] - cell["discounts"] - cell["returns_value"]
    return report


def assert_matches(actual_rows: list[dict], expected: dict) -> None:
    actual = {(str(r["sale_date"]), r["store_id"]): r for r in actual_rows}
    assert actual.keys() == expected.keys()
    for cell_key, want in expected.items():
        got = actual[cell_key]
        for column in ("orders", "units_sold", "units_returned"):
            assert int(got[column]) == int(want[column]), (cell_key, column)
        for column in ("gross_sales", "discounts", "returns_value", "net_sales"):
            assert abs(float(got[column]) - want[column]) < 0.011, (cell_key, column, got[column], want[column])


def build_slice(env: dict[str, Any]) -> dict[str, Any]:
    with initialized(env["lake"]) as lake:
        generate(lake, CONFIG, progress=False)
        files = {o.key: lake.get_bytes(o.key) for o in lake.list("landing/orders/")}
    defs = build_defs(env)
    instance = dg.DagsterInstance.ephemeral()
    summary = ingest_and_build(defs, instance)
    return {"env": env, "files": files, "defs": defs, "instance": instance, "summary": summary}


@pytest.fixture(scope="module", params=["local", "stack"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One build per profile, shared by the tests that leave it as it was (a rematerialization that
    changes nothing is the last of them)."""
    if request.param == "local":
        return build_slice(local_resources(tmp_path_factory.mktemp("slice") / "local"))
    return build_slice(request.getfixturevalue("stack_env_module"))


@pytest.fixture
def built_to_change(any_env: dict[str, Any]) -> dict[str, Any]:
    """A build of its own, for a test that lands more data."""
    return build_slice(any_env)


def test_report_in_every_store_equals_an_independent_computation(built: dict[str, Any]) -> None:
    env, summary = built["env"], built["summary"]
    expected = expected_report(built["files"])
    assert summary.touched_days == sorted({day for day, _ in expected})
    # clean (4), reports (2 + 1), raw (2), and one per reference table (stores, products, customers, calendar, reviews, signals)
    assert all(summary.checks.values()) and len(summary.checks) == 15
    with initialized(env["report_db"]) as db:
        assert_matches(db.read(DAILY_STORE_SALES), expected)
    with initialized(env["serving_store"]) as serving:
        stores = sorted({store for _, store in expected})
        assert_matches([item for store in stores for item in serving.query(DAILY_STORE_SALES, store)], expected)
    with initialized(env["lake"]) as lake:
        lake_rows = [row for day in summary.touched_days
                     for row in parquet_bytes_to_table(lake.get_bytes(partition_object_key(DAILY_STORE_SALES_KEY, "sale_date", day))).to_pylist()]
        assert_matches(lake_rows, expected)


def test_daily_sales_slices_agree_with_the_independent_computation(built: dict[str, Any]) -> None:
    env, expected = built["env"], expected_report(built["files"])
    with initialized(env["report_db"]) as db:
        rows = db.read(DAILY_SALES)
    assert_matches([r | {"store_id": r["member"]} for r in rows if r["dimension"] == "store"], expected)
    store_currency = {r["member"]: r["currency"] for r in rows if r["dimension"] == "store"}
    for dimension in ("total", "region", "category", "channel", "product"):
        summed: dict[tuple[str, str], float] = defaultdict(float)
        for r in rows:
            if r["dimension"] == dimension:
                summed[str(r["sale_date"]), r["currency"]] += r["net_sales"]
        want: dict[tuple[str, str], float] = defaultdict(float)
        for (day, store), cell in expected.items():
            want[day, store_currency[store]] += cell["net_sales"]
        assert summed.keys() == want.keys() and all(abs(summed[k] - want[k]) < 1.0 for k in want), dimension
    # Margins where costs exist: every generated product has a unit cost in its master file.
    with initialized(env["lake"]) as lake:
        master = next(o.key for o in lake.list("landing/reference/products/"))
        costs = {r["product_id"]: float(r["unit_cost"]) for r in csv.DictReader(io.StringIO(lake.get_bytes(master).decode()))}
    want_margin: dict[tuple[str, str, str], float] = defaultdict(float)
    for line in latest_lines(built["files"]):
        if line["status"] in ("sold", "returned"):  # a returned line's value and cost both came back: margin 0
            net_value = line["quantity"] * line["price"] * (1 - line["discount"])
            kept = line["status"] == "sold"
            want_margin[line["day"], line["product_id"], line["currency"]] += kept * (net_value - line["quantity"] * costs[line["product_id"]])
    margins = {(str(r["sale_date"]), r["member"], r["currency"]): r["margin"] for r in rows
               if r["dimension"] == "product" and r["margin"] is not None}
    assert margins.keys() == want_margin.keys()
    off = {k: (margins[k], want_margin[k]) for k in want_margin if abs(margins[k] - want_margin[k]) >= 0.02}
    assert not off, list(off.items())[:5]
    north = sorted((str(r["sale_date"]), r["currency"], r["net_sales"]) for r in rows if r["slice"] == "region=north")
    days = built["summary"].touched_days
    with initialized(env["serving_store"]) as serving:
        items = serving.query(DAILY_SALES, "region=north", days[0], days[-1] + "#\uffff")
    assert north and sorted((i["sale_date"], i["currency"], float(i["net_sales"])) for i in items) == north


def test_malformed_rows_are_counted_in_metadata_not_lost(built: dict[str, Any]) -> None:
    instance = built["instance"]
    raw = instance.get_latest_materialization_event(RAW_ORDER_LINES).asset_materialization
    landed_rows = sum(len(list(csv.DictReader(io.StringIO(v.decode())))) for v in built["files"].values())
    assert raw.metadata["dagster/row_count"].value == landed_rows
    records = instance.fetch_materializations(dg.AssetKey(["clean", "order_lines"]), limit=1000).records
    days = [r.asset_materialization.metadata for r in records]  # one materialization per day, its own counts
    assert len(days) == len({r.asset_materialization.partition for r in records}) == len(built["summary"].touched_days)
    rejected = sum(m["rows_rejected"].value for m in days)
    collapsed = sum(m["duplicates_collapsed"].value for m in days)
    clean = sum(m["dagster/row_count"].value for m in days)
    landing = instance.get_latest_materialization_event(LANDING_QUARANTINE).asset_materialization
    quarantine = instance.fetch_materializations(quarantine_key("order_lines"), limit=100).records
    assert rejected > 0 and "not a whole number" in "".join(r.asset_materialization.metadata["preview"].value for r in quarantine)
    assert clean + rejected + collapsed + landing.metadata["dagster/row_count"].value == landed_rows


def test_rematerializing_a_partition_changes_nothing(built: dict[str, Any]) -> None:
    env, defs, instance = built["env"], built["defs"], built["instance"]
    day = built["summary"].touched_days[3]

    def snapshot() -> tuple:
        with initialized(env["lake"]) as lake, initialized(env["report_db"]) as db, initialized(env["serving_store"]) as serving:
            objects = {key: lake.get_bytes(partition_object_key(key, column, day)) for key, column in
                       ((dg.AssetKey(["clean", "order_lines"]), "order_date"), (DAILY_STORE_SALES_KEY, "sale_date"))}
            items = sorted(serving.partition_keys(DAILY_STORE_SALES, day))
            full_items = [i for store, _ in items for i in serving.query(DAILY_STORE_SALES, store, day, day)]
            return objects, db.read(DAILY_STORE_SALES, day), full_items

    before = snapshot()
    assert defs.resolve_job_def(daily_sales_job.name).execute_in_process(instance=instance, partition_key=day).success
    assert snapshot() == before
    ingest = defs.resolve_job_def("ingest_landing").execute_in_process(instance=instance)
    assert ingest.get_asset_materialization_events()[0].materialization.metadata["files_ingested"].value == 0


def test_report_totals_follow_a_correction(built_to_change: dict[str, Any]) -> None:
    """A returned line landing later moves net sales of its order date, and only of that date."""
    env, defs, instance = built_to_change["env"], built_to_change["defs"], built_to_change["instance"]
    day = built_to_change["summary"].touched_days[2]
    with initialized(env["lake"]) as lake:
        clean = build_clean_partition(lake, day)
        sold = clean.filter(pc.equal(clean["status"], "sold")).slice(0, 1).to_pylist()[0]
        header = "order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at\n"
        ts = sold["order_ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
        row = (f"{sold['order_id']},{sold['line_no']},{ts},{sold['store_id']},{sold['channel']},{sold['product_id']},,"
               f"{sold['quantity']},{sold['unit_price']},{sold['discount']},{sold['currency']},returned,2027-01-01T00:00:00Z\n")
        lake.put_bytes(f"landing/orders/{sold['source']}/2027-01-01/correction.csv", (header + row).encode())
        built_to_change["files"][f"landing/orders/{sold['source']}/2027-01-01/correction.csv"] = (header + row).encode()
    summary = ingest_and_build(defs, instance)
    assert summary.touched_days == [day]
    with initialized(env["report_db"]) as db:
        assert_matches(db.read(DAILY_STORE_SALES), expected_report(built_to_change["files"]))


def build_clean_partition(lake: Any, day: str) -> Any:
    return parquet_bytes_to_table(lake.get_bytes(partition_object_key(dg.AssetKey(["clean", "order_lines"]), "order_date", day)))
