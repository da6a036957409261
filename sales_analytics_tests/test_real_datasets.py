"""The real public datasets (trimmed copies in sales_analytics_tests/data) ingest through their shipped specs, nothing lost."""

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from sales_analytics.ingest.raw import ingest_object, read_day_shards, read_landing_quarantine
from sales_analytics.lake.order_lines import clean_days
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.sources.spec import file_sources, source_named
from sales_analytics_tests.helpers import REAL_DATA, csv_records

DATA = REAL_DATA
SPECS = {s.name: s for s in file_sources()}


DATASETS = {
    "superstore": ("superstore/Sample - Superstore.csv", "utf-8-sig"),
    "rossmann": ("rossmann_subset/rossmann-sales.csv", "utf-8"),
    "completejourney": ("completejourney/transactions_sample.csv", "utf-8"),
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each dataset ingested once for the module, into a lake of its own."""
    return {name: ingest_file(local_resources(tmp_path_factory.mktemp(name)), name, DATA / relative)
            for name, (relative, _) in DATASETS.items()}


def ingest_file(env: dict[str, Any], source: str, path: Path) -> dict[str, Any]:
    spec = source_named(source)
    key = f"{spec.prefix}{path.name}"
    with initialized(env["lake"]) as lake:
        lake.put_bytes(key, path.read_bytes())  # into the test's own landing zone; the original stays in place
        info = next(o for o in lake.list(spec.prefix) if o.key == key)
        result = ingest_object(lake, spec, info)
        days = clean_days({d: read_day_shards(lake, d) for d in sorted(result.days)}, SPECS)
        landing = read_landing_quarantine(lake)
    clean = sum(d.lines.num_rows for d in days)
    quarantined = sum(d.rejects.num_rows for d in days) + result.quarantined
    duplicates = sum(d.duplicates_collapsed for d in days)
    assert all(d.reconciles for d in days)
    return {"result": result, "days": days, "clean": clean, "quarantined": quarantined, "duplicates": duplicates,
            "landing": landing}


@pytest.mark.parametrize("source", list(DATASETS))
def test_dataset_ingests_and_every_row_is_accounted_for(ingested: dict[str, dict[str, Any]], source: str) -> None:
    relative, encoding = DATASETS[source]
    out = ingested[source]
    rows = csv_records(DATA / relative, encoding)
    assert out["result"].rows == rows
    assert out["clean"] + out["quarantined"] + out["duplicates"] == rows
    assert out["result"].unreadable is None and out["result"].new_columns == []
    assert out["clean"] / rows > 0.98, out["days"][0].rejects.to_pylist()[:3]


def test_superstore_values_survive_the_mapping(ingested: dict[str, dict[str, Any]]) -> None:
    path = DATA / "superstore" / "Sample - Superstore.csv"
    out = ingested["superstore"]
    lines = {(r["order_id"], r["line_no"]): r for d in out["days"] for r in d.lines.to_pylist()}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = next(csv.DictReader(handle))
    line = lines[first["Order ID"], int(first["Row ID"])]
    month, day, year = (int(x) for x in first["Order Date"].split("/"))
    assert line["order_date"] == dt.date(year, month, day)
    net = line["quantity"] * line["unit_price"] * (1 - line["discount"])
    assert net == pytest.approx(float(first["Sales"]), rel=1e-9)  # Sales is the discounted line total
    assert line["store_id"] == f"SS-{first['Region']}"


def test_rossmann_keeps_closed_days_and_collapses_the_files_repeated_rows(ingested: dict[str, dict[str, Any]]) -> None:
    path = DATA / "rossmann_subset" / "rossmann-sales.csv"
    out = ingested["rossmann"]
    with open(path, newline="") as handle:
        records = list(csv.DictReader(handle))
    by_store_day = {(r["Store"], r["Date"]): r for r in records}  # the file repeats a few store-days verbatim
    total = sum(r["unit_price"] * r["quantity"] for d in out["days"] for r in d.lines.to_pylist())
    assert total == pytest.approx(sum(int(r["Sales"]) for r in by_store_day.values()))
    assert out["duplicates"] == len(records) - len(by_store_day) > 0
    assert out["clean"] == len(by_store_day) and out["quarantined"] == 0
    closed = [r for d in out["days"] for r in d.lines.to_pylist() if r["unit_price"] == 0]
    assert len(closed) == sum(1 for r in by_store_day.values() if r["Sales"] == "0")
    assert sum(1 for r in by_store_day.values() if r["Open"] == "0") > 0.1 * len(closed)  # mostly closed days
