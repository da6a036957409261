"""What reviews talk about: aspects (fit, size, quality, ...) found by sentence, each with its sentiment.

An aspect is named by seed terms a merchandiser would recognise; a sentence that uses one mentions
that aspect, and the sentiment model scores the sentence, so "great colour, but it runs small" is
positive on colour and negative on size. Each aspect's top terms are the words most over-represented
in its negative mentions against its positive ones (log-odds with an informative Dirichlet prior,
Monroe et al. 2008): what a manager reads to see *why* an aspect's sentiment moves.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer

ASPECTS: dict[str, tuple[str, ...]] = {
    "fit": ("fit", "fits", "fitted", "fitting", "tight", "loose", "snug", "baggy", "boxy", "flattering", "shapeless"),
    "size": ("size", "sizes", "sizing", "sized", "small", "large", "petite", "runs big", "runs small", "too big", "xs"),
    "quality": ("quality", "cheap", "cheaply", "flimsy", "durable", "well made", "poorly made", "seam", "seams",
                "stitching", "hole", "holes", "ripped", "tear", "pilling", "fell apart", "broke"),
    "fabric": ("fabric", "material", "cotton", "linen", "polyester", "wool", "itchy", "scratchy", "sheer",
               "see through", "see-through", "thin"),
    "price": ("price", "priced", "expensive", "pricey", "overpriced", "worth", "value", "cost", "money", "bargain"),
    "delivery": ("delivery", "delivered", "shipping", "shipped", "arrived", "package", "packaging", "courier", "late"),
    "color": ("color", "colour", "colors", "colours", "shade", "faded", "dye"),
    "comfort": ("comfortable", "comfy", "uncomfortable", "comfort", "soft"),
}
_PATTERNS = {aspect: re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE)
             for aspect, terms in ASPECTS.items()}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
TOP_TERMS = 8


def sentences(texts: pd.Series) -> pd.DataFrame:
    """One row per non-empty sentence: ``review`` (the text's index label) and ``sentence``."""
    split = texts.fillna("").map(lambda t: [s.strip() for s in _SENTENCE_END.split(t) if s.strip()])
    exploded = split.explode().dropna()
    return pd.DataFrame({"review": exploded.index, "sentence": exploded.to_numpy()})


def aspect_mentions(texts: pd.Series) -> pd.DataFrame:
    """One row per (review, sentence, aspect) the sentence mentions."""
    found = sentences(texts)
    if found.empty:
        return pd.DataFrame(columns=["review", "sentence", "aspect"])
    frames = [found[found["sentence"].str.contains(pattern)].assign(aspect=aspect) for aspect, pattern in _PATTERNS.items()]
    mentions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["review", "sentence", "aspect"])
    return mentions.sort_values(["review", "aspect"], kind="stable", ignore_index=True)


def top_terms(mentions: pd.DataFrame, limit: int = TOP_TERMS) -> dict[str, dict[str, list[str]]]:
    """Per aspect, the terms most distinctive of its negative and of its positive mentions.

    ``mentions`` needs ``aspect``, ``sentence`` and ``sentiment`` (negative / neutral / positive)."""
    result = {}
    for aspect, rows in mentions.groupby("aspect"):
        negative, positive = rows[rows["sentiment"] == "negative"], rows[rows["sentiment"] == "positive"]
        if negative.empty or positive.empty:
            result[aspect] = {"negative": [], "positive": []}
            continue
        counts = CountVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2)
        try:
            matrix = counts.fit_transform(pd.concat([negative["sentence"], positive["sentence"]]))
        except ValueError:  # nothing left after stop words and min_df
            result[aspect] = {"negative": [], "positive": []}
            continue
        n_neg = len(negative)
        z = _log_odds_z(np.asarray(matrix[:n_neg].sum(axis=0)).ravel(), np.asarray(matrix[n_neg:].sum(axis=0)).ravel())
        terms = counts.get_feature_names_out()
        seeds = set(ASPECTS[str(aspect)])
        ranked = [t for t in terms[np.argsort(-z)] if t not in seeds]
        result[aspect] = {"negative": ranked[:limit], "positive": [t for t in terms[np.argsort(z)] if t not in seeds][:limit]}
    return result


def _log_odds_z(first: np.ndarray, second: np.ndarray, prior_total: float = 500.0) -> np.ndarray:
    """z-scores of each term's log-odds in ``first`` against ``second``, shrunk toward their pooled rate."""
    prior = prior_total * (first + second) / max((first + second).sum(), 1)
    n1, n2, a0 = first.sum(), second.sum(), prior.sum()
    delta = (np.log((first + prior) / (n1 + a0 - first - prior)) - np.log((second + prior) / (n2 + a0 - second - prior)))
    return delta / np.sqrt(1 / (first + prior) + 1 / (second + prior))
