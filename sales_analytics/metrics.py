"""The sales measures, defined once: every report, the curated series, the dashboards and the API use these.

A clean order line is one of five kinds, its ``status``. Quantities are stored positive; the
status says which way a line counts:

- ``sold``: a sale that stands;
- ``returned``: a sale whose goods came back (the same line, its status changed later);
- ``cancelled``: a sale cancelled before it counted (the same line): it counts nowhere;
- ``refund``: a separate line giving back goods of an earlier sale (e.g. a negative quantity);
- ``cancellation``: a separate document cancelling an earlier sale (e.g. an invoice numbered C...).

A refund or cancellation counts on its own date: a report of a day shows what happened that day.
Money is summed per currency only; amounts are rounded to cents once, after summing, an exact half
cent away from zero.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

LINE_STATUSES = ("sold", "returned", "cancelled", "refund", "cancellation")
SALE_STATUSES = ("sold", "returned")  # the goods were sold on the line's date
RETURN_STATUSES = ("returned", "refund")  # goods came back
CANCELLATION_STATUSES = ("cancellation",)  # an earlier sale undone by a document of its own
REVERSAL_STATUSES = ("refund", "cancellation")  # separate lines that take value away

MONEY_DECIMALS = 2
SCORE_DECIMALS = 4
# Each measure and its one definition (the reports' column descriptions and the README's table).
MEASURES: dict[str, str] = {
    "orders": "distinct orders with a sale line (sold or returned)",
    "units_sold": "units of sale lines, less units returned and units cancelled by a cancellation line",
    "units_returned": "units of returned lines and refund lines",
    "gross_sales": "quantity x unit price of sale lines",
    "discounts": "the discounted part of gross_sales",
    "returns_value": "net value (after discount) of returned lines and refund lines",
    "cancellations": "net value (after discount) of cancellation lines",
    "net_sales": "gross_sales - discounts - returns_value - cancellations",
}
COST_MEASURES: dict[str, str] = {
    "costed_sales": "net_sales of the lines whose product has a unit cost; null if none has",
    "margin": "costed_sales less those lines' net units x unit cost",
}
LINE_INPUT = ["order_id", "status", "quantity", "unit_price", "discount"]  # what the measures read of a line
_SUMMED = ["units_sold", "units_returned", "gross_sales", "discounts", "returns_value", "cancellations"]


def line_measures(lines: pa.Table, keep: list[str], date_column: str = "order_date") -> pa.Table:
    """Every counting line as additive measures, with ``sale_date`` and the ``keep`` columns to group by.

    With ``COST_MEASURES`` when the lines carry ``unit_cost`` (null where a product has none)."""
    counted = lines.filter(pc.invert(pc.equal(lines["status"], "cancelled")))
    status = counted["status"]
    sale, returns = _is_in(status, SALE_STATUSES), _is_in(status, RETURN_STATUSES)
    cancellation = _is_in(status, CANCELLATION_STATUSES)
    quantity = pc.cast(counted["quantity"], pa.float64())
    value = pc.multiply(quantity, counted["unit_price"])
    net_value = pc.subtract(value, pc.multiply(value, counted["discount"]))
    # A line's sign in net figures: +1 sold, 0 returned (sold and given back), -1 refund or cancellation.
    sign = pc.subtract(pc.cast(pc.equal(status, "sold"), pa.int64()), pc.cast(_is_in(status, REVERSAL_STATUSES), pa.int64()))
    zero = pa.scalar(0.0)
    measures = {
        "sale_date": counted[date_column],
        **{column: counted[column] for column in keep},
        "order_id": pc.if_else(sale, counted["order_id"], pa.scalar(None, pa.string())),
        "units_sold": pc.multiply(counted["quantity"], sign),
        "units_returned": pc.if_else(returns, counted["quantity"], pa.scalar(0, pa.int64())),
        "gross_sales": pc.if_else(sale, value, zero),
        "discounts": pc.if_else(sale, pc.subtract(value, net_value), zero),
        "returns_value": pc.if_else(returns, net_value, zero),
        "cancellations": pc.if_else(cancellation, net_value, zero),
    }
    if "unit_cost" in counted.column_names:
        costed = pc.is_valid(counted["unit_cost"])
        signed = pc.cast(sign, pa.float64())
        no_cost = pa.scalar(None, pa.float64())
        margin = pc.subtract(net_value, pc.multiply(quantity, counted["unit_cost"]))
        measures["costed_sales"] = pc.if_else(costed, pc.multiply(net_value, signed), no_cost)
        measures["margin"] = pc.if_else(costed, pc.multiply(margin, signed), no_cost)
    return pa.table(measures)


def aggregate_measures(measures: pa.Table, keys: list[str]) -> dict[str, pa.Array]:
    """``MEASURES`` (and ``COST_MEASURES`` when present) per ``keys``, keys first, money in cents.

    A group with no costed line has null cost measures."""
    costs = [c for c in COST_MEASURES if c in measures.column_names]
    grouped = measures.group_by(keys, use_threads=False).aggregate(
        [("order_id", "count_distinct"), *((c, "sum") for c in [*_SUMMED, *costs])])
    summed = {c: grouped[f"{c}_sum"] for c in [*_SUMMED, *costs]}
    net = pc.subtract(pc.subtract(pc.subtract(summed["gross_sales"], summed["discounts"]), summed["returns_value"]),
                      summed["cancellations"])
    return {
        **{key: grouped[key] for key in keys},
        "orders": grouped["order_id_count_distinct"],
        "units_sold": summed["units_sold"],
        "units_returned": summed["units_returned"],
        **{c: money(summed[c]) for c in ("gross_sales", "discounts", "returns_value", "cancellations")},
        "net_sales": money(net),
        **{c: money(summed[c]) for c in costs},
    }


def money(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Amounts in cents, an exact half cent away from zero. A float sum lands a hair either side of
    a half cent (312.975 as 312.97499999...); a nudge far below a cent and far above float noise
    puts it back on the side the exact amount is on."""
    nudge = pc.multiply(pc.sign(values), pc.add(pc.multiply(pc.abs(values), 1e-12), 1e-9))
    return pc.round(pc.add(values, nudge), MONEY_DECIMALS, round_mode="half_towards_infinity")


def rounded_score(value: float) -> float:
    """A model score, ratio or share as a person reads it in metadata: 4 decimals, not float noise."""
    return round(float(value), SCORE_DECIMALS)


def net_units(lines: pa.Table) -> int:
    """``units_sold`` of a set of lines: the reconciliation figure of a report's checks."""
    return pc.sum(line_measures(lines.select([*LINE_INPUT, "order_date"]), [])["units_sold"]).as_py() or 0


def _is_in(values: pa.ChunkedArray | pa.Array, statuses: tuple[str, ...]) -> pa.ChunkedArray | pa.Array:
    return pc.is_in(values, value_set=pa.array(statuses))
