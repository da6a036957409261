"""Review sentiment: negative / neutral / positive, learned from our own reviews' star ratings.

The model is TF-IDF over hashed word 1-2-grams and character 2-5-grams into a class-balanced
logistic regression: fast, offline, and stored by the registry without pickle. Hashing keeps no
vocabulary, so the stored model is a few arrays, not a dictionary of every n-gram seen. Every training is evaluated on
a held-out split chosen by a stable hash of the review id, so a candidate and the champion are
scored on the same reviews, unseen by both; next to VADER's lexicon as the baseline.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline

SENTIMENTS = ("negative", "neutral", "positive")
HELD_OUT_SHARE = 0.2
VADER_NEUTRAL_BAND = 0.05  # VADER's own recommended threshold on the compound score


def sentiment_of_rating(rating: pd.Series) -> pd.Series:
    """1-2 stars negative, 3 neutral, 4-5 positive."""
    return pd.cut(rating, bins=[0, 2, 3, 5], labels=list(SENTIMENTS)).astype(str)


def review_texts(reviews: pd.DataFrame) -> pd.Series:
    """Title and body as one text; a review with neither is empty (it still counts, as unscorable)."""
    title, text = reviews["title"].fillna(""), reviews["text"].fillna("")
    return (title + ". " + text).where(title != "", text).str.strip()


def is_held_out(review_ids: pd.Series, share: float = HELD_OUT_SHARE) -> np.ndarray:
    """A fixed share of reviews by a stable hash of the id: the same reviews stay out of every training."""
    return np.array([zlib.crc32(str(r).encode()) % 1000 < share * 1000 for r in review_ids])


def train_sentiment(texts: pd.Series, labels: pd.Series) -> Pipeline:
    features = FeatureUnion([
        ("words", _tfidf(HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False, norm=None))),
        ("chars", _tfidf(HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=2**18,
                                           alternate_sign=False, norm=None))),
    ])
    classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
    return Pipeline([("features", features), ("classifier", classifier)]).fit(texts, labels)


def _tfidf(counts: HashingVectorizer) -> Pipeline:
    return Pipeline([("counts", counts), ("tfidf", TfidfTransformer(sublinear_tf=True))])


def predict_proba(model: Pipeline, texts: pd.Series) -> pd.DataFrame:
    """One column per sentiment, in ``SENTIMENTS`` order."""
    proba = model.predict_proba(texts)
    return pd.DataFrame(proba, columns=list(model.classes_), index=texts.index)[list(SENTIMENTS)]


def lexicon_sentiment(texts: pd.Series) -> pd.Series:
    """The baseline: VADER's rule-based compound score, cut at its recommended +-0.05."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    compound = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    return pd.Series(np.where(compound >= VADER_NEUTRAL_BAND, "positive",
                              np.where(compound <= -VADER_NEUTRAL_BAND, "negative", "neutral")), index=texts.index)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    macro_f1: float
    f1: dict[str, float]
    confusion: list[list[int]]  # rows: actual, columns: predicted, both in SENTIMENTS order
    reviews: int

    def as_metrics(self) -> dict:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "f1": self.f1, "confusion": self.confusion,
                "reviews": self.reviews}


def evaluate(actual: pd.Series, predicted: pd.Series) -> Evaluation:
    labels = list(SENTIMENTS)
    per_class = f1_score(actual, predicted, labels=labels, average=None, zero_division=0)
    return Evaluation(float(accuracy_score(actual, predicted)), float(per_class.mean()),
                      {label: float(f) for label, f in zip(labels, per_class, strict=True)},
                      confusion_matrix(actual, predicted, labels=labels).tolist(), len(actual))
