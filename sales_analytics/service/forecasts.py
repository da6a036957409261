"""What the service serves: the champion demand model's forecasts, reloaded when a new one is promoted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pandas as pd

from sales_analytics.catalog import (
    CLEAN_CALENDAR,
    CLEAN_SIGNALS,
    CLEAN_STORES,
    DEMAND_MODEL_NAME,
    SALES_BY_SERIES_KEY,
    view,
)
from sales_analytics.ml.features import dense_panel
from sales_analytics.ml.forecasting import QuantileForecaster, forecast
from sales_analytics.ml.history import (
    CALENDAR_COLUMNS,
    FORECAST_HISTORY_DAYS,
    SALES_COLUMNS,
    SIGNAL_COLUMNS,
    STORE_COLUMNS,
    known_ahead,
    last_day,
    load_series,
)
from sales_analytics.ml.registry import ModelManifest, ModelRegistry
from sales_analytics.storage.lake import LakeResource


class NoChampion(LookupError):
    """No model has been promoted yet."""


@dataclass(frozen=True)
class ServedForecasts:
    manifest: ModelManifest
    origin: str
    table: pd.DataFrame  # series_id, date, step, p10, p50, p90 for every series the model can forecast


class ChampionForecasts:
    """The champion's forecasts from the latest curated day, computed once per (version, day).

    The champion pointer and the last curated day are looked at most every ``recheck_seconds``, so a
    promotion or new data is picked up without a restart and requests stay cheap."""

    def __init__(self, lake: LakeResource, recheck_seconds: float = 5.0) -> None:
        self.lake, self.registry, self.recheck_seconds = lake, ModelRegistry(lake), recheck_seconds
        self._served: ServedForecasts | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> ServedForecasts:
        with self._lock:
            if self._served is None or time.monotonic() - self._checked_at >= self.recheck_seconds:
                self._served = self._refresh(self._served)
                self._checked_at = time.monotonic()
            return self._served

    def _refresh(self, served: ServedForecasts | None) -> ServedForecasts:
        version = self.registry.champion(DEMAND_MODEL_NAME)
        if version is None:
            raise NoChampion("no demand model has been promoted yet")
        sales = view(self.lake, SALES_BY_SERIES_KEY, SALES_COLUMNS)
        origin = last_day(sales)
        if origin is None:
            raise NoChampion("no curated sales to forecast from")
        if served is not None and served.manifest.version == version and served.origin == origin.isoformat():
            return served
        models, manifest = self.registry.load(DEMAND_MODEL_NAME, version)
        model = QuantileForecaster.stored(models, manifest)
        target = manifest.metrics["target"]
        ahead = known_ahead(view(self.lake, CLEAN_CALENDAR, CALENDAR_COLUMNS).whole(),
                            view(self.lake, CLEAN_SIGNALS, SIGNAL_COLUMNS).whole(),
                            view(self.lake, CLEAN_STORES, STORE_COLUMNS).whole())
        panel, covariates = load_series(sales, origin, FORECAST_HISTORY_DAYS, target, manifest.metrics["level"], ahead)
        predicted = forecast(model, dense_panel(panel, model.config.grain), pd.Timestamp(origin), covariates)
        return ServedForecasts(manifest, origin.isoformat(), predicted)
