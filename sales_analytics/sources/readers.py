"""Reading a landed object into text columns, one row per record, nothing lost.

Every format becomes the same thing: a table of string columns (as landed) plus ``source_row``, the
1-based record number in the file, and a list of records that could not even be split into
columns, or hold bytes that are not text in the file's encoding (they go to quarantine with their
reason; the file's other records go on). A file that cannot be read at all raises
``UnreadableFile`` with the reason; the caller quarantines it whole and goes on with other files.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sales_analytics.sources.spec import (
    ROW_NUMBER,
    CsvFormat,
    ExcelFormat,
    FileFormat,
    JsonLinesFormat,
    ParquetFormat,
    SourceSpec,
)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = codecs.BOM_UTF8
# A byte-order mark says the encoding whatever the spec declares. UTF-32 first: its little-endian
# mark begins with UTF-16's.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (UTF8_BOM, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Binary formats that arrive under a text spec: magic bytes -> what it is and what to do.
BINARY_FORMATS = (
    (b"PK\x03\x04", "a zip archive", "unzip it and land the files inside, or declare `type: excel` if it is a workbook"),
    (b"PAR1", "a Parquet file", "declare `type: parquet` for this source"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (xls) or other OLE document", "save it as xlsx and declare `type: excel`"),
    (b"%PDF", "a PDF document", "land the data export, not a report"),
    (b"\x89PNG", "a PNG image", "scans belong under landing/receipts/"),
    (b"\xff\xd8\xff", "a JPEG image", "scans belong under landing/receipts/"),
)
DELIMITERS = (",", ";", "\t", "|")
DECIMAL_COMMA = re.compile(r"(?:^|[;\t|])\s*-?\d+,\d+\s*(?=[;\t|]|$)", re.MULTILINE)
# Bytes the file's encoding cannot decode become these lone surrogates ("surrogateescape"), so a
# record that holds one can be quarantined by itself.
UNDECODABLE = re.compile("[\udc80-\udcff]")
# A record is whatever the file says; Python's csv module refuses fields over 128 KiB by default,
# which would stop the exact path at one huge field instead of quarantining its record.
csv.field_size_limit(1 << 30)


class UnreadableFile(ValueError):
    """The whole object cannot be read; the message is the quarantine reason."""


@dataclass
class LandedRows:
    table: pa.Table  # string columns as landed + source_row
    broken: list[tuple[int, str]] = field(default_factory=list)  # (record number, reason)


def read_source_file(data: bytes, key: str, spec: SourceSpec) -> LandedRows:
    """``read_landed`` as the spec declares; a file without a column the spec requires is unreadable."""
    landed = read_landed(data, key, spec.format)
    missing = sorted(spec.required_source_columns() - set(landed.table.column_names) - {ROW_NUMBER})
    if missing and isinstance(spec.format, JsonLinesFormat):
        # JSON lines have no header: a key no record has is a value each record lacks, and each
        # record is quarantined for it (with its line number), not the file.
        table = landed.table
        for name in missing:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
        return LandedRows(table, landed.broken)
    if missing and landed.table.num_rows:
        raise UnreadableFile(f"missing required columns {missing}")
    return landed


def read_landed(data: bytes, key: str, fmt: FileFormat) -> LandedRows:
    if not data:
        raise UnreadableFile("empty file")
    if isinstance(fmt, ParquetFormat):
        return _read_parquet(data)
    if isinstance(fmt, ExcelFormat):
        return _read_excel(data, fmt)
    data = _decompress(data, key, fmt.compression)
    if isinstance(fmt, JsonLinesFormat):
        return _read_jsonl(data, fmt)
    return _read_csv(data, fmt)


def _decompress(data: bytes, key: str, compression: str) -> bytes:
    if compression == "none" and data[:2] == GZIP_MAGIC:
        raise UnreadableFile("this is gzip-compressed, but the spec says `compression: none`: set `compression: auto`")
    if compression == "none" or (compression == "auto" and not (key.endswith(".gz") or data[:2] == GZIP_MAGIC)):
        return _not_binary(data)
    try:
        return _not_binary(gzip.decompress(data))
    except (EOFError, OSError, zlib.error) as err:
        raise UnreadableFile(f"corrupt or truncated gzip: {err}") from err


def _not_binary(data: bytes) -> bytes:
    """Text as it came; a binary format that arrived under a text spec is named, with what to do."""
    for magic, kind, advice in BINARY_FORMATS:
        if data.startswith(magic):
            raise UnreadableFile(f"this is {kind}, not text: {advice}")
    return data


def _with_bom_encoding(data: bytes, declared: str) -> tuple[bytes, str]:
    """The bytes without their byte-order mark, and the encoding the mark names (else the declared one)."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data[len(bom):], encoding
    return data, declared


def _text(data: bytes, encoding: str) -> str:
    """The file as text; bytes the encoding cannot decode kept as ``UNDECODABLE`` surrogates."""
    try:
        return data.decode(encoding, errors="surrogateescape")
    except LookupError as err:
        raise UnreadableFile(f"unknown encoding {encoding!r}") from err


def _undecodable(labelled: Iterable[tuple[str, str]], encoding: str) -> str | None:
    """The quarantine reason when a value (labelled "column 'x'", "field 1"...) holds bytes its
    file's encoding cannot decode."""
    for label, value in labelled:
        if found := UNDECODABLE.search(value):
            return f"not valid {encoding}: byte 0x{ord(found.group()) - 0xDC00:02x} in {label}"
    return None


def _with_row_numbers(table: pa.Table, rows: list[int] | None = None) -> pa.Table:
    numbers = pa.array(rows if rows is not None else range(1, table.num_rows + 1), pa.int64())
    if table.num_columns == 0:  # records without one field (JSON lines of "{}") are still rows: a table of none has no length
        return pa.table({"source_row": numbers})
    return table.append_column("source_row", numbers)


def _check_header(names: list[str]) -> None:
    if not names or all(not n.strip() for n in names):
        raise UnreadableFile("no header row")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnreadableFile(f"header repeats columns {repeated}")


# -- CSV --------------------------------------------------------------------------------------
def _read_csv(data: bytes, fmt: CsvFormat) -> LandedRows:
    data, encoding = _with_bom_encoding(data, fmt.encoding)  # a BOM is not part of the first column's name
    data = _as_utf8(data, encoding)
    head = data[:1 << 20].decode("utf-8", errors="surrogateescape")
    header = next(csv.reader(io.StringIO(head, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote), [])
    _check_header(header)
    _check_delimiter(header, head, fmt)
    if reason := _undecodable(((f"field {i}", name) for i, name in enumerate(header, start=1)), encoding):
        raise UnreadableFile(f"header row {reason}")
    broken: list = []
    table: pa.Table | None
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            parse_options=pacsv.ParseOptions(delimiter=fmt.delimiter, quote_char=fmt.quote, newlines_in_values=True,
                                             invalid_row_handler=lambda row: broken.append(row) or "skip"),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        table = None  # undecodable bytes, or a field longer than Arrow's block: the exact path finds the record
    if table is None or broken:
        return _read_csv_exactly(_text(data, "utf-8"), header, fmt)  # rare: number every record exactly
    return LandedRows(_with_row_numbers(table))


def _check_delimiter(header: list[str], head: str, fmt: CsvFormat) -> None:
    """A header that does not split on the declared delimiter but does on another: say which to set
    (and whether the numbers use a decimal comma), instead of a field-count error on every record."""
    if len(header) > 1:
        return
    splits = {d: _header_fields(head, d, fmt.quote) for d in DELIMITERS if d != fmt.delimiter}
    found = max(splits, key=lambda d: splits[d], default=None)
    if found is None or splits[found] < 2:
        return
    decimal = (" Its numbers use a decimal comma: set `decimal: \",\"` on the numeric columns' mappings."
               if found != "," and DECIMAL_COMMA.search(head[:65536]) else "")
    raise UnreadableFile(f"the header is one field when split on {fmt.delimiter!r} (the spec's delimiter) but "
                         f"{splits[found]} fields on {found!r}: the file is {found!r}-delimited, set "
                         f"`delimiter: {found!r}`.{decimal}")


def _header_fields(head: str, delimiter: str, quote: str) -> int:
    try:
        return len(next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter, quotechar=quote), []))
    except csv.Error:  # not a header on this delimiter at all
        return 0


def _as_utf8(data: bytes, encoding: str) -> bytes:
    """UTF-8 bytes as they are (Arrow validates them while parsing); other encodings re-encoded,
    their undecodable bytes kept as they were (so the exact path finds and quarantines them)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError as err:
        raise UnreadableFile(f"unknown encoding {encoding!r}") from err
    return data if name in ("utf-8", "utf-8-sig") else _text(data, encoding).encode("utf-8", errors="surrogateescape")


def _read_csv_exactly(text: str, header: list[str], fmt: CsvFormat) -> LandedRows:
    """Slow path for files with malformed records: exact record numbers for good and bad rows."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote)
    next(reader)
    good: list[list[str]] = []
    numbers: list[int] = []
    broken: list[tuple[int, str]] = []
    for number, record in enumerate(reader, start=1):
        if not record:
            continue
        reason = (f"record has {len(record)} fields, the header has {len(header)}" if len(record) != len(header)
                  else _undecodable(((f"column {n!r}", v) for n, v in zip(header, record, strict=True)), fmt.encoding))
        if reason:
            broken.append((number, reason))
        else:
            good.append(record)
            numbers.append(number)
    columns = {name: pa.array([r[i] for r in good], pa.string()) for i, name in enumerate(header)}
    return LandedRows(_with_row_numbers(pa.table(columns), numbers), broken)


# -- JSON lines -------------------------------------------------------------------------------
def _read_jsonl(data: bytes, fmt: JsonLinesFormat) -> LandedRows:
    records: list[dict[str, str | None]] = []
    numbers: list[int] = []
    broken: list[tuple[int, str]] = []
    # Records end at "\n" only: str.splitlines() would also split at U+2028 and other separators
    # that JSON allows raw inside a string.
    data, encoding = _with_bom_encoding(data, fmt.encoding)
    for number, line in enumerate(_text(data, encoding).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if reason := _undecodable([("the line", line)], encoding):
            broken.append((number, reason))
            continue
        try:
            value = json.loads(line)
            record = {k: _as_text(v) for k, v in value.items()} if isinstance(value, dict) else None
        except (json.JSONDecodeError, RecursionError) as err:
            broken.append((number, f"not valid JSON: {str(err)[:80] or type(err).__name__}"))
            continue
        if record is None:
            broken.append((number, f"a JSON {type(value).__name__}, not an object"))
            continue
        if reason := _not_text(record):
            broken.append((number, reason))
            continue
        records.append(record)
        numbers.append(number)
    names = list(dict.fromkeys(k for r in records for k in r))
    table = pa.table({n: pa.array([r.get(n) for r in records], pa.string()) for n in names})
    return LandedRows(_with_row_numbers(table, numbers), broken)


def _not_text(record: dict[str, str | None]) -> str | None:
    """JSON can spell an unpaired surrogate (``"\\ud800"``), which is no text any table can hold."""
    for name, value in record.items():
        for part, what in ((name, "a field name"), (value or "", f"field {name!r}")):
            try:
                part.encode("utf-8")
            except UnicodeEncodeError:
                return f"{what} holds an unpaired surrogate escape: not text"
    return None


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


# -- Parquet and Excel ------------------------------------------------------------------------
def _read_parquet(data: bytes) -> LandedRows:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as err:
        raise UnreadableFile(f"not readable as Parquet: {err}") from err
    return LandedRows(_with_row_numbers(pa.table({n: _column_text(table[n]) for n in table.column_names})))


def _column_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    kind = column.type
    if pa.types.is_timestamp(kind):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S%z" if kind.tz else "%Y-%m-%dT%H:%M:%S")
    if pa.types.is_nested(kind):
        return pa.array([_as_text(v) for v in column.to_pylist()], pa.string())
    return pc.cast(column, pa.string())


def _read_excel(data: bytes, fmt: ExcelFormat) -> LandedRows:
    import pandas as pd  # only Excel needs pandas (with openpyxl)

    try:
        frame = pd.read_excel(io.BytesIO(data), sheet_name=fmt.sheet, dtype=str, engine="openpyxl")
    except Exception as err:
        raise UnreadableFile(f"not readable as Excel: {type(err).__name__}: {err}") from err
    _check_header([str(c) for c in frame.columns])
    frame = frame.astype(object).where(frame.notna(), None)
    table = pa.table({str(c): pa.array(frame[c].tolist(), pa.string()) for c in frame.columns})
    return LandedRows(_with_row_numbers(table))
