"""Model registry: safe storage, verified loading, and the promotion rule."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from sales_analytics.ml.features import FeatureConfig, dense_panel
from sales_analytics.ml.forecasting import backtest, train
from sales_analytics.ml.promotion import Comparison, compare_with_champion, promotion_verdict
from sales_analytics.ml.registry import ModelIntegrityError, ModelRegistry, NotPromotable
from sales_analytics.ml.series import Covariates
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


def test_only_complete_versions_with_a_passing_verdict_are_promotable(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        lake.put_bytes("models/demand/20260101T000000000000Z/model.skops", b"half-written: no manifest")
        assert registry.versions("demand") == [] and registry.champion("demand") is None
        with pytest.raises(LookupError, match="no complete version"):
            registry.promote("demand", "20260101T000000000000Z")
        manifest = registry.save("demand", fitted(), ["a"], "2026-01-31", ["2025-01-01", "2026-01-31"], {"wape": 0.1})
        with pytest.raises(NotPromotable, match="it was never judged"):
            registry.promote("demand", manifest.version)
        registry.record_verdict("demand", manifest.version, False, "no better than seasonal naive")
        with pytest.raises(NotPromotable, match="no better than seasonal naive"):
            registry.promote("demand", manifest.version)
        assert registry.champion("demand") is None
        registry.record_verdict("demand", manifest.version, True, "beats seasonal naive")
        registry.promote("demand", manifest.version)
        assert registry.champion("demand") == manifest.version


@pytest.mark.parametrize(("wape", "champion", "promoted"), [
    (0.12, None, True),  # beats naive, nothing to hold against
    (0.31, None, False),  # no better than seasonal naive
    (0.12, {"wape": 0.118}, True),  # within 2% of the champion
    (0.13, {"wape": 0.12}, False),  # worse than the champion beyond tolerance
])
def test_promotion_needs_to_beat_naive_and_hold_against_the_champion(wape: float, champion: dict | None, promoted: bool) -> None:
    ok, reason = promotion_verdict({"wape": wape}, naive=("seasonal_naive", 0.30), compared=Comparison({"wape": wape}, champion, "test"))
    assert ok is promoted and reason


def weekly_panel(days: int = 150) -> pd.DataFrame:
    """Three series with a weekend peak and noise."""
    rng = np.random.default_rng(5)
    dates = pd.date_range("2026-01-01", periods=days, freq="D")
    return dense_panel(pd.concat([pd.DataFrame({"series_id": name, "date": dates,
                                                "y": base * np.where(dates.dayofweek >= 5, 1.6, 1.0) + rng.normal(0, base * 0.1, days)})
                                  for name, base in (("S1|tea", 20.0), ("S1|coffee", 50.0), ("S2|tea", 8.0))]))


def test_the_champion_is_judged_on_windows_it_never_saw_not_on_its_stored_score(local_env: dict[str, Any]) -> None:
    dense, config = weekly_panel(), FeatureConfig(horizon=14)
    last = dense["date"].max()
    with initialized(local_env["lake"]) as lake:
        registry = ModelRegistry(lake)
        weak = train(dense, last - pd.Timedelta(days=28), config, max_iter=1)  # barely fitted, but claims a perfect score
        claimed = {"model": {"wape": 0.0001}, "target": "units", "level": "store_category", "horizon": 14}
        manifest = registry.save("demand", weak.models, weak.features, weak.trained_until, ["2026-01-01", weak.trained_until], claimed)
        registry.record_verdict("demand", manifest.version, True, "planted")
        registry.promote("demand", manifest.version)
        tested = backtest(dense, config, windows=2, max_iter=60, baselines={})

        compared = compare_with_champion(registry, "demand", tested, dense, Covariates(), "units", "store_category")
        assert "out of sample for both" in compared.basis
        assert compared.candidate["points"] == compared.champion["points"] == 3 * 28  # the same series-days
        assert compared.champion["wape"] > compared.candidate["wape"]
        assert promotion_verdict(tested.summary["model"], naive=("seasonal_naive", 1.0), compared=compared)[0]

        # A champion trained on every day, the windows included: its recipe is retrained before each window.
        seen_all = train(dense, last, config, max_iter=60)
        stored = registry.save("demand", seen_all.models, seen_all.features, seen_all.trained_until,
                               ["2026-01-01", seen_all.trained_until], claimed)
        registry.record_verdict("demand", stored.version, True, "planted")
        registry.promote("demand", stored.version)
        retrained = compare_with_champion(registry, "demand", tested, dense, Covariates(), "units", "store_category")
        assert "recipe retrained before each of the candidate's 2 window(s)" in retrained.basis
        assert retrained.candidate["points"] == retrained.champion["points"] == 3 * 28
        assert retrained.champion["wape"] > 0.001  # scored on these days, not its stored claim of 0.0001

        # A champion of another level cannot forecast these series: only its stored backtest is left.
        other = compare_with_champion(registry, "demand", tested, dense, Covariates(), "units", "region_category")
        assert "own backtest" in other.basis and other.champion == claimed["model"]
        assert not promotion_verdict(tested.summary["model"], naive=("seasonal_naive", 1.0), compared=other)[0]
