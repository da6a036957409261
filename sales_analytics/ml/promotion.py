"""Whether a newly trained demand model replaces the champion, judged on the same days for both."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sales_analytics.ml.forecasting import Backtest, QuantileForecaster, forecast, score
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.ml.series import Covariates


@dataclass(frozen=True)
class Comparison:
    candidate: dict[str, float]  # the new model's scores on the basis
    champion: dict[str, float] | None  # the champion's on the same basis; None without a champion
    basis: str
    champion_version: str | None = None


def compare_with_champion(registry: ModelRegistry, name: str, tested: Backtest, dense: pd.DataFrame,
                          covariates: Covariates, target: str, level: str) -> Comparison:
    """Both on the same windows, scored on the points both forecast: the candidate's backtest windows that
    start on or after the day the champion's training data ended (out of sample for both), else all of the
    candidate's windows, forecast there by the frozen champion although it saw those days in training: its
    score is then in sample, a stricter bar for the candidate, and the basis says so. Only a champion of
    another target or level, which cannot forecast these series, is judged by its own stored backtest."""
    version = registry.champion(name)
    if version is None:
        return Comparison(tested.summary["model"], None, "no champion yet")
    models, manifest = registry.load(name, version)
    if manifest.metrics.get("target") != target or manifest.metrics.get("level") != level:
        return Comparison(tested.summary["model"], manifest.metrics["model"],
                          f"champion {version}'s own backtest: it forecasts {manifest.metrics.get('target')} by "
                          f"{manifest.metrics.get('level')}, not {target} by {level}", version)
    origins = [w["origin"] for w in tested.windows]
    fresh = [origin for origin in origins if origin >= manifest.trained_until]
    champion = QuantileForecaster.stored(models, manifest)
    theirs = pd.concat([forecast(champion, dense, pd.Timestamp(origin), covariates) for origin in fresh or origins],
                       ignore_index=True)
    ours = tested.predictions["model"]
    points = ours[["series_id", "date"]].merge(theirs[["series_id", "date"]], on=["series_id", "date"])
    on_points = [frame.merge(points, on=["series_id", "date"]) for frame in (ours, theirs)]
    candidate, held = (score(frame, tested.actuals, tested.mean_scale) for frame in on_points)
    windows = fresh or origins
    basis = (f"champion {version} and candidate on the same {len(windows)} window(s) from {windows[0]}, "
             + ("out of sample for both" if fresh else f"which the champion saw in training (until {manifest.trained_until}): "
                                                          "its score is in sample"))
    return Comparison(candidate, held, basis, version)


def promotion_verdict(candidate: dict[str, float], naive: tuple[str, float], compared: Comparison,
                      tolerance: float = 0.02) -> tuple[bool, str]:
    """A new version is promoted only if its backtest WAPE beats the stronger seasonal naive (``naive``: its
    name and WAPE) and, on the comparison's basis, is not worse than the champion's by more than ``tolerance``
    (relative)."""
    wape, (naive_name, baseline_wape) = candidate["wape"], naive
    baseline = f"{naive_name.replace('_', ' ')} ({baseline_wape:.4f})"
    if wape >= baseline_wape:
        return False, f"WAPE {wape:.4f} does not beat {baseline}"
    if compared.champion is None:
        return True, f"WAPE {wape:.4f} beats {baseline}; no champion yet"
    ours, theirs = compared.candidate["wape"], compared.champion["wape"]
    if ours > theirs * (1 + tolerance):
        return False, f"WAPE {ours:.4f} is worse than the champion's {theirs:.4f} beyond {tolerance:.0%} ({compared.basis})"
    return True, (f"WAPE {wape:.4f} beats {baseline} and holds against the champion: "
                  f"{ours:.4f} vs {theirs:.4f} ({compared.basis})")
