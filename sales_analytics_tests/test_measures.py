"""Every figure of every sales report equals an independent computation over the landed files.

Seeded sequences of landings carry what real exports do: invoices numbered C... cancelling earlier
sales, refund lines (negative quantities), lines whose status later says returned or cancelled,
corrections delivered as new files (an invoice re-exported with lines removed) and as newer
versions of a line, exactly repeated lines, and two currencies. After each landing the platform
ingests and builds; the test recomputes every measure with pandas from the files alone, by the
definitions the README states (sharing no code with the platform), and compares every report,
the SQL and serving copies, the dashboard's KPI and the API.
"""

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import requests

from sales_analytics.catalog import DAILY_SALES_KEY, DAILY_STORE_SALES_KEY, SALES_BY_SERIES_KEY
from sales_analytics.dashboards.assets import AS_OF_TAG, insights_key
from sales_analytics.definitions import build_defs
from sales_analytics.jobs import weekly_sales_job
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.runner import ingest_and_build
from sales_analytics.schema import DAILY_SALES, DAILY_STORE_SALES
from sales_analytics.service.app import API_KEY_HEADER, create_app
from sales_analytics.service.report_api import MAX_PAGE
from sales_analytics.storage.parquet_io import parquet_bytes_to_table, partition_object_key
from sales_analytics_tests.helpers import serving

FIRST_DAY = dt.date(2026, 3, 2)  # a Monday: the first seven days are one whole week
DAYS = 9
SEQUENCES = (11, 29)
KEY = "measures-api-key-0123456789"
INVOICE_HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
POS_HEADER = ["order_id", "line_no", "order_ts", "store_id", "channel", "product_id", "customer_id", "quantity", "unit_price",
              "discount", "currency", "status", "updated_at"]
POS_STORES = {"P-DE": "EUR", "P-FR": "EUR", "P-UK": "GBP"}
PRODUCTS = [f"SKU{n:02d}" for n in range(8)]
MONEY = ["gross_sales", "discounts", "returns_value", "cancellations", "net_sales"]
COUNTS = ["orders", "units_sold", "units_returned"]
CENT = Decimal("0.01")


# -- the landings ---------------------------------------------------------------------------
def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def invoice_rows(rng: np.random.Generator, day: dt.date) -> dict[str, list[list[Any]]]:
    """A day's invoices, each a list of rows: sales (some lines repeated exactly, some refunds)
    and C invoices cancelling earlier ones (negative quantities)."""
    invoices: dict[str, list[list[Any]]] = {}
    stamp = f"{day:%m/%d/%Y} 12:{rng.integers(0, 60):02d}"
    for n in range(int(rng.integers(4, 8))):
        cancelling = rng.random() < 0.2
        number = f"{'C' if cancelling else ''}{day:%m%d}{n:02d}"
        country = str(rng.choice(["United Kingdom", "France"]))
        rows = []
        for _ in range(int(rng.integers(1, 5))):
            quantity = int(rng.integers(1, 12)) * (-1 if cancelling or rng.random() < 0.1 else 1)
            row = [number, str(rng.choice(PRODUCTS)), "ITEM", quantity, stamp, round(float(rng.uniform(0.5, 20)), 2),
                   str(rng.integers(10000, 10100)), country]
            rows += [row, list(row)] if rng.random() < 0.15 else [row]  # an exactly repeated line
        invoices[number] = rows
    return invoices


def corrected(rng: np.random.Generator, rows: list[list[Any]]) -> list[list[Any]]:
    """An invoice re-exported: a line left out (if it has several) and a quantity changed."""
    rows = [list(r) for r in rows]
    if len(rows) > 1:
        rows.pop(int(rng.integers(0, len(rows))))
    rows[0][3] = int(rows[0][3]) + (1 if int(rows[0][3]) > 0 else -1)
    return rows


def pos_rows(rng: np.random.Generator, day: dt.date) -> list[list[Any]]:
    rows = []
    for n in range(int(rng.integers(4, 9))):
        store = str(rng.choice(list(POS_STORES)))
        ts = f"{day}T{rng.integers(8, 20):02d}:00:00Z"
        for line in range(1, int(rng.integers(2, 5))):
            status = str(rng.choice(["sold", "sold", "sold", "returned", "cancelled", "refund", "cancellation"]))
            rows.append([f"R{day:%m%d}{n:02d}", line, ts, store, "store", str(rng.choice(PRODUCTS)), "", int(rng.integers(1, 6)),
                         round(float(rng.uniform(1, 30)), 2), float(rng.choice([0.0, 0.1, 0.25])), POS_STORES[store], status, ts])
    return rows


def pos_updates(rng: np.random.Generator, rows: list[list[Any]], day: dt.date) -> list[list[Any]]:
    """Later versions of some lines: a status change or a new quantity."""
    later = f"{day + dt.timedelta(days=2)}T09:00:00Z"
    chosen = [list(rows[i]) for i in rng.choice(len(rows), size=max(1, len(rows) // 4), replace=False)]
    for row in chosen:
        row[11] = str(rng.choice(["returned", "cancelled", "sold"]))
        row[7] = int(row[7]) + 1
        row[12] = later
    return chosen


def landings(seed: int) -> list[dict[str, bytes]]:
    """Two waves of landing files: the days' exports, then the corrections of some of them."""
    rng = np.random.default_rng(seed)
    first, second = {}, {}
    for offset in range(DAYS):
        day = FIRST_DAY + dt.timedelta(days=offset)
        invoices = invoice_rows(rng, day)
        first[f"landing/invoices/{day}/invoices.csv"] = _csv(INVOICE_HEADER, [r for rows in invoices.values() for r in rows])
        pos = pos_rows(rng, day)
        first[f"landing/orders/pos/{day}/pos.csv"] = _csv(POS_HEADER, pos)
        if rng.random() < 0.6:  # corrections delivered as new files
            fixed = [corrected(rng, rows) for number, rows in invoices.items() if rng.random() < 0.4]
            if fixed:
                second[f"landing/invoices/{day}/invoices-corrected.csv"] = _csv(INVOICE_HEADER, [r for rows in fixed for r in rows])
            second[f"landing/orders/pos/{day}/pos-updates.csv"] = _csv(POS_HEADER, pos_updates(rng, pos, day))
        elif rng.random() < 0.5:  # the day's exports replaced in place: an invoice and a POS line corrected
            number = str(rng.choice(list(invoices)))
            invoices[number] = corrected(rng, invoices[number])
            second[f"landing/invoices/{day}/invoices.csv"] = _csv(INVOICE_HEADER, [r for rows in invoices.values() for r in rows])
            pos[0][7] = int(pos[0][7]) + 2
            second[f"landing/orders/pos/{day}/pos.csv"] = _csv(POS_HEADER, pos[:-1] if len(pos) > 1 else pos)
    return [first, second]


# -- the independent computation ------------------------------------------------------------
def landed_lines(files: dict[str, bytes]) -> pd.DataFrame:
    """The current version of every landed line, by the rules the README states for the two sources.
    ``files``: in the order they landed."""
    invoices = []
    for delivery, key in enumerate(files):
        if key.startswith("landing/invoices/"):
            frame = pd.read_csv(io.BytesIO(files[key]), dtype={"InvoiceNo": str, "CustomerID": str})
            invoices.append(frame.assign(delivery=delivery))
    inv = pd.concat(invoices, ignore_index=True)
    inv = inv[inv["delivery"] == inv.groupby("InvoiceNo")["delivery"].transform("max")]  # the invoice's latest delivery
    status = np.where(inv["InvoiceNo"].str.startswith("C"), "cancellation", np.where(inv["Quantity"] < 0, "refund", "sold"))
    inv_lines = pd.DataFrame({
        "day": pd.to_datetime(inv["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.date, "order_id": inv["InvoiceNo"],
        "store_id": "INV-" + inv["Country"], "product_id": inv["StockCode"], "currency": "GBP", "status": status,
        "quantity": inv["Quantity"].abs(), "price": inv["UnitPrice"], "discount": 0.0})
    pos = pd.concat([pd.read_csv(io.BytesIO(files[k]), dtype={"customer_id": str}).assign(file=k)
                     for k in sorted(k for k in files if k.startswith("landing/orders/pos/"))], ignore_index=True)
    pos = pos.sort_values(["updated_at", "file"]).drop_duplicates(["order_id", "line_no"], keep="last")
    pos_lines = pd.DataFrame({
        "day": pd.to_datetime(pos["order_ts"]).dt.date, "order_id": pos["order_id"], "store_id": pos["store_id"],
        "product_id": pos["product_id"], "currency": pos["currency"], "status": pos["status"], "quantity": pos["quantity"],
        "price": pos["unit_price"], "discount": pos["discount"]})
    return pd.concat([inv_lines, pos_lines], ignore_index=True)


def _decimal(values: pd.Series) -> pd.Series:
    return values.map(lambda v: Decimal(str(v)))


def expected_measures(lines: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The measures' definitions, written out in exact decimals: a sale is sold or returned;
    returned and refund lines are returns; cancellation lines are cancellations; cancelled lines
    count nowhere. Money summed exactly, then in cents (a half cent away from zero)."""
    lines = lines[lines["status"] != "cancelled"]
    value = _decimal(lines["quantity"]) * _decimal(lines["price"])
    net_value = value * (1 - _decimal(lines["discount"]))
    sale, zero = lines["status"].isin(["sold", "returned"]), Decimal(0)
    frame = lines[by].assign(
        order=lines["order_id"].where(sale),
        units_sold=np.select([lines["status"] == "sold", lines["status"].isin(["refund", "cancellation"])],
                             [lines["quantity"], -lines["quantity"]], 0),
        units_returned=lines["quantity"].where(lines["status"].isin(["returned", "refund"]), 0),
        gross_sales=value.where(sale, zero), discounts=(value - net_value).where(sale, zero),
        returns_value=net_value.where(lines["status"].isin(["returned", "refund"]), zero),
        cancellations=net_value.where(lines["status"] == "cancellation", zero))
    grouped = frame.groupby(by).agg(orders=("order", "nunique"), **{c: (c, "sum") for c in COUNTS[1:] + MONEY[:-1]})
    grouped["net_sales"] = grouped["gross_sales"] - grouped["discounts"] - grouped["returns_value"] - grouped["cancellations"]
    for column in MONEY:
        grouped[column] = grouped[column].map(lambda amount: amount.quantize(CENT, rounding=ROUND_HALF_UP))
    return grouped


def _keyed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.set_index(pd.MultiIndex.from_arrays([frame[k].astype(str) for k in keys], names=keys))


def mismatches(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], measures: list[str]) -> list[str]:
    """Every cell of ``actual`` that differs from ``expected`` (money to the cent); keys missing on either
    side. ``expected`` is indexed by the same keys, in order, under its own names."""
    got = _keyed(actual, keys)
    flat = expected.reset_index()
    want = _keyed(flat.set_axis([*keys, *flat.columns[len(keys):]], axis=1), keys)
    problems = [f"only reported: {k}" for k in got.index.difference(want.index)]
    problems += [f"missing: {k}" for k in want.index.difference(got.index)]
    for key in got.index.intersection(want.index):
        for measure in measures:
            reported, wanted = got.at[key, measure], want.at[key, measure]
            if (Decimal(str(reported)) != wanted) if measure in MONEY else (int(reported) != int(wanted)):
                problems.append(f"{key} {measure}: reported {got.at[key, measure]}, expected {want.at[key, measure]}")
    return problems


# -- the platform ---------------------------------------------------------------------------
def lake_rows(lake: Any, key: dg.AssetKey, column: str, days: list[str]) -> pd.DataFrame:
    frames = [parquet_bytes_to_table(lake.get_bytes(partition_object_key(key, column, d))).to_pandas() for d in days]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module", params=SEQUENCES, ids=[f"sequence-{s}" for s in SEQUENCES])
def sequence(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """Each wave landed and built in turn; what the platform held after each."""
    env = local_resources(tmp_path_factory.mktemp(f"measures-{request.param}") / "local")
    defs, instance = build_defs(env), dg.DagsterInstance.ephemeral()
    landed: dict[str, bytes] = {}
    states = []
    days = [str(FIRST_DAY + dt.timedelta(days=k)) for k in range(DAYS)]
    for wave in landings(request.param):
        with initialized(env["lake"]) as lake:
            for key, data in wave.items():
                lake.put_bytes(key, data)
        landed = {key: data for key, data in landed.items() if key not in wave} | wave  # in the order they landed
        ingest_and_build(defs, instance)
        assert defs.resolve_job_def(weekly_sales_job.name).execute_in_process(instance=instance, partition_key=str(FIRST_DAY)).success
        assert defs.resolve_job_def("dashboard_executive_daily").execute_in_process(
            instance=instance, tags={AS_OF_TAG: days[6]}).success
        with (initialized(env["lake"]) as lake, initialized(env["report_db"]) as db,
              initialized(env["serving_store"]) as serving_store,
              serving(create_app(lake, [KEY], report_db=db, serving_store=serving_store)) as url):
            answer = requests.get(f"{url}/v1/sales/daily", params={"from": days[0], "to": days[-1], "limit": MAX_PAGE},
                                  headers={API_KEY_HEADER: KEY}, timeout=30)
            assert answer.status_code == 200 and answer.json()["next_page_token"] is None, answer.text
            api = answer.json()["rows"]
            states.append({
                "files": dict(landed),
                "store": lake_rows(lake, DAILY_STORE_SALES_KEY, "sale_date", days),
                "store_sql": pd.DataFrame(db.read(DAILY_STORE_SALES)),
                "slices": lake_rows(lake, DAILY_SALES_KEY, "sale_date", days),
                "slices_sql": pd.DataFrame(db.read(DAILY_SALES)),
                "series": lake_rows(lake, SALES_BY_SERIES_KEY, "sale_date", days),
                "week": parquet_bytes_to_table(lake.get_bytes(partition_object_key(
                    dg.AssetKey(["reports", "weekly_sales"]), "week_start", str(FIRST_DAY)))).to_pandas(),
                "insights": parquet_bytes_to_table(lake.get_bytes(partition_object_key(insights_key("executive_daily"), None, None))).to_pandas(),
                "api_total": pd.DataFrame(api),
            })
    yield states


def test_every_report_figure_equals_the_independent_computation(sequence: list[dict[str, Any]]) -> None:
    for wave, state in enumerate(sequence):
        lines = landed_lines(state["files"])
        by_store = expected_measures(lines, ["day", "store_id", "currency"])
        keys = ["sale_date", "store_id", "currency"]
        assert not mismatches(state["store"], by_store, keys, COUNTS + MONEY), wave
        assert not mismatches(state["store_sql"], by_store, keys, COUNTS + MONEY), wave
        slices = state["slices"]
        for dimension, column in (("store", "store_id"), ("product", "product_id")):
            expected = expected_measures(lines, ["day", column, "currency"])
            rows = slices[slices["dimension"] == dimension].rename(columns={"member": column})
            assert not mismatches(rows, expected, ["sale_date", column, "currency"], COUNTS + MONEY), (wave, dimension)
        total = expected_measures(lines, ["day", "currency"])
        assert not mismatches(slices[slices["dimension"] == "total"], total, ["sale_date", "currency"], COUNTS + MONEY), wave
        assert not mismatches(state["slices_sql"][state["slices_sql"]["dimension"] == "total"], total,
                              ["sale_date", "currency"], COUNTS + MONEY), wave
        assert not mismatches(state["api_total"], total, ["sale_date", "currency"], COUNTS + MONEY), wave
        series = expected_measures(lines, ["day", "store_id", "product_id"])
        assert not mismatches(state["series"].rename(columns={"units": "units_sold"}), series,
                              ["sale_date", "store_id", "product_id"], ["units_sold", "net_sales"]), wave
        # A week is the sum of its seven days, each in cents (the README's definition of weekly_sales).
        days = total.reset_index()
        week = days[days["day"] < FIRST_DAY + dt.timedelta(days=7)].assign(week=str(FIRST_DAY)).groupby(
            ["week", "currency"])[COUNTS[1:] + MONEY].sum()
        assert not mismatches(state["week"][state["week"]["dimension"] == "total"].rename(columns={"week_start": "week"}),
                              week, ["week", "currency"], MONEY + COUNTS[1:]), wave
        kpi = state["insights"].query("kind == 'kpi' and metric == 'net_sales' and period == 'week'").iloc[0]
        assert Decimal(str(round(kpi["value"], 2))) == week.loc[(str(FIRST_DAY), "EUR"), "net_sales"], wave


def test_the_landings_exercise_every_rule(sequence: list[dict[str, Any]]) -> None:
    """The generated files hold each kind of line and correction the measures must handle."""
    lines = landed_lines(sequence[-1]["files"])
    assert set(lines["status"]) == {"sold", "returned", "cancelled", "refund", "cancellation"}
    assert set(lines["currency"]) == {"EUR", "GBP"}
    files = sequence[-1]["files"]
    assert any(k.endswith("invoices-corrected.csv") for k in files) and any(k.endswith("pos-updates.csv") for k in files)
    first_wave = sequence[0]["files"]
    assert any(first_wave.get(k) not in (None, v) for k, v in files.items())  # and a file replaced in place
    exports = [pd.read_csv(io.BytesIO(data)) for key, data in files.items() if key.endswith("/invoices.csv")]
    assert sum(int(export.duplicated().sum()) for export in exports) > 0  # exactly repeated lines
