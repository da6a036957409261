"""Demand forecasting at 1k and 10k series: our backtest next to statsforecast's AutoETS.

For each size, the generator's order lines for two years are curated to store x product series
(the same ``compute_sales_by_series`` and ``series_panel`` the platform runs), and on the same
rolling-origin windows (3 x 28 days) we measure:
- **ours**: training the global quantile model and forecasting, once per window (what every
  ``demand_model`` materialization does), with the store and product attributes and the calendar;
- **seasonal naive**: the same weekday a week before;
- **AutoETS** (statsforecast, weekly season, both cores): fitted per series on each window's history.

It prints time and WAPE ratios against AutoETS, and each size's peak RSS.

The weekly case (``--weekly``, series count; 0 skips it): generated weekly series dated by their Friday
(``generated_weekly_panel``: a yearly season, holiday weeks known ahead, weeks of returns), four years of
them, modelled by week (``weekly("FRI")``), on 4 windows of 13 weeks against seasonal naive a year back
and AutoETS with a 52-week season.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/forecast.py [--sizes 1000 10000] [--weekly 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import time
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from measure import measure

from sales_analytics.curated.assets import compute_sales_by_series
from sales_analytics.generator import GeneratorConfig, SalesGenerator
from sales_analytics.ml.features import FeatureConfig, Grain, calendar_at, dense_panel, weekly
from sales_analytics.ml.forecasting import backtest, seasonal_naive
from sales_analytics.ml.series import Covariates, calendar_frame, generated_weekly_panel, series_panel

DAYS, HORIZON, WINDOWS = 730, 28, 3
WEEKS, WEEKLY_HORIZON, WEEKLY_WINDOWS = 208, 13, 4
ONLINE_STORES = 4  # the generator adds one online store per region


def generated_panel(series: int, seed: int = 11) -> tuple[pd.DataFrame, Covariates]:
    """About ``series`` store x product series: the generator's stores and products, two years of lines."""
    products = 60 if series <= 1000 else 200
    stores = max(1, math.ceil(series / products) - ONLINE_STORES)
    generator = SalesGenerator(GeneratorConfig(days=DAYS, stores=stores, products=products, seed=seed,
                                               start=dt.date(2024, 1, 1), orders_per_store_day=60.0))
    since = pa.array([generator.config.start], pa.date32())
    product_history = pa.Table.from_pylist([{"product_id": p["product_id"], "category": p["category"]} for p in generator.products])
    product_history = product_history.append_column("valid_from", pa.repeat(since[0], product_history.num_rows))
    store_history = pa.Table.from_pylist([{"store_id": s["store_id"], "region": s["region"], "format": s["format"]}
                                          for s in generator.stores])
    store_history = store_history.append_column("valid_from", pa.repeat(since[0], store_history.num_rows))
    days = [compute_sales_by_series(typed_lines(generator.day_lines(offset), generator.config.start + dt.timedelta(days=offset)),
                                    product_history, store_history) for offset in range(DAYS)]
    panel, static = series_panel(pa.concat_tables(days).to_pandas(), "store_product", "units")
    calendar = pd.DataFrame(generator.calendar)
    return dense_panel(panel), Covariates(static=static, calendar=calendar_frame(calendar["date"], calendar["is_holiday"],
                                                                                   calendar["is_promo_week"]))


def typed_lines(lines: pa.Table, day: dt.date) -> pa.Table:
    return pa.table({"order_date": pa.repeat(pa.scalar(day, pa.date32()), lines.num_rows), "order_id": lines["order_id"],
                     "store_id": lines["store_id"],
                     "product_id": lines["product_id"], "status": lines["status"],
                     "quantity": pc.cast(lines["quantity"], pa.int64()), "unit_price": pc.cast(lines["unit_price"], pa.float64()),
                     "discount": pc.cast(lines["discount"], pa.float64())})


def auto_ets(dense: pd.DataFrame, origin: pd.Timestamp, horizon: int, grain: Grain | None = None) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    season, freq = (grain.season, grain.freq) if grain else (7, "D")
    history = dense.loc[dense["date"] <= origin, ["series_id", "date", "y"]].rename(columns={"series_id": "unique_id", "date": "ds"})
    model = StatsForecast(models=[AutoETS(season_length=season)], freq=freq, n_jobs=-1)
    predicted = model.forecast(df=history, h=horizon)
    return pd.DataFrame({"series_id": predicted["unique_id"].to_numpy(), "date": predicted["ds"].to_numpy(),
                         "p50": np.clip(predicted["AutoETS"].to_numpy(), 0.0, None)})


def warm_up_auto_ets() -> None:
    """Compile statsforecast's numba code once, so its time below is forecasting, not compiling."""
    days = pd.date_range("2024-01-01", periods=60, freq="D")
    auto_ets(pd.DataFrame({"series_id": "w", "date": days, "y": np.arange(60.0) % 7}), days[-1], 7)


def run_size(series: int) -> dict:
    started = time.perf_counter()
    dense, covariates = generated_panel(series)
    prepared = time.perf_counter() - started
    warm_up_auto_ets()
    tested = backtest(dense, FeatureConfig(horizon=HORIZON), windows=WINDOWS, covariates=covariates,
                      baselines={"seasonal_naive": seasonal_naive, "auto_ets": auto_ets})
    return {"series": int(dense["series_id"].nunique()), "days": DAYS, "panel_seconds": prepared,
            "zero_share": float((dense["y"] == 0).mean()), "seconds": tested.seconds,
            "wape": {m: s["wape"] for m, s in tested.summary.items()},
            "model": tested.summary["model"]}


def run_weekly(series: int) -> dict:
    panel, covariates = generated_weekly_panel(series, WEEKS)
    grain = weekly("FRI")
    dense = dense_panel(panel, grain)
    warm_up_auto_ets()
    tested = backtest(dense, FeatureConfig(horizon=WEEKLY_HORIZON, grain=grain, origin_stride=4), windows=WEEKLY_WINDOWS,
                      covariates=covariates, baselines={"seasonal_naive": partial(seasonal_naive, grain=grain),
                                                        "auto_ets": partial(auto_ets, grain=grain)})
    # The daily path on the same shape (series, periods, horizon, windows, stride) and the same information: the
    # same values and holiday weeks, a day apart.
    first_day = pd.Timestamp("2021-01-01")
    as_days = dense.assign(date=dense.groupby("series_id").cumcount().to_numpy() * pd.Timedelta(days=1) + first_day)
    weeks = calendar_at(covariates.calendar, grain).loc[dense["date"].min():]
    daily_calendar = weeks.set_axis(pd.date_range(first_day, periods=len(weeks), freq="D").rename("date"))
    daily = backtest(as_days, FeatureConfig(horizon=WEEKLY_HORIZON, origin_stride=4), windows=WEEKLY_WINDOWS,
                     covariates=Covariates(static=covariates.static, calendar=daily_calendar), baselines={})
    return {"series": int(dense["series_id"].nunique()), "weeks": WEEKS, "seconds": tested.seconds,
            "daily_same_shape_seconds": daily.seconds["model"],
            "wape": {m: s["wape"] for m, s in tested.summary.items()}, "model": tested.summary["model"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--weekly", type=int, default=1000, help="weekly series (0: no weekly case)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        measured = measure(run_size, size)
        result = {**measured.result, "peak_rss_mb": measured.peak_rss_mb}
        results.append(result)
        print_size(result)
    if args.weekly:
        measured = measure(run_weekly, args.weekly)
        result = {**measured.result, "peak_rss_mb": measured.peak_rss_mb}
        results.append(result)
        print_weekly(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


def print_size(result: dict) -> None:
    seconds, wape = result["seconds"], result["wape"]
    print(f"\n{result['series']:,} series x {result['days']} days ({result['zero_share']:.0%} zero days), "
          f"{WINDOWS} windows of {HORIZON} days; panel built in {result['panel_seconds']:.1f}s; peak RSS {result['peak_rss_mb']:,.0f} MB")
    print(f"{'method':<16}{'seconds':>10}{'x AutoETS':>11}{'WAPE':>9}{'x AutoETS':>11}")
    for method in ("model", "seasonal_naive", "auto_ets"):
        print(f"{method:<16}{seconds[method]:>10.1f}{seconds[method] / seconds['auto_ets']:>11.2f}"
              f"{wape[method]:>9.4f}{wape[method] / wape['auto_ets']:>11.3f}")
    model = result["model"]
    print(f"ours vs seasonal naive: WAPE {1 - wape['model'] / wape['seasonal_naive']:.1%} better; "
          f"P10-P90 coverage {model['coverage_p10_p90']:.2f}, bias {model['bias']:+.3f}, MASE {model['mase']:.3f}")


def print_weekly(result: dict) -> None:
    seconds, wape, model = result["seconds"], result["wape"], result["model"]
    print(f"\n{result['series']:,} weekly series x {result['weeks']} weeks, {WEEKLY_WINDOWS} windows of {WEEKLY_HORIZON} weeks; "
          f"peak RSS {result['peak_rss_mb']:,.0f} MB")
    print(f"{'method':<16}{'seconds':>10}{'x AutoETS':>11}{'WAPE':>9}{'x AutoETS':>11}")
    for method in ("model", "seasonal_naive", "auto_ets"):
        print(f"{method:<16}{seconds[method]:>10.1f}{seconds[method] / seconds['auto_ets']:>11.2f}"
              f"{wape[method]:>9.4f}{wape[method] / wape['auto_ets']:>11.3f}")
    print(f"P10-P90 coverage on the real weeks {model['coverage_p10_p90']:.2f}, bias {model['bias']:+.3f}; "
          f"the daily path on the same shape: {result['daily_same_shape_seconds']:.1f} s "
          f"(weekly {seconds['model'] / result['daily_same_shape_seconds']:.2f}x)")


if __name__ == "__main__":
    main()
