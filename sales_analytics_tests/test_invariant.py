"""The change-handling invariant, over random sequences of landings (seeded, reproducible).

After any sequence of landings — new days, late lines, corrections, cancellations, duplicates,
re-deliveries under the same or another name, malformed rows — the clean lake, the quarantine
and ``daily_store_sales`` built incrementally (each ingest rebuilding only the days it touched)
equal the same tables built from scratch over everything landed.
"""

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from sales_analytics.ingest.raw import ingest_object, pending_objects, read_day_shards
from sales_analytics.lake.order_lines import CleanDay, clean_days
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.reports.daily_store_sales import compute_daily_store_sales
from sales_analytics.sources.spec import file_sources, source_named

SPECS = {s.name: s for s in file_sources()}
SOURCES = (source_named("pos"), source_named("web"))
HEADER = "order_id,line_no,order_ts,store_id,channel,product_id,customer_id,quantity,unit_price,discount,currency,status,updated_at"
START = dt.date(2026, 3, 1)
SEQUENCES = 50


class Landings:
    """A random but reproducible stream of deliveries from the POS and web sources."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[dict] = []  # every line version sent so far
        self.files: dict[str, str] = {}  # landing key -> content, as last delivered
        self.sent = 0

    def _line(self, day: dt.date, order: int) -> dict:
        ts = dt.datetime.combine(day, dt.time(8 + self.rng.randrange(12), self.rng.randrange(60)), dt.UTC)
        return {"order_id": f"O{order:05d}", "line_no": str(1 + self.rng.randrange(3)), "order_ts": ts, "store_id":
                f"S{self.rng.randrange(3)}", "channel": "store", "product_id": f"P{self.rng.randrange(9)}", "customer_id": "",
                "quantity": str(1 + self.rng.randrange(4)), "unit_price": f"{self.rng.choice([1.5, 2.25, 9.99])}",
                "discount": self.rng.choice(["0", "0.1"]), "currency": "EUR", "status": "sold", "updated_at": ts}

    def next_delivery(self, step: int) -> tuple[str, str, str]:
        """(kind, landing key, content) of the next delivery."""
        kind, key, content = self._delivery(step)
        self.files[key] = content
        return kind, key, content

    def _delivery(self, step: int) -> tuple[str, str, str]:
        kind = self.rng.choice(["new_day", "new_day", "late", "corrections", "duplicate_file", "redelivery", "malformed"])
        source = self.rng.choice(SOURCES).name
        today = START + dt.timedelta(days=step)
        rows: list[dict] = []
        if kind in ("new_day", "late") or not self.lines:
            day = today if kind == "new_day" else START + dt.timedelta(days=self.rng.randrange(step + 1))
            rows = [self._line(day, self.sent + i) for i in range(self.rng.randrange(1, 8))]
            self.sent += len(rows)
        elif kind == "corrections":
            for old in self.rng.sample(self.lines, min(3, len(self.lines))):
                new = dict(old, updated_at=old["updated_at"] + dt.timedelta(days=1 + step))
                new |= self.rng.choice([{"status": "returned"}, {"status": "cancelled"}, {"quantity": "7"}])
                rows.append(new)
        elif kind == "duplicate_file" and self.files:
            key = self.rng.choice(sorted(self.files))
            return kind, key.replace(".csv", f"-again{step}.csv"), self.files[key]  # the same file, delivered twice
        elif kind == "redelivery" and self.files:
            key = self.rng.choice(sorted(self.files))  # the same name, new content: it replaces the old one
            day = START + dt.timedelta(days=self.rng.randrange(step + 1))
            rows = [self._line(day, self.sent + i) for i in range(self.rng.randrange(0, 4))]
            self.sent += len(rows)
            self.lines += rows
            return kind, key, self._csv(rows)
        else:
            kind = "malformed"
            rows = [self._line(today, self.sent)]
            self.sent += 1
            rows[0]["quantity"] = self.rng.choice(["x", "-1", ""])
        self.lines += rows
        return kind, f"landing/orders/{source}/{today:%Y-%m-%d}/{kind}-{step}.csv", self._csv(rows)

    @staticmethod
    def _csv(rows: list[dict]) -> str:
        def text(value: object) -> str:
            return value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, dt.datetime) else str(value)
        return "\n".join([HEADER, *(",".join(text(r[c]) for c in HEADER.split(",")) for r in rows)]) + "\n"


def ingest(lake: object) -> set[str]:
    touched: set[str] = set()
    for spec, info in pending_objects(lake, SOURCES):
        touched |= ingest_object(lake, spec, info).touched
    return touched


def snapshot(days: dict[str, CleanDay]) -> dict[str, tuple]:
    """Per day: clean lines, quarantine rows and the report, as comparable values (empty days omitted)."""
    out = {}
    for day, clean in days.items():
        report = compute_daily_store_sales(clean.lines)
        if clean.lines.num_rows or clean.rejects.num_rows:
            out[day] = (_rows(clean.lines), _rows(clean.rejects), _rows(report), clean.reconciles)
    return out


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_incremental_equals_from_scratch(tmp_path: Path, seed: int) -> None:
    landings = Landings(seed)
    incremental: dict[str, CleanDay] = {}
    kinds = []
    with initialized(local_resources(tmp_path / "incremental")["lake"]) as lake:
        for step in range(random.Random(seed).randrange(4, 10)):
            kind, key, content = landings.next_delivery(step)
            kinds.append(kind)
            lake.put_bytes(key, content.encode())
            touched = ingest(lake)  # what the landing sensor's run does
            rebuilt = clean_days({d: read_day_shards(lake, d) for d in sorted(touched)}, SPECS)  # the touched days only
            incremental |= {c.day.isoformat(): c for c in rebuilt}
        final_files = {o.key: lake.get_bytes(o.key) for o in lake.list("landing/")}
    with initialized(local_resources(tmp_path / "scratch")["lake"]) as lake:
        for key, content in final_files.items():
            lake.put_bytes(key, content)
        days = sorted(ingest(lake))
        scratch = {c.day.isoformat(): c for c in clean_days({d: read_day_shards(lake, d) for d in days}, SPECS)}
    assert snapshot(incremental) == snapshot(scratch), kinds
    assert all(day[3] for day in snapshot(scratch).values())


def test_sequences_cover_every_kind_of_landing() -> None:
    kinds = set()
    for seed in range(SEQUENCES):
        landings = Landings(seed)
        kinds |= {landings.next_delivery(step)[0] for step in range(random.Random(seed).randrange(4, 10))}
    assert kinds == {"new_day", "late", "corrections", "duplicate_file", "redelivery", "malformed"}
