"""Curated daily demand per store and category: the forecasting series."""

import datetime as dt

import pyarrow as pa

from sales_analytics.curated.assets import compute_sales_by_series
from sales_analytics.schema import SALES_BY_SERIES

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def test_units_and_sales_per_store_and_category_as_the_product_was_that_day() -> None:
    lines = pa.table({
        "order_date": pa.array([D1, D1, D1, D2, D2, D2], pa.date32()),
        "store_id": ["S1", "S1", "S1", "S1", "S1", "S2"],
        "product_id": ["P1", "P1", "P9", "P1", "P1", "P1"],
        "status": ["sold", "returned", "sold", "sold", "cancelled", "sold"],
        "quantity": pa.array([3, 1, 2, 5, 7, 1], pa.int64()),
        "unit_price": [10.0, 10.0, 4.0, 10.0, 10.0, 10.0],
        "discount": [0.0, 0.0, 0.5, 0.1, 0.0, 0.0],
    })
    products = pa.table({  # P1 moved from tea to coffee on D2; P9 is not in the master
        "product_id": ["P1", "P1"], "category": ["tea", "coffee"],
        "valid_from": pa.array([dt.date(2026, 1, 1), D2], pa.date32()),
    })
    series = compute_sales_by_series(lines, products)
    assert series.schema.equals(SALES_BY_SERIES.arrow_schema())
    assert [(str(r["sale_date"]), r["store_id"], r["category"], r["units"], r["net_sales"]) for r in series.to_pylist()] == [
        ("2026-03-01", "S1", "tea", 2, 20.0),  # 3 sold, 1 returned
        ("2026-03-01", "S1", "unknown", 2, 4.0),  # 2 x 4.00 at 50% off
        ("2026-03-02", "S1", "coffee", 5, 45.0),  # the cancelled line does not count
        ("2026-03-02", "S2", "coffee", 1, 10.0),
    ]
