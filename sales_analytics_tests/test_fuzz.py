"""Fuzzing the file parsers and source specs (hypothesis): whatever lands, ingestion never crashes,
never loses a good row, and quarantines every bad one with a reason; the counts reconcile.

Generated exports mix good records with hostile ones: arbitrary text (quotes, delimiters,
newlines, control characters) in any cell, bytes in the wrong encoding, huge fields, identifiers
that start like spreadsheet formulas, records with the wrong number of fields, deeply nested or
broken JSON. Random bytes go through every shipped spec's reader.
"""

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sales_analytics.ingest.raw import ingest_object, read_landing_quarantine
from sales_analytics.lake.dimensions import read_snapshots
from sales_analytics.profiles import initialized, local_resources
from sales_analytics.schema import QUARANTINE
from sales_analytics.sources.readers import UnreadableFile, read_landed
from sales_analytics.sources.spec import SourceSpec, file_sources
from sales_analytics_tests.helpers import ingest_one, rows

pytestmark = pytest.mark.fuzz
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
POS_COLUMNS = ["order_id", "line_no", "order_ts", "store_id", "channel", "product_id", "customer_id", "quantity",
               "unit_price", "discount", "currency", "status", "updated_at"]
WRONG_ENCODING_MARK = "\ue000"  # replaced by a Latin-1 byte after encoding: invalid UTF-8 in that cell
any_text = st.text(st.characters(codec="utf-8", exclude_characters=WRONG_ENCODING_MARK), max_size=40)
formula = st.from_regex(r"[=+\-@][A-Za-z0-9(|!' ]{1,20}", fullmatch=True)


@dataclass
class Record:
    cells: dict[str, str] | list[str]
    must_quarantine: bool  # a fault no reading may accept ("any text" may happen to be valid)


@st.composite
def good_pos_record(draw: st.DrawFn, number: int) -> Record:
    seconds = draw(st.integers(0, 86_399))
    ts = f"2026-02-03T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"
    return Record({
        "order_id": f"G{number}", "line_no": str(draw(st.integers(1, 99))), "order_ts": ts,
        "store_id": draw(st.from_regex(r"S[0-9]{3}", fullmatch=True)), "channel": draw(st.sampled_from(["store", "online"])),
        "product_id": draw(st.from_regex(r"P[A-Za-z0-9_.]{1,12}", fullmatch=True)),
        "customer_id": draw(st.sampled_from(["", "C1", "C-77"])), "quantity": str(draw(st.integers(0, 500))),
        "unit_price": f"{draw(st.integers(0, 100_000)) / 100:.2f}", "discount": draw(st.sampled_from(["0", "0.1", "0.25", "1"])),
        "currency": "EUR", "status": draw(st.sampled_from(["sold", "returned", "cancelled"])), "updated_at": ts,
    }, must_quarantine=False)


@st.composite
def bad_pos_record(draw: st.DrawFn, number: int) -> Record:
    record = draw(good_pos_record(number))
    cells = dict(record.cells, order_id=f"B{number}")
    fault = draw(st.sampled_from(["any text", "wrong encoding", "formula id", "huge id", "not a number", "field count"]))
    column = draw(st.sampled_from(POS_COLUMNS[1:]))
    if fault == "any text":
        cells[column] = draw(any_text)
        return Record(cells, must_quarantine=False)
    if fault == "wrong encoding":
        cells[column] = cells[column][:3] + WRONG_ENCODING_MARK
    elif fault == "formula id":
        cells[draw(st.sampled_from(["store_id", "product_id", "customer_id"]))] = draw(formula)
    elif fault == "huge id":
        cells["product_id"] = "P" * draw(st.sampled_from([300, 70_000, 1_200_000]))  # the last straddles Arrow's 1 MiB blocks
    elif fault == "not a number":
        cells[draw(st.sampled_from(["quantity", "unit_price", "line_no"]))] = draw(st.sampled_from(["", "two", "1e999x", "--1"]))
    else:
        values = list(cells.values())
        return Record(values[:draw(st.integers(1, 12))] + draw(st.lists(any_text, max_size=3)), must_quarantine=True)
    return Record(cells, must_quarantine=True)


pos_export = st.lists(st.booleans(), min_size=1, max_size=25).flatmap(
    lambda kinds: st.tuples(*[good_pos_record(n) if good else bad_pos_record(n) for n, good in enumerate(kinds)]))


def as_csv(records: tuple[Record, ...], line_end: str) -> bytes:
    """The records as an exporter writes them. Python's writer quotes a field holding the line end
    but not a lone CR when lines end in LF; a CR is a line end to a reader (CR files exist), so a
    record with one is written quoted whole, as every exporter that means one record does."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    quoted = csv.writer(buffer, lineterminator=line_end, quoting=csv.QUOTE_ALL)
    writer.writerow(POS_COLUMNS)
    for record in records:
        cells = list(record.cells.values() if isinstance(record.cells, dict) else record.cells)
        (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)
    return buffer.getvalue().encode("utf-8").replace(WRONG_ENCODING_MARK.encode("utf-8"), "é".encode("latin-1"))


def fresh_env() -> tuple[dict[str, Any], tempfile.TemporaryDirectory]:
    folder = tempfile.TemporaryDirectory()
    return local_resources(Path(folder.name) / "local"), folder


def quarantined_rows(env: dict[str, Any], days: list) -> dict[int, str]:
    """Record number -> reason, over landing quarantine and the days' rejects."""
    with initialized(env["lake"]) as lake:
        landing = read_landing_quarantine(lake).to_pylist()
    found = {r["source_row"]: r["reason"] for r in landing}
    found |= {r["source_row"]: r["reason"] for d in days for r in d.rejects.to_pylist()}
    return found


@FUZZ
@given(pos_export, st.sampled_from(["\n", "\r\n"]))
def test_a_hostile_csv_export_loses_no_good_row_and_quarantines_every_bad_one(records: tuple[Record, ...], line_end: str) -> None:
    env, folder = fresh_env()
    with folder:
        result, days = ingest_one(env, "pos", "export.csv", as_csv(records, line_end))  # (checks both reconcile)
        assert result.unreadable is None and result.rows == len(records)
        clean = {r["order_id"]: r for r in rows(days)}
        quarantined = quarantined_rows(env, days)
        assert len(clean) + len(quarantined) == len(records)  # every record in exactly one place
        assert all(reason for reason in quarantined.values())
        for number, record in enumerate(records, start=1):
            if record.must_quarantine:
                assert number in quarantined, (number, record.cells)
            elif isinstance(record.cells, dict) and record.cells["order_id"].startswith("G"):
                kept = clean[record.cells["order_id"]]  # a good row goes on, exactly as sent
                assert (kept["product_id"], kept["quantity"], f"{kept['unit_price']:.2f}") == (
                    record.cells["product_id"], int(record.cells["quantity"]), record.cells["unit_price"])


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3), max_leaves=10)


@st.composite
def marketplace_line(draw: st.DrawFn, number: int) -> tuple[str, bool | None]:
    """A JSON line, and whether it is good (True), must be quarantined (False) or may be either (None)."""
    good = {"orderNumber": f"M{number}", "lineItem": 1, "placedAt": "2026-02-03T10:00:00Z", "shop": "X", "sku": "P1",
            "buyer": None, "qty": draw(st.integers(0, 9)), "price": 2.5, "discountPct": 0, "currency": "EUR",
            "modifiedAt": "2026-02-03T10:00:00Z"}
    kind = draw(st.sampled_from(["good", "nested", "any value", "broken", "surrogate", "field value"]))
    if kind == "good":
        return json.dumps(good, ensure_ascii=draw(st.booleans())), True
    if kind == "nested":  # an object nested too deep for any parser, or deep enough to strain one
        depth = draw(st.sampled_from([50, 5_000, 200_000]))
        return f'{{"orderNumber": "M{number}", "sku": ' + "[" * depth + "]" * depth + "}", False
    if kind == "any value":  # never a whole order line
        return json.dumps(draw(json_values)), False
    if kind == "broken":
        return json.dumps(good)[: draw(st.integers(1, 40))], False
    if kind == "surrogate":
        return json.dumps(good).replace('"P1"', '"P\\udc80"'), False
    return json.dumps(dict(good, **{draw(st.sampled_from(["qty", "price", "sku"])): draw(json_values)})), None


@FUZZ
@given(st.integers(1, 20).flatmap(lambda n: st.tuples(*[marketplace_line(i) for i in range(n)])))
@example(lines=(("{}", False),))  # found by the fuzzer: a file whose every record is an empty object
@example(lines=(("{}", False), (json.dumps({"orderNumber": "M1"}), False)))
def test_hostile_json_lines_lose_no_good_row_and_quarantine_every_bad_one(lines: tuple[tuple[str, bool | None], ...]) -> None:
    env, folder = fresh_env()
    with folder:
        result, days = ingest_one(env, "marketplace", "export.jsonl", "\n".join(text for text, _ in lines).encode("utf-8"))
        assert result.unreadable is None and result.rows == len(lines)
        clean = {r["order_id"] for r in rows(days)}
        quarantined = quarantined_rows(env, days)
        assert len(clean) + len(quarantined) == len(lines) and all(quarantined.values())
        for number, (_, good) in enumerate(lines, start=1):
            if good:
                assert f"M{number - 1}" in clean
            elif good is False:
                assert number in quarantined


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["good", "formula", "formula-like text"]), formula), min_size=1, max_size=15))
def test_formula_cells_in_an_excel_export_never_reach_the_lake(articles: list[tuple[str, str]]) -> None:
    """A workbook whose article cells hold formulas, or text that starts like one, next to good rows:
    the good rows go on, and no formula reaches the lake as an identifier."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Beleg", "Position", "Datum", "Filiale", "Artikel", "Menge", "Preis", "Rabatt"])
    for number, (kind, text) in enumerate(articles):
        sheet.append([f"R{number}", 1, "03.02.2026 10:00", "7", f"A{number}" if kind == "good" else text, 2, "1,50", "0"])
        if kind == "formula-like text":
            sheet.cell(row=number + 2, column=5).data_type = "s"  # a literal string, not a formula
    buffer = io.BytesIO()
    book.save(buffer)
    env, folder = fresh_env()
    with folder:
        result, days = ingest_one(env, "franchise", "week.xlsx", buffer.getvalue())
        clean = rows(days)
        assert result.rows == len(articles) and len(clean) + len(quarantined_rows(env, days)) == len(articles)
        assert {r["order_id"] for r in clean} == {f"R{n}" for n, (kind, _) in enumerate(articles) if kind == "good"}


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(file_sources()))
def test_random_bytes_never_crash_a_reader_or_an_ingest(data: bytes, spec: SourceSpec) -> None:
    """Every shipped spec's reader, then its ingest path (orders to raw, reference data to its
    dimension): a reason for whatever is not read, and every record counted."""
    try:
        landed = read_landed(data, f"{spec.prefix}x", spec.format)
        assert all(reason for _, reason in landed.broken)
    except UnreadableFile as err:
        assert str(err)  # the whole file's quarantine reason
    env, folder = fresh_env()
    with folder, initialized(env["lake"]) as lake:
        key = f"{spec.prefix}{'2026-02-03/' if spec.dated_folders else ''}fuzz.bin"
        lake.put_bytes(key, data)
        if spec.target == "order_lines":
            result = ingest_object(lake, spec, lake.info(key))
            assert result.rows == sum(result.days.values()) + result.quarantined
        else:
            read = read_snapshots(lake, (spec,))
            rejects = pa.concat_tables(read.rejects) if read.rejects else QUARANTINE.empty_table()
            assert read.rows_in == sum(t.num_rows for t in read.valid) + rejects.num_rows
            assert all(rejects["reason"].to_pylist())
