"""Sample-data generator: realistic multi-source sales landing in the active profile's landing zone.

Deterministic by seed. What it plants, and why:
- stores in several regions (physical stores report through POS exports, one online store per
  region through web exports), products in categories with skewed popularity;
- weekly and yearly seasonality, promotion weeks (discounts, more volume), holidays (physical
  stores closed on some);
- cancellations, returns (a later correction of the original line), late lines (delivered in a
  later day's file), exact duplicates, and a few malformed rows (bad date, non-numeric quantity,
  missing key) — the faults the ingestion path must survive without losing a row.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

from sales_analytics.storage.lake import LakeResource

REGIONS = {"north": ("EUR", ["Hamburg", "Berlin", "Bremen"]), "south": ("EUR", ["Munich", "Stuttgart"]),
           "west": ("EUR", ["Cologne", "Dusseldorf"]), "uk": ("GBP", ["London", "Manchester"])}
CATEGORIES = {"grocery": (1.0, 8.0), "beverages": (0.8, 6.0), "household": (2.0, 15.0),
              "personal care": (2.0, 20.0), "electronics": (15.0, 400.0), "apparel": (8.0, 90.0)}
STORE_FORMATS = {"hypermarket": 2.0, "supermarket": 1.0, "express": 0.5}
HOLIDAYS = {(1, 1): ("New Year", True), (12, 25): ("Christmas", True), (12, 26): ("Boxing Day", False),
            (5, 1): ("Labour Day", True), (10, 3): ("Unity Day", False)}
ORDER_COLUMNS = ["order_id", "line_no", "order_ts", "store_id", "channel", "product_id", "customer_id",
                 "quantity", "unit_price", "discount", "currency", "status", "updated_at"]
LATE_SHARE, CORRECTION_SHARE, DUPLICATE_SHARE, CANCEL_SHARE = 0.03, 0.01, 0.002, 0.01
MALFORMED_PER_FILE = 1


@dataclass
class GenerationSummary:
    files: list[str] = field(default_factory=list)
    order_rows: int = 0
    malformed_rows: int = 0
    late_rows: int = 0
    correction_rows: int = 0
    duplicate_rows: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None


@dataclass(frozen=True)
class GeneratorConfig:
    days: int = 60
    stores: int = 8
    products: int = 120
    start: dt.date = dt.date(2026, 1, 1)
    seed: int = 7
    orders_per_store_day: float = 40.0


class SalesGenerator:
    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.stores = self._make_stores()
        self.products = self._make_products()
        self.calendar = self._make_calendar()
        self.customers = [f"C{i:06d}" for i in range(max(50, config.stores * 200))]

    # -- reference data ---------------------------------------------------------------------
    def _make_stores(self) -> list[dict]:
        stores, regions = [], list(REGIONS)
        for i in range(self.config.stores):
            region = regions[i % len(regions)]
            currency, cities = REGIONS[region]
            store_format = list(STORE_FORMATS)[int(self.rng.integers(len(STORE_FORMATS)))]
            stores.append({"store_id": f"S{i + 1:03d}", "name": f"Store {i + 1}", "region": region,
                           "city": cities[i % len(cities)], "format": store_format, "currency": currency,
                           "opened": dt.date(2018 + i % 6, 1 + i % 12, 1)})
        for region, (currency, cities) in REGIONS.items():
            stores.append({"store_id": f"W-{region.upper()}", "name": f"Online {region}", "region": region,
                           "city": cities[0], "format": "online", "currency": currency, "opened": dt.date(2020, 1, 1)})
        return stores

    def _make_products(self) -> list[dict]:
        products, categories = [], list(CATEGORIES)
        for i in range(self.config.products):
            category = categories[i % len(categories)]
            low, high = CATEGORIES[category]
            price = round(float(np.exp(self.rng.uniform(np.log(low), np.log(high)))), 2)
            products.append({"product_id": f"P{i + 1:05d}", "name": f"{category.title()} item {i + 1}",
                             "category": category, "brand": f"Brand {chr(65 + i % 12)}", "price": price})
        return products

    def _make_calendar(self) -> list[dict]:
        rows = []
        for offset in range(self.config.days):
            day = self.config.start + dt.timedelta(days=offset)
            holiday = HOLIDAYS.get((day.month, day.day))
            rows.append({"date": day, "is_holiday": holiday is not None,
                         "holiday_name": holiday[0] if holiday else None,
                         "is_promo_week": day.isocalendar().week % 6 == 0})
        return rows

    # -- order lines ------------------------------------------------------------------------
    def _day_lines(self, day: dt.date, day_info: dict) -> dict[str, np.ndarray]:
        """All original order lines placed on ``day``, as columns of strings."""
        rng, cfg = self.rng, self.config
        popularity = 1.0 / np.arange(1, len(self.products) + 1) ** 0.9
        popularity /= popularity.sum()
        yearly = 1.0 + 0.15 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 80) / 365.25) + (0.4 if day.month == 12 else 0.0)
        promo = 1.25 if day_info["is_promo_week"] else 1.0
        columns: dict[str, list] = {c: [] for c in ORDER_COLUMNS}
        for store in self.stores:
            online = store["format"] == "online"
            closed = day_info["is_holiday"] and HOLIDAYS[(day.month, day.day)][1] and not online
            if closed:
                continue
            weekly = (1.2 if day.weekday() == 0 else 1.0) if online else (1.35 if day.weekday() >= 5 else 1.0)
            scale = 1.5 if online else STORE_FORMATS[store["format"]]
            holiday_boost = 1.3 if day_info["is_holiday"] else 1.0
            n_orders = int(rng.poisson(cfg.orders_per_store_day * scale * weekly * yearly * promo * holiday_boost))
            self._append_orders(columns, store, day, n_orders, popularity, day_info["is_promo_week"])
        return {k: np.array(v, dtype=object) for k, v in columns.items()}

    def _append_orders(self, columns: dict[str, list], store: dict, day: dt.date, n_orders: int,
                       popularity: np.ndarray, promo_week: bool) -> None:
        rng = self.rng
        online = store["format"] == "online"
        prefix = "W" if online else "P"
        lines_per_order = rng.integers(1, 5, size=n_orders)
        seconds = rng.integers(8 * 3600, 21 * 3600, size=n_orders)
        for o in range(n_orders):
            order_id = f"{prefix}{day:%Y%m%d}-{store['store_id']}-{o:05d}"
            ts = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=int(seconds[o]))
            customer = self.customers[int(rng.integers(len(self.customers)))] if online or rng.random() < 0.4 else ""
            cancelled = rng.random() < CANCEL_SHARE
            for line in range(1, int(lines_per_order[o]) + 1):
                product = self.products[int(rng.choice(len(self.products), p=popularity))]
                discount = round(float(rng.choice([0.1, 0.15, 0.25])), 2) if promo_week and rng.random() < 0.3 else 0.0
                values = [order_id, str(line), _iso(ts), store["store_id"], "online" if online else "store",
                          product["product_id"], customer, str(int(rng.integers(1, 4))), f"{product['price']:.2f}",
                          f"{discount:.2f}", store["currency"], "cancelled" if cancelled else "sold", _iso(ts)]
                for name, value in zip(ORDER_COLUMNS, values, strict=True):
                    columns[name].append(value)

    def run(self, lake: LakeResource, progress: bool = True) -> GenerationSummary:
        summary = GenerationSummary(first_day=self.config.start,
                                    last_day=self.config.start + dt.timedelta(days=self.config.days - 1))
        self._write_reference(lake, summary)
        pending: dict[str, list[dict[str, np.ndarray]]] = {"pos": [], "web": []}  # late/corrected rows
        days = range(self.config.days)
        for offset in tqdm(days, desc="generating days", unit="day", disable=not progress):
            day = self.config.start + dt.timedelta(days=offset)
            lines = self._day_lines(day, self.calendar[offset])
            last_day = offset == self.config.days - 1
            for source, channel in (("pos", "store"), ("web", "online")):
                mine = _take(lines, lines["channel"] == channel)
                on_time, late = self._split_late(mine, last_day)
                summary.late_rows += len(late["order_id"])
                rows = _concat([on_time, *pending[source]])
                pending[source] = [late, self._corrections(on_time, day)] if not last_day else []
                summary.correction_rows += 0 if last_day else len(pending[source][1]["order_id"])
                rows = self._with_faults(rows, summary)
                key = f"landing/orders/{source}/{day:%Y-%m-%d}/{source}_orders_{day:%Y%m%d}.csv"
                lake.put_bytes(key, _csv_bytes(rows))
                summary.files.append(key)
                summary.order_rows += len(rows["order_id"])
        return summary

    def _split_late(self, lines: dict[str, np.ndarray], last_day: bool) -> tuple[dict, dict]:
        late = self.rng.random(len(lines["order_id"])) < (0.0 if last_day else LATE_SHARE)
        return _take(lines, ~late), _take(lines, late)

    def _corrections(self, lines: dict[str, np.ndarray], day: dt.date) -> dict[str, np.ndarray]:
        """Returns of earlier sold lines, re-delivered with a later ``updated_at``."""
        chosen = _take(lines, (self.rng.random(len(lines["order_id"])) < CORRECTION_SHARE) & (lines["status"] == "sold"))
        chosen["status"] = np.full(len(chosen["status"]), "returned", dtype=object)
        later = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(9), dt.UTC)
        chosen["updated_at"] = np.full(len(chosen["status"]), _iso(later), dtype=object)
        return chosen

    def _with_faults(self, rows: dict[str, np.ndarray], summary: GenerationSummary) -> dict[str, np.ndarray]:
        n = len(rows["order_id"])
        if n == 0:
            return rows
        duplicates = _take(rows, self.rng.random(n) < DUPLICATE_SHARE)
        summary.duplicate_rows += len(duplicates["order_id"])
        bad = _take(rows, self.rng.integers(0, n, size=MALFORMED_PER_FILE))
        for i in range(len(bad["order_id"])):
            fault = int(self.rng.integers(3))
            column, value = [("order_ts", "2026-13-45T25:00:00Z"), ("quantity", "two"), ("order_id", "")][fault]
            bad[column] = bad[column].copy()
            bad[column][i] = value
            bad["line_no"] = bad["line_no"].copy()
            bad["line_no"][i] = str(100 + i)  # a distinct key, so the bad row is not a correction
        summary.malformed_rows += len(bad["order_id"])
        return _concat([rows, duplicates, bad])

    def _write_reference(self, lake: LakeResource, summary: GenerationSummary) -> None:
        tables = {"stores": self.stores, "products": self.products, "calendar": self.calendar,
                  "customers": [{"customer_id": c, "region": list(REGIONS)[i % len(REGIONS)],
                                 "segment": ["consumer", "corporate"][i % 2], "joined": dt.date(2020, 1, 1)}
                                for i, c in enumerate(self.customers)]}
        for name, rows in tables.items():
            key = f"landing/reference/{name}/{name}.csv"
            lake.put_bytes(key, _csv_bytes(pa.Table.from_pylist(rows)))
            summary.files.append(key)


def _iso(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _take(columns: dict[str, np.ndarray], selector: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[selector] for k, v in columns.items()}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {c: np.concatenate([p[c] for p in parts]) if parts else np.array([], dtype=object) for c in ORDER_COLUMNS}


def _csv_bytes(data: dict[str, np.ndarray] | pa.Table) -> bytes:
    table = data if isinstance(data, pa.Table) else pa.table({c: pa.array(data[c].tolist(), pa.string()) for c in ORDER_COLUMNS})
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def generate(lake: LakeResource, config: GeneratorConfig, progress: bool = True) -> GenerationSummary:
    lake.ensure_bucket()
    return SalesGenerator(config).run(lake, progress=progress)
