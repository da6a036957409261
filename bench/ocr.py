"""Receipt OCR: field accuracy and time per receipt for each preprocessing variant, on the SROIE receipts.

Every variant reads the same labelled receipts (by default the 20 SROIE receipts in
sales_analytics_tests/data; any folder of the same layout with --receipts) with the same Tesseract
and the same field rules; the first variant (no preprocessing) is the baseline.

    .venv/bin/python bench/ocr.py [--receipts FOLDER] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from measure import measure

from sales_analytics.ocr.evaluation import field_matches
from sales_analytics.ocr.reader import read_receipt

VARIANTS = {
    "none": (),
    "grayscale": ("grayscale",),
    "grayscale+upscale": ("grayscale", "upscale"),
    "grayscale+upscale+autocontrast": ("grayscale", "upscale", "autocontrast"),
    "grayscale+upscale+autocontrast+threshold": ("grayscale", "upscale", "autocontrast", "threshold"),
}
DEFAULT_RECEIPTS = Path(__file__).resolve().parents[1] / "sales_analytics_tests" / "data" / "sroie_receipts"


def run_variant(folder: str, steps: tuple[str, ...]) -> dict:
    started, hits, receipts = time.perf_counter(), {"vendor": 0, "date": 0, "total": 0}, 0
    for image in sorted(Path(folder, "img").glob("*.jpg")):
        fields = read_receipt(image.read_bytes(), steps).fields
        truth = json.loads(Path(folder, "key", f"{image.stem}.json").read_text())
        for name, ok in field_matches({"vendor": fields.vendor, "date": fields.date, "total": fields.total}, truth).items():
            hits[name] += ok
        receipts += 1
    return {"receipts": receipts, "seconds_per_receipt": (time.perf_counter() - started) / max(receipts, 1),
            "accuracy": {name: n / max(receipts, 1) for name, n in hits.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receipts", default=str(DEFAULT_RECEIPTS))
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results = {}
    print(f"{'preprocessing':<44}{'vendor':>8}{'date':>8}{'total':>8}{'s/receipt':>11}{'peak MB':>9}")
    for name, steps in VARIANTS.items():
        measured = measure(run_variant, args.receipts, steps)
        result = {**measured.result, "peak_rss_mb": measured.peak_rss_mb}
        results[name] = result
        accuracy = result["accuracy"]
        print(f"{name:<44}{accuracy['vendor']:>8.2f}{accuracy['date']:>8.2f}{accuracy['total']:>8.2f}"
              f"{result['seconds_per_receipt']:>11.2f}{result['peak_rss_mb']:>9.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
