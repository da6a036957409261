"""Reading a scanned receipt: check the upload is an image we accept, clean it up, OCR it with the
configured engine (``ocr.engines``), extract its fields.

Preprocessing is a list of steps; the default is what measurably helped on the SROIE receipts
(``bench/ocr.py`` measures each). Decoding is bounded: at most
``MAX_IMAGE_BYTES`` and ``MAX_PIXELS``, and only the formats a scanner or phone produces.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from sales_analytics.ocr.engines import OcrEngine, configured_engine
from sales_analytics.ocr.fields import ReceiptFields, extract_fields, rows_of

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 600 dpi A4 scan is ~35M pixels; beyond that, a decompression bomb
ACCEPTED_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP"}
MIN_WIDTH = 1000  # narrower scans are upscaled: Tesseract reads characters best at ~30 px high


class UnreadableImage(ValueError):
    """The bytes are not an image we can read: too large, not an accepted format, or corrupt."""


@dataclass(frozen=True)
class Reading:
    fields: ReceiptFields
    text: str  # the rows as read, for the review queue and for audit
    mean_confidence: float  # the engine's mean confidence in what it read (0..1); 0 when it read nothing


def open_image(data: bytes) -> Image.Image:
    """The decoded image, or ``UnreadableImage`` saying why not."""
    if len(data) > MAX_IMAGE_BYTES:
        raise UnreadableImage(f"image of {len(data):,} bytes is over the {MAX_IMAGE_BYTES:,}-byte limit")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind, size = probe.format, probe.size
            probe.verify()
        if kind not in ACCEPTED_FORMATS:
            raise UnreadableImage(f"{kind} images are not accepted (only {', '.join(sorted(ACCEPTED_FORMATS))})")
        if size[0] * size[1] > MAX_PIXELS:
            raise UnreadableImage(f"image of {size[0]}x{size[1]} pixels is over the {MAX_PIXELS:,}-pixel limit")
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError as err:  # its message names an in-memory object, not the cause: never shown
        raise UnreadableImage(f"not a readable image: not a recognised image format (accepted: "
                              f"{', '.join(sorted(ACCEPTED_FORMATS))})") from err
    except Image.DecompressionBombError as err:
        raise UnreadableImage(f"not a readable image: over the {MAX_PIXELS:,}-pixel limit") from err
    except (OSError, SyntaxError) as err:
        raise UnreadableImage("not a readable image: its data is truncated or corrupt") from err
    return image


def _upscale(image: Image.Image) -> Image.Image:
    if image.width >= MIN_WIDTH:
        return image
    return image.resize((MIN_WIDTH, round(image.height * MIN_WIDTH / image.width)), Image.Resampling.LANCZOS)


def _threshold(image: Image.Image) -> Image.Image:
    """Black and white at Otsu's threshold: the cut that best separates ink from paper."""
    histogram = image.histogram()[:256]
    total, weighted = sum(histogram), sum(i * n for i, n in enumerate(histogram))
    best, cut, below, below_weighted = -1.0, 128, 0, 0.0
    for level, count in enumerate(histogram):
        below, below_weighted = below + count, below_weighted + level * count
        above = total - below
        if below and above:
            spread = below * above * (below_weighted / below - (weighted - below_weighted) / above) ** 2
            if spread > best:
                best, cut = spread, level
    return image.point(lambda v: 255 if v > cut else 0)


PREPROCESSING_STEPS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "grayscale": lambda image: ImageOps.exif_transpose(image).convert("L"),
    "upscale": _upscale,
    "autocontrast": lambda image: ImageOps.autocontrast(image, cutoff=1),
    "threshold": _threshold,
}
# None measurably helped on the SROIE receipts with Tesseract (bench/ocr.py --preprocessing): upscaling gained
# vendors and dates but lost totals, thresholding lost more totals. The steps stay for scans of other quality.
PREPROCESSING: tuple[str, ...] = ()


def preprocess(image: Image.Image, steps: tuple[str, ...] = PREPROCESSING) -> Image.Image:
    for step in steps:
        image = PREPROCESSING_STEPS[step](image)
    return image


def read_receipt(data: bytes, steps: tuple[str, ...] = PREPROCESSING, engine: OcrEngine | None = None) -> Reading:
    fragments = (engine or configured_engine()).fragments(preprocess(open_image(data), steps))
    rows = rows_of(fragments)
    mean = sum(f.confidence for f in fragments) / len(fragments) if fragments else 0.0
    return Reading(extract_fields(rows), "\n".join(r.text for r in rows), mean)
