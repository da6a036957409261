"""Whether a newly trained demand model replaces the champion, judged on the same days for both."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sales_analytics.ml.forecasting import MAX_ITER, Backtest, QuantileForecaster, forecast, score, train
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
    """Both on the candidate's windows, scored on the points both forecast, out of sample for both: the
    frozen champion where the windows start on or after the day its training data ended; else (it saw them)
    the champion's recipe (its horizon and iterations) retrained before each window, as the candidate was.
    Only a champion of another target or level, which cannot forecast these series, is judged by its own
    stored backtest."""
    version = registry.champion(name)
    if version is None:
        return Comparison(tested.summary["model"], None, "no champion yet")
    models, manifest = registry.load(name, version)
    if manifest.metrics.get("target") != target or manifest.metrics.get("level") != level:
        return Comparison(tested.summary["model"], manifest.metrics["model"],
                          f"champion {version}'s own backtest: it forecasts {manifest.metrics.get('target')} by "
                          f"{manifest.metrics.get('level')}, not {target} by {level}", version)
    origins = [pd.Timestamp(w["origin"]) for w in tested.windows]
    fresh = [origin for origin in origins if origin >= pd.Timestamp(manifest.trained_until)]
    champion = QuantileForecaster.stored(models, manifest)
    if fresh:
        theirs = pd.concat([forecast(champion, dense, origin, covariates) for origin in fresh], ignore_index=True)
        basis = f"champion {version} and candidate on the {len(fresh)} window(s) from {fresh[0].date()}, out of sample for both"
    else:
        iterations = int(manifest.metrics.get("max_iter", MAX_ITER))
        theirs = pd.concat([forecast(train(dense, origin, champion.config, iterations, covariates), dense, origin, covariates)
                            for origin in origins], ignore_index=True)
        basis = (f"champion {version}'s recipe retrained before each of the candidate's {len(origins)} window(s) from "
                 f"{origins[0].date()} (the champion itself saw them, until {manifest.trained_until})")
    ours = tested.predictions["model"]
    points = ours[["series_id", "date"]].merge(theirs[["series_id", "date"]], on=["series_id", "date"])
    on_points = [frame.merge(points, on=["series_id", "date"]) for frame in (ours, theirs)]
    candidate, held = (score(frame, tested.actuals, tested.mean_scale) for frame in on_points)
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
