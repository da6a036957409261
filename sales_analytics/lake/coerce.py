"""Validating mapped rows against the canonical schema, with a verdict per row (vectorised).

A row is valid when every canonical column parsed and passes its domain rule; otherwise it is
rejected with the first failing column, the value the source sent and the reason. Nothing is
dropped silently: ``CoercionResult`` holds both sides and the counts add up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sales_analytics.schema import CHANNELS, ORDER_STATUSES, QUARANTINE, TableSpec
from sales_analytics.sources.mapping import Arrays, Mapped

# Domain rules beyond the type: column -> (predicate on the typed array, reason).
DomainRule = tuple[Callable[[Arrays], Arrays], str]
DOMAIN_RULES: dict[str, DomainRule] = {
    "quantity": (lambda a: pc.greater_equal(a, 0), "negative quantity"),
    "unit_price": (lambda a: pc.greater_equal(a, 0), "negative unit price"),
    "discount": (lambda a: pc.and_(pc.greater_equal(a, 0), pc.less_equal(a, 1)), "discount outside 0..1"),
    "status": (lambda a: pc.is_in(a, value_set=pa.array(ORDER_STATUSES)), f"status not one of {ORDER_STATUSES}"),
    "channel": (lambda a: pc.is_in(a, value_set=pa.array(CHANNELS)), f"channel not one of {CHANNELS}"),
    "rating": (lambda a: pc.and_(pc.greater_equal(a, 1), pc.less_equal(a, 5)), "rating outside 1..5"),
}
MAX_IDENTIFIER = 256
FORMULA_STARTS = pa.array(["=", "+", "-", "@", "\t", "\r"])
# Identifiers (every ``*_id`` text column) end up in reports people open in spreadsheets: a code that
# starts like a formula (CSV/formula injection) or runs to pages is garbage, not an identifier.
IDENTIFIER_RULES: tuple[DomainRule, ...] = (
    (lambda a: pc.invert(pc.is_in(pc.utf8_slice_codeunits(a, 0, 1), value_set=FORMULA_STARTS)),
     "starts like a spreadsheet formula (=, +, -, @, tab, CR): not an identifier"),
    (lambda a: pc.less_equal(pc.utf8_length(a), MAX_IDENTIFIER), f"longer than {MAX_IDENTIFIER} characters: not an identifier"),
)
MAX_SHOWN_VALUE = 200  # characters of a rejected value kept in quarantine: enough to see it, bounded


@dataclass(frozen=True)
class CoercionResult:
    valid: pa.Table  # the table spec's schema, only rows that passed
    rejects: pa.Table  # QUARANTINE schema, one row per rejected input row


def validate(mapped: dict[str, Mapped], spec: TableSpec, lineage: pa.Table, partition_day: Arrays | None = None) -> CoercionResult:
    """Split mapped rows into valid ones and quarantine rows (``lineage``: source, source_file, source_row).

    ``partition_day`` is the partition each row is accounted to (quarantine rows included)."""
    n = lineage.num_rows
    reason, column, value = pa.nulls(n, pa.string()), pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
    typed: dict[str, Arrays] = {}
    for col in spec.columns:
        kind = spec.arrow_schema().field(col.name).type
        m = mapped.get(col.name) or Mapped(pa.nulls(n, kind), pa.nulls(n, pa.string()), "no mapping in the source spec")
        for rule in _rules(col.name, col.type):  # a null breaks no rule: it fails (or passes) as a null below
            broken = pc.invert(pc.fill_null(rule[0](m.parsed), True))
            reason, column, value = _first_failure(reason, column, value, broken, rule[1], col.name, m)
        if m.parsed.null_count:
            failed = pc.is_null(m.parsed)
            if col.nullable:  # empty text in a nullable column is a legitimate null, not a failure
                failed = pc.and_(failed, pc.invert(pc.equal(pc.fill_null(pc.utf8_trim_whitespace(m.text), ""), "")))
            reason, column, value = _first_failure(reason, column, value, failed, m.why, col.name, m)
        typed[col.name] = m.parsed
    ok = pc.is_null(reason)
    valid = pa.table(typed).filter(ok).cast(spec.arrow_schema())
    bad = pc.invert(ok)
    order_date = partition_day if partition_day is not None else typed.get("order_date", pa.nulls(n, pa.date32()))
    rejects = pa.table({
        "order_date": pc.filter(order_date, bad),
        "source": lineage["source"].filter(bad),
        "source_file": lineage["source_file"].filter(bad),
        "source_row": lineage["source_row"].filter(bad),
        "column": column.filter(bad),
        "value": value.filter(bad),
        "reason": reason.filter(bad),
    }).cast(QUARANTINE.arrow_schema())
    return CoercionResult(valid=valid, rejects=rejects)


def _rules(name: str, kind: str) -> tuple[DomainRule, ...]:
    own = (DOMAIN_RULES[name],) if name in DOMAIN_RULES else ()
    return own + (IDENTIFIER_RULES if kind == "string" and name.endswith("_id") else ())


def _first_failure(reason: Arrays, column: Arrays, value: Arrays, mask: Arrays, why: str, name: str,
                   mapped: Mapped) -> tuple[Arrays, Arrays, Arrays]:
    """Note the first failure per row: later columns do not overwrite an earlier verdict."""
    if not pc.any(mask).as_py():
        return reason, column, value  # the common case: nothing failed here
    new = pc.and_(pc.fill_null(mask, False), pc.is_null(reason))
    if not pc.any(new).as_py():
        return reason, column, value  # these rows had failed already
    shown = pc.if_else(pc.is_valid(mapped.text), mapped.text, pc.cast(mapped.parsed, pa.string()))
    shown = pc.utf8_slice_codeunits(shown, 0, MAX_SHOWN_VALUE)
    return (
        pc.if_else(new, pa.scalar(why), reason),
        pc.if_else(new, pa.scalar(name), column),
        pc.if_else(new, shown, value),
    )


def quarantine_rows(source: str, source_file: str, rows: list[int], reasons: list[str],
                    columns: list[str | None] | None = None, values: list[str | None] | None = None) -> pa.Table:
    """Quarantine rows for records of one file that never became typed rows (unreadable, unsplit,
    undecodable, no order time): no partition day; column and value where known."""
    n = len(rows)
    return pa.table({
        "order_date": pa.nulls(n, pa.date32()),
        "source": pa.array([source] * n, pa.string()),
        "source_file": pa.array([source_file] * n, pa.string()),
        "source_row": pa.array(rows, pa.int64()),
        "column": pa.array(columns or [None] * n, pa.string()),
        "value": pa.array(values or [None] * n, pa.string()),
        "reason": pa.array(reasons, pa.string()),
    }).cast(QUARANTINE.arrow_schema())


def unsplit_records(source: str, source_file: str, broken: list[tuple[int, str]]) -> pa.Table:
    """Quarantine rows for the records a reader could not split into columns (or decode)."""
    return quarantine_rows(source, source_file, [number for number, _ in broken], [reason for _, reason in broken])
