"""Curated daily demand per store and product, with the attributes the forecasting series are cut by."""

import datetime as dt

import pyarrow as pa

from sales_analytics.curated.assets import compute_sales_by_series
from sales_analytics.schema import SALES_BY_SERIES

D1, D2 = dt.date(2026, 3, 1), dt.date(2026, 3, 2)


def test_units_and_sales_per_store_and_product_with_attributes_as_they_were_that_day() -> None:
    lines = pa.table({
        "order_date": pa.array([D1, D1, D1, D2, D2, D2], pa.date32()),
        "store_id": ["S1", "S1", "S1", "S1", "S1", "S2"],
        "product_id": ["P1", "P1", "P9", "P1", "P1", "P1"],
        "order_id": ["O1", "O2", "O1", "O3", "O4", "O5"],
        "status": ["sold", "refund", "sold", "sold", "cancelled", "sold"],
        "quantity": pa.array([3, 1, 2, 5, 7, 1], pa.int64()),
        "unit_price": [10.0, 10.0, 4.0, 10.0, 10.0, 10.0],
        "discount": [0.0, 0.0, 0.5, 0.1, 0.0, 0.0],
    })
    products = pa.table({  # P1 moved from tea to coffee on D2; P9 is not in the master
        "product_id": ["P1", "P1"], "category": ["tea", "coffee"],
        "valid_from": pa.array([dt.date(2026, 1, 1), D2], pa.date32()),
    })
    stores = pa.table({  # S1 is in the north throughout; S2 is not in the store master
        "store_id": ["S1"], "region": ["north"], "format": ["express"], "valid_from": pa.array([dt.date(2025, 1, 1)], pa.date32()),
    })
    series = compute_sales_by_series(lines, products, stores)
    assert series.schema.equals(SALES_BY_SERIES.arrow_schema())
    assert [(str(r["sale_date"]), r["store_id"], r["product_id"], r["category"], r["region"], r["store_format"], r["units"],
             r["net_sales"]) for r in series.to_pylist()] == [
        ("2026-03-01", "S1", "P1", "tea", "north", "express", 2, 20.0),  # 3 sold, 1 refunded
        ("2026-03-01", "S1", "P9", "unknown", "north", "express", 2, 4.0),  # 2 x 4.00 at 50% off
        ("2026-03-02", "S1", "P1", "coffee", "north", "express", 5, 45.0),  # the cancelled line does not count
        ("2026-03-02", "S2", "P1", "coffee", "unknown", "unknown", 1, 10.0),
    ]
