"""Receipt OCR: each engine's field accuracy, accepted-receipt precision and seconds per receipt, on the
development and the evaluation half of the labelled SROIE receipts.

Every engine reads the same images with the same field rules and acceptance rule; the halves are the
platform's own (``sales_analytics.ocr.evaluation.halves``, fixed by a seed over every label found). By
default the receipts are the test fixtures (labels of all 72, images of 26); for every image, point
``--receipts`` at the full folders (``sroie_receipts`` and ``sroie_receipts_more`` of the datasets).

    .venv/bin/python bench/ocr.py [--receipts FOLDER ...] [--engines rapidocr tesseract] [--preprocessing STEP ...]
                                  [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from measure import measure

from sales_analytics.ocr.engines import ENGINES
from sales_analytics.ocr.evaluation import DEVELOPMENT, EVALUATION, Score, halves
from sales_analytics.ocr.reader import PREPROCESSING, PREPROCESSING_STEPS, read_receipt

DEFAULT_RECEIPTS = Path(__file__).resolve().parents[1] / "sales_analytics_tests" / "data" / "sroie_receipts"


def labelled(folders: list[Path]) -> tuple[dict[str, str], list[tuple[str, Path, dict]]]:
    """Each label's half, and (name, image, truth) for every labelled image of the folders (``img/``, ``key/``)."""
    labels = {path.stem: path for folder in folders for path in sorted((folder / "key").glob("*.json"))}
    images = [(path.stem, path, json.loads(labels[path.stem].read_text())) for folder in folders
              for path in sorted((folder / "img").glob("*.jpg")) if path.stem in labels]
    return halves(labels), images


def run_engine(engine_name: str, folders: list[Path], steps: tuple[str, ...]) -> dict:
    half_of, images = labelled(folders)
    scores, seconds = {DEVELOPMENT: Score(), EVALUATION: Score()}, {DEVELOPMENT: 0.0, EVALUATION: 0.0}
    for name, image, truth in images:
        started = time.perf_counter()
        fields = read_receipt(image.read_bytes(), steps, ENGINES[engine_name]).fields
        seconds[half_of[name]] += time.perf_counter() - started
        scores[half_of[name]].add(name, fields, truth)
    return {half: {"receipts": score.receipts, "accuracy": score.accuracy(), "accepted": score.accepted,
                   "accepted_precision": score.accepted_precision(),
                   "seconds_per_receipt": seconds[half] / max(score.receipts, 1)}
            for half, score in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receipts", nargs="+", type=Path, default=[DEFAULT_RECEIPTS])
    parser.add_argument("--engines", nargs="+", choices=sorted(ENGINES), default=list(ENGINES))
    parser.add_argument("--preprocessing", nargs="*", choices=list(PREPROCESSING_STEPS), default=list(PREPROCESSING),
                        help="steps before OCR, in order (default: the reader's)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results = {}
    print(f"{'engine':<11}{'half':<13}{'receipts':>9}{'vendor':>8}{'date':>7}{'total':>7}{'accepted':>10}"
          f"{'precision':>11}{'s/receipt':>11}{'peak MB':>9}")
    for engine_name in args.engines:
        measured = measure(run_engine, engine_name, args.receipts, tuple(args.preprocessing))
        results[engine_name] = {**measured.result, "peak_rss_mb": measured.peak_rss_mb}
        for half, result in measured.result.items():
            accuracy, precision = result["accuracy"], result["accepted_precision"]
            print(f"{engine_name:<11}{half:<13}{result['receipts']:>9}{accuracy.get('vendor', 0):>8.2f}"
                  f"{accuracy.get('date', 0):>7.2f}{accuracy.get('total', 0):>7.2f}{result['accepted']:>10}"
                  f"{'-' if precision is None else f'{precision:.2f}':>11}{result['seconds_per_receipt']:>11.2f}"
                  f"{measured.peak_rss_mb:>9.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
