"""OCR engines behind one interface: an image in, text fragments with boxes and confidences out.

Both run offline: Tesseract from the system package, RapidOCR (PaddleOCR's models in ONNX) from its
wheel, which carries the models. Which one reads receipts is chosen by measurement (``bench/ocr.py``
scores each on the evaluation half of the labelled receipts) and can be set per deployment with
``SALES_ANALYTICS_OCR_ENGINE``.
"""

from __future__ import annotations

import functools
import os
from typing import Protocol

from PIL import Image

from sales_analytics.ocr.fields import Fragment

ENGINE_VARIABLE = "SALES_ANALYTICS_OCR_ENGINE"


class OcrEngine(Protocol):
    name: str

    def fragments(self, image: Image.Image) -> list[Fragment]:
        """The text the engine reads, each piece with its box (pixels) and confidence (0..1)."""
        ...


class Tesseract:
    name = "tesseract"
    config = "--psm 4"  # one column of text of varying sizes: a receipt

    def fragments(self, image: Image.Image) -> list[Fragment]:
        import pytesseract

        words = pytesseract.image_to_data(image, config=self.config, output_type=pytesseract.Output.DICT)
        return [Fragment(text.strip(), left, top, left + width, top + height, max(float(conf), 0.0) / 100)
                for text, left, top, width, height, conf in zip(words["text"], words["left"], words["top"],
                                                                  words["width"], words["height"], words["conf"], strict=True)
                if text.strip() and float(conf) >= 0]


class RapidOcr:
    name = "rapidocr"

    def fragments(self, image: Image.Image) -> list[Fragment]:
        found, _ = _rapidocr()(image.convert("RGB"))
        return [Fragment(text.strip(), min(x for x, _ in box), min(y for _, y in box),
                         max(x for x, _ in box), max(y for _, y in box), float(confidence))
                for box, text, confidence in found or [] if text.strip()]


@functools.cache
def _rapidocr():  # loading the three ONNX models takes a second: once per process
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(use_cls=False)  # scans come upright; the angle classifier only costs time


ENGINES: dict[str, OcrEngine] = {engine.name: engine for engine in (RapidOcr(), Tesseract())}
DEFAULT_ENGINE = "rapidocr"  # bench/ocr.py: more of every field on the evaluation half, see README


def configured_engine(name: str | None = None) -> OcrEngine:
    """The engine named, else the deployment's (``SALES_ANALYTICS_OCR_ENGINE``), else the default."""
    chosen = name or os.environ.get(ENGINE_VARIABLE) or DEFAULT_ENGINE
    if chosen not in ENGINES:
        raise ValueError(f"unknown OCR engine {chosen!r} (from {ENGINE_VARIABLE}); known: {', '.join(sorted(ENGINES))}")
    return ENGINES[chosen]
