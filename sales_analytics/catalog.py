"""The lake tables that other assets, the service and the dashboards read: each asset key with its
table spec, and the names models are registered under.

Asset modules take these keys from here, so nothing outside the assets imports an asset module to
find data. ``view`` opens any of these tables through the IO manager's own ``LakeReader``.
"""

import warnings
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from sales_analytics.schema import (
    CALENDAR,
    DAILY_SALES,
    DAILY_STORE_SALES,
    DEMAND_FORECAST,
    FORECAST_ACCURACY,
    NEGATIVE_REVIEW_SPIKES,
    PRODUCTS,
    REVIEW_ASPECTS,
    REVIEW_SENTIMENT,
    REVIEWS,
    SALES_BY_SERIES,
    SIGNALS,
    STORES,
    TableSpec,
)
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import LakeReader, LakeView

CLEAN_PRODUCTS = dg.AssetKey(["clean", "products"])
CLEAN_STORES = dg.AssetKey(["clean", "stores"])
CLEAN_CALENDAR = dg.AssetKey(["clean", "calendar"])
CLEAN_SIGNALS = dg.AssetKey(["clean", "signals"])
CLEAN_REVIEWS = dg.AssetKey(["clean", "reviews"])
SALES_BY_SERIES_KEY = dg.AssetKey(["curated", "sales_by_series"])
DAILY_SALES_KEY = dg.AssetKey(["reports", "daily_sales"])
DAILY_STORE_SALES_KEY = dg.AssetKey(["reports", "daily_store_sales"])
RAW_ORDER_LINES = dg.AssetKey(["raw", "raw_order_lines"])
LANDING_QUARANTINE = dg.AssetKey(["quarantine", "rejected_at_landing"])
DEMAND_FORECAST_KEY = dg.AssetKey(["ml", "demand_forecast"])
FORECAST_ACCURACY_KEY = dg.AssetKey(["ml", "forecast_accuracy"])

TABLES: dict[dg.AssetKey, TableSpec] = {
    CLEAN_PRODUCTS: PRODUCTS,
    CLEAN_STORES: STORES,
    CLEAN_CALENDAR: CALENDAR,
    CLEAN_SIGNALS: SIGNALS,
    CLEAN_REVIEWS: REVIEWS,
    SALES_BY_SERIES_KEY: SALES_BY_SERIES,
    DAILY_SALES_KEY: DAILY_SALES,
    DAILY_STORE_SALES_KEY: DAILY_STORE_SALES,
    DEMAND_FORECAST_KEY: DEMAND_FORECAST,
    FORECAST_ACCURACY_KEY: FORECAST_ACCURACY,
    **{dg.AssetKey(["reports", spec.name]): spec for spec in (REVIEW_SENTIMENT, REVIEW_ASPECTS, NEGATIVE_REVIEW_SPIKES)},
}
# Rebuilt whole in the lake, though their SQL copies are replaced week by week.
STORED_WHOLE = frozenset(dg.AssetKey(["reports", spec.name]) for spec in (REVIEW_SENTIMENT, REVIEW_ASPECTS, NEGATIVE_REVIEW_SPIKES))

DEMAND_MODEL_NAME = "demand"


# Asset keys whose last part, the UI's label, says what the asset is: a source's landing files, a
# table's rejected rows and a report's published copies sit beside tables of the same name.
def landing_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", f"{source}_files"])


def quarantine_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", f"rejected_{table}"])


def published_key(store: Literal["rds", "dynamodb"], table: str) -> dg.AssetKey:
    """A report's copy in the SQL report store (``rds``) or the serving store (``dynamodb``)."""
    return dg.AssetKey(["publishing", f"{store}_{table}"])
SENTIMENT_MODEL_NAME = "review_sentiment"


def lake_partition_column(key: dg.AssetKey) -> str | None:
    """The column a catalogued table is split by in the lake; None for a table stored whole."""
    return None if key in STORED_WHOLE else TABLES[key].partition_column


def view(lake: LakeResource, key: dg.AssetKey, columns: list[str] | None = None) -> LakeView:
    """Every stored partition (or the whole table) of a catalogued table, read as the assets read it."""
    return LakeView(LakeReader(lake), key, lake_partition_column(key), None, tuple(columns) if columns else None)


def declaration_reference(path: Path) -> dict[str, Any]:
    """Metadata linking an asset to the YAML file that declares it (its code reference in the UI)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # code references are a beta API
        return {"dagster/code_references": dg.CodeReferencesMetadataValue(
            code_references=[dg.LocalFileCodeReference(file_path=str(path.resolve()))])}
