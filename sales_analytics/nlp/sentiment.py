"""Review sentiment: negative / neutral / positive, learned from our own reviews' star ratings, built to
travel to catalogues it was not trained on.

Two parts, both plain scikit-learn (stored by the registry without pickle):
- polarity: negative vs positive, learned only from clear ratings (1-2 vs 4-5 stars). Features: hashed
  TF-IDF word 1-2-grams of the text with negation scope marked ("not comfortable" -> "not neg_comfortable"),
  character 2-5-grams, and VADER's lexicon scores, which carry what words mean outside our own reviews;
  into a class-balanced logistic regression.
- neutrality: neutral (3 stars) vs either, with the same features, for reviews that say "average" in words.
A review is neutral when neutrality's P(neutral) exceeds ``neutral_threshold`` while the polarity's certainty
(|2 P(positive) - 1|) stays below ``polar_certainty``, or when its P(positive) lies within ``neutral_band`` of
even odds; else the polarity decides. The neutrality learns what 3-star reviews of one catalogue sound like (on
clothing: short complaints about fit), so on another it calls clear complaints neutral; a certain polarity
overrules it. The cut-offs are chosen on a share of the training reviews the two were first fitted without: the
narrowest band, then the highest threshold, whose three-class macro-F1 is within ``CHOICE_TOLERANCE`` of the
best; then the lowest certainty that scores no worse there than a polarity that never overrules. Narrow on
purpose: every neutral call on a clear review of another catalogue is a miss (on Amazon electronics sentences,
a band of 0.25 alone calls 29% of the clear ones neutral).
Every training is evaluated on a held-out split chosen by a stable hash of the review id, so a candidate
and the champion are scored on the same reviews, unseen by both; next to VADER's lexicon as the baseline.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SENTIMENTS = ("negative", "neutral", "positive")
HELD_OUT_SHARE = 0.2
CHOOSING_SHARE = 0.25  # of the training reviews: the models are first fitted without them, to choose the cut-offs on
BAND_WIDTHS = np.round(np.arange(0.0, 0.425, 0.025), 3)  # half-widths around P(positive) = 0.5
NEUTRAL_THRESHOLDS = np.round(np.arange(0.3, 1.01, 0.05), 2)  # of P(neutral); 1.0: neutrality never decides
POLAR_CERTAINTIES = (1.0, 0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.8)  # 1.0: the polarity never overrules
CHOICE_TOLERANCE = 0.01  # three-class macro-F1 narrower cut-offs may give up
NEGATION = re.compile(r"not|no|never|nothing|nobody|none|nor|cannot|without|hardly|barely|\w+n't")
TOKEN = re.compile(r"\w+(?:'\w+)?|[.,!?;:]")
LEXICON_COLUMNS = ["lexicon_compound", "lexicon_positive", "lexicon_negative"]
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


class IncompatibleModel(LookupError):
    """A stored sentiment model of an earlier form, which this code cannot score with: retrain."""


@dataclass(frozen=True)
class SentimentModel:
    polarity: Pipeline  # features -> negative / positive, learned from clear ratings only
    neutrality: Pipeline  # features -> neutral / polar
    neutral_threshold: float  # P(neutral) above which a review is neutral
    neutral_band: float  # half-width around P(positive) = 0.5 in which a review is neutral
    polar_certainty: float  # |2 P(positive) - 1| from which the polarity overrules the neutrality

    def probabilities(self, texts: pd.Series) -> pd.DataFrame:
        """Columns ``SENTIMENTS``, same index as ``texts``: the polarity's P(negative) and P(positive), which sum
        to 1, and the neutrality's P(neutral)."""
        return self.probabilities_of(sentiment_features(texts))

    def probabilities_of(self, features: pd.DataFrame) -> pd.DataFrame:
        """``probabilities`` from ``sentiment_features`` already computed."""
        return pd.DataFrame({"negative": _proba(self.polarity, features, "negative"),
                             "neutral": _proba(self.neutrality, features, "neutral"),
                             "positive": _proba(self.polarity, features, "positive")}, index=features.index)

    def predict(self, texts: pd.Series) -> pd.Series:
        return self.sentiments(self.probabilities(texts))

    def predict_polarity(self, texts: pd.Series) -> pd.Series:
        """negative / neutral / positive by the polarity alone (its band): for a clause about one aspect, which
        way it leans. The neutrality reads whole reviews: on a short clause ("the fabric is itchy") it mistakes
        a mild complaint, common in 3-star reviews, for neutral."""
        positive = _proba(self.polarity, sentiment_features(texts), "positive")
        return pd.Series(_sentiment(positive, np.zeros(len(positive)), 1.0, self.neutral_band, 1.0), index=texts.index)

    def sentiments(self, probabilities: pd.DataFrame) -> pd.Series:
        """negative / neutral / positive from ``probabilities``."""
        return pd.Series(_sentiment(probabilities["positive"].to_numpy(), probabilities["neutral"].to_numpy(),
                                    self.neutral_threshold, self.neutral_band, self.polar_certainty),
                         index=probabilities.index)

    def stored(self) -> dict[str, Any]:
        return {"polarity": self.polarity, "neutrality": self.neutrality, "neutral_threshold": self.neutral_threshold,
                "neutral_band": self.neutral_band, "polar_certainty": self.polar_certainty}

    @classmethod
    def from_stored(cls, stored: Any) -> SentimentModel:
        if not (isinstance(stored, dict) and set(stored) == set(cls.__dataclass_fields__)):
            raise IncompatibleModel(f"a stored sentiment model of an earlier form ({type(stored).__name__}): "
                                    "materialize ml/sentiment_model to train one of this form")
        return cls(stored["polarity"], stored["neutrality"], float(stored["neutral_threshold"]), float(stored["neutral_band"]),
                   float(stored["polar_certainty"]))


def _proba(model: Pipeline, features: pd.DataFrame, label: str) -> np.ndarray:
    return model.predict_proba(features)[:, list(model.classes_).index(label)]


def _sentiment(positive: np.ndarray, neutral: np.ndarray, threshold: float, band: float, certainty: float) -> np.ndarray:
    uncertain = np.abs(2 * positive - 1) < certainty
    return np.where(((neutral > threshold) & uncertain) | (np.abs(positive - 0.5) < band), "neutral",
                    np.where(positive >= 0.5, "positive", "negative"))


def train_sentiment(texts: pd.Series, labels: pd.Series) -> SentimentModel:
    """Polarity and neutrality, their cut-offs chosen on a stable share of the training reviews both were
    first fitted without; then both refitted on every training review."""
    features = sentiment_features(texts)
    choosing = is_held_out(texts, CHOOSING_SHARE)  # by the text: training reviews come without their ids
    first = _fit_models(features[~choosing], labels[~choosing])
    probabilities = first.probabilities_of(features[choosing])
    positive, neutral = probabilities["positive"].to_numpy(), probabilities["neutral"].to_numpy()

    def macro_f1(threshold: float, band: float, certainty: float) -> float:
        return evaluate(labels[choosing], pd.Series(_sentiment(positive, neutral, threshold, band, certainty),
                                                    index=probabilities.index)).macro_f1

    scores = {(float(threshold), float(band)): macro_f1(threshold, band, 1.0)
              for threshold in NEUTRAL_THRESHOLDS for band in BAND_WIDTHS}
    good = [cut for cut, score in scores.items() if score >= max(scores.values()) - CHOICE_TOLERANCE]
    threshold, band = min(good, key=lambda cut: (cut[1], -cut[0]))
    certainty = min(c for c in POLAR_CERTAINTIES if macro_f1(threshold, band, c) >= scores[threshold, band])
    final = _fit_models(features, labels)
    return SentimentModel(final.polarity, final.neutrality, threshold, band, certainty)


def _fit_models(features: pd.DataFrame, labels: pd.Series) -> SentimentModel:
    """Polarity on the clear ratings, neutrality on all; no cut-offs yet (never neutral)."""
    polar = (labels != "neutral").to_numpy()
    neutral_or_not = pd.Series(np.where(labels == "neutral", "neutral", "polar"), index=labels.index)
    return SentimentModel(_fit_classifier(features[polar], labels[polar]), _fit_classifier(features, neutral_or_not),
                          1.0, 0.0, 1.0)


def _fit_classifier(features: pd.DataFrame, labels: pd.Series) -> Pipeline:
    """A class-balanced logistic regression over ``sentiment_features``: the form of both models."""
    # Loaded on use: every run's process imports the code location, few runs need it.
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def hashed(analyzer: str, ngrams: tuple[int, int]) -> Pipeline:
        counts = HashingVectorizer(analyzer=analyzer, ngram_range=ngrams, n_features=2**18, alternate_sign=False, norm=None)
        return Pipeline([("counts", counts), ("tfidf", TfidfTransformer(sublinear_tf=True))])
    columns = ColumnTransformer([("words", hashed("word", (1, 2)), "negation_marked"),
                                  ("chars", hashed("char_wb", (2, 5)), "text"),
                                  ("lexicon", StandardScaler(), LEXICON_COLUMNS)])
    classifier = LogisticRegression(C=4.0, class_weight="balanced", solver="liblinear")  # binary and sparse: its best case
    return Pipeline([("features", columns), ("classifier", classifier)]).fit(features, labels)


def sentiment_features(texts: pd.Series) -> pd.DataFrame:
    """What the polarity reads: the text, the text with negation scope marked, and VADER's lexicon scores."""
    texts = texts.fillna("").astype(str)
    scores = [_lexicon().polarity_scores(text) for text in texts]
    return pd.DataFrame({"text": texts.to_numpy(), "negation_marked": [mark_negation(t) for t in texts],
                         "lexicon_compound": [s["compound"] for s in scores], "lexicon_positive": [s["pos"] for s in scores],
                         "lexicon_negative": [s["neg"] for s in scores]}, index=texts.index)


def mark_negation(text: str) -> str:
    """Lower-cased tokens, those after a negation up to the next punctuation prefixed ``neg_``:
    "not comfortable, but cute" -> "not neg_comfortable , but cute"."""
    marked, negated = [], False
    for token in TOKEN.findall(text.lower()):
        if token in ".,!?;:":
            negated = False
            marked.append(token)
            continue
        marked.append(f"neg_{token}" if negated else token)
        negated = negated or NEGATION.fullmatch(token) is not None
    return " ".join(marked)


def opinion_words() -> frozenset[str]:
    """The words VADER's lexicon rates: words of opinion, not of what the opinion is about."""
    return frozenset(_lexicon().lexicon)


@functools.cache
def _lexicon() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexicon_sentiment(texts: pd.Series) -> pd.Series:
    """The baseline: VADER's rule-based compound score, cut at its recommended +-0.05."""
    compound = np.array([_lexicon().polarity_scores(t)["compound"] for t in texts])
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
    # Loaded on use: every run's process imports the code location, few runs need it.
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(SENTIMENTS)
    per_class = f1_score(actual, predicted, labels=labels, average=None, zero_division=0)
    return Evaluation(float(accuracy_score(actual, predicted)), float(per_class.mean()),
                      {label: float(f) for label, f in zip(labels, per_class, strict=True)},
                      confusion_matrix(actual, predicted, labels=labels).tolist(), len(actual))
