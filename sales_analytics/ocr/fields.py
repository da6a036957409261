"""Receipt fields from OCR text: vendor, date and total, each with a confidence in [0, 1].

Input is text fragments with their boxes (Tesseract's words, or any OCR's lines), grouped here into
printed rows, because a receipt prints a label at the left and its amount at the right of the same
row, which OCR engines often return as separate blocks. The rules are what a bookkeeper reads:
- vendor: the row near the top carrying a company form (SDN BHD, S/B, TRADING, ...), else the first
  row of mostly capitals;
- date: the first date-shaped token, more trusted next to a "date" label;
- total: the amount of the most final-sounding total row (rounded / nett / incl. tax over a bare
  "total"; never a subtotal, quantity, tax or savings line), else the largest amount, trusted less.
Confidence is the rule's own trust times the OCR's confidence in the characters it used.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

LEGAL_FORMS = re.compile(r"\b(SDN\.?\s*B\w{0,2}D|S/B|BHD|PLT|LTD|LIMITED|GMBH|INC)\b\.?", re.IGNORECASE)
BUSINESS_WORDS = re.compile(r"\b(ENTERPRISE|TRADING|HARDWARE|COMPANY|CO\.|RESTAURANTS?|STATIONERY|INTERNATIONAL|GROCER|"
                            r"STORE|MART|PHARMACY|FARMASI|KITCHEN|BAKERY|CAFE|PETROL|SUPERMARKET)(?!\w)", re.IGNORECASE)
NOT_A_VENDOR = re.compile(r"INVOICE|RECEIPT|WELCOME|THANK|\bBILL\b|\bCASH\b|\bREG\b", re.IGNORECASE)
MONEY = re.compile(r"(?<![\d.])(?:RM|\$|€|£)?\s?(\d{1,6}(?:,\d{3})*[.,]\d{2})(?![\d])")
# Printed ISO codes, and the ringgit's RM: what a receipt states its currency to be. Symbols ($ £ €) say
# nothing here: OCR makes them of stray marks, and "$" is a dozen currencies.
CURRENCY_CODE = re.compile(r"\b(EUR|GBP|USD|MYR|CHF|SGD|AUD|CAD|NZD|HKD|JPY|CNY|INR|IDR|THB|PHP|PLN|SEK|NOK|DKK|CZK)\b")
RINGGIT = re.compile(r"\bRM\b|\bRM\d|RM\s")
MONTHS = {m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b"), "dmy"),
    (re.compile(r"\b(\d{1,2})[\s-]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[\s-]?(\d{4}|\d{2})\b", re.IGNORECASE), "dMy"),
]
TOTAL_WORD = re.compile(r"\bTOTAL|\bAMOUNT\s+DUE|^\s*DUE\b|\bJUMLAH", re.IGNORECASE)
NOT_A_TOTAL = re.compile(r"SUB|EXCL|QTY|QUANTITY|ITEM|SAVING|DISCOUNT|\bTAX\b|TOTAL\s+GST|INCLUDED|CHANGE|TENDER",
                         re.IGNORECASE)
TAX_SUMMARY = re.compile(r"(GST|TAX|VAT)\s+(SUMMARY|ANALYSIS)", re.IGNORECASE)  # below it, "total" is the tax table's
ROUNDING = re.compile(r"ROUND", re.IGNORECASE)
FINAL_TOTAL = [(re.compile(r"ROUND", re.IGNORECASE), 0.95), (re.compile(r"NETT?\b|GRAND|DUE", re.IGNORECASE), 0.9),
               (re.compile(r"INCL|INCLUSIVE|WITH\s+GST", re.IGNORECASE), 0.85), (re.compile(r"."), 0.8)]
PAYMENT = re.compile(r"CASH|CHANGE|TENDER|PAID|PAY\b|CARD|VISA", re.IGNORECASE)
VENDOR_ROWS = 8  # the vendor is printed in the receipt's head
ACCEPT_CONFIDENCE = 0.6  # every field at least this sure, or a person looks at it
MIN_TOTAL = 0.05  # below this an amount is a rounding adjustment or a misread, not what was paid


@dataclass(frozen=True)
class Fragment:
    """A piece of OCR text with its box (pixels) and the engine's confidence in it (0..1)."""
    text: str
    left: float
    top: float
    right: float
    bottom: float
    confidence: float = 1.0


@dataclass(frozen=True)
class Row:
    text: str
    confidence: float  # the mean of its fragments'


@dataclass(frozen=True)
class Field:
    value: str | None
    confidence: float  # 0 when not found

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class ReceiptFields:
    vendor: Field
    date: Field  # ISO yyyy-mm-dd
    total: Field  # decimal with two places, e.g. "9.00"
    stated_currencies: frozenset[str]  # what the text states (ISO codes, RM); it confirms, never decides

    def unsure(self) -> list[str]:
        """What a person should check: each field missing or read with less than ``ACCEPT_CONFIDENCE``."""
        return [f"{name} {'not found' if not f.found else f'confidence {f.confidence:.2f}'}"
                for name, f in (("vendor", self.vendor), ("date", self.date), ("total", self.total))
                if f.confidence < ACCEPT_CONFIDENCE]


@dataclass(frozen=True)
class Verdict:
    currency: str | None  # the configured one: the store's, or the request's
    doubts: list[str]  # why a person should look; none: accepted

    @property
    def accepted(self) -> bool:
        return not self.doubts


def verdict(fields: ReceiptFields, configured_currency: str | None) -> Verdict:
    """The one acceptance rule, for the asset and the endpoint: every field sure, a currency from
    configuration, and nothing printed on the receipt that contradicts it."""
    doubts = fields.unsure()
    stated = fields.stated_currencies
    if configured_currency is None:
        doubts.append("no currency configured for it (the store's, or the request's)")
    elif stated and configured_currency not in stated:
        doubts.append(f"it states {', '.join(sorted(stated))}, not the configured {configured_currency}")
    return Verdict(configured_currency, doubts)


def rows_of(fragments: list[Fragment]) -> list[Row]:
    """Fragments on the same printed row (vertical centres within half a row's height), left to right."""
    rows: list[list[Fragment]] = []
    for fragment in sorted(fragments, key=lambda f: (f.top + f.bottom) / 2):
        centre, height = (fragment.top + fragment.bottom) / 2, max(fragment.bottom - fragment.top, 1)
        last = rows[-1] if rows else None
        if last and abs(centre - sum((f.top + f.bottom) / 2 for f in last) / len(last)) <= height / 2:
            last.append(fragment)
        else:
            rows.append([fragment])
    return [Row(" ".join(f.text for f in sorted(row, key=lambda f: f.left)), sum(f.confidence for f in row) / len(row))
            for row in rows if any(f.text.strip() for f in row)]


def extract_fields(rows: list[Row]) -> ReceiptFields:
    text = "\n".join(r.text for r in rows)
    stated = {*CURRENCY_CODE.findall(text), *(["MYR"] if RINGGIT.search(text) else [])}
    return ReceiptFields(_vendor(rows), _date(rows), _total(rows), frozenset(stated))


def _vendor(rows: list[Row]) -> Field:
    """A legal form (SDN BHD, S/B, LTD) names the company best; a business word (TRADING, HARDWARE) next;
    a name split over two rows ("POPULAR BOOK" / "CO. (M) SDN BHD") is joined."""
    head = rows[:VENDOR_ROWS]
    for pattern, trust in ((LEGAL_FORMS, 0.9), (BUSINESS_WORDS, 0.8)):
        for i, row in enumerate(head):
            if not pattern.search(row.text) or NOT_A_VENDOR.search(row.text) or sum(c.isalpha() for c in row.text) < 4:
                continue
            text, confidence = row.text, row.confidence
            starts_with_form = LEGAL_FORMS.match(row.text) or BUSINESS_WORDS.match(row.text)
            if starts_with_form and i > 0 and _name_like(head[i - 1].text):  # the row continues the one above
                text, confidence = f"{head[i - 1].text} {text}", min(confidence, head[i - 1].confidence)
            if i + 1 < len(head) and (text.rstrip().endswith("&") or LEGAL_FORMS.match(head[i + 1].text.strip())):
                text, confidence = f"{text} {head[i + 1].text}", min(confidence, head[i + 1].confidence)
            return Field(_clean_vendor(text), trust * confidence)
    for row in head:
        if _name_like(row.text) and not NOT_A_VENDOR.search(row.text):
            return Field(_clean_vendor(row.text), 0.5 * row.confidence)
    return Field(None, 0.0)


def _name_like(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) / len(letters) > 0.8 and sum(c.isdigit() for c in text) <= 2


def _clean_vendor(text: str) -> str:
    """Up to the last legal form (registration numbers follow it), OCR's 'SDN BND' read as 'SDN BHD'."""
    forms = list(LEGAL_FORMS.finditer(text))
    if forms:
        text = text[:forms[-1].end()]
    text = re.sub(r"SDN\.?\s*B\w{0,2}D", lambda m: "SDN. BHD" if "." in m.group() else "SDN BHD", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip(" ,:-")


def _date(rows: list[Row]) -> Field:
    for row in rows:
        for pattern, order in DATE_PATTERNS:
            for match in pattern.finditer(row.text):
                parsed = _parse_date(match.groups(), order)
                if parsed is not None:
                    labelled = re.search(r"DATE|TARIKH", row.text, re.IGNORECASE) is not None
                    return Field(parsed.isoformat(), (0.95 if labelled else 0.85) * row.confidence)
    return Field(None, 0.0)


def parse_receipt_date(text: str) -> str | None:
    """A date as receipts print it (25/12/2018, 18-10-17, 14 MAR 2018), as ISO; None if it is none."""
    for pattern, order in DATE_PATTERNS:
        match = pattern.search(text)
        if match and (parsed := _parse_date(match.groups(), order)):
            return parsed.isoformat()
    return None


def _parse_date(groups: tuple[str, ...], order: str) -> dt.date | None:
    if order == "ymd":
        year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    elif order == "dmy":
        day, month, year = int(groups[0]), int(groups[1]), int(groups[2])
    else:
        day, month, year = int(groups[0]), MONTHS[groups[1][:3].upper()], int(groups[2])
    year += 2000 if year < 100 else 0
    try:
        parsed = dt.date(year, month, day)
    except ValueError:
        return None
    return parsed if 2000 <= parsed.year <= 2100 else None


def _total(rows: list[Row]) -> Field:
    best: tuple[float, int, str] | None = None  # (trust, -row index: the first of equals wins, amount)
    for i, row in enumerate(rows):
        if TAX_SUMMARY.search(row.text):
            break
        for segment in _total_segments(row.text):
            amounts = _plausible(MONEY.findall(segment)) or (_plausible(MONEY.findall(rows[i + 1].text))[:1] if i + 1 < len(rows) else [])
            if not amounts:
                continue
            after_rounding = any(ROUNDING.search(r.text) for r in rows[max(0, i - 2):i])
            trust = 0.95 if after_rounding else next(t for pattern, t in FINAL_TOTAL if pattern.search(segment))
            if best is None or (trust * row.confidence, -i) > best[:2]:
                best = (trust * row.confidence, -i, amounts[-1])
    if best is not None:
        return Field(normalise_amount(best[2]), best[0])
    every = [(float(normalise_amount(a)), r.confidence) for r in rows if not PAYMENT.search(r.text) for a in MONEY.findall(r.text)]
    if every:
        amount, confidence = max(every)
        return Field(f"{amount:.2f}", 0.4 * confidence)
    return Field(None, 0.0)


def _plausible(amounts: list[str]) -> list[str]:
    return [a for a in amounts if float(normalise_amount(a)) >= MIN_TOTAL]


def _total_segments(text: str) -> list[str]:
    """Each total-like phrase of a row with the word before it (SUB-TOTAL, TOTAL SAVING 0.00 TOTAL 77.20
    holds two), minus those that are not the receipt's total."""
    starts = [m.start() for m in TOTAL_WORD.finditer(text)]
    segments = []
    for n, start in enumerate(starts):
        before = text[:start].split()
        head = len(" ".join(before[:-1])) + (1 if len(before) > 1 else 0) if before else 0
        segment = text[head:starts[n + 1] if n + 1 < len(starts) else len(text)]
        if not NOT_A_TOTAL.search(segment):
            segments.append(segment)
    return segments


def normalise_amount(text: str) -> str:
    """'RM 1,234.50' -> '1234.50'; a decimal comma as in '12,50' -> '12.50'."""
    digits = re.sub(r"[^\d.,]", "", text)
    if re.fullmatch(r"\d+,\d{2}", digits):
        digits = digits.replace(",", ".")
    return f"{float(digits.replace(',', '')):.2f}"


def normalise_vendor(text: str) -> str:
    """For comparing vendors: capitals and digits only."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())
