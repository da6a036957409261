"""What reviews talk about: aspects (fit, battery, delivery, ...) found by clause, each with its sentiment.

Each catalogue's aspects are mined from its own reviews (``mine_aspects``): the seed aspects its
reviews mention (``ASPECTS``, named by terms a merchandiser would recognise, optional), and the content
words its reviews use most besides. A clause that uses an aspect's term mentions that aspect, and the
sentiment model scores the clause, so "great colour, but it runs small" is positive on colour and
negative on size. Each aspect's top terms are the words most over-represented
in its negative mentions against its positive ones (log-odds with an informative Dirichlet prior,
Monroe et al. 2008): what a manager reads to see *why* an aspect's sentiment moves.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from sales_analytics.nlp.sentiment import opinion_words

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
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Where a sentence turns: "great colour, but it runs small"; "battery is fine; the screen scratches".
_CLAUSE_BREAK = re.compile(r"\s*(?:;|,?\s+\b(?:but|however|although|though|whereas|while|yet)\b,?)\s*", re.IGNORECASE)
TOP_TERMS = 8
MINED_ASPECTS = 12  # per catalogue, besides the seeds it mentions
MIN_MENTIONS = 3  # reviews: fewer and a word is not an aspect of that catalogue
SEED_SHARE = 0.01  # of reviews that must use a seed aspect's name ("size") for it to be one of the catalogue's
PRODUCT_SHARE = 0.4  # a word in more of a catalogue's reviews than this is the product itself ("dress")
# Words every review uses that name no aspect; opinion words are left out by VADER's lexicon.
GENERIC_WORDS = frozenset({
    "use", "used", "using", "uses", "buy", "bought", "buying", "purchase", "purchased", "order", "ordered",
    "ordering", "got", "get", "gets", "getting", "did", "does", "doing", "don", "didn", "doesn", "isn", "wasn",
    "just", "really", "little", "bit", "lot", "way", "thing", "things", "time", "times", "think", "thought", "know",
    "want", "wanted", "need", "needed", "new", "old", "make", "made", "makes", "look", "looks", "looked", "looking",
    "tried", "try", "wear", "wore", "wearing", "work", "works", "worked", "working", "usually", "right", "went",
    "going", "come", "came", "say", "said", "item", "items", "product", "products", "retailer", "store", "online",
    "review", "reviews", "day", "days", "week", "weeks", "year", "years", "month", "months", "recommend",
    "definitely", "actually", "pretty", "overall", "probably", "maybe", "sure", "able", "having", "feel", "feels",
    "felt"
})


def sentences(texts: pd.Series) -> pd.DataFrame:
    """One row per non-empty sentence: ``review`` (the text's index label) and ``sentence``."""
    split = texts.fillna("").map(lambda t: [s.strip() for s in _SENTENCE_END.split(t) if s.strip()])
    exploded = split.explode().dropna()
    return pd.DataFrame({"review": exploded.index, "sentence": exploded.to_numpy()})


def mine_aspects(texts: pd.Series, seeds: dict[str, tuple[str, ...]] | None = None,
                 limit: int = MINED_ASPECTS) -> dict[str, tuple[str, ...]]:
    """One catalogue's aspects: each seed aspect (``ASPECTS`` by default) whose name its reviews use (at least
    ``SEED_SHARE`` of them: "small" alone does not make a camera's reviews about size), then up to ``limit``
    words its reviews use most that no seed names: stop words, opinion words (VADER's lexicon),
    ``GENERIC_WORDS`` and the product itself left out; a word and its plural are one aspect."""
    # Loaded on use: every run's process imports the code location, few runs need it.
    from sklearn.feature_extraction.text import CountVectorizer

    seeds = ASPECTS if seeds is None else seeds
    texts = texts.dropna()
    counts = CountVectorizer(stop_words="english", binary=True, lowercase=True, token_pattern=r"(?u)\b[a-zA-Z]{3,}\b")
    try:
        matrix = counts.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return {}
    frequency = dict(zip(counts.get_feature_names_out(), np.asarray(matrix.sum(axis=0)).ravel().tolist(), strict=True))
    aspects = {aspect: terms for aspect, terms in seeds.items()
               if frequency.get(aspect, 0) >= max(MIN_MENTIONS, SEED_SHARE * len(texts))}
    excluded = {term for terms in seeds.values() for term in terms} | opinion_words() | GENERIC_WORDS
    words: dict[str, tuple[str, ...]] = {}
    for word, n in sorted(frequency.items(), key=lambda item: (-item[1], item[0])):
        singular = _singular(word, frequency)
        product_itself = max(n, frequency.get(singular, 0)) > PRODUCT_SHARE * len(texts)
        if singular in words or {word, singular} & excluded or n < MIN_MENTIONS or product_itself:
            continue
        words[singular] = tuple(sorted(form for form in frequency if _singular(form, frequency) == singular))
        if len(words) == limit:
            break
    return aspects | {singular: forms for singular, forms in words.items()}


def _singular(word: str, frequency: dict[str, int]) -> str:
    """``word`` without its plural ending, when the catalogue's reviews also use that form (dresses -> dress)."""
    for ending in ("es", "s"):
        if word.endswith(ending) and word[:-len(ending)] in frequency:
            return word[:-len(ending)]
    return word


def aspect_mentions(texts: pd.Series, aspects: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """One row per (review, sentence, clause, aspect) the clause mentions; ``aspects`` default to ``ASPECTS``."""
    columns = ["review", "sentence", "clause", "aspect"]
    found = clauses(sentences(texts))
    if found.empty:
        return pd.DataFrame(columns=columns)
    frames = [found[found["clause"].str.contains(_pattern(terms))].assign(aspect=aspect)
              for aspect, terms in (ASPECTS if aspects is None else aspects).items()]
    mentions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return mentions[columns].sort_values(["review", "aspect"], kind="stable", ignore_index=True)


def clauses(found: pd.DataFrame) -> pd.DataFrame:
    """``sentences`` rows, one per clause: a sentence split where it turns (but, however, although, ;)."""
    split = found["sentence"].map(lambda s: [c for c in _CLAUSE_BREAK.split(s) if c.strip()] or [s])
    exploded = found.assign(clause=split).explode("clause")
    return exploded.reset_index(drop=True)


@functools.cache
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE)


def top_terms(mentions: pd.DataFrame, aspects: dict[str, tuple[str, ...]] | None = None,
              limit: int = TOP_TERMS) -> dict[str, dict[str, list[str]]]:
    """Per aspect, the terms most distinctive of its negative and of its positive mentions; an aspect's own
    terms (from ``aspects``, default ``ASPECTS``) say nothing and are left out.

    ``mentions`` needs ``aspect``, ``clause`` and ``sentiment`` (negative / neutral / positive)."""
    # Loaded on use: every run's process imports the code location, few runs need it.
    from sklearn.feature_extraction.text import CountVectorizer

    aspects = ASPECTS if aspects is None else aspects
    result = {}
    for aspect, rows in mentions.groupby("aspect"):
        negative, positive = rows[rows["sentiment"] == "negative"], rows[rows["sentiment"] == "positive"]
        if negative.empty or positive.empty:
            result[aspect] = {"negative": [], "positive": []}
            continue
        counts = CountVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2)
        try:
            matrix = counts.fit_transform(pd.concat([negative["clause"], positive["clause"]]))
        except ValueError:  # nothing left after stop words and min_df
            result[aspect] = {"negative": [], "positive": []}
            continue
        n_neg = len(negative)
        z = _log_odds_z(np.asarray(matrix[:n_neg].sum(axis=0)).ravel(), np.asarray(matrix[n_neg:].sum(axis=0)).ravel())
        terms = counts.get_feature_names_out()
        seeds = set(aspects.get(str(aspect), (str(aspect),)))
        ranked = [t for t in terms[np.argsort(-z)] if t not in seeds]
        result[aspect] = {"negative": ranked[:limit], "positive": [t for t in terms[np.argsort(z)] if t not in seeds][:limit]}
    return result


def _log_odds_z(first: np.ndarray, second: np.ndarray, prior_total: float = 500.0) -> np.ndarray:
    """z-scores of each term's log-odds in ``first`` against ``second``, shrunk toward their pooled rate."""
    prior = prior_total * (first + second) / max((first + second).sum(), 1)
    n1, n2, a0 = first.sum(), second.sum(), prior.sum()
    delta = (np.log((first + prior) / (n1 + a0 - first - prior)) - np.log((second + prior) / (n2 + a0 - second - prior)))
    return delta / np.sqrt(1 / (first + prior) + 1 / (second + prior))
