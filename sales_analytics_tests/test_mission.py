"""The whole mission, as ``make demo`` builds it (``runner.build_mission``), over the session's world."""

from typing import Any

import dagster as dg
import pyarrow.compute as pc

from sales_analytics.dashboards.spec import dashboard_specs, page_object_key
from sales_analytics.definitions import build_defs
from sales_analytics.generator import SalesGenerator
from sales_analytics.ocr.assets import ITEM_PRODUCT_PREFIX
from sales_analytics.profiles import initialized
from sales_analytics.runner import SCORED_DAYS
from sales_analytics.schema import FORECAST_ACCURACY
from sales_analytics.storage.parquet_io import LakeReader, parquet_bytes_to_table
from sales_analytics_tests.world import CONFIG

# What the demo leaves out, and why: sources are landed files (not built); the POS database extraction
# needs a database; the OCR evaluation needs labelled receipts, which sample data has none of.
NOT_BUILT_BY_THE_DEMO = {"landing/pos_db_files", "ml/receipt_ocr_evaluation"}


def test_every_asset_is_built_except_the_declared_few(dashboard_world: dict[str, Any]) -> None:
    defs = build_defs(dashboard_world["env"])
    graph = defs.resolve_asset_graph()
    buildable = {key.to_user_string() for key in graph.materializable_asset_keys}
    built = set(dashboard_world["mission"].build.partitions)
    assert buildable - built == NOT_BUILT_BY_THE_DEMO
    checks = dashboard_world["mission"].build.checks
    assert checks and all(checks.values()), [name for name, ok in checks.items() if not ok]


def test_models_are_trained_backtested_promoted_and_scored(dashboard_world: dict[str, Any]) -> None:
    mission = dashboard_world["mission"]
    demand = mission.demand_model
    assert demand["promoted"] and demand["model"] < demand["seasonal_naive"]
    assert len(mission.forecast_accuracy) == SCORED_DAYS and all(0 < wape < 1 for wape in mission.forecast_accuracy.values())
    with initialized(dashboard_world["env"]["report_db"]) as db:  # every scored day in the SQL store too
        assert all(db.read(FORECAST_ACCURACY, day) for day in mission.forecast_accuracy)
    sentiment = mission.sentiment_model
    assert sentiment["promoted"] and sentiment["model"] > sentiment["lexicon"]
    assert mission.weeks and mission.build.partitions["reports/weekly_sales"] == len(mission.weeks)


def test_sample_receipts_are_read_and_the_spoilt_ones_queued(dashboard_world: dict[str, Any]) -> None:
    scans = SalesGenerator(CONFIG).receipt_scans()
    readable = [s for s in scans if s.spoilt is None]
    assert dashboard_world["mission"].receipts == {"accepted": len(readable), "review": len(scans) - len(readable)}
    day = readable[0].day.isoformat()
    with initialized(dashboard_world["env"]["lake"]) as lake:
        clean = LakeReader(lake).stored_partitions(dg.AssetKey(["clean", "order_lines"]), "order_date")
        lines = parquet_bytes_to_table(lake.get_bytes(clean[day]))
        pages = {s.name: lake.exists(page_object_key(s.name)) for s in dashboard_specs()}
    receipts = lines.filter(pc.equal(lines["source"], "receipts")).to_pylist()
    assert all(r["product_id"].startswith(ITEM_PRODUCT_PREFIX) for r in receipts)  # every printed item read
    per_receipt: dict[tuple[str, str, str], float] = {}
    for r in receipts:
        receipt = (r["order_id"], r["store_id"], r["currency"])
        per_receipt[receipt] = per_receipt.get(receipt, 0) + r["quantity"] * r["unit_price"]
    assert sorted((store, round(amount, 2), currency) for (_, store, currency), amount in per_receipt.items()) == sorted(
        (s.key.split("/")[3], round(s.total, 2), s.currency) for s in readable)
    assert all(pages.values()) and dashboard_world["mission"].dashboards == dict.fromkeys(pages, "built")


def test_metadata_shows_numbers_a_person_reads(dashboard_world: dict[str, Any]) -> None:
    """Money in cents, scores and shares in 4 decimals: no float noise in any materialization's metadata."""
    floats = dashboard_world["metadata_floats"]
    assert len(floats) > 50  # the models' scores, the reports' totals per currency, the review shares...
    assert [f for f in floats if f[2] != round(f[2], 4)] == []
    money = [f for f in floats if f[1] == "net_sales_per_currency"]
    assert money and all(value == round(value, 2) for _, _, value in money)
