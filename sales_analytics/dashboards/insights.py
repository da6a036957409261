"""Insights computed from report windows: KPI deltas, anomalies with their drivers, movers,
forecast misses and review shifts, each with a one-line narrative made only of its own numbers.

Anomalies are robust to weekly seasonality: a day is compared with the median of the same
weekday over the eight weeks before the week looked at, in units of the median absolute deviation
of those weeks' residuals (a robust z-score), so a normal Saturday peak is not news and one
extreme day does not hide the next. A driver is the store, category or product whose own change
against its same-weekday median explains the largest share of its dimension's change.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from sales_analytics.schema import ALL_MEMBERS, INSIGHTS

DAY = dt.timedelta(days=1)
WEEK = 7
YEAR_DAYS = 364  # 52 weeks: the same weekday a year before
BASELINE_WEEKS = 8
LOOKBACK_DAYS = 7  # anomalies are looked for in the last week
MIN_BASELINE = 4  # same-weekday values needed before a day can be called unusual
Z_THRESHOLD = 3.5
MIN_RELATIVE_CHANGE = 0.05  # and at least 5% off what was expected
MAD_TO_SIGMA = 1.4826
ANOMALY_METRICS = ("net_sales", "orders")
DRIVER_DIMENSIONS = ("product", "store", "category", "region", "channel")  # most specific first
MAJOR_SHARE = 0.5  # a member explaining at least half of the change is named before the rest
MOVERS_PER_SIDE = 3
MOVER_MIN_SWINGS = 2.5  # a week's change this many of its member's usual weekly swings is news, less is noise
MIN_SWING_DAYS = 7  # same-weekday differences needed to know a member's usual swing
MIN_SWING_SHARE = 0.02  # the swing is at least 2% of the member's weekly level (a flat history is not zero-risk)
ANOMALIES_SHOWN = 5
DRIVERS_SHOWN = 3  # per anomaly
MISSES_SHOWN = 5

# KPI -> (numerator, denominator or None) over summed daily values
SALES_KPIS = {"net_sales": ("net_sales", None), "orders": ("orders", None), "units_sold": ("units_sold", None),
              "average_basket": ("net_sales", "orders"), "returns_rate": ("units_returned", "units_sold"),
              "margin_rate": ("margin", "costed_sales")}  # over the sales whose products have a cost
SALES_KPIS_COLUMNS = ("net_sales", "orders", "units_sold", "units_returned", "gross_sales", "discounts", "costed_sales",
                      "margin")
ACCURACY_KPIS = {"forecast_wape": ("abs_error", "actual"), "forecast_coverage": ("in_band", "points")}
MONEY = {"net_sales", "gross_sales", "discounts", "average_basket"}
RATES = {"returns_rate", "margin_rate", "forecast_wape", "forecast_coverage", "negative_share"}
LABELS = {"net_sales": "Net sales", "orders": "Orders", "units_sold": "Units sold", "average_basket": "Average basket",
          "returns_rate": "Returns rate", "margin_rate": "Gross margin", "forecast_wape": "Forecast error (WAPE)", "forecast_coverage": "P10-P90 coverage",
          "reviews": "Reviews", "negative_share": "Negative reviews", "units_returned": "Units returned",
          "gross_sales": "Gross sales", "discounts": "Discounts"}
PERIOD_WORDS = {"day": "the day before", "week": "the week before", "year": "the same week a year ago"}


@dataclass(frozen=True)
class Insight:
    kind: str
    rank: int
    metric: str
    subject: str
    period: str
    day: dt.date | None
    value: float | None
    reference: float | None
    narrative: str
    score: float | None = None

    @property
    def change(self) -> float | None:
        return None if self.value is None or self.reference is None else self.value - self.reference

    @property
    def change_pct(self) -> float | None:
        return None if self.value is None or self.reference is None else relative_change(self.value, self.reference)


def relative_change(value: float, reference: float) -> float | None:
    return (value - reference) / reference if reference else None


def to_table(dashboard: str, as_of: dt.date, insights: list[Insight]) -> pa.Table:
    rows = [{**asdict(i), "dashboard": dashboard, "as_of": as_of, "change": i.change, "change_pct": i.change_pct,
             "insight_id": f"{i.kind}:{i.metric}:{i.subject}:{i.period}:{i.day}"} for i in insights]
    return pa.Table.from_pylist(rows, schema=INSIGHTS.arrow_schema()) if rows else INSIGHTS.empty_table()


# -- formatting: every number a narrative shows is one of its row's fields, rounded for reading --
def fmt(metric: str, value: float, currency: str = "") -> str:
    if metric in RATES:
        return f"{value:.1%}"
    if metric in MONEY:
        return f"{currency} {value:,.2f}".strip()
    return f"{value:,.0f}"


def fmt_versus(metric: str, value: float, reference: float, currency: str = "") -> str:
    """How ``value`` differs from ``reference``: 'up EUR 120.00 (+4.2%)', 'down 1.5 points'."""
    return fmt_change(metric, value - reference, relative_change(value, reference), currency)


def fmt_change(metric: str, change: float, change_pct: float | None, currency: str = "") -> str:
    direction = "up" if change >= 0 else "down"
    if metric in RATES:
        return f"{direction} {abs(change) * 100:.1f} points"
    pct = f" ({change_pct:+.1%})" if change_pct is not None else ""
    return f"{direction} {fmt(metric, abs(change), currency)}{pct}"


# -- sales: daily totals of one currency --------------------------------------------------
def daily_values(sales: pd.DataFrame, currency: str, days: set[dt.date], dimension: str = "total") -> pd.DataFrame:
    """Measures per (day, member) of one dimension, with zeros on stored days a member did not sell."""
    measures = list(SALES_KPIS_COLUMNS)
    if sales.empty:  # stored days without a single row (no columns either): all zeros
        sales = pd.DataFrame(columns=["sale_date", "dimension", "member", "currency", *measures])
    rows = sales[(sales["dimension"] == dimension) & (sales["currency"] == currency)]
    members = [ALL_MEMBERS] if dimension == "total" else list(rows["member"].unique())
    grid = pd.MultiIndex.from_product([sorted(days), members], names=["sale_date", "member"])
    indexed = rows.assign(sale_date=pd.to_datetime(rows["sale_date"]).dt.date).set_index(["sale_date", "member"])
    return indexed.reindex(columns=measures).reindex(grid, fill_value=0).reset_index()


def _ratio(totals: pd.DataFrame, numerator: str, denominator: str | None) -> float | None:
    top = float(totals[numerator].sum())
    if denominator is None:
        return top
    bottom = float(totals[denominator].sum())
    return top / bottom if bottom else None


def period_days(as_of: dt.date, period: str) -> tuple[list[dt.date], list[dt.date]]:
    """(current days, reference days) of a comparison period ending on ``as_of``."""
    if period == "day":
        return [as_of], [as_of - DAY]
    current = [as_of - DAY * k for k in range(WEEK)]
    back = WEEK if period == "week" else YEAR_DAYS
    return current, [d - DAY * back for d in current]


def kpi_insights(daily: pd.DataFrame, kpis: dict[str, tuple[str, str | None]], wanted: tuple[str, ...], as_of: dt.date,
                 currency: str, day_column: str = "sale_date",
                 periods: tuple[str, ...] = ("day", "week", "year")) -> list[Insight]:
    """Each KPI over the day, the last 7 days and the last 7 days against a year before. A period
    whose reference days are not all stored has no reference (no made-up zero)."""
    stored = set(daily[day_column])
    insights = []
    for rank, kpi in enumerate(k for k in wanted if k in kpis):
        for period in periods:
            current, reference_days = period_days(as_of, period)
            value = _ratio(daily[daily[day_column].isin(current)], *kpis[kpi])
            reference = (_ratio(daily[daily[day_column].isin(reference_days)], *kpis[kpi])
                         if set(reference_days) <= stored else None)
            insights.append(_kpi(kpi, rank, period, as_of, value, reference, currency))
    return insights


def _kpi(kpi: str, rank: int, period: str, as_of: dt.date, value: float | None, reference: float | None,
         currency: str) -> Insight:
    span = as_of.strftime("%a %d %b %Y") if period == "day" else f"the 7 days to {as_of:%d %b %Y}"
    if value is None:
        text = f"{LABELS[kpi]}: no data for {span}."
    elif reference is None:
        text = f"{LABELS[kpi]} {fmt(kpi, value, currency)} for {span}; nothing stored for {PERIOD_WORDS[period]}."
    else:
        text = (f"{LABELS[kpi]} {fmt(kpi, value, currency)} for {span}, "
                f"{fmt_versus(kpi, value, reference, currency)} on {PERIOD_WORDS[period]} "
                f"({fmt(kpi, reference, currency)}).")
    return Insight("kpi", rank, kpi, "total", period, as_of, value, reference, text)


# -- anomalies and drivers ----------------------------------------------------------------
def anomaly_insights(sales: pd.DataFrame, stored: set[dt.date], currency: str, as_of: dt.date) -> list[Insight]:
    """Unusual days in the last week for each anomaly metric (the strongest ANOMALIES_SHOWN), each
    followed by its DRIVERS_SHOWN main drivers. ``stored``: the days whose partition exists (a day
    without sales is a zero, not a gap)."""
    totals = daily_values(sales, currency, stored).set_index("sale_date")
    found: list[Insight] = []
    for metric in ANOMALY_METRICS:
        series = totals[metric].astype(float) if metric in totals else pd.Series(dtype=float)
        scale = _robust_scale(series, as_of)
        for day in (as_of - DAY * k for k in range(LOOKBACK_DAYS)):
            if day not in series.index or scale is None:
                continue
            expected, seen = _baseline(series, day, as_of)
            value = float(series[day])
            if seen < MIN_BASELINE or not expected:
                continue
            z = (value - expected) / scale
            if abs(z) >= Z_THRESHOLD and abs(value - expected) >= MIN_RELATIVE_CHANGE * abs(expected):
                found.append(_anomaly(metric, day, value, expected, z, currency))
    found.sort(key=lambda i: -abs(i.score or 0))
    ranked = [Insight(**{**asdict(i), "rank": rank}) for rank, i in enumerate(found[:ANOMALIES_SHOWN])]
    return [row for anomaly in ranked for row in (anomaly, *_drivers(sales, stored, currency, anomaly, as_of))]


def _baseline(series: pd.Series, day: dt.date, as_of: dt.date) -> tuple[float, int]:
    """Median of ``day``'s weekday over the BASELINE_WEEKS before the looked-at week (which a
    second unusual day in the same week must not shift)."""
    week_start = as_of - DAY * (LOOKBACK_DAYS - 1)
    weeks_back = range(1, BASELINE_WEEKS + 2)
    history = [d for d in (day - DAY * WEEK * k for k in weeks_back) if d < week_start][:BASELINE_WEEKS]
    seen = series.reindex(history).dropna()
    return (float(seen.median()) if len(seen) else 0.0), len(seen)


def _robust_scale(series: pd.Series, as_of: dt.date) -> float | None:
    """1.4826 x the median absolute deviation of baseline days from their weekday's median."""
    week_start = as_of - DAY * (LOOKBACK_DAYS - 1)
    base = series[[d < week_start for d in series.index]]
    if len(base) < WEEK * MIN_BASELINE:
        return None
    weekday = pd.Series([d.weekday() for d in base.index], index=base.index)
    residuals = base - base.groupby(weekday).transform("median")
    mad = float(residuals.abs().median()) * MAD_TO_SIGMA
    # Synthetic or very regular data can have a MAD of ~0: floor it at 1% of the typical day.
    return max(mad, 0.01 * float(base.abs().median()), 1e-9)


def _anomaly(metric: str, day: dt.date, value: float, expected: float, z: float, currency: str) -> Insight:
    text = (f"{LABELS[metric]} {fmt(metric, value, currency)} on {day:%a %d %b %Y}, "
            f"{fmt_versus(metric, value, expected, currency)} on the usual "
            f"{day:%A} ({fmt(metric, expected, currency)}; robust z {z:+.1f}).")
    return Insight("anomaly", 0, metric, "total", "day", day, value, expected, text, score=round(z, 2))


def _drivers(sales: pd.DataFrame, stored: set[dt.date], currency: str, anomaly: Insight, as_of: dt.date) -> list[Insight]:
    """Per dimension, the member whose change against its own same-weekday median is the largest
    share of the dimension's summed change, in the anomaly's direction; the most specific of those
    explaining at least half of it come first."""
    day, metric = anomaly.day, anomaly.metric
    assert day is not None and anomaly.change is not None
    drivers = []
    for dimension in DRIVER_DIMENSIONS:
        members = daily_values(sales, currency, stored, dimension)
        if members["member"].nunique() < 2:
            continue  # a lone member "explains" everything and says nothing
        deltas = {}
        for member, rows in members.groupby("member"):
            series = rows.set_index("sale_date")[metric].astype(float)
            expected, _ = _baseline(series, day, as_of)
            deltas[member] = float(series.get(day, 0.0)) - expected
        total = sum(deltas.values())
        if not total or np.sign(total) != np.sign(anomaly.change):
            continue
        member = max(deltas, key=lambda m: deltas[m] * np.sign(total))
        share = deltas[member] / total
        value = float(members[(members["member"] == member) & (members["sale_date"] == day)][metric].sum())
        drivers.append((share, dimension, member, value, value - deltas[member]))
    # The most specific dimension with a major share first: "product P3" says more than "category toys".
    drivers.sort(key=lambda d: (d[0] < MAJOR_SHARE, DRIVER_DIMENSIONS.index(d[1]) if d[0] >= MAJOR_SHARE else -d[0]))
    return [Insight("driver", rank, metric, f"{dimension}={member}", "day", day, value, expected,
                    f"{dimension.title()} {member} explains {share:.0%} of the change in {LABELS[metric].lower()} on "
                    f"{day:%a %d %b}: {fmt(metric, value, currency)} against its usual "
                    f"{fmt(metric, expected, currency)}.", score=round(share, 3))
            for rank, (share, dimension, member, value, expected) in enumerate(drivers[:DRIVERS_SHOWN])]


# -- movers ---------------------------------------------------------------------------------
def mover_insights(sales: pd.DataFrame, stored: set[dt.date], currency: str, as_of: dt.date,
                   dimensions: tuple[str, ...], metric: str = "net_sales") -> list[Insight]:
    """Per dimension, the members whose last 7 days rose and fell most against the 7 days before,
    among those whose change is ``MOVER_MIN_SWINGS`` times their own usual week-to-week swing."""
    current, previous = period_days(as_of, "week")
    insights = []
    for dimension in dimensions:
        daily = daily_values(sales, currency, stored, dimension).pivot(index="sale_date", columns="member", values=metric)
        if daily.empty:
            continue
        both = pd.DataFrame({"now": daily.reindex(current).sum(), "before": daily.reindex(previous).sum()})
        both["change"] = both["now"] - both["before"]
        both["swings"] = both["change"] / weekly_swing(daily, min(current))
        moved = both[both["swings"].abs() >= MOVER_MIN_SWINGS]
        ups = moved[moved["change"] > 0].sort_values("change", ascending=False).head(MOVERS_PER_SIDE)
        downs = moved[moved["change"] < 0].sort_values("change").head(MOVERS_PER_SIDE)
        for rank, (member, row) in enumerate([*ups.iterrows(), *downs.iterrows()]):
            insights.append(_mover(dimension, str(member), rank, metric, as_of, float(row["now"]), float(row["before"]),
                                   round(abs(float(row["swings"])), 1), currency))
    return insights


def weekly_swing(daily: pd.DataFrame, before: dt.date) -> pd.Series:
    """Per member (column): the usual size of a 7-day total's change on the 7 days before, from the
    days before ``before``: same-weekday differences, robust spread (MAD) scaled to a 7-day sum.
    Infinite where fewer than ``MIN_SWING_DAYS`` differences exist: no change is then unusual."""
    history = daily[daily.index < before]
    if history.empty:
        return pd.Series(math.inf, index=daily.columns)
    first, last = min(history.index), max(history.index)
    history = history.reindex([first + DAY * k for k in range((last - first).days + 1)])  # unstored days: unknown
    differences = history - history.shift(WEEK)
    spread = (differences - differences.median()).abs().median() * MAD_TO_SIGMA * math.sqrt(WEEK)
    level = history.abs().mean() * WEEK * MIN_SWING_SHARE  # a flat history still has a floor
    swing = spread.where(spread > level, level)
    return swing.where((differences.count() >= MIN_SWING_DAYS) & (swing > 0), math.inf)


def _mover(dimension: str, member: str, rank: int, metric: str, as_of: dt.date, value: float, reference: float,
           swings: float, currency: str) -> Insight:
    text = (f"{dimension.title()} {member}: {fmt(metric, value, currency)} in the 7 days to {as_of:%d %b}, "
            f"{fmt_versus(metric, value, reference, currency)} on the week before "
            f"({fmt(metric, reference, currency)}), {swings:.1f} times its usual weekly swing.")
    return Insight("mover", rank, metric, f"{dimension}={member}", "week", as_of, value, reference, text, score=swings)


# -- forecasts ------------------------------------------------------------------------------
def accuracy_daily(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per target day: summed absolute error and actuals, forecasts inside P10-P90 and scored."""
    if accuracy.empty:
        return pd.DataFrame(columns=["target_date", "abs_error", "actual", "in_band", "points"])
    latest = accuracy.sort_values("origin_date").groupby(["target_date", "series_id"]).tail(1)  # newest forecast of each day
    daily = latest.groupby("target_date").agg(abs_error=("abs_error", "sum"), actual=("actual", "sum"),
                                              in_band=("in_band", "sum"), points=("series_id", "count")).reset_index()
    daily["target_date"] = pd.to_datetime(daily["target_date"]).dt.date
    return daily


def forecast_miss_insights(accuracy: pd.DataFrame, as_of: dt.date) -> list[Insight]:
    """The series whose newest forecasts missed most over the last 7 target days."""
    if accuracy.empty:
        return []
    current, _ = period_days(as_of, "week")
    latest = accuracy.sort_values("origin_date").groupby(["target_date", "series_id"]).tail(1)
    week = latest[pd.to_datetime(latest["target_date"]).dt.date.isin(current)]
    per_series = week.groupby("series_id").agg(actual=("actual", "sum"), p50=("p50", "sum"), abs_error=("abs_error", "sum"),
                                               outside=("in_band", lambda b: int((~b.astype(bool)).sum())),
                                               days=("target_date", "count"))
    worst = per_series.sort_values("abs_error", ascending=False).head(MISSES_SHOWN)
    return [Insight("forecast_miss", rank, "units", str(series), "week", as_of, float(row.actual), float(row.p50),
                    f"{series}: {row.actual:,.0f} sold in the 7 days to {as_of:%d %b} against a P50 forecast of "
                    f"{row.p50:,.0f} ({row.abs_error:,.0f} off over the days; {row.outside:.0f} of {row.days:.0f} days "
                    f"outside P10-P90).", score=float(row.outside))
            for rank, (series, row) in enumerate(worst.iterrows())]


# -- reviews --------------------------------------------------------------------------------
def review_weekly(sentiment: pd.DataFrame) -> pd.DataFrame:
    """Per week: reviews and negative reviews over every category."""
    categories = sentiment[sentiment["product_id"] == ALL_MEMBERS]
    weekly = categories.assign(negative=categories["reviews"] * categories["negative_share"]).groupby("week_start").agg(
        reviews=("reviews", "sum"), negative=("negative", "sum")).reset_index()
    weekly["week_start"] = pd.to_datetime(weekly["week_start"]).dt.date
    return weekly


def review_kpi_insights(sentiment: pd.DataFrame, wanted: tuple[str, ...]) -> tuple[dt.date | None, list[Insight]]:
    """Reviews and negative share of the newest week against the week before."""
    if sentiment.empty:
        return None, []
    weekly = review_weekly(sentiment).set_index("week_start")
    week = max(weekly.index)
    before = week - DAY * WEEK
    kpis = {"reviews": lambda w: float(weekly.loc[w, "reviews"]),
            "negative_share": lambda w: float(weekly.loc[w, "negative"] / weekly.loc[w, "reviews"])}
    insights = []
    for rank, kpi in enumerate(k for k in wanted if k in kpis):
        value = kpis[kpi](week)
        reference = kpis[kpi](before) if before in weekly.index else None
        text = (f"{LABELS[kpi]} {fmt(kpi, value)} in the week of {week:%d %b %Y}"
                + (f", {fmt_versus(kpi, value, reference)} on the week before ({fmt(kpi, reference)})."
                   if reference is not None else "; nothing for the week before."))
        insights.append(Insight("kpi", rank, kpi, "total", "week", week, value, reference, text))
    return week, insights


def review_shift_insights(sentiment: pd.DataFrame, spikes: pd.DataFrame) -> list[Insight]:
    """Categories whose negative share rose most in the newest week, then the newest spikes."""
    if sentiment.empty:
        return []
    categories = sentiment[sentiment["product_id"] == ALL_MEMBERS].assign(
        week_start=lambda f: pd.to_datetime(f["week_start"]).dt.date)
    week = max(categories["week_start"])
    now = categories[categories["week_start"] == week].set_index("category")["negative_share"]
    before = categories[categories["week_start"] == week - DAY * WEEK].set_index("category")["negative_share"]
    rises = (now - before).dropna().sort_values(ascending=False)
    insights = [Insight("review_shift", rank, "negative_share", f"category={category}", "week", week, float(now[category]),
                        float(before[category]),
                        f"Negative reviews in {category}: {now[category]:.1%} in the week of {week:%d %b}, "
                        f"{fmt_change('negative_share', float(now[category] - before[category]), None)} on the week before "
                        f"({before[category]:.1%}).")
                for rank, category in enumerate(rises[rises > 0].index[:MOVERS_PER_SIDE])]
    if not spikes.empty:
        recent = spikes.assign(week_start=lambda f: pd.to_datetime(f["week_start"]).dt.date)
        recent = recent[recent["week_start"] > week - DAY * WEEK * 4].sort_values("p_value")
        insights += [Insight("review_shift", len(insights) + rank, "negative_share", f"product={row.product_id}", "week",
                             row.week_start, float(row.negative_share), float(row.expected_share), str(row.narrative),
                             score=float(row.p_value))
                     for rank, row in enumerate(recent.head(MISSES_SHOWN).itertuples())]
    return insights
