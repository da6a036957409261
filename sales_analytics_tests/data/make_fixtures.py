"""Trim the real public datasets into the test fixtures beside this file.

Run by hand when the fixtures change, with the folder of full datasets (each with its METADATA.json):

    .venv/bin/python sales_analytics_tests/data/make_fixtures.py /path/to/data

The tests only read what this writes: real rows, only fewer of them, each folder with a METADATA.json
(source, licence, what was kept and how, rows, sha256). Nothing here runs at test time.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

ROSSMANN_STORES = 50  # stores 1..50 include the two (24, 35) whose rows the file repeats verbatim
COMPLETEJOURNEY_TRANSACTIONS = 15_000
COMPLETEJOURNEY_EXTRA_PRODUCTS = 2_000  # besides those the kept transactions sell
CLOTHING_REVIEWS = 10_000
SUPERSTORE_EVERY = 4
# Images of the other SROIE receipts (sroie_receipts_more) that land in the evaluation half
# (sales_analytics.ocr.evaluation.halves): enough for the engine test, not all 52 (31 MB).
SROIE_MORE_IMAGES = ("006", "042", "054", "126", "138", "162")


def copy_rows(source: Path, target: Path, keep: Callable[[int, dict[str, str]], bool], encoding: str = "utf-8") -> int:
    """The header and the records ``keep(index, record)`` selects, byte for byte as they were."""
    with open(source, newline="", encoding=encoding) as handle:
        reader = csv.reader(handle)
        header = next(reader)
        kept = [row for i, row in enumerate(reader) if keep(i, dict(zip(header, row, strict=False)))]
    line_end = "\r\n" if b"\r\n" in source.read_bytes()[:4096] else "\n"
    with open(target, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, lineterminator=line_end)
        writer.writerow(header)
        writer.writerows(kept)
    return len(kept)


def superstore(source: Path, target: Path) -> dict[str, str]:
    name = "Sample - Superstore.csv"
    copy_rows(source / name, target / name,
              lambda i, r: i % SUPERSTORE_EVERY == 0 or not r["Postal Code"], encoding="utf-8-sig")
    return {name: f"every {SUPERSTORE_EVERY}th order line, and every line without a Postal Code"}


def rossmann(source: Path, target: Path) -> dict[str, str]:
    copy_rows(source / "rossmann-sales.csv", target / "rossmann-sales.csv", lambda i, r: int(r["Store"]) <= ROSSMANN_STORES)
    shutil.copyfile(source / "rossmann-store.csv", target / "rossmann-store.csv")
    return {"rossmann-sales.csv": f"stores 1..{ROSSMANN_STORES}, every day (the verbatim repeats of stores 24 and 35 kept)",
            "rossmann-store.csv": "whole"}


def completejourney(source: Path, target: Path) -> dict[str, str]:
    copy_rows(source / "transactions_sample.csv", target / "transactions_sample.csv",
              lambda i, r: i < COMPLETEJOURNEY_TRANSACTIONS)
    with open(target / "transactions_sample.csv", newline="") as handle:
        sold = {r["product_id"] for r in csv.DictReader(handle)}
    step = 92_331 // COMPLETEJOURNEY_EXTRA_PRODUCTS
    copy_rows(source / "products.csv", target / "products.csv", lambda i, r: r["product_id"] in sold or i % step == 0)
    return {"transactions_sample.csv": f"the first {COMPLETEJOURNEY_TRANSACTIONS:,} rows (the sample is in random order)",
            "products.csv": f"every product those transactions sell, and every {step}th other product"}


def clothing_reviews(source: Path, target: Path) -> dict[str, str]:
    name = "womens_clothing_ecommerce_reviews.csv"
    copy_rows(source / name, target / name, lambda i, r: i < CLOTHING_REVIEWS)
    return {name: f"the first {CLOTHING_REVIEWS:,} reviews"}


def sroie_receipts(source: Path, target: Path) -> dict[str, str]:
    """The 20 receipts the field rules were first written on, with the 52 others of the same competition
    (``sroie_receipts_more``, same repository and commit): labels and transcripts of all 72, images of
    the 20 and of ``SROIE_MORE_IMAGES``."""
    more = source.parent / "sroie_receipts_more"
    for folder in ("img", "box", "key"):
        shutil.copytree(source / folder, target / folder)
    for folder in ("box", "key"):
        shutil.copytree(more / folder, target / folder, dirs_exist_ok=True)
    for name in SROIE_MORE_IMAGES:
        shutil.copyfile(more / "img" / f"{name}.jpg", target / "img" / f"{name}.jpg")
    shutil.copyfile(source / "LICENSE.repo-code-MIT.txt", target / "LICENSE.repo-code-MIT.txt")
    return {"key/, box/": "all 72 receipts: the 20 of sroie_receipts and the 52 of sroie_receipts_more",
            "img/": f"the 20 of sroie_receipts and {len(SROIE_MORE_IMAGES)} of sroie_receipts_more: "
                    f"{', '.join(SROIE_MORE_IMAGES)}"}


def vader_review_snippets(source: Path, target: Path) -> dict[str, str]:
    """Amazon product review sentences with human sentiment ratings, from the vaderSentiment package's source
    distribution on PyPI: its folder holds ``vaderSentiment-3.3.2.tar.gz`` (``pip download --no-binary :all:
    --no-deps vaderSentiment==3.3.2``) and a METADATA.json. Another catalogue (electronics) for the sentiment's
    cross-domain test; kept whole."""
    with tarfile.open(source / "vaderSentiment-3.3.2.tar.gz") as package:
        license_text = package.extractfile("vaderSentiment-3.3.2/LICENSE.txt").read()  # type: ignore[union-attr]
        inner = package.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        with tarfile.open(fileobj=inner) as resources:
            snippets = resources.extractfile("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt").read()  # type: ignore[union-attr]
    (target / "amazonReviewSnippets_GroundTruth.txt").write_bytes(snippets)
    (target / "LICENSE.vaderSentiment-MIT.txt").write_bytes(license_text)
    return {"amazonReviewSnippets_GroundTruth.txt": "all 3,708 sentences: id, mean rating (-4 to 4), text (tab-separated)"}


FIXTURES: dict[str, Callable[[Path, Path], dict[str, str]]] = {
    "superstore": superstore,
    "rossmann_subset": rossmann,
    "completejourney": completejourney,
    "womens_clothing_reviews": clothing_reviews,
    "sroie_receipts": sroie_receipts,
    "vader_review_snippets": vader_review_snippets,
}


def file_facts(folder: Path) -> list[dict[str, object]]:
    facts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "METADATA.json"):
        data = path.read_bytes()
        fact: dict[str, object] = {"file": str(path.relative_to(folder)), "bytes": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest()}
        if path.suffix == ".csv" and path.parent == folder:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                fact["rows"] = sum(1 for _ in csv.DictReader(handle))
        facts.append(fact)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the folder holding the full datasets")
    parser.add_argument("only", nargs="*", help=f"these fixtures only, of {', '.join(FIXTURES)} (default: all)")
    args = parser.parse_args()
    if unknown := set(args.only) - set(FIXTURES):
        parser.error(f"unknown fixtures: {', '.join(sorted(unknown))}")
    for name, trim in FIXTURES.items():
        if args.only and name not in args.only:
            continue
        source, target = args.source / name, HERE / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        kept = trim(source, target)
        for attribution in source.glob("README.source.md"):
            shutil.copyfile(attribution, target / attribution.name)
        original = json.loads((source / "METADATA.json").read_text())
        metadata = {"title": original.get("title", name),
                    "source": original.get("sources", original.get("source")),
                    "license": original.get("license"),
                    "trimmed_by": "sales_analytics_tests/data/make_fixtures.py",
                    "kept": kept,
                    "files": file_facts(target)}
        (target / "METADATA.json").write_text(json.dumps(metadata, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {sum(f['bytes'] for f in metadata['files']):,} bytes")


if __name__ == "__main__":
    main()
