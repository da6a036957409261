"""Mapping landed text onto the canonical schema, as a source spec declares it (vectorised).

For every canonical column the result holds the parsed values (null where parsing failed), the
text they came from (what quarantine shows) and the reason a null means failure. Validation of
those verdicts lives in ``sales_analytics.lake.coerce``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.schema import WEEKDAYS
from sales_analytics.sources.spec import LANDED_AT, PLACEHOLDER, ROW_NUMBER, ColumnMapping, SourceSpec

Arrays = pa.Array | pa.ChunkedArray
ISO_ZONED = "%Y-%m-%dT%H:%M:%S%z"
ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
_ISO_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_ISO_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
ISO_ZONED_PATTERN = rf"^{_ISO_DATE}[T ]{_ISO_TIME}(Z|[+-]\d{{2}}(:?\d{{2}})?)$"
ISO_NAIVE_PATTERN = rf"^{_ISO_DATE}([T ]{_ISO_TIME})?$"
# At most 15 digits: what a float64 holds exactly (exports write counts as floats); a longer number is a corrupt value.
INTEGER_DIGITS = 15
_INT = rf"^\s*[+-]?0*\d{{1,{INTEGER_DIGITS}}}(\.0*)?\s*$"
_FLOAT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_LEADING_ZEROS = r"(^|\D)0+(\d)"
TRUE_WORDS, FALSE_WORDS = ["true", "t", "yes", "y", "1"], ["false", "f", "no", "n", "0"]


@dataclass(frozen=True)
class Mapped:
    parsed: Arrays  # canonical type; null where the source gave nothing usable
    text: Arrays  # what the source said, shown in quarantine
    why: str  # the reason a null means failure


def _nulls(n: int, kind: pa.DataType | None = None) -> pa.Array:
    return pa.nulls(n, kind or pa.string())


# -- text of a mapped column ------------------------------------------------------------------
def _source_text(landed: pa.Table, name: str) -> Arrays | None:
    if name == ROW_NUMBER:
        return pc.cast(landed["source_row"], pa.string())
    return landed[name] if name in landed.column_names else None


def _text(landed: pa.Table, mapping: ColumnMapping) -> tuple[Arrays | None, str]:
    """The column's text before typing, or None with the reason it is missing."""
    n = landed.num_rows
    if mapping.value is not None:
        return pa.array([mapping.value] * n, pa.string()), ""
    if mapping.from_ is not None:
        text = _source_text(landed, mapping.from_)
        if text is None:
            return None, f"column {mapping.from_!r} missing from the file"
    elif mapping.template is not None:
        text = _template(landed, mapping.template)
        if text is None:
            return None, f"template {mapping.template!r} uses columns missing from the file"
    else:
        return None, ""  # expressions are numeric: see _expression
    if mapping.map:
        keys = pa.array(list(mapping.map), pa.string())
        found = pc.index_in(text, value_set=keys)
        text = pc.if_else(pc.is_valid(found), pc.take(pa.array(list(mapping.map.values()), pa.string()), found), text)
    return text, ""


def _template(landed: pa.Table, template: str) -> Arrays | None:
    parts: list[Arrays | str] = []
    last = 0
    for match in PLACEHOLDER.finditer(template):
        parts.append(template[last:match.start()])
        column = _source_text(landed, match.group(1))
        if column is None:
            return None
        parts.append(column)
        last = match.end()
    parts.append(template[last:])
    arrays = [p if not isinstance(p, str) else pa.array([p] * landed.num_rows, pa.string()) for p in parts if p != ""]
    return pc.binary_join_element_wise(*arrays, "") if len(arrays) > 1 else arrays[0]


# -- typing -----------------------------------------------------------------------------------
def parse_number(text: Arrays, decimal: str = ".") -> Arrays:
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    fast = _cast_if_all_plain(text, pa.float64())
    if fast is not None:
        return fast
    ok = pc.match_substring_regex(text, _FLOAT)
    return pc.if_else(ok, pc.utf8_trim_whitespace(text), pa.scalar(None, pa.string())).cast(pa.float64())


def parse_integer(text: Arrays, decimal: str = ".") -> Arrays:
    """Whole numbers of up to ``INTEGER_DIGITS`` digits, also written as ``3.0`` (exports that store counts as floats)."""
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    fast = _cast_if_all_plain(text, pa.int64())
    if fast is not None and _within_digits(fast):
        return fast
    ok = pc.match_substring_regex(text, _INT)
    return pc.if_else(ok, pc.utf8_trim_whitespace(text), pa.scalar(None, pa.string())).cast(pa.float64()).cast(pa.int64())


def _within_digits(numbers: Arrays) -> bool:
    extremes = pc.min_max(numbers).as_py().values()  # None for a column of nulls
    return all(value is None or abs(value) < 10**INTEGER_DIGITS for value in extremes)


def _cast_if_all_plain(text: Arrays, kind: pa.DataType) -> Arrays | None:
    """Arrow's cast when it takes every value (the usual export), else None for the row-by-row rules above. Only
    values the rules read alike are let through: it refuses padding, and hexadecimal, NaN and infinity are refused here."""
    try:
        cast = pc.cast(text, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pa.types.is_floating(kind):
        return cast if pc.all(pc.is_finite(cast)).as_py() else None
    return None if pc.any(pc.match_substring(text, "x", ignore_case=True)).as_py() else cast


def _strict_strptime(text: Arrays, fmt: str) -> Arrays:
    """strptime that refuses impossible dates (it rolls Feb 31st over to March)."""
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    if "%z" in fmt:
        return parsed
    again = pc.strftime(parsed.cast(pa.timestamp("s")), format=fmt)  # %S of a µs timestamp adds a fraction
    same = pc.equal(pc.replace_substring_regex(again, _LEADING_ZEROS, r"\1\2"),
                    pc.replace_substring_regex(pc.utf8_trim_whitespace(text), _LEADING_ZEROS, r"\1\2"))
    return pc.if_else(pc.fill_null(same, False), parsed, pa.scalar(None, parsed.type))


def parse_timestamp(text: Arrays, fmt: str | None, zone: str) -> Arrays:
    """To UTC. Values without a zone are read in the source's ``zone``."""
    text = pc.utf8_trim_whitespace(text)
    if fmt is not None and "%z" in fmt:
        return _strict_strptime(text, fmt).cast(pa.timestamp("us", tz="UTC"))
    if fmt is not None:
        return _assume_zone(_strict_strptime(text, fmt), zone)
    # ISO 8601 through Arrow's cast (fast, strict): zoned values first, then the rest as local
    # times, and strptime only for what neither pattern takes (or an impossible day).
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    parsed = _cast_matching(text, ISO_ZONED_PATTERN, pa.timestamp("us", tz="UTC"))
    left = pc.and_(pc.is_null(parsed), pc.is_valid(text))
    if not pc.any(left).as_py():
        return parsed
    rest = text.filter(left)
    rest_parsed = _assume_zone(_cast_matching(rest, ISO_NAIVE_PATTERN, pa.timestamp("us")), zone)
    if rest_parsed.null_count:
        rest_parsed = pc.coalesce(rest_parsed, _strptime_iso(rest, zone))
    return pc.replace_with_mask(parsed, left, rest_parsed)


def _cast_matching(text: pa.Array, pattern: str, kind: pa.DataType) -> pa.Array:
    """Arrow's ISO 8601 cast of the values that match ``pattern`` (nulls elsewhere)."""
    try:
        return pc.cast(text, kind)  # the usual case: every value is well-formed
    except pa.ArrowInvalid:
        pass
    matches = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    try:
        return pc.cast(pc.if_else(matches, text, pa.scalar(None, pa.string())), kind)
    except pa.ArrowInvalid:  # an impossible day (Feb 30th) matches the pattern: leave those out
        real_day = pc.fill_null(_is_real_day(pc.utf8_slice_codeunits(text, 0, 10)), False)
        return pc.cast(pc.if_else(pc.and_(matches, real_day), text, pa.scalar(None, pa.string())), kind)


def _is_real_day(day_text: Arrays) -> Arrays:
    """``YYYY-MM-DD`` names a day that exists (strptime rolls Feb 30th over; the round trip shows it)."""
    day = pc.strptime(day_text, format="%Y-%m-%d", unit="s", error_is_null=True)
    return pc.equal(pc.strftime(day, format="%Y-%m-%d"), day_text)


def _strptime_iso(text: Arrays, zone: str) -> Arrays:
    text = pc.replace_substring_regex(text, r"(\d{2}:\d{2}:\d{2})\.\d+", r"\1")  # strptime has no fractions
    parsed = _iso(text, ISO_ZONED).cast(pa.timestamp("us", tz="UTC"))
    for naive_format in ISO_NAIVE:  # each later form only for what the earlier ones left unparsed
        if parsed.null_count == text.null_count:
            break
        parsed = pc.coalesce(parsed, _assume_zone(_iso(text, naive_format), zone))
    return parsed


def _iso(text: Arrays, fmt: str) -> Arrays:
    """ISO forms are zero-padded, so an impossible day (Feb 30th, rolled over by strptime) shows
    as a changed YYYY-MM-DD prefix; for zoned forms the prefix is checked on its own."""
    parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
    day_text = pc.utf8_slice_codeunits(text, 0, 10)
    if "%z" in fmt:  # the local day before conversion: re-parse the prefix on its own
        same_day = _is_real_day(day_text)
    else:
        same_day = pc.equal(pc.strftime(parsed.cast(pa.timestamp("s")), format="%Y-%m-%d"), day_text)
    return pc.if_else(pc.fill_null(same_day, False), parsed, pa.scalar(None, parsed.type))


def _assume_zone(naive: Arrays, zone: str) -> Arrays:
    # Nonexistent/ambiguous local times (DST changes) resolve to the earliest instant, not an error.
    localized = pc.assume_timezone(naive, timezone=zone, ambiguous="earliest", nonexistent="earliest")
    return localized.cast(pa.timestamp("us", tz="UTC"))


def parse_date(text: Arrays, fmt: str | None) -> Arrays:
    return _strict_strptime(pc.utf8_trim_whitespace(text), fmt or "%Y-%m-%d").cast(pa.date32())


def parse_bool(text: Arrays) -> Arrays:
    words = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    known = pc.is_in(words, value_set=pa.array(TRUE_WORDS + FALSE_WORDS))
    return pc.if_else(known, pc.is_in(words, value_set=pa.array(TRUE_WORDS)), pa.scalar(None, pa.bool_()))


def local_date(utc: Arrays, zone: str) -> Arrays:
    """The calendar date in the source's zone: the business date a store reports."""
    return pc.local_timestamp(utc.cast(pa.timestamp("us", tz=zone))).cast(pa.date32())


def _typed(text: Arrays, kind: str, mapping: ColumnMapping, zone: str) -> tuple[Arrays, str]:
    if kind == "string":
        trimmed = pc.utf8_trim_whitespace(text)
        return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed), "missing value"
    if kind == "int64":
        return parse_integer(text, mapping.decimal), "not a whole number"
    if kind == "float64":
        return parse_number(text, mapping.decimal), "not a number"
    if kind == "timestamp":
        return parse_timestamp(text, mapping.format, zone), f"not a timestamp{f' ({mapping.format})' if mapping.format else ''}"
    if kind == "date":
        return parse_date(text, mapping.format), f"not a date ({mapping.format or '%Y-%m-%d'})"
    if kind == "bool":
        return parse_bool(text), f"not a boolean (one of {'/'.join(TRUE_WORDS + FALSE_WORDS)})"
    raise ValueError(f"no parser for {kind}")


# -- expressions ------------------------------------------------------------------------------
SIGNIFICANT_DIGITS = 12
_OPERATORS: dict[type, Callable] = {ast.Add: pc.add, ast.Sub: pc.subtract, ast.Mult: pc.multiply, ast.Div: pc.divide}


def _expression(landed: pa.Table, mapping: ColumnMapping) -> tuple[Arrays | None, Arrays | None, str]:
    """Evaluate ``{A} / {B} * (1 - {C})`` over numeric source columns; non-finite results are nulls."""
    assert mapping.expr is not None
    names = PLACEHOLDER.findall(mapping.expr)
    source = PLACEHOLDER.sub(lambda m: f"_c{names.index(m.group(1))}", mapping.expr)
    columns = [_source_text(landed, name) for name in names]
    if any(c is None for c in columns):
        return None, None, f"expression {mapping.expr!r} uses columns missing from the file"
    values = {f"_c{i}": parse_number(c, mapping.decimal) for i, c in enumerate(columns)}
    result = _decimal(_evaluate(ast.parse(source, mode="eval").body, values))
    result = pc.if_else(pc.is_finite(result), result, pa.scalar(None, pa.float64()))
    shown = pc.binary_join_element_wise(*[pc.fill_null(c, "") for c in columns], "|") if len(columns) > 1 else columns[0]
    return result, shown, f"expression {mapping.expr} has no finite value"


def _decimal(values: Arrays) -> Arrays:
    """Float results at ``SIGNIFICANT_DIGITS``: arithmetic on decimal inputs gives the decimal answer
    (24593.16 * 100 is 2459316, not 2459315.9999999995), far beyond any amount's precision."""
    magnitude = pc.floor(pc.log10(pc.abs(values)))
    scale = pc.power(10.0, pc.subtract(SIGNIFICANT_DIGITS - 1, pc.fill_null(magnitude, 0)))
    scale = pc.if_else(pc.is_finite(scale), scale, pa.scalar(1.0))  # zero: log10 is -inf
    return pc.divide(pc.round(pc.multiply(values, scale)), scale)


def _evaluate(node: ast.AST, values: dict[str, Arrays]) -> Arrays:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        return _OPERATORS[type(node.op)](pc.cast(left, pa.float64()), pc.cast(right, pa.float64()))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return pc.negate(_evaluate(node.operand, values))
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return pa.scalar(float(node.value))
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    raise ValueError(f"unsupported expression element: {ast.dump(node)[:60]}")


# -- the whole row ----------------------------------------------------------------------------
def map_rows(landed: pa.Table, spec: SourceSpec) -> dict[str, Mapped]:
    """Every canonical column of the spec's table, mapped from one landed file's rows."""
    n, table = landed.num_rows, spec.table
    mapped: dict[str, Mapped] = {}
    for column in table.columns:
        mapping = spec.columns.get(column.name)
        if mapping is None:
            continue
        if mapping.expr is not None:
            parsed, text, why = _expression(landed, mapping)
            if parsed is None:
                parsed, text = _nulls(n, pa.float64()), _nulls(n)
            if column.type == "int64":
                parsed = pc.if_else(pc.equal(pc.round(parsed), parsed), parsed, pa.scalar(None, pa.float64())).cast(pa.int64())
                why = f"expression {mapping.expr} gives no whole number"
            mapped[column.name] = Mapped(parsed, text, why)
            continue
        text, missing = _text(landed, mapping)
        if text is None:
            mapped[column.name] = Mapped(_nulls(n, table.arrow_schema().field(column.name).type), _nulls(n), missing)
            continue
        parsed, why = _typed(text, column.type, mapping, spec.timezone)
        mapped[column.name] = Mapped(parsed, text, why)
    if spec.target == "order_lines":
        _derive_order_columns(landed, spec, mapped)
    return mapped


def _derive_order_columns(landed: pa.Table, spec: SourceSpec, mapped: dict[str, Mapped]) -> None:
    """Lineage, business date, default status/updated_at, and the spec's change rules."""
    n = landed.num_rows
    mapped["source"] = Mapped(pa.array([spec.name] * n, pa.string()), _nulls(n), "")
    mapped["source_file"] = Mapped(landed["source_file"], landed["source_file"], "missing source file")
    order_ts = mapped["order_ts"].parsed
    mapped["order_date"] = _order_date(local_date(order_ts, spec.timezone), spec, mapped["order_ts"].text)
    if "updated_at" not in mapped:  # no change timestamp: the later delivery wins (then the later key)
        landed_at = landed[LANDED_AT] if LANDED_AT in landed.column_names else pa.nulls(n, order_ts.type)
        mapped["updated_at"] = Mapped(pc.coalesce(landed_at, order_ts), mapped["order_ts"].text, "not a timestamp")
    if "status" not in mapped:
        mapped["status"] = Mapped(pa.array(["sold"] * n, pa.string()), _nulls(n), "")
    mapped["status"] = Mapped(_line_kind(landed, spec, mapped), mapped["status"].text, mapped["status"].why)


def _order_date(days: Arrays, spec: SourceSpec, said: Arrays) -> Mapped:
    """The business date; for a source that reports weeks, only its anchor weekday is a date it can send."""
    if spec.week_anchor is None:
        return Mapped(days, _nulls(len(days)), "no order date without order_ts")
    on_anchor = pc.equal(pc.day_of_week(days), WEEKDAYS.index(spec.week_anchor))
    return Mapped(pc.if_else(on_anchor, days, pa.scalar(None, pa.date32())), said,
                  f"not a {spec.week_anchor}: {spec.name} reports weeks dated by their {spec.week_anchor}")


def _line_kind(landed: pa.Table, spec: SourceSpec, mapped: dict[str, Mapped]) -> Arrays:
    """The status the spec's change rules give each line; a reversal's quantity is stored positive."""
    changes, status, quantity = spec.changes, mapped["status"].parsed, mapped["quantity"].parsed
    sold = pc.equal(status, "sold")
    if changes.original_order and (reference := _source_text(landed, changes.original_order)) is not None:
        names_order = pc.invert(pc.equal(pc.fill_null(pc.utf8_trim_whitespace(reference), ""), ""))
        status = pc.if_else(pc.and_(sold, names_order), pa.scalar("refund"), status)
    negative = pc.fill_null(pc.less(quantity, 0), False)
    if changes.negative_quantity != "invalid":
        status = pc.if_else(pc.and_(negative, pc.equal(status, "sold")), pa.scalar(changes.negative_quantity), status)
    price = mapped["unit_price"].parsed
    negative_price = pc.fill_null(pc.less(price, 0), False)
    if changes.negative_price == "refund":
        status = pc.if_else(pc.and_(negative_price, pc.equal(status, "sold")), pa.scalar("refund"), status)
    for column, prefix in (changes.cancellation_prefix or {}).items():
        text = _source_text(landed, column)
        if text is not None:
            status = pc.if_else(pc.fill_null(pc.starts_with(text, prefix), False), pa.scalar("cancellation"), status)
    reversal = pc.is_in(status, value_set=pa.array(["refund", "cancellation"]))
    mapped["quantity"] = Mapped(pc.if_else(pc.and_(reversal, negative), pc.negate(quantity), quantity),
                                mapped["quantity"].text, mapped["quantity"].why)
    mapped["unit_price"] = Mapped(pc.if_else(pc.and_(reversal, negative_price), pc.negate(price), price),
                                  mapped["unit_price"].text, mapped["unit_price"].why)
    return status


def order_days(landed: pa.Table, spec: SourceSpec) -> Arrays:
    """Business date per row (null where order_ts does not parse): the raw shard a row goes to."""
    mapping = spec.columns["order_ts"]
    text, _ = _text(landed, mapping)
    if text is None:
        return _nulls(landed.num_rows, pa.date32())
    return local_date(parse_timestamp(text, mapping.format, spec.timezone), spec.timezone)
