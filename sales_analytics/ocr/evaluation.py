"""How well receipt OCR reads labelled receipts: exact match per field after normalisation.

A heavy step (Tesseract over every labelled image), so the asset runs it out of process through
Dagster Pipes (``sales_analytics.offload``): ``python -m sales_analytics.ocr.evaluation`` is the
external side, which reads the lake itself and reports the materialization's metadata back.
"""

import json
import os
from collections.abc import Iterator
from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_pipes import open_dagster_pipes

from sales_analytics.ocr.fields import Field, normalise_amount, normalise_vendor, parse_receipt_date
from sales_analytics.ocr.reader import read_receipt
from sales_analytics.profiles import initialized
from sales_analytics.storage.lake import LakeResource

LABELLED_RECEIPTS = "landing/reference/receipt_labels/"  # image + <name>.json with company, date, total
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
FIELDS = ("vendor", "date", "total")


class NoLabelledReceipts(LookupError):
    """Nothing to evaluate on."""


def labelled_receipts(lake: LakeResource) -> Iterator[tuple[str, bytes, dict]]:
    """(image key, image bytes, ground truth) for every labelled image under ``LABELLED_RECEIPTS``."""
    for info in sorted(lake.list(LABELLED_RECEIPTS), key=lambda o: o.key):
        if info.key.lower().endswith(IMAGE_SUFFIXES):
            truth_key = info.key.rsplit(".", 1)[0] + ".json"
            if lake.exists(truth_key):
                yield info.key, lake.get_bytes(info.key), json.loads(lake.get_bytes(truth_key))


def field_matches(reading_fields: dict[str, Field], truth: dict) -> dict[str, bool]:
    """Exact match per field after normalisation: vendor by capitals and digits, date as ISO, total to the cent."""
    vendor, date, total = (reading_fields[f].value for f in FIELDS)
    return {"vendor": vendor is not None and normalise_vendor(vendor) == normalise_vendor(truth["company"]),
            "date": date is not None and date == parse_receipt_date(truth["date"]),
            "total": total is not None and total == normalise_amount(truth["total"])}


def evaluate(lake: LakeResource) -> dict[str, Any]:
    """Accuracy per field over every labelled receipt, and which receipts missed which fields."""
    results = []
    for key, data, truth in labelled_receipts(lake):
        fields = read_receipt(data).fields
        results.append((key, field_matches({"vendor": fields.vendor, "date": fields.date, "total": fields.total}, truth)))
    if not results:
        raise NoLabelledReceipts(f"no labelled receipts under {LABELLED_RECEIPTS}")
    accuracy = {f: sum(r[f] for _, r in results) / len(results) for f in FIELDS}
    misses = [f"| {key.rsplit('/', 1)[-1]} | {', '.join(f for f, ok in r.items() if not ok)} |" for key, r in results
              if not all(r.values())]
    return {"receipts": len(results), "accuracy": accuracy,
            "misses": "| receipt | fields wrong |\n|---|---|\n" + "\n".join(misses) if misses else "None."}


def lake_extras(lake: LakeResource) -> dict[str, Any]:
    """Where the lake is, for the external process: no credentials (it has its own, from its role or environment)."""
    return {"lake_root": lake.root, "s3_endpoint": lake.s3.endpoint_url, "s3_region": lake.s3.region_name}


def main() -> None:
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        lake = LakeResource(root=extras["lake_root"],
                            s3=S3Resource(endpoint_url=extras["s3_endpoint"], region_name=extras["s3_region"]))
        with initialized(lake) as ready:
            found = evaluate(ready)
        pipes.log.info(f"evaluated {found['receipts']} labelled receipts in process {os.getpid()}")
        pipes.report_asset_materialization(metadata={
            "receipts": found["receipts"],
            **{f"accuracy/{f}": {"raw_value": a, "type": "float"} for f, a in found["accuracy"].items()},
            "misses": {"raw_value": found["misses"], "type": "md"},
            "worker_pid": os.getpid(),
        })


if __name__ == "__main__":
    main()
