"""Arrow table helpers shared by the lake, the clean zone and the stores."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def split_by(table: pa.Table, column: str) -> dict[Any, pa.Table]:
    """The table's rows grouped by one column's value, in one sort (not one filter per value).

    Row order within a group is kept (the sort is stable); nulls form a group under ``None``.
    """
    if table.num_rows == 0:
        return {}
    ordered = table.take(pc.sort_indices(table, sort_keys=[(column, "ascending", "at_end")]))
    runs = pc.run_end_encode(ordered[column].combine_chunks())
    groups, start = {}, 0
    for value, end in zip(runs.values.to_pylist(), runs.run_ends.to_pylist(), strict=True):
        groups[value] = ordered.slice(start, end - start)
        start = end
    return groups
