"""Arrow table helpers shared by the lake, the clean zone and the stores."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def split_by(table: pa.Table, column: str) -> dict[Any, pa.Table]:
    """The table's rows grouped by one column's value, in one sort (not one filter per value).

    Row order within a group is kept (the sort is stable); nulls form a group under ``None``.
    """
    if table.num_rows == 0:
        return {}
    values = table[column].combine_chunks()
    ordered = table if _is_sorted(values) else table.take(pc.sort_indices(table, sort_keys=[(column, "ascending", "at_end")]))
    runs = pc.run_end_encode(ordered[column].combine_chunks())
    groups, start = {}, 0
    for value, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        groups[value] = ordered.slice(start, end - start)
        start = end
    return groups


def with_constants(rows: pa.Table, values: dict[str, object]) -> pa.Table:
    """``rows`` with one more column per value, the same on every row (times as UTC timestamps,
    dates as date32, else text)."""
    for name, value in values.items():
        kind = (pa.timestamp("us", tz="UTC") if isinstance(value, dt.datetime)
                else pa.date32() if isinstance(value, dt.date) else pa.string())
        rows = rows.append_column(name, pa.repeat(pa.scalar(value, kind), rows.num_rows))
    return rows


def _is_sorted(values: pa.Array) -> bool:
    """Ascending without nulls: the common case after a sort by key, where re-sorting is a wasted copy."""
    if values.null_count or len(values) < 2:
        return values.null_count == 0
    return pc.all(pc.less_equal(values.slice(0, len(values) - 1), values.slice(1))).as_py()


def shifted(column: pa.ChunkedArray | pa.Array, by: int) -> pa.Array:
    """The previous row's values (by=1) or the next row's (by=-1), null at the edge."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if by > 0:
        return pa.concat_arrays([pa.nulls(1, array.type), array[:-1]])
    return pa.concat_arrays([array[1:], pa.nulls(1, array.type)])


def same_as_neighbour(rows: pa.Table, columns: list[str], by: int) -> pa.Array:
    """True where every one of ``columns`` equals the neighbouring row's (previous: by=1, next: by=-1).

    On rows sorted by those columns, its negation marks the first row of each group: a sort and
    neighbour comparisons, cheaper than hashing string keys. Nulls equal each other (a sort puts them
    together: a key column may be optional, like a signal's store)."""
    has_neighbour = np.ones(rows.num_rows, bool)
    if rows.num_rows:
        has_neighbour[0 if by > 0 else -1] = False
    same = pa.array(has_neighbour)
    for column in columns:
        values, neighbours = rows[column], shifted(rows[column], by)
        equal = pc.fill_null(pc.equal(values, neighbours), False)
        if values.null_count:
            equal = pc.if_else(pc.is_null(values), pc.is_null(neighbours), equal)
        same = pc.and_(same, equal)
    return same
