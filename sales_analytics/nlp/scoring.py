"""Scoring review texts with a sentiment model: the whole text, and each aspect by its sentences."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sales_analytics.nlp.aspects import aspect_mentions
from sales_analytics.nlp.sentiment import SENTIMENTS, SentimentModel


@dataclass(frozen=True)
class Scored:
    texts: pd.DataFrame  # per text (same index): sentiment, p_negative, p_neutral, p_positive, aspects, negative_aspects
    mentions: pd.DataFrame  # per (text, clause, aspect): review (the text's index label), sentence, clause, aspect, sentiment


def score_texts(model: SentimentModel, texts: pd.Series, aspects: dict[str, tuple[str, ...]] | None = None) -> Scored:
    """Each text, and each aspect (``aspects``, default the seeds) by the clauses that name it. An empty text
    scores neutral (even odds, surely neutral) with no aspects: it is counted, not guessed at."""
    proba = model.probabilities(texts)
    empty = texts.fillna("").str.strip() == ""
    if empty.any():
        proba.loc[empty] = [0.5, 1.0, 0.5]
    scored = proba.add_prefix("p_").assign(sentiment=model.sentiments(proba))
    mentions = aspect_mentions(texts[~empty], aspects)
    if not mentions.empty:
        mentions["sentiment"] = model.predict_polarity(mentions["clause"])
    else:
        mentions["sentiment"] = pd.Series(dtype=str)
    scored["aspects"] = _joined(mentions, texts.index)
    scored["negative_aspects"] = _joined(mentions[mentions["sentiment"] == "negative"], texts.index)
    return Scored(scored[["sentiment", *(f"p_{s}" for s in SENTIMENTS), "aspects", "negative_aspects"]], mentions)


def _joined(mentions: pd.DataFrame, index: pd.Index) -> pd.Series:
    aspects = mentions.drop_duplicates(["review", "aspect"]).groupby("review")["aspect"].agg(",".join)
    return aspects.reindex(index).fillna("")
