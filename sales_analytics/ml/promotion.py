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
    """The fair basis is out of sample for both: the backtest windows that start on or after the day the
    champion's training data ended, forecast there by the frozen champion, scored on the points both
    forecast. Without such windows (the champion saw them), or for a champion of another target or
    level, its stored backtest is all there is."""
    version = registry.champion(name)
    if version is None:
        return Comparison(tested.summary["model"], None, "no champion yet")
    models, manifest = registry.load(name, version)
    fresh = [w["origin"] for w in tested.windows if w["origin"] >= manifest.trained_until]
    comparable = manifest.metrics.get("target") == target and manifest.metrics.get("level") == level
    if not fresh or not comparable:
        return Comparison(tested.summary["model"], manifest.metrics["model"], f"champion {version}'s own backtest", version)
    champion = QuantileForecaster.stored(models, manifest)
    theirs = pd.concat([forecast(champion, dense, pd.Timestamp(origin), covariates) for origin in fresh], ignore_index=True)
    ours = tested.predictions["model"]
    points = ours[["series_id", "date"]].merge(theirs[["series_id", "date"]], on=["series_id", "date"])
    on_points = [frame.merge(points, on=["series_id", "date"]) for frame in (ours, theirs)]
    candidate, held = (score(frame, tested.actuals, tested.mean_scale) for frame in on_points)
    return Comparison(candidate, held, f"champion {version} and candidate on the {len(fresh)} window(s) from {fresh[0]}, "
                                       "out of sample for both", version)


def promotion_verdict(candidate: dict[str, float], baseline_wape: float, compared: Comparison,
                      tolerance: float = 0.02) -> tuple[bool, str]:
    """A new version is promoted only if its backtest WAPE beats seasonal naive and, on the comparison's
    basis, is not worse than the champion's by more than ``tolerance`` (relative)."""
    wape = candidate["wape"]
    if wape >= baseline_wape:
        return False, f"WAPE {wape:.4f} does not beat seasonal naive ({baseline_wape:.4f})"
    if compared.champion is None:
        return True, f"WAPE {wape:.4f} beats seasonal naive ({baseline_wape:.4f}); no champion yet"
    ours, theirs = compared.candidate["wape"], compared.champion["wape"]
    if ours > theirs * (1 + tolerance):
        return False, f"WAPE {ours:.4f} is worse than the champion's {theirs:.4f} beyond {tolerance:.0%} ({compared.basis})"
    return True, (f"WAPE {wape:.4f} beats seasonal naive ({baseline_wape:.4f}) and holds against the champion: "
                  f"{ours:.4f} vs {theirs:.4f} ({compared.basis})")
