"""Receipt OCR in the graph: read each day's scanned receipts; confident ones become order lines of the
``receipts`` source, the rest wait in a review queue with the image and the reason.

Scans land as ``landing/receipts/<YYYY-MM-DD>/<store_id>/<file>``. Accepted receipts are written as
an order export to ``landing/orders/receipts/<day>/``, so they reach the facts through the same
sensor, raw zone and clean path as every other source, quarantine and reconciliation included.
"""

import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sales_analytics.catalog import CLEAN_STORES, declaration_reference, published_key
from sales_analytics.curated.assets import dimension_history, dimension_input
from sales_analytics.lake.assets import table_metadata
from sales_analytics.ocr import evaluation
from sales_analytics.ocr.evaluation import IMAGE_SUFFIXES, lake_extras
from sales_analytics.ocr.fields import LineItem, verdict
from sales_analytics.ocr.reader import Reading, UnreadableImage, read_receipt
from sales_analytics.offload import OffloadResource
from sales_analytics.partitions import daily_partitions
from sales_analytics.reports.publish import PUBLISHING_GROUP
from sales_analytics.schema import RECEIPT_REVIEW_QUEUE, RECEIPTS
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.sql_store import SqlReportStore

RECEIPT_LANDING = "landing/receipts/"
RECEIPT_SCANS = dg.AssetSpec(["landing", "receipt_scans"], group_name="sources", kinds={"image"},
                             metadata={"prefix": RECEIPT_LANDING, **declaration_reference(Path(__file__))},
                             description=f"Scanned till receipts (JPEG, PNG, TIFF, WebP) under `{RECEIPT_LANDING}<day>/<store>/`.")
RECEIPT_ORDERS = "landing/orders/receipts/"
RECEIPT_EXTRACTION = dg.AssetKey(["ml", "receipt_extraction"])
STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
UNITEMISED_PRODUCT = "RECEIPT-UNITEMISED"  # a receipt's total, when its items do not add up to it
ITEM_PRODUCT_PREFIX = "RECEIPT-ITEM-"  # + the item's printed description, in capitals and digits


def receipt_row(day: dt.date, key: str, data: bytes, store_currencies: dict[str, str]) -> dict:
    """One RECEIPTS row: what OCR read, and whether it is sure enough to become an order line. The
    currency is the store's (``store_currencies``), never what the text seems to say."""
    store = key.removeprefix(f"{RECEIPT_LANDING}{day.isoformat()}/").split("/")[0]
    row = {"landed_on": day, "receipt_id": hashlib.sha256(data).hexdigest()[:16], "image_key": key,
           "store_id": store if STORE_ID.match(store) else None}
    if not key.lower().endswith(IMAGE_SUFFIXES):
        return row | _unread("not an image file name (" + ", ".join(IMAGE_SUFFIXES) + ")")
    try:
        reading = read_receipt(data)
    except UnreadableImage as err:
        return row | _unread(str(err))
    judged = verdict(reading.fields, store_currencies.get(store))
    doubts = judged.doubts if row["store_id"] else [*judged.doubts, f"folder {store!r} is not a store id"]
    return row | _read(reading, judged.currency) | {"status": "review" if doubts else "accepted", "reason": "; ".join(doubts) or None}


def store_currencies(stores: pa.Table | None, day: dt.date) -> dict[str, str]:
    """Each store's currency on ``day``: its version valid then (clean/stores keeps every version)."""
    history = dimension_history(stores, "store_id", ["currency"])
    valid = history.filter(pc.less_equal(history["valid_from"], pa.scalar(day, pa.date32()))).sort_by("valid_from")
    return dict(zip(valid["store_id"].to_pylist(), valid["currency"].to_pylist(), strict=True))  # the latest wins


def _read(reading: Reading, currency: str | None) -> dict:
    fields = reading.fields
    return {"vendor": fields.vendor.value, "receipt_date": dt.date.fromisoformat(fields.date.value) if fields.date.found else None,
            "total": float(fields.total.value) if fields.total.found else None, "currency": currency,
            "vendor_confidence": fields.vendor.confidence, "date_confidence": fields.date.confidence,
            "total_confidence": fields.total.confidence, "ocr_confidence": reading.mean_confidence, "text": reading.text,
            "items": fields.items}  # not a column: the order lines it becomes


def _unread(reason: str) -> dict:
    return {"vendor": None, "receipt_date": None, "total": None, "currency": None, "vendor_confidence": 0.0,
            "date_confidence": 0.0, "total_confidence": 0.0, "ocr_confidence": 0.0, "status": "review",
            "reason": f"image not read: {reason}", "text": None}


def order_lines_csv(accepted: list[dict]) -> bytes:
    """Accepted receipts as the ``receipts`` source's order export: a line per item when the items add up to
    the total, else one line of the total."""
    sink = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pylist([line for r in accepted for line in _order_lines(r)]), sink)
    return sink.getvalue()


def _order_lines(receipt: dict) -> list[dict]:
    placed = f"{receipt['receipt_date'].isoformat()}T12:00:00Z"  # receipts give the day; noon keeps it in that day anywhere
    order = {"order_id": f"RC-{receipt['receipt_id']}", "order_ts": placed, "store_id": receipt["store_id"],
             "channel": "store", "customer_id": "", "discount": "0", "currency": receipt["currency"], "status": "sold",
             "updated_at": f"{receipt['landed_on'].isoformat()}T00:00:00Z"}
    items: tuple[LineItem, ...] = receipt["items"]
    if not items:
        return [order | {"line_no": "1", "product_id": UNITEMISED_PRODUCT, "quantity": "1", "unit_price": f"{receipt['total']:.2f}"}]
    return [order | {"line_no": str(n), "product_id": item_product_id(item), **_quantity_and_price(item)}
            for n, item in enumerate(items, start=1)]


def item_product_id(item: LineItem) -> str:
    return ITEM_PRODUCT_PREFIX + (re.sub(r"[^A-Z0-9]+", "-", item.description.upper()).strip("-")[:40] or "UNNAMED")


def _quantity_and_price(item: LineItem) -> dict[str, str]:
    """Whole quantities as printed; an item sold by weight (0.535 kg) as one of its amount."""
    if item.quantity.is_integer():
        return {"quantity": str(int(item.quantity)), "unit_price": item.unit_price}
    return {"quantity": "1", "unit_price": item.amount}


@dg.asset(
    key=RECEIPT_EXTRACTION,
    deps=[RECEIPT_SCANS],
    ins={"stores": dimension_input(CLEAN_STORES, "store_id", ["currency"])},
    partitions_def=daily_partitions,
    group_name="ml",
    kinds={"ocr", "parquet"},
    owners=["team:data-engineering"],
    description=RECEIPTS.description + " Accepted receipts are exported to the `receipts` order source.",
    metadata=table_metadata(RECEIPTS),
    check_specs=[dg.AssetCheckSpec("every_scan_accounted_for", asset=RECEIPT_EXTRACTION,
                                   description="Every scan landed that day is accepted or queued for review with a "
                                               "reason (a scan uploaded twice counts once).")],
)
def receipt_extraction(context: dg.AssetExecutionContext, lake: LakeResource,
                       stores: pa.Table | None) -> Iterator[dg.Output | dg.AssetCheckResult]:
    day = dt.date.fromisoformat(context.partition_key)
    keys = sorted(o.key for o in lake.list(f"{RECEIPT_LANDING}{day.isoformat()}/"))
    currencies = store_currencies(stores, day)
    rows, seen = [], set()
    for key in keys:
        row = receipt_row(day, key, lake.get_bytes(key), currencies)
        if row["receipt_id"] not in seen:  # the same scan uploaded twice is one receipt
            seen.add(row["receipt_id"])
            rows.append(row)
    accepted = [r for r in rows if r["status"] == "accepted"]
    export = f"{RECEIPT_ORDERS}{day.isoformat()}/receipts_{day:%Y%m%d}.csv"
    if accepted:
        lake.put_bytes(export, order_lines_csv(accepted))
    table = pa.Table.from_pylist(rows, schema=RECEIPTS.arrow_schema())
    yield dg.Output(table, metadata={"dagster/row_count": len(rows), "accepted": len(accepted),
                                     "itemised": sum(bool(r["items"]) for r in accepted),
                                     "review": len(rows) - len(accepted), "order_export": export if accepted else "none"})
    queued = [r for r in rows if r["status"] == "review" and r["reason"]]
    yield dg.AssetCheckResult(check_name="every_scan_accounted_for", passed=len(accepted) + len(queued) == len(seen),
                              metadata={"scans_landed": len(keys), "receipts": len(seen), "accepted": len(accepted),
                                        "queued": len(queued)})


@dg.asset(key=published_key("rds", RECEIPT_REVIEW_QUEUE.name), ins={"receipts": dg.AssetIn(RECEIPT_EXTRACTION)},
          partitions_def=daily_partitions, group_name=PUBLISHING_GROUP, kinds={"postgres", "sql"}, owners=["team:data-engineering"],
          description=RECEIPT_REVIEW_QUEUE.description)
def receipt_review_queue(context: dg.AssetExecutionContext, receipts: pa.Table, report_db: SqlReportStore) -> dg.MaterializeResult:
    queued = receipts.filter(pc.equal(receipts["status"], "review"))
    written = report_db.replace_partition(RECEIPT_REVIEW_QUEUE, context.partition_key, queued)
    return dg.MaterializeResult(metadata={"dagster/row_count": written})


@dg.asset(key=["ml", "receipt_ocr_evaluation"], group_name="ml", kinds={"ocr", "pipes"}, owners=["team:data-engineering"],
          description="Field accuracy of receipt OCR on labelled receipts (landing/reference/receipt_labels/): "
                      "exact match per field after normalisation, for the development and the evaluation half, "
                      "and the precision of the receipts it accepts. Runs out of process through Dagster Pipes.")
def receipt_ocr_evaluation(context: dg.AssetExecutionContext, lake: LakeResource,
                           offload: OffloadResource) -> dg.MaterializeResult:
    return offload.run(context, evaluation.__name__, lake_extras(lake)).get_materialize_result()
