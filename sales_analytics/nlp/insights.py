"""Review reports from scored reviews: sentiment by week, product and category; aspects; negative spikes.

Every number in a spike's narrative is a column of the same row, so a reader can trace it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sales_analytics.nlp.aspects import TOP_TERMS
from sales_analytics.schema import ALL_PRODUCTS

MIN_SPIKE_REVIEWS = 5  # fewer reviews than this in a week say too little to call a spike
MIN_SPIKE_JUMP = 0.25  # the negative share must rise at least this much over the expected share
MAX_SPIKE_P_VALUE = 0.01  # and be this unlikely at the expected share (one-sided binomial)
PRIOR_WEEKS = 4
PRIOR_STRENGTH = 10.0  # the category's share counts as this many reviews in a product's expected share


def weekly_sentiment(scores: pd.DataFrame) -> pd.DataFrame:
    """REVIEW_SENTIMENT rows: per week, each product and each category as a whole (``product_id`` '*')."""
    by_product = _sentiment_rows(scores, ["week_start", "category", "product_id"])
    by_category = _sentiment_rows(scores, ["week_start", "category"]).assign(product_id=ALL_PRODUCTS)
    return pd.concat([by_product, by_category], ignore_index=True).sort_values(["week_start", "category", "product_id"],
                                                                             ignore_index=True)


def _sentiment_rows(scores: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    shares = pd.crosstab([scores[k] for k in keys], scores["sentiment"], normalize="index")
    shares = shares.reindex(columns=["negative", "neutral", "positive"], fill_value=0.0).add_suffix("_share")
    grouped = scores.groupby(keys)
    rows = pd.DataFrame({"reviews": grouped.size(), "mean_rating": grouped["rating"].mean()}).join(shares)
    rows["top_negative_aspect"] = grouped["negative_aspects"].agg(_most_common)
    return rows.reset_index()


def _most_common(lists: pd.Series) -> str | None:
    aspects = [a for joined in lists for a in joined.split(",") if a]
    return pd.Series(aspects).value_counts().index[0] if aspects else None


def aspect_report(mentions: pd.DataFrame, terms: dict[str, dict[str, list[str]]]) -> pd.DataFrame:
    """REVIEW_ASPECTS rows. ``mentions``: one row per clause and aspect, with ``week_start``,
    ``category`` and the clause's ``sentiment``; ``terms`` from ``aspects.top_terms``."""
    if mentions.empty:
        return pd.DataFrame(columns=["week_start", "category", "aspect", "mentions", "negative_share", "positive_share",
                                     "top_negative_terms", "top_positive_terms"])
    grouped = mentions.groupby(["week_start", "category", "aspect"])["sentiment"]
    rows = pd.DataFrame({"mentions": grouped.size(),
                         "negative_share": grouped.agg(lambda s: float((s == "negative").mean())),
                         "positive_share": grouped.agg(lambda s: float((s == "positive").mean()))}).reset_index()
    rows["top_negative_terms"] = rows["aspect"].map(lambda a: ", ".join(terms.get(a, {}).get("negative", [])[:TOP_TERMS]))
    rows["top_positive_terms"] = rows["aspect"].map(lambda a: ", ".join(terms.get(a, {}).get("positive", [])[:TOP_TERMS]))
    return rows


def negative_spikes(scores: pd.DataFrame) -> pd.DataFrame:
    """Product-weeks whose negative share jumped against the product's previous weeks (shrunk toward its
    category's share, so a product with little history is judged against its category)."""
    # Loaded on use: every run's process imports the code location, few runs need it.
    from scipy.stats import binom

    weekly = (scores.assign(negative=scores["sentiment"] == "negative")
              .groupby(["product_id", "category", "week_start"])
              .agg(reviews=("negative", "size"), negative_reviews=("negative", "sum"),
                   negative_aspects=("negative_aspects", _most_common))
              .reset_index().sort_values(["product_id", "week_start"], ignore_index=True))
    category_share = scores.assign(negative=scores["sentiment"] == "negative").groupby("category")["negative"].mean()
    prior_reviews, prior_negative = (_previous_weeks_sum(weekly, c) for c in ("reviews", "negative_reviews"))
    prior_share = weekly["category"].map(category_share).to_numpy(float)
    expected = (prior_negative + PRIOR_STRENGTH * prior_share) / (prior_reviews + PRIOR_STRENGTH)
    weekly["negative_share"] = weekly["negative_reviews"] / weekly["reviews"]
    weekly["expected_share"] = expected
    weekly["p_value"] = binom.sf(weekly["negative_reviews"] - 1, weekly["reviews"], np.clip(expected, 1e-6, 1.0))
    spikes = weekly[(weekly["reviews"] >= MIN_SPIKE_REVIEWS) & (weekly["negative_share"] - expected >= MIN_SPIKE_JUMP)
                    & (weekly["p_value"] <= MAX_SPIKE_P_VALUE)].rename(columns={"negative_aspects": "main_aspect"})
    spikes = spikes.assign(narrative=spikes.apply(_narrative, axis=1) if len(spikes) else pd.Series(dtype=str))
    return spikes[["week_start", "product_id", "category", "reviews", "negative_reviews", "negative_share",
                   "expected_share", "p_value", "main_aspect", "narrative"]].reset_index(drop=True)


def _previous_weeks_sum(weekly: pd.DataFrame, column: str) -> np.ndarray:
    """Per row, the sum of ``column`` over the same product's ``PRIOR_WEEKS`` calendar weeks before it."""
    out = np.zeros(len(weekly))
    weeks = pd.to_datetime(weekly["week_start"])
    for rows in weekly.groupby("product_id").groups.values():
        idx = np.asarray(rows)
        days, values = weeks.iloc[idx].to_numpy(), weekly[column].iloc[idx].to_numpy(float)
        for position, day in zip(idx, days, strict=True):
            before = (days < day) & (days >= day - np.timedelta64(7 * PRIOR_WEEKS, "D"))
            out[position] = values[before].sum()
    return out


def _narrative(row: pd.Series) -> str:
    aspect = f"; most mentioned in them: {row['main_aspect']}" if row["main_aspect"] else ""
    return (f"{row['product_id']} ({row['category']}): {row['negative_reviews']} of {row['reviews']} reviews in the week of "
            f"{pd.Timestamp(row['week_start']).date()} were negative ({row['negative_share']:.0%}), against an expected "
            f"{row['expected_share']:.0%}{aspect}.")
