"""Sample-data generator: realistic multi-source sales landing in the active profile's landing zone.

Deterministic by seed. What it plants, and why:
- stores in several regions (physical stores report through POS exports, one online store per
  region through web exports), products in categories with skewed popularity;
- weekly and yearly seasonality, promotion weeks (discounts, more volume), holidays (physical
  stores closed on some);
- cancellations, returns (a later correction of the original line), late lines (delivered in a
  later day's file), exact duplicates, and a few malformed rows (bad date, non-numeric quantity,
  missing key) — the faults the ingestion path must survive without losing a row;
- weekly review exports with star ratings and text about fit, size, quality, price and delivery,
  one malformed rating per file, and a planted spike: the best-selling apparel product's reviews
  turn negative about its size in one week (``SPIKE_WEEK_SHARE`` of the way through).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

from sales_analytics.storage.lake import LakeResource

REGIONS = {"north": ("EUR", ["Hamburg", "Berlin", "Bremen"]), "south": ("EUR", ["Munich", "Stuttgart"]),
           "west": ("EUR", ["Cologne", "Dusseldorf"]), "uk": ("GBP", ["London", "Manchester"])}
CATEGORIES = {"grocery": (1.0, 8.0), "beverages": (0.8, 6.0), "household": (2.0, 15.0),
              "personal care": (2.0, 20.0), "electronics": (15.0, 400.0), "apparel": (8.0, 90.0)}
# What a unit costs as a share of its list price (no random draw: the sample data stays as it was).
COST_SHARE = {"grocery": 0.7, "beverages": 0.6, "household": 0.55, "personal care": 0.5, "electronics": 0.8, "apparel": 0.45}
STORE_FORMATS = {"hypermarket": 2.0, "supermarket": 1.0, "express": 0.5}  # traffic, and selling area, per format
STORE_AREA = 2_500.0  # square metres of a supermarket
HOLIDAYS = {(1, 1): ("New Year", True), (12, 25): ("Christmas", True), (12, 26): ("Boxing Day", False),
            (5, 1): ("Labour Day", True), (10, 3): ("Unity Day", False)}
REVIEW_COLUMNS = ["review_id", "product_id", "rating", "title", "text", "written_at"]
ORDER_COLUMNS = ["order_id", "line_no", "order_ts", "store_id", "channel", "product_id", "customer_id",
                 "quantity", "unit_price", "discount", "currency", "status", "updated_at"]
LATE_SHARE, CORRECTION_SHARE, DUPLICATE_SHARE, CANCEL_SHARE = 0.03, 0.01, 0.002, 0.01
MALFORMED_PER_FILE = 1
REVIEWS_PER_STORE_WEEK = 8.0
SPIKE_WEEK_SHARE = 2 / 3
# (aspect, sentiment) -> sentences a reviewer writes; ratings follow the sentiment.
REVIEW_PHRASES = {
    "positive": ["Fits perfectly and the cut is flattering.", "True to size, I ordered my usual.", "Great quality, really well made.",
                 "Great value for the price.", "Arrived quickly and well packed.", "The colour is lovely, exactly as pictured.",
                 "So comfortable I wear it every day.", "Love it, would buy again."],
    "neutral": ["The fit is okay.", "I sized up, which worked.", "Quality is average.", "The price is fair.",
                "Delivery took the usual few days.", "The colour is a bit different from the photo.", "It does the job."],
    "negative": ["The fit is awful, tight across the shoulders.", "Runs very small, I had to return it.",
                 "Cheap quality, the seams came apart after one wash.", "Overpriced for what you get.",
                 "Delivery was late and the package was damaged.", "The colour faded after the first wash.",
                 "Uncomfortable and itchy, very disappointed."],
}
REVIEW_TITLES = {"positive": ["Love it", "Great buy", "Recommended"], "neutral": ["It's okay", "Average"],
                 "negative": ["Disappointed", "Not worth it", "Would not buy again"]}
RECEIPT_STORES = 3  # physical stores whose last-day receipts are scanned: one clean scan each, two spoilt
SPIKE_PHRASES = ["Runs very small, I had to return it.", "Sizing is way off, order two sizes up.", "Way too small, the size chart is wrong."]


@dataclass
class GenerationSummary:
    files: list[str] = field(default_factory=list)
    order_rows: int = 0
    malformed_rows: int = 0
    late_rows: int = 0
    correction_rows: int = 0
    duplicate_rows: int = 0
    review_rows: int = 0
    receipt_scans: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None


@dataclass(frozen=True)
class ReceiptScan:
    key: str  # under landing/receipts/<day>/<store_id>/
    data: bytes  # PNG
    day: dt.date  # printed on it
    total: float  # printed on it
    currency: str
    spoilt: str | None  # "faded" or "torn": what a person in the review queue would see


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
        popularity = 1.0 / np.arange(1, len(self.products) + 1) ** 0.9
        self.popularity = popularity / popularity.sum()
        self.product_ids = pa.array([p["product_id"] for p in self.products])
        self.prices = pa.array([p["price"] for p in self.products], pa.float64())
        self.customer_ids = pa.array(self.customers)

    # -- reference data ---------------------------------------------------------------------
    def _make_stores(self) -> list[dict]:
        stores, regions = [], list(REGIONS)
        for i in range(self.config.stores):
            region = regions[i % len(regions)]
            currency, cities = REGIONS[region]
            store_format = list(STORE_FORMATS)[int(self.rng.integers(len(STORE_FORMATS)))]
            stores.append({"store_id": f"S{i + 1:03d}", "name": f"Store {i + 1}", "region": region,
                           "city": cities[i % len(cities)], "format": store_format, "currency": currency,
                           "opened": dt.date(2018 + i % 6, 1 + i % 12, 1),
                           "size": STORE_AREA * STORE_FORMATS[store_format]})
        for region, (currency, cities) in REGIONS.items():
            stores.append({"store_id": f"W-{region.upper()}", "name": f"Online {region}", "region": region,
                           "city": cities[0], "format": "online", "currency": currency, "opened": dt.date(2020, 1, 1),
                           "size": None})
        return stores

    def _make_products(self) -> list[dict]:
        products, categories = [], list(CATEGORIES)
        for i in range(self.config.products):
            category = categories[i % len(categories)]
            low, high = CATEGORIES[category]
            price = round(float(np.exp(self.rng.uniform(np.log(low), np.log(high)))), 2)
            products.append({"product_id": f"P{i + 1:05d}", "name": f"{category.title()} item {i + 1}",
                             "category": category, "brand": f"Brand {chr(65 + i % 12)}", "price": price,
                             "unit_cost": round(price * COST_SHARE[category], 2)})
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

    # -- order lines (vectorised: 10M lines in about a minute) ----------------------------------
    def day_lines(self, offset: int) -> pa.Table:
        """All original order lines placed on the ``offset``-th day, as the exports carry them (text
        columns), before any fault is planted."""
        day, day_info = self.config.start + dt.timedelta(days=offset), self.calendar[offset]
        yearly = 1.0 + 0.15 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 80) / 365.25) + (0.4 if day.month == 12 else 0.0)
        promo = 1.25 if day_info["is_promo_week"] else 1.0
        holiday = HOLIDAYS.get((day.month, day.day))
        parts = [_empty_lines()]
        for store in self.stores:
            online = store["format"] == "online"
            if holiday and holiday[1] and not online:
                continue  # physical stores close on this holiday
            weekly = (1.2 if day.weekday() == 0 else 1.0) if online else (1.35 if day.weekday() >= 5 else 1.0)
            scale = 1.5 if online else STORE_FORMATS[store["format"]]
            boost = 1.3 if holiday else 1.0
            n_orders = int(self.rng.poisson(self.config.orders_per_store_day * scale * weekly * yearly * promo * boost))
            if n_orders:
                parts.append(self._store_orders(store, day, n_orders, day_info["is_promo_week"]))
        return pa.concat_tables(parts)

    def _store_orders(self, store: dict, day: dt.date, n_orders: int, promo_week: bool) -> pa.Table:
        rng, online = self.rng, store["format"] == "online"
        lines_per_order = rng.integers(1, 5, size=n_orders)
        order = np.repeat(np.arange(n_orders), lines_per_order)
        n = len(order)
        line_no = np.arange(n) - np.repeat(np.cumsum(lines_per_order) - lines_per_order, lines_per_order) + 1
        midnight = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
        placed = pa.array(midnight + rng.integers(8 * 3600, 21 * 3600, size=n_orders)[order], pa.timestamp("s", tz="UTC"))
        product = rng.choice(len(self.products), size=n, p=self.popularity)
        promo = promo_week & (rng.random(n) < 0.3)
        discount = np.where(promo, rng.choice([0.1, 0.15, 0.25], size=n), 0.0)
        with_customer = (np.full(n_orders, online) | (rng.random(n_orders) < 0.4))[order]
        customer = np.where(with_customer, rng.integers(len(self.customers), size=n_orders)[order], -1)
        cancelled = (rng.random(n_orders) < CANCEL_SHARE)[order]
        prefix = f"{'W' if online else 'P'}{day:%Y%m%d}-{store['store_id']}-"
        ts_text = pc.strftime(placed, format="%Y-%m-%dT%H:%M:%SZ")
        columns = {
            "order_id": pc.binary_join_element_wise(prefix, pc.cast(pa.array(order), pa.string()), ""),
            "line_no": line_no,
            "order_ts": ts_text,
            "store_id": pa.array([store["store_id"]] * n),
            "channel": pa.array(["online" if online else "store"] * n),
            "product_id": self.product_ids.take(pa.array(product)),
            "customer_id": pc.if_else(pa.array(customer >= 0), self.customer_ids.take(pa.array(np.maximum(customer, 0))), ""),
            "quantity": rng.integers(1, 4, size=n),
            "unit_price": self.prices.take(pa.array(product)),
            "discount": np.round(discount, 2),
            "currency": pa.array([store["currency"]] * n),
            "status": pc.if_else(pa.array(cancelled), "cancelled", "sold"),
            "updated_at": ts_text,
        }
        return pa.table({c: pc.cast(pa.array(v) if isinstance(v, np.ndarray) else v, pa.string()) for c, v in columns.items()})

    def run(self, lake: LakeResource, progress: bool = True) -> GenerationSummary:
        summary = GenerationSummary(first_day=self.config.start,
                                    last_day=self.config.start + dt.timedelta(days=self.config.days - 1))
        self._write_reference(lake, summary)
        pending: dict[str, list[pa.Table]] = {"pos": [], "web": []}  # late and corrected lines, delivered next day
        for offset in tqdm(range(self.config.days), desc="generating days", unit="day", disable=not progress):
            day = self.config.start + dt.timedelta(days=offset)
            lines = self.day_lines(offset)
            last_day = offset == self.config.days - 1
            for source, channel in (("pos", "store"), ("web", "online")):
                mine = lines.filter(pc.equal(lines["channel"], channel))
                late = pa.array(self.rng.random(mine.num_rows) < (0.0 if last_day else LATE_SHARE))
                on_time, held_back = mine.filter(pc.invert(late)), mine.filter(late)
                rows = pa.concat_tables([on_time, *pending[source]])
                corrections = self._corrections(on_time, day)
                pending[source] = [] if last_day else [held_back, corrections]
                summary.late_rows += held_back.num_rows
                summary.correction_rows += 0 if last_day else corrections.num_rows
                rows = self._with_faults(rows, summary)
                key = f"landing/orders/{source}/{day:%Y-%m-%d}/{source}_orders_{day:%Y%m%d}.csv"
                lake.put_bytes(key, _csv_bytes(rows))
                summary.files.append(key)
                summary.order_rows += rows.num_rows
        self._write_reviews(lake, summary)
        self._write_receipt_scans(lake, summary)
        return summary

    # -- scanned receipts ---------------------------------------------------------------------
    def receipt_scans(self) -> list[ReceiptScan]:
        """A few scans of the last day's receipts: clean ones that OCR reads, one too faded to read and
        one torn above its total, for the review queue."""
        day = self.config.start + dt.timedelta(days=self.config.days - 1)
        physical = [s for s in self.stores if s["format"] != "online"][:RECEIPT_STORES]
        rng = np.random.default_rng([self.config.seed, 1])  # the same receipts however much was generated before
        scans = []
        for n, store in enumerate(physical * 2):
            image, total_top, total = self._receipt_image(store, day, rng)
            spoilt = {len(physical): "faded", len(physical) + 1: "torn"}.get(n)
            if spoilt == "faded":
                image = image.filter(ImageFilter.GaussianBlur(6))  # faded thermal paper
            elif spoilt == "torn":
                image = image.crop((0, 0, image.width, total_top))
            sink = io.BytesIO()
            image.save(sink, format="PNG")
            scans.append(ReceiptScan(f"landing/receipts/{day:%Y-%m-%d}/{store['store_id']}/scan_{n + 1:02d}.png",
                                     sink.getvalue(), day, total, store["currency"], spoilt))
        return scans

    def _receipt_image(self, store: dict, day: dt.date, rng: np.random.Generator) -> tuple[Image.Image, int, float]:
        """A printed till receipt: vendor with its legal form, address, date, items, total and payment,
        labels on the left and amounts right-aligned. Returns the image, the top of its total row, the total."""
        font, heading = ImageFont.load_default(size=34), ImageFont.load_default(size=40)
        chosen = rng.choice(len(self.products), size=int(rng.integers(2, 5)), replace=False)
        items = [(self.products[int(p)], int(q)) for p, q in zip(chosen, rng.integers(1, 4, size=len(chosen)), strict=True)]
        total = round(sum(round(q * p["price"], 2) for p, q in items), 2)
        paid, currency = float(np.ceil(total / 10) * 10), store["currency"]
        legal_form = "LTD" if currency == "GBP" else "GMBH"
        rows: list[tuple[str, str, ImageFont.FreeTypeFont]] = [
            (f"DEMO MARKT {store['city'].upper()} {legal_form}", "", heading), (f"{store['name']}, {store['city']}", "", font),
            (f"Date: {day:%d/%m/%Y}  {int(rng.integers(8, 21)):02d}:{int(rng.integers(60)):02d}", "", font),
            ("", "", font),
            *((f"{p['name']}  {q} x {p['price']:.2f}", f"{q * p['price']:.2f}", font) for p, q in items),
            ("", "", font), ("SUBTOTAL", f"{total:.2f}", font), ("GRAND TOTAL", f"{currency} {total:.2f}", font),
            ("CASH", f"{paid:.2f}", font), ("CHANGE", f"{paid - total:.2f}", font), ("Thank you!", "", font)]
        image = Image.new("L", (900, 60 + 50 * len(rows)), 255)
        draw = ImageDraw.Draw(image)
        total_top = 0
        for n, (label, amount, face) in enumerate(rows):
            top = 30 + 50 * n
            total_top = top - 5 if label == "GRAND TOTAL" else total_top
            draw.text((40, top), label, fill=0, font=face)
            draw.text((860, top), amount, fill=0, font=face, anchor="ra")
        return image, total_top, total

    def _write_receipt_scans(self, lake: LakeResource, summary: GenerationSummary) -> None:
        for scan in self.receipt_scans():
            lake.put_bytes(scan.key, scan.data)
            summary.files.append(scan.key)
            summary.receipt_scans += 1

    # -- reviews ------------------------------------------------------------------------------
    def review_weeks(self) -> list[dt.date]:
        """The Mondays whose week lies in the generated days: one review export each."""
        first = self.config.start + dt.timedelta(days=-self.config.start.weekday() % 7)
        return [first + dt.timedelta(weeks=w) for w in range(max(0, (self.config.days - (first - self.config.start).days) // 7))]

    def spike(self) -> tuple[str, dt.date] | None:
        """The planted negative-review spike: (product, week), or None when there are too few weeks."""
        weeks = self.review_weeks()
        apparel = [p["product_id"] for p in self.products if p["category"] == "apparel"]
        return (apparel[0], weeks[int(len(weeks) * SPIKE_WEEK_SHARE)]) if len(weeks) >= 3 and apparel else None

    def week_reviews(self, week: dt.date) -> pa.Table:
        """One week's review export (text columns, as landed), before the malformed row is planted."""
        rng, spike = self.rng, self.spike()
        n = int(rng.poisson(REVIEWS_PER_STORE_WEEK * len(self.stores)))
        product = rng.choice(len(self.products), size=n, p=self.popularity)
        if spike and spike[1] == week:  # enough reviews of the spiking product to tell
            product = np.concatenate([product, np.full(12, int(spike[0][1:]) - 1)])
        rows = []
        for i, p in enumerate(product):
            product_id = self.products[p]["product_id"]
            spiking = spike is not None and spike == (product_id, week)
            mood = rng.choice(["positive", "neutral", "negative"], p=[0.15, 0.1, 0.75] if spiking else [0.72, 0.14, 0.14])
            phrases = REVIEW_PHRASES[str(mood)]
            body = list(rng.choice(phrases, size=int(rng.integers(1, 3)), replace=False))
            if spiking and mood == "negative":
                body[0] = str(rng.choice(SPIKE_PHRASES))
            rating = {"positive": rng.integers(4, 6), "neutral": 3, "negative": rng.integers(1, 3)}[str(mood)]
            written = dt.datetime.combine(week + dt.timedelta(days=int(rng.integers(7))), dt.time(int(rng.integers(8, 22))), dt.UTC)
            rows.append({"review_id": f"R{week:%Y%m%d}-{i:04d}", "product_id": product_id, "rating": str(int(rating)),
                         "title": str(rng.choice(REVIEW_TITLES[str(mood)])), "text": " ".join(body), "written_at": _iso(written)})
        return pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in REVIEW_COLUMNS]))

    def _write_reviews(self, lake: LakeResource, summary: GenerationSummary) -> None:
        for week in self.review_weeks():
            rows = self.week_reviews(week)
            if rows.num_rows:
                bad = rows.slice(0, 1).to_pylist()[0] | {"review_id": f"R{week:%Y%m%d}-bad", "rating": "five"}
                rows = pa.concat_tables([rows, pa.Table.from_pylist([bad], schema=rows.schema)])
                summary.malformed_rows += 1
            key = f"landing/reviews/web/{week:%Y-%m-%d}/web_reviews_{week:%Y%m%d}.csv"
            lake.put_bytes(key, _csv_bytes(rows))
            summary.files.append(key)
            summary.review_rows += rows.num_rows

    def _corrections(self, lines: pa.Table, day: dt.date) -> pa.Table:
        """Returns of earlier sold lines, re-delivered with a later ``updated_at``."""
        chosen = pa.array(self.rng.random(lines.num_rows) < CORRECTION_SHARE)
        chosen = lines.filter(pc.and_(chosen, pc.equal(lines["status"], "sold")))
        later = _iso(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(9), dt.UTC))
        chosen = chosen.set_column(chosen.schema.get_field_index("status"), "status", pa.array(["returned"] * chosen.num_rows, pa.string()))
        return chosen.set_column(chosen.schema.get_field_index("updated_at"), "updated_at", pa.array([later] * chosen.num_rows, pa.string()))

    def _with_faults(self, rows: pa.Table, summary: GenerationSummary) -> pa.Table:
        if rows.num_rows == 0:
            return rows
        duplicates = rows.filter(pa.array(self.rng.random(rows.num_rows) < DUPLICATE_SHARE))
        summary.duplicate_rows += duplicates.num_rows
        bad = rows.take(pa.array(self.rng.integers(0, rows.num_rows, size=MALFORMED_PER_FILE))).to_pylist()
        for i, row in enumerate(bad):
            column, value = [("order_ts", "2026-13-45T25:00:00Z"), ("quantity", "two"), ("order_id", "")][int(self.rng.integers(3))]
            row[column] = value
            row["line_no"] = str(100 + i)  # a distinct key, so the bad row is not a correction
        summary.malformed_rows += len(bad)
        return pa.concat_tables([rows, duplicates, pa.Table.from_pylist(bad, schema=rows.schema)])

    def _write_reference(self, lake: LakeResource, summary: GenerationSummary) -> None:
        tables = {"stores": self.stores, "products": self.products, "calendar": self.calendar,
                  "customers": [{"customer_id": c, "region": list(REGIONS)[i % len(REGIONS)],
                                 "segment": ["consumer", "corporate"][i % 2], "joined": dt.date(2020, 1, 1)}
                                for i, c in enumerate(self.customers)]}
        for name, rows in tables.items():
            key = f"landing/reference/{name}/{self.config.start:%Y-%m-%d}/{name}.csv"
            lake.put_bytes(key, _csv_bytes(pa.Table.from_pylist(rows)))
            summary.files.append(key)


def _iso(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty_lines() -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in ORDER_COLUMNS})


def _csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def generate(lake: LakeResource, config: GeneratorConfig, progress: bool = True) -> GenerationSummary:
    lake.ensure_bucket()
    return SalesGenerator(config).run(lake, progress=progress)
