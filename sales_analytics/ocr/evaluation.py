"""How well receipt OCR reads labelled receipts: exact match per field after normalisation, reported
for a development half (the rules are tuned on it) and an evaluation half (never looked at while tuning),
with the precision of what the acceptance rule lets through.

A heavy step (OCR of every labelled image), so the asset runs it out of process through
Dagster Pipes (``sales_analytics.offload``): ``python -m sales_analytics.ocr.evaluation`` is the
external side, which reads the lake itself and reports the materialization's metadata back.
"""

import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_pipes import open_dagster_pipes

from sales_analytics.metrics import rounded_score
from sales_analytics.ocr.engines import OcrEngine, configured_engine
from sales_analytics.ocr.fields import ReceiptFields, normalise_amount, normalise_vendor, parse_receipt_date
from sales_analytics.ocr.reader import read_receipt
from sales_analytics.profiles import initialized
from sales_analytics.storage.lake import LakeResource

LABELLED_RECEIPTS = "landing/reference/receipt_labels/"  # image + <name>.json with company, date, total
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")
FIELDS = ("vendor", "date", "total")
SPLIT_SEED = 21  # fixes which labelled receipts are for tuning the rules and which only for reporting
DEVELOPMENT, EVALUATION = "development", "evaluation"


class NoLabelledReceipts(LookupError):
    """Nothing to evaluate on."""


def labelled_receipts(lake: LakeResource) -> tuple[list[str], Iterator[tuple[str, bytes, dict]]]:
    """The names of every label under ``LABELLED_RECEIPTS`` (they fix the halves, whichever images are
    there), and (name, image bytes, ground truth) for each labelled image."""
    keys = sorted(info.key for info in lake.list(LABELLED_RECEIPTS))
    labels = {receipt_name(key): key for key in keys if key.endswith(".json")}

    def images() -> Iterator[tuple[str, bytes, dict]]:
        for key in keys:
            if key.lower().endswith(IMAGE_SUFFIXES) and receipt_name(key) in labels:
                yield receipt_name(key), lake.get_bytes(key), json.loads(lake.get_bytes(labels[receipt_name(key)]))
    return sorted(labels), images()


def field_matches(fields: ReceiptFields, truth: dict) -> dict[str, bool]:
    """Exact match per field after normalisation: vendor by capitals and digits, date as ISO, total to the cent."""
    vendor, date, total = fields.vendor.value, fields.date.value, fields.total.value
    return {"vendor": vendor is not None and normalise_vendor(vendor) == normalise_vendor(truth["company"]),
            "date": date is not None and date == parse_receipt_date(truth["date"]),
            "total": total is not None and total == normalise_amount(truth["total"])}


def receipt_name(path: str) -> str:
    """A labelled receipt's name: its file name without the extension (``.../012.jpg`` -> ``012``)."""
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def halves(names: Iterable[str]) -> dict[str, str]:
    """Each labelled receipt's half, ``development`` (rules are tuned on it) or ``evaluation`` (only
    reported): the sorted names shuffled by ``SPLIT_SEED``, cut in the middle."""
    order = sorted(set(names))
    random.Random(SPLIT_SEED).shuffle(order)
    middle = len(order) // 2
    return {name: DEVELOPMENT if n < middle else EVALUATION for n, name in enumerate(order)}


@dataclass
class Score:
    """Field accuracy over a set of receipts, and how many of those the acceptance rule let through were right."""
    receipts: int = 0
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    accepted: int = 0
    accepted_right: int = 0  # total and date right: what an order line is made of
    misses: list[str] = field(default_factory=list)

    def add(self, name: str, fields: ReceiptFields, truth: dict) -> None:
        matches = field_matches(fields, truth)
        self.receipts += 1
        for name_of_field, ok in matches.items():
            self.hits[name_of_field] += ok
        if not fields.unsure():
            self.accepted += 1
            self.accepted_right += matches["total"] and matches["date"]
        if not all(matches.values()):
            self.misses.append(f"| {name} | {', '.join(f for f, ok in matches.items() if not ok)} |")

    def accuracy(self) -> dict[str, float]:
        return {f: self.hits[f] / self.receipts for f in FIELDS} if self.receipts else {}

    def accepted_precision(self) -> float | None:
        return self.accepted_right / self.accepted if self.accepted else None


def evaluate(lake: LakeResource, engine: OcrEngine | None = None) -> dict[str, Score]:
    """The scores of each half of the labelled receipts, read by ``engine`` (the configured one by default)."""
    names, images = labelled_receipts(lake)
    half_of = halves(names)
    scores = {DEVELOPMENT: Score(), EVALUATION: Score()}
    for name, data, truth in images:
        scores[half_of[name]].add(name, read_receipt(data, engine=engine).fields, truth)
    if not any(score.receipts for score in scores.values()):
        raise NoLabelledReceipts(f"no labelled receipt images under {LABELLED_RECEIPTS}")
    return scores


def score_metadata(scores: dict[str, Score]) -> dict[str, Any]:
    """Per half: receipts, accuracy per field, accepted receipts and their precision, the misses (as Pipes reports them)."""
    metadata: dict[str, Any] = {}
    for half, score in scores.items():
        metadata[f"{half}/receipts"] = score.receipts
        metadata |= {f"{half}/accuracy/{f}": rounded_score(a) for f, a in score.accuracy().items()}
        metadata[f"{half}/accepted"] = score.accepted
        if (precision := score.accepted_precision()) is not None:
            metadata[f"{half}/accepted_precision"] = rounded_score(precision)
        table = "| receipt | fields wrong |\n|---|---|\n" + "\n".join(score.misses) if score.misses else "None."
        metadata[f"{half}/misses"] = {"raw_value": table, "type": "md"}  # Pipes' form of a Markdown value
    return metadata


def lake_extras(lake: LakeResource) -> dict[str, Any]:
    """Where the lake is, for the external process: no credentials (it has its own, from its role or environment)."""
    return {"lake_root": lake.root, "s3_endpoint": lake.s3.endpoint_url, "s3_region": lake.s3.region_name}


def main() -> None:
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        lake = LakeResource(root=extras["lake_root"],
                            s3=S3Resource(endpoint_url=extras["s3_endpoint"], region_name=extras["s3_region"]))
        with initialized(lake) as ready:
            scores = evaluate(ready)
        pipes.log.info(f"evaluated {sum(s.receipts for s in scores.values())} labelled receipts with "
                       f"{configured_engine().name} in process {os.getpid()}")
        pipes.report_asset_materialization(metadata={**score_metadata(scores), "engine": configured_engine().name,
                                                     "worker_pid": os.getpid()})


if __name__ == "__main__":
    main()
