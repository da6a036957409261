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
from collections.abc import Iterator
from dataclasses import dataclass

# OCR engines often drop the spaces of a line ("GHDISTRIBUTOR&MARKETINGSDNBHD", "TOTALAMOUNTDUE"): the
# patterns below match inside words where a word boundary cannot be relied on.
LEGAL_FORMS = re.compile(r"(S[DO0]N\.?\s*B\w{0,2}D|\bS/B|\bBHD|\bPLT|\bLTD|\bLIMITED|\bGMBH|\bINC)\b\.?", re.IGNORECASE)
# Long business words are found inside glued text ("HARDWARETRADING"); short ones only as words.
BUSINESS_WORDS = re.compile(r"(ENTERPRISE|TRADING|HARDWARE|COMPANY|RESTAURANT|RESTORAN|STATIONERY|INTERNATIONAL|GROCER|"
                            r"PHARMACY|FARMASI|KITCHEN|BAKERY|PETROL|SUPERMARKET|KEDAI|\bCO\.|\b(STORE|MART|CAFE)\b)",
                            re.IGNORECASE)
NOT_A_VENDOR = re.compile(r"INVOICE|RECEIPT|WELCOME|THANK|\bBILL\b|\bCASH\b|\bREG\b", re.IGNORECASE)
# The row that ends a receipt's head block: a company registration number, a tax id, an address or a phone.
REGISTRATION = re.compile(r"\(\s*\w{0,3}\d{4,}[\w-]*\s*\)|\bCO\.?\s*(NO|REG)|\bGST\s*(ID|NO|REG)|\bREG\w*\.?\s*NO|"
                          r"\bTEL\b|\bTEL\s*[:.]|\bPHONE|\bFAX\b|\bJALAN\b|\bJLN\b|\bNO\.?\s*\d", re.IGNORECASE)
MONEY = re.compile(r"(?<![\d.])(?:RM|\$|€|£)?\s?(\d{1,6}(?:,\d{3})*[.,]\d{2})(?![\d])")
SIGNED_MONEY = re.compile(r"(-)?\s?(?:RM|\$|€|£)?\s?(-)?\s?(\d{1,6}(?:,\d{3})*[.,]\d{2})(?![\d])")
# Printed ISO codes, and the ringgit's RM: what a receipt states its currency to be. Symbols ($ £ €) say
# nothing here: OCR makes them of stray marks, and "$" is a dozen currencies.
CURRENCY_CODE = re.compile(r"\b(EUR|GBP|USD|MYR|CHF|SGD|AUD|CAD|NZD|HKD|JPY|CNY|INR|IDR|THB|PHP|PLN|SEK|NOK|DKK|CZK)\b")
RINGGIT = re.compile(r"\bRM\b|\bRM\d|RM\s")
MONTHS = {m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
MONTH = r"(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|[O0]CT|NOV|DEC)[A-Z]*"  # OCR reads OCT's O as a zero
# A date's year may run straight into the time ("14/03/20185:57:07PM", "01/03/1819:14"): a two-digit
# year followed by a time is tried first, and the year ends where a time begins.
YEAR = r"(\d{2}(?=\d{1,2}:\d{2})|\d{4}|\d{2})(?=\d{1,2}:\d{2}|\D|$)"
DATE_PATTERNS = [
    (re.compile(r"(?<!\d)(\d{4})\s?([-/.])\s?(\d{1,2})\s?\2\s?(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(rf"(?<!\d)(\d{{1,2}})\s?([-/.])\s?(\d{{1,2}})\s?\2\s?{YEAR}"), "dmy"),
    (re.compile(rf"(?<!\d)(\d{{1,2}})[\s/.-]*{MONTH}[\s/.,-]*{YEAR}", re.IGNORECASE), "dMy"),
    (re.compile(rf"(?<![A-Z]){MONTH}[\s.]*(\d{{1,2}})(?:ST|ND|RD|TH)?[\s,.]+(\d{{4}})(?=\d{{1,2}}:\d{{2}}|\D|$)", re.IGNORECASE), "Mdy"),
]
DATE_LABEL = re.compile(r"DATE|TARIKH|DD\s*:", re.IGNORECASE)
TOTAL_WORD = re.compile(r"TOTAL|AMOUNT\s*DUE|^\s*DUE\b|JUMLAH|PAYABLE", re.IGNORECASE)
NOT_A_TOTAL = re.compile(r"SUB|EXCL|QTY|QUANTITY|ITEM|SAVING|DISCOUNT|\bTAX\b|TOTAL\s*GST|INCLUDED|CHANGE|TENDER|SUPPLIES",
                         re.IGNORECASE)
TAX_SUMMARY = re.compile(r"(GST|TAX|VAT)\s*(SUMMARY|ANALYSIS)", re.IGNORECASE)  # below it, "total" is the tax table's
ROUNDING = re.compile(r"ROUND", re.IGNORECASE)
# A total's label says how final it is: the rounded amount, then what is payable, then a total with tax, then a bare total.
TOTAL_LABELS = [(re.compile(r"ROUND", re.IGNORECASE), 0.95),
                (re.compile(r"NETT?|GRAND|DUE|PAYABLE", re.IGNORECASE), 0.9),
                (re.compile(r"INCL|INCLUSIVE|WITH\s*GST", re.IGNORECASE), 0.85),
                (re.compile(r"."), 0.8)]
PAYMENT = re.compile(r"CASH|CHANGE|TENDER|PAID|PAY\b|CARD|VISA", re.IGNORECASE)
# An item row holds a quantity, a unit price and an amount, in whatever order and layout the till prints
# ("BREAD 2 x 1.50 3.00", "8809069300708 7.90*3 23.70Z", "$5.50 1 $5.50", "1 WALK 1.60 1.60 1.60ZRL"):
# it is one when quantity times price gives the amount. Barcodes and codes (5+ digits) are never quantities.
NUMBER = re.compile(r"(?<![\d.,])(\d{1,6}(?:[.,]\d{1,3})?)(?![\d])")
UNIT_WORDS = {"PCS", "PC", "SET", "NOS", "UNI", "UNIT", "UNITS", "RM", "SR", "ZR", "ZRL", "WALK", "EA", "KG", "BOX",
              "PKT", "CTN", "QTY", "TAX", "GST"}
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
    height: float = 0.0  # the tallest fragment's, in pixels: a receipt prints its vendor largest


@dataclass(frozen=True)
class Field:
    value: str | None
    confidence: float  # 0 when not found

    @property
    def found(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class LineItem:
    description: str
    quantity: float
    unit_price: str  # decimals with two places, as the total
    amount: str


@dataclass(frozen=True)
class ReceiptFields:
    vendor: Field
    date: Field  # ISO yyyy-mm-dd
    total: Field  # decimal with two places, e.g. "9.00"
    stated_currencies: frozenset[str]  # what the text states (ISO codes, RM); it confirms, never decides
    items: tuple[LineItem, ...] = ()  # only when their amounts add up to the total, to the cent

    @property
    def itemised(self) -> bool:
        return bool(self.items)

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
    return [Row(" ".join(f.text for f in sorted(row, key=lambda f: f.left)), sum(f.confidence for f in row) / len(row),
                max(f.bottom - f.top for f in row))
            for row in rows if any(f.text.strip() for f in row)]


def extract_fields(rows: list[Row]) -> ReceiptFields:
    text = "\n".join(r.text for r in rows)
    stated = {*CURRENCY_CODE.findall(text), *(["MYR"] if RINGGIT.search(text) else [])}
    total = _total(rows)
    return ReceiptFields(_vendor(rows), _date(rows), total, frozenset(stated), _reconciled_items(rows, total))


def _reconciled_items(rows: list[Row], total: Field) -> tuple[LineItem, ...]:
    """The item rows above the first total, if their amounts add up to the total: else none, and the
    receipt stays one line of its total (a missed or misread item must not change what was sold)."""
    items: list[LineItem] = []
    previous_was_item = False
    for i, row in enumerate(rows):
        if TOTAL_WORD.search(row.text) or TAX_SUMMARY.search(row.text):
            break
        found = _item(row.text)
        if found:
            start, *numbers = found
            description = _description(row.text[:start]) or ("" if previous_was_item or not i else _description(rows[i - 1].text, 0))
            items.append(LineItem(description, *numbers))
        previous_was_item = found is not None
    cents = round(sum(float(item.amount) for item in items) * 100)
    return tuple(items) if items and total.found and cents == round(float(total.value) * 100) else ()


def _item(text: str) -> tuple[int, float, str, str] | None:
    """(where its numbers start, quantity, unit price, amount) when the row's rightmost amount is a quantity
    times a price on it."""
    matches = list(NUMBER.finditer(text))
    values = [m.group(1).replace(",", ".") for m in matches]
    amounts = [n for n, value in enumerate(values) if re.fullmatch(r"\d+\.\d{2}", value) and float(value) >= MIN_TOTAL]
    if len(amounts) < 2:
        return None
    amount = float(values[amounts[-1]])
    for p in reversed(amounts[:-1]):
        price = float(values[p])
        taken = (matches[p].start(), matches[amounts[-1]].start())
        for start, quantity in _quantities(text, matches):
            if start not in taken and 0 < quantity < 1000 and abs(quantity * price - amount) <= 0.005:
                return min(start, matches[p].start()), quantity, f"{price:.2f}", f"{amount:.2f}"
    return None


def _quantities(text: str, matches: list[re.Match[str]]) -> Iterator[tuple[int, float]]:
    """Each number as a quantity (where it starts, its value); and, as the name's digits may run into the
    quantity ("item 91x3.68": item 9, 1 x 3.68), a whole number's last digit when an x follows it."""
    for match in matches:
        number = match.group(1).replace(",", ".")
        yield match.start(), float(number)
        if number.isdigit() and len(number) > 1 and text[match.end():].lstrip()[:1] in ("x", "X", "*"):
            yield match.end() - 1, float(number[-1])


def _description(text: str, min_letters: int = 3) -> str:
    """The row's words without units and tax codes; empty when no word of ``min_letters`` letters is left."""
    words = [w for w in text.split() if w.upper().strip("'&/-*:") not in UNIT_WORDS and re.search(r"[A-Za-z0-9]", w)]
    words = words[:-1] if words and words[-1].lower() in ("x", "@") else words
    letters = [len(re.sub(r"[^A-Za-z]", "", w)) for w in words]
    return " ".join(words) if any(n >= max(min_letters, 1) for n in letters) else ""


def _vendor(rows: list[Row]) -> Field:
    """The company in the receipt's head block (the rows above its registration number, tax id, address
    or phone): a legal form (SDN BHD, S/B, LTD) names it best, a business word (TRADING, HARDWARE) next,
    else the block's largest text. A name split over two rows ("POPULAR BOOK" / "CO. (M) SDN BHD") is joined."""
    head = _head_block(rows)
    for pattern, trust in ((LEGAL_FORMS, 0.9), (BUSINESS_WORDS, 0.8)):
        for i, row in enumerate(head):
            if not pattern.search(row.text) or NOT_A_VENDOR.search(row.text) or sum(c.isalpha() for c in row.text) < 4:
                continue
            text, confidence = row.text, row.confidence
            continues_above = LEGAL_FORMS.match(row.text) or BUSINESS_WORDS.match(row.text) or row.text.startswith("(")
            if continues_above and i > 0 and _name_like(head[i - 1].text):
                text, confidence = f"{head[i - 1].text} {text}", min(confidence, head[i - 1].confidence)
            if i + 1 < len(head) and (text.rstrip().endswith("&") or LEGAL_FORMS.match(head[i + 1].text.strip())):
                text, confidence = f"{text} {head[i + 1].text}", min(confidence, head[i + 1].confidence)
            return Field(_clean_vendor(text), trust * confidence)
    names = [row for row in head if sum(c.isalpha() for c in row.text) >= 4 and not NOT_A_VENDOR.search(row.text)]
    if names:
        largest = max(names, key=lambda row: row.height)
        return Field(_clean_vendor(largest.text), 0.5 * largest.confidence)
    return Field(None, 0.0)


def _head_block(rows: list[Row]) -> list[Row]:
    """The rows a receipt prints its vendor in: up to its registration, tax id, address or phone (at most
    ``VENDOR_ROWS``), keeping a registration row that also carries the name ("ACME SDN BHD (12345-X)")."""
    head = []
    for row in rows[:VENDOR_ROWS]:
        if REGISTRATION.search(row.text):
            if LEGAL_FORMS.search(row.text) or BUSINESS_WORDS.search(row.text):
                head.append(row)
            if head:
                break
            continue
        head.append(row)
    return head


def _name_like(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) / len(letters) > 0.8 and sum(c.isdigit() for c in text) <= 2


def _clean_vendor(text: str) -> str:
    """Up to the last legal form (registration numbers follow it), OCR's 'SDN BND'/'SON BHD' read as 'SDN BHD'."""
    forms = list(LEGAL_FORMS.finditer(text))
    if forms:
        text = text[:forms[-1].end()]
    text = re.sub(r"S[DO0]N\.?\s*B\w{0,2}D", lambda m: "SDN. BHD" if "." in m.group() else "SDN BHD", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip(" ,:-")


def _date(rows: list[Row]) -> Field:
    """The first date next to a date label, else the first date on the receipt, trusted less."""
    found = [(DATE_LABEL.search(row.text) is not None, -i, parsed, row.confidence)
             for i, row in enumerate(rows) if (parsed := parse_receipt_date(row.text))]
    if not found:
        return Field(None, 0.0)
    labelled, _, parsed, confidence = max(found)
    return Field(parsed, (0.95 if labelled else 0.85) * confidence)


def parse_receipt_date(text: str) -> str | None:
    """A date as receipts print it (25/12/2018, 18-10-17, 14 MAR 2018, 02/JAN/2017, OCT 3, 2016), as ISO;
    None if it holds none."""
    for pattern, order in DATE_PATTERNS:
        for match in pattern.finditer(text):
            if parsed := _parse_date(match.groups(), order):
                return parsed.isoformat()
    return None


def _parse_date(groups: tuple[str, ...], order: str) -> dt.date | None:
    """The date, if it is one a receipt of today could carry; a day-first date that cannot be one is read month-first."""
    if order in ("dMy", "Mdy"):
        month_name, number = (groups[1], groups[0]) if order == "dMy" else (groups[0], groups[1])
        candidates = [(int(groups[2]), MONTHS[month_name[:3].upper().replace("0", "O")], int(number))]
    elif order == "ymd":  # groups[1] is the separator, the same twice
        candidates = [(int(groups[0]), int(groups[2]), int(groups[3]))]
    else:
        day, month, year = int(groups[0]), int(groups[2]), int(groups[3])
        candidates = [(year, month, day), (year, day, month)]
    for year, month, day in candidates:
        try:
            parsed = dt.date(year + (2000 if year < 100 else 0), month, day)
        except ValueError:
            continue
        if 2000 <= parsed.year <= dt.date.today().year + 1:
            return parsed
    return None


def _total(rows: list[Row]) -> Field:
    """The amount of the most final-sounding total row (``TOTAL_LABELS``), rounded when a rounding adjustment
    follows it; else the largest amount not paid or given back, trusted less."""
    best: tuple[float, int, str] | None = None  # (trust, -row index: the first of equals wins, amount)
    for i, row in enumerate(rows):
        if TAX_SUMMARY.search(row.text):
            break
        for segment in _total_segments(row.text):
            amounts = _plausible(MONEY.findall(segment)) or (_plausible(MONEY.findall(rows[i + 1].text))[:1] if i + 1 < len(rows) else [])
            if not amounts:
                continue
            after_rounding = any(ROUNDING.search(r.text) for r in rows[max(0, i - 2):i])
            trust = 0.95 if after_rounding else next(t for pattern, t in TOTAL_LABELS if pattern.search(segment))
            if best is None or (trust * row.confidence, -i) > best[:2]:
                best = (trust * row.confidence, -i, amounts[-1])
    if best is not None:
        return Field(_rounded(rows, -best[1], normalise_amount(best[2])), best[0])
    every = [(float(normalise_amount(a)), r.confidence) for r in rows if not PAYMENT.search(r.text) for a in MONEY.findall(r.text)]
    if every:
        amount, confidence = max(every)
        return Field(f"{amount:.2f}", 0.4 * confidence)
    return Field(None, 0.0)


def _rounded(rows: list[Row], total_row: int, total: str) -> str:
    """The total after a rounding adjustment printed just below it ("ROUNDING -0.02") with no total after that."""
    for row in rows[total_row + 1:total_row + 3]:
        if TOTAL_WORD.search(row.text) or TAX_SUMMARY.search(row.text):
            return total
        if ROUNDING.search(row.text) and (adjustment := SIGNED_MONEY.search(row.text)):
            sign = -1 if adjustment.group(1) or adjustment.group(2) else 1
            amount = float(normalise_amount(adjustment.group(3)))
            if amount < MIN_TOTAL:
                return f"{float(total) + sign * amount:.2f}"
    return total


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
