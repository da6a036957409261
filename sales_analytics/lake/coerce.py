"""Typing landed text into the canonical schema, row by row verdicts, fully vectorised.

A landed row is valid when every canonical column parses and passes its domain rule; otherwise
it is rejected with the first failing column, its value and a reason. Nothing is dropped
silently: ``CoercionResult`` holds both sides and the counts add up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.schema import CHANNELS, ORDER_STATUSES, TableSpec

Arrays = pa.Array | pa.ChunkedArray
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601 with a zone (Z or ±hh:mm)
_INT = r"^\s*[+-]?\d+\s*$"
_FLOAT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
REJECT_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("source_row", pa.int64()), ("column", pa.string()),
     ("value", pa.string()), ("reason", pa.string())]
)

# Domain rules beyond the type: column -> (predicate on the typed array, reason).
DomainRule = tuple[Callable[[pa.Array], pa.Array], str]
DOMAIN_RULES: dict[str, DomainRule] = {
    "quantity": (lambda a: pc.greater_equal(a, 0), "negative quantity"),
    "unit_price": (lambda a: pc.greater_equal(a, 0), "negative unit price"),
    "discount": (lambda a: pc.and_(pc.greater_equal(a, 0), pc.less_equal(a, 1)), "discount outside 0..1"),
    "status": (lambda a: pc.is_in(a, value_set=pa.array(ORDER_STATUSES)), f"status not one of {ORDER_STATUSES}"),
    "channel": (lambda a: pc.is_in(a, value_set=pa.array(CHANNELS)), f"channel not one of {CHANNELS}"),
}


@dataclass(frozen=True)
class CoercionResult:
    valid: pa.Table  # canonical types, only rows that passed
    rejects: pa.Table  # REJECT_SCHEMA, one row per rejected input row


def parse_timestamps(text: pa.ChunkedArray | pa.Array) -> pa.Array:
    """ISO 8601 timestamps with a zone to UTC; anything else becomes null."""
    parsed = pc.strptime(text, format=TIMESTAMP_FORMAT, unit="us", error_is_null=True)
    valid_day = pc.is_valid(parse_dates(pc.utf8_slice_codeunits(text, 0, 10)))
    return pc.if_else(valid_day, parsed, pa.scalar(None, parsed.type)).cast(pa.timestamp("us", tz="UTC"))


def parse_dates(text: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` to dates; impossible dates (Feb 31st), which strptime rolls over, become null."""
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    round_trip = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
    return pc.if_else(pc.fill_null(round_trip, False), parsed, pa.scalar(None, parsed.type)).cast(pa.date32())


def _parse(text: pa.ChunkedArray, logical_type: str) -> tuple[pa.ChunkedArray | pa.Array, str]:
    """(typed values with null where unparseable, reason used for those nulls)."""
    stripped = pc.utf8_trim_whitespace(text)
    if logical_type == "string":
        return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped), "missing value"
    if logical_type == "int64":
        ok = pc.match_substring_regex(text, _INT)
        return pc.if_else(ok, stripped, pa.scalar(None, pa.string())).cast(pa.int64()), "not an integer"
    if logical_type == "float64":
        ok = pc.match_substring_regex(text, _FLOAT)
        return pc.if_else(ok, stripped, pa.scalar(None, pa.string())).cast(pa.float64()), "not a number"
    if logical_type == "timestamp":
        return parse_timestamps(stripped), "not an ISO 8601 timestamp with zone"
    if logical_type == "date":
        return parse_dates(stripped), "not a YYYY-MM-DD date"
    raise ValueError(f"no parser for {logical_type}")


def coerce(raw: pa.Table, spec: TableSpec, derived: dict[str, pa.Array] | None = None) -> CoercionResult:
    """Type ``raw`` (all-string columns plus ``source_file``/``source_row``) into ``spec``.

    ``derived`` supplies canonical columns computed from others (e.g. order_date from order_ts);
    they are checked like parsed ones.
    """
    n = raw.num_rows
    reason = pa.nulls(n, pa.string())
    column = pa.nulls(n, pa.string())
    value = pa.nulls(n, pa.string())
    typed: dict[str, pa.Array] = {}
    derived = derived or {}
    for col in spec.columns:
        if col.name in derived:
            parsed, why, text = derived[col.name], "cannot be derived", pa.nulls(n, pa.string())
        elif col.name in raw.column_names:
            text = raw[col.name]
            parsed, why = _parse(text, col.type)
        else:
            parsed, why, text = pa.nulls(n, _arrow_type(spec, col.name)), "column missing from the file", pa.nulls(n, pa.string())
        failed = pc.is_null(parsed)
        if col.nullable:
            # Empty text in a nullable column is a legitimate null, not a failure.
            failed = pc.and_(failed, pc.invert(pc.equal(pc.fill_null(pc.utf8_trim_whitespace(text), ""), "")))
        rule = DOMAIN_RULES.get(col.name)
        if rule is not None:
            broken = pc.and_(pc.is_valid(parsed), pc.invert(pc.fill_null(rule[0](parsed), False)))
            reason, column, value = _record(reason, column, value, broken, rule[1], col.name, text, parsed)
        reason, column, value = _record(reason, column, value, failed, why, col.name, text, parsed)
        typed[col.name] = parsed
    ok = pc.is_null(reason)
    valid = pa.table(typed).filter(ok).cast(spec.arrow_schema())
    bad = pc.invert(ok)
    rejects = pa.table(
        {
            "source_file": raw["source_file"].filter(bad),
            "source_row": raw["source_row"].filter(bad),
            "column": column.filter(bad),
            "value": value.filter(bad),
            "reason": reason.filter(bad),
        },
        schema=REJECT_SCHEMA,
    )
    return CoercionResult(valid=valid, rejects=rejects)


def _arrow_type(spec: TableSpec, name: str) -> pa.DataType:
    return spec.arrow_schema().field(name).type


def _record(reason: Arrays, column: Arrays, value: Arrays, mask: Arrays, why: str, name: str, text: Arrays,
            parsed: Arrays) -> tuple[Arrays, Arrays, Arrays]:
    """Note the first failure per row: later columns do not overwrite an earlier verdict."""
    new = pc.and_(pc.fill_null(mask, False), pc.is_null(reason))
    shown = pc.if_else(pc.is_valid(text), text, pc.cast(parsed, pa.string()))
    return (
        pc.if_else(new, pa.scalar(why), reason),
        pc.if_else(new, pa.scalar(name), column),
        pc.if_else(new, shown, value),
    )
