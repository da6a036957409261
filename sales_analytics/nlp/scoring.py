"""Scoring review texts with a sentiment model: the whole text, and each aspect by its sentences."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.pipeline import Pipeline

from sales_analytics.nlp.aspects import aspect_mentions
from sales_analytics.nlp.sentiment import SENTIMENTS, predict_proba


@dataclass(frozen=True)
class Scored:
    texts: pd.DataFrame  # per text (same index): sentiment, p_negative, p_neutral, p_positive, aspects, negative_aspects
    mentions: pd.DataFrame  # per (text, sentence, aspect): review (the text's index label), sentence, aspect, sentiment


def score_texts(model: Pipeline, texts: pd.Series) -> Scored:
    """An empty text scores neutral with no aspects: it is counted, not guessed at."""
    proba = predict_proba(model, texts)
    empty = texts.fillna("").str.strip() == ""
    if empty.any():
        proba.loc[empty] = [0.0, 1.0, 0.0]
    scored = proba.add_prefix("p_").assign(sentiment=proba.idxmax(axis=1))
    mentions = aspect_mentions(texts[~empty])
    if not mentions.empty:
        mentions["sentiment"] = pd.Series(model.predict(mentions["sentence"]), index=mentions.index)
    else:
        mentions["sentiment"] = pd.Series(dtype=str)
    scored["aspects"] = _joined(mentions, texts.index)
    scored["negative_aspects"] = _joined(mentions[mentions["sentiment"] == "negative"], texts.index)
    return Scored(scored[["sentiment", *(f"p_{s}" for s in SENTIMENTS), "aspects", "negative_aspects"]], mentions)


def _joined(mentions: pd.DataFrame, index: pd.Index) -> pd.Series:
    aspects = mentions.drop_duplicates(["review", "aspect"]).groupby("review")["aspect"].agg(",".join)
    return aspects.reindex(index).fillna("")
