"""What the service scores reviews with: the champion sentiment model, reloaded when a new one is promoted."""

from __future__ import annotations

import threading
import time

from sales_analytics.catalog import SENTIMENT_MODEL_NAME
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.nlp.sentiment import IncompatibleModel, SentimentModel
from sales_analytics.service.forecasts import NoChampion
from sales_analytics.storage.lake import LakeResource


class ChampionSentiment:
    """The champion pointer is looked at most every ``recheck_seconds``; the model is loaded (hash-checked)
    only when it names another version."""

    def __init__(self, lake: LakeResource, recheck_seconds: float = 5.0) -> None:
        self.registry, self.recheck_seconds = ModelRegistry(lake), recheck_seconds
        self._model: tuple[str, SentimentModel] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> tuple[str, SentimentModel]:
        """(version, model)."""
        with self._lock:
            if self._model is None or time.monotonic() - self._checked_at >= self.recheck_seconds:
                version = self.registry.champion(SENTIMENT_MODEL_NAME)
                if version is None:
                    raise NoChampion("no sentiment model has been promoted yet")
                if self._model is None or self._model[0] != version:
                    try:
                        self._model = (version, SentimentModel.from_stored(self.registry.load(SENTIMENT_MODEL_NAME, version)[0]))
                    except IncompatibleModel as err:
                        raise NoChampion(str(err)) from err
                self._checked_at = time.monotonic()
            return self._model
