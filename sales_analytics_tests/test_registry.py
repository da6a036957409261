"""Model registry: safe storage, verified loading, and the promotion rule."""

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from sales_analytics.ml.registry import ModelIntegrityError, ModelRegistry, promotion_verdict
from sales_analytics.profiles import initialized


def fitted() -> dict[float, HistGradientBoostingRegressor]:
    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    return {q: HistGradientBoostingRegressor(loss="quantile", quantile=q, max_iter=20).fit(x, x[:, 0]) for q in (0.1, 0.5, 0.9)}


def test_a_saved_model_loads_back_and_predicts_the_same(local_env: dict[str, Any]) -> None:
    models = fitted()
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        manifest = registry.save("demand", models, ["a", "b", "c"], "2026-01-31", ["2025-01-01", "2026-01-31"], {"wape": 0.1})
        loaded, again = registry.load("demand", manifest.version)
        assert registry.versions("demand") == [manifest.version] and again == manifest
    x = np.random.default_rng(1).random((5, 3))
    assert all(np.allclose(loaded[q].predict(x), models[q].predict(x)) for q in models)


def test_tampered_bytes_are_refused(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        manifest = registry.save("demand", fitted(), ["a"], "2026-01-31", ["2025-01-01", "2026-01-31"], {"wape": 0.1})
        key = f"models/demand/{manifest.version}/model.skops"
        lake.put_bytes(key, lake.get_bytes(key) + b"\0")
        with pytest.raises(ModelIntegrityError, match="do not match the sha256"):
            registry.load("demand", manifest.version)


def test_only_complete_versions_are_listed_and_promotable(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        lake.put_bytes("models/demand/20260101T000000000000Z/model.skops", b"half-written: no manifest")
        assert registry.versions("demand") == [] and registry.champion("demand") is None
        with pytest.raises(LookupError, match="no complete version"):
            registry.promote("demand", "20260101T000000000000Z")
        manifest = registry.save("demand", fitted(), ["a"], "2026-01-31", ["2025-01-01", "2026-01-31"], {"wape": 0.1})
        registry.promote("demand", manifest.version)
        assert registry.champion("demand") == manifest.version


@pytest.mark.parametrize(("wape", "champion", "promoted"), [
    (0.12, None, True),  # beats naive, nothing to hold against
    (0.31, None, False),  # no better than seasonal naive
    (0.12, {"wape": 0.118}, True),  # within 2% of the champion
    (0.13, {"wape": 0.12}, False),  # worse than the champion beyond tolerance
])
def test_promotion_needs_to_beat_naive_and_hold_against_the_champion(wape: float, champion: dict | None, promoted: bool) -> None:
    ok, reason = promotion_verdict({"wape": wape}, baseline_wape=0.30, champion=champion)
    assert ok is promoted and reason
