"""Review NLP: sentiment beats the lexicon on real reviews; aspects, weekly reports and spikes hand-checked."""

import csv
import datetime as dt
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from sales_analytics.generator import GeneratorConfig, SalesGenerator
from sales_analytics.nlp.aspects import aspect_mentions, mine_aspects, top_terms
from sales_analytics.nlp.insights import MIN_SPIKE_REVIEWS, negative_spikes, weekly_sentiment
from sales_analytics.nlp.scoring import score_texts
from sales_analytics.nlp.sentiment import (
    SentimentModel,
    evaluate,
    is_held_out,
    lexicon_sentiment,
    mark_negation,
    review_texts,
    sentiment_of_rating,
    train_sentiment,
)
from sales_analytics.schema import ALL_PRODUCTS
from sales_analytics_tests.helpers import REAL_DATA

REVIEWS = REAL_DATA / "womens_clothing_reviews" / "womens_clothing_ecommerce_reviews.csv"
AMAZON_SNIPPETS = REAL_DATA / "vader_review_snippets" / "amazonReviewSnippets_GroundTruth.txt"


@dataclass(frozen=True)
class Trained:
    model: SentimentModel
    texts: pd.Series  # the held-out clothing reviews
    labels: pd.Series


@pytest.fixture(scope="module")
def trained_on_clothing() -> Trained:
    raw = pd.read_csv(REVIEWS)
    reviews = pd.DataFrame({"review_id": [f"CR-{c}-{i + 1}" for i, c in enumerate(raw["Clothing ID"])],
                            "title": raw["Title"], "text": raw["Review Text"], "rating": raw["Rating"]})
    texts, labels = review_texts(reviews), sentiment_of_rating(reviews["rating"])
    held, usable = is_held_out(reviews["review_id"]), texts != ""
    return Trained(train_sentiment(texts[usable & ~held], labels[usable & ~held]), texts[usable & held], labels[usable & held])


def test_sentiment_beats_the_lexicon_on_held_out_clothing_reviews(trained_on_clothing: Trained) -> None:
    model, test_texts, test_labels = trained_on_clothing.model, trained_on_clothing.texts, trained_on_clothing.labels
    ours = evaluate(test_labels, model.predict(test_texts))
    lexicon = evaluate(test_labels, lexicon_sentiment(test_texts))
    # Measured on the 1,941 held-out reviews of the 10,000 in the fixture: macro-F1 0.615 vs VADER's 0.43,
    # accuracy 0.83 vs 0.79, negative F1 0.60, neutral F1 0.31 vs 0.05; cut-offs P(neutral) > 0.75 unless the
    # polarity's certainty reaches 0.9, band 0.1. (Without the certainty: 0.63, and clear complaints of other
    # catalogues called neutral.)
    assert ours.reviews == lexicon.reviews > 1800
    assert ours.macro_f1 > lexicon.macro_f1 + 0.12
    assert ours.accuracy > lexicon.accuracy
    assert ours.f1["negative"] > 0.5 and ours.f1["neutral"] > lexicon.f1["neutral"] + 0.15
    assert sum(map(sum, ours.confusion)) == ours.reviews
    assert model.neutral_band < 0.3 and model.neutral_threshold > 0.5


def test_sentiment_travels_to_another_catalogue(trained_on_clothing: Trained) -> None:
    """Trained on clothing reviews, scored on electronics review sentences (Amazon, rated by people):
    clear ones only (mean rating at least 1 away from 0, of -4..4), the half never used to choose anything.
    Measured on that half: macro-F1 0.754; VADER 0.713; without the polarity overruling the neutrality 0.73;
    the first three-class model 0.65; a plain TF-IDF + logistic regression on the same clothing reviews 0.64.
    On the development half: 0.754 and VADER 0.709."""
    snippets = pd.read_csv(AMAZON_SNIPPETS, sep="\t", header=None, names=["id", "rating", "text"], quoting=csv.QUOTE_NONE)
    clear = snippets[(snippets["rating"].abs() >= 1) & snippets["id"].map(lambda i: zlib.crc32(i.encode()) % 2 == 1)]
    truth = pd.Series(np.where(clear["rating"] > 0, "positive", "negative"), index=clear.index)
    predicted = trained_on_clothing.model.predict(clear["text"])
    ours = f1_score(truth, predicted, labels=["negative", "positive"], average="macro")
    lexicon = f1_score(truth, lexicon_sentiment(clear["text"]), labels=["negative", "positive"], average="macro")
    assert len(clear) > 1100
    assert ours > 0.73 and ours > lexicon


def test_sentiment_travels_to_the_generators_web_reviews(trained_on_clothing: Trained) -> None:
    """Trained on clothing reviews, scored on a year of the generator's web reviews (their own templates), clear
    ratings only, the half by review id never used to choose anything. Measured: macro-F1 1.00 on both halves,
    VADER 0.96-0.97; before the polarity could overrule the neutrality 0.85 (200 clear complaints called neutral)."""
    generator = SalesGenerator(GeneratorConfig(days=364, stores=4, products=60, start=dt.date(2026, 1, 5)))
    reviews = pd.concat([generator.week_reviews(week).to_pandas() for week in generator.review_weeks()], ignore_index=True)
    truth = sentiment_of_rating(reviews["rating"].astype(int))
    evaluation_half = (truth != "neutral") & reviews["review_id"].map(lambda i: zlib.crc32(i.encode()) % 2 == 1)
    texts, truth = review_texts(reviews)[evaluation_half], truth[evaluation_half]
    ours = f1_score(truth, trained_on_clothing.model.predict(texts), labels=["negative", "positive"], average="macro")
    lexicon = f1_score(truth, lexicon_sentiment(texts), labels=["negative", "positive"], average="macro")
    assert len(texts) > 1000 and (truth == "negative").sum() > 100
    assert ours > 0.97 and ours > lexicon


def test_negation_is_marked_up_to_the_next_punctuation() -> None:
    assert mark_negation("Not comfortable, but cute. I don't love the color!") == (
        "not neg_comfortable , but cute . i don't neg_love neg_the neg_color !")


def test_the_held_out_split_is_stable_and_about_a_fifth() -> None:
    ids = pd.Series([f"R{i}" for i in range(5000)])
    held = is_held_out(ids)
    assert (held == is_held_out(ids.sample(frac=1, random_state=1).sort_index())).all()
    assert 0.17 < held.mean() < 0.23


def test_ratings_map_to_sentiments_and_titles_join_texts() -> None:
    assert sentiment_of_rating(pd.Series([1, 2, 3, 4, 5])).tolist() == ["negative", "negative", "neutral", "positive", "positive"]
    texts = review_texts(pd.DataFrame({"title": ["Great", None, None], "text": ["fits well", "ok", None]}))
    assert texts.tolist() == ["Great. fits well", "ok", ""]


def test_aspects_are_found_by_clause() -> None:
    texts = pd.Series({"a": "Lovely colour, but it runs small. The fabric is itchy!", "b": "Arrived late.", "c": "Nice."})
    found = aspect_mentions(texts)
    assert set(map(tuple, found[["review", "aspect", "clause"]].to_numpy())) == {
        ("a", "color", "Lovely colour"), ("a", "size", "it runs small."), ("a", "fabric", "The fabric is itchy!"),
        ("b", "delivery", "Arrived late.")}


def test_two_aspects_of_one_sentence_get_their_own_sentiment(trained_on_clothing: Trained) -> None:
    scored = score_texts(trained_on_clothing.model, pd.Series({"r": "The colour is gorgeous, but the fabric is itchy and cheap."}))
    sentiments = dict(zip(scored.mentions["aspect"], scored.mentions["sentiment"], strict=True))
    assert sentiments == {"color": "positive", "fabric": "negative", "quality": "negative"}


def test_aspects_are_mined_from_another_catalogues_own_reviews() -> None:
    """Electronics review sentences: the clothing seeds they do not talk about stay out, their own words come in.
    Before: 15% of such reviews got an aspect, "size" most often. Measured: 52% get one."""
    snippets = pd.read_csv(AMAZON_SNIPPETS, sep="\t", header=None, names=["id", "rating", "text"], quoting=csv.QUOTE_NONE)
    aspects = mine_aspects(snippets["text"])
    assert {"battery", "sound", "software", "price", "quality"} <= set(aspects)
    assert not {"fit", "fabric", "color", "comfort", "delivery"} & set(aspects)
    assert aspects["battery"] == ("battery",) and aspects["feature"] == ("feature", "features")  # one aspect per word and plural
    mentions = aspect_mentions(snippets["text"], aspects)
    assert mentions["review"].nunique() > 0.45 * len(snippets)
    top = mentions["aspect"].value_counts().index[:8]
    assert "size" not in top and "player" in top


def test_top_terms_mark_what_makes_an_aspect_negative() -> None:
    mentions = pd.DataFrame({
        "aspect": ["size"] * 8,
        "clause": ["runs small, returned it", "runs small sadly", "size chart wrong, runs small", "size chart is wrong",
                     "true to size, love it", "size is perfect, love it", "perfect size", "size was true to the chart"],
        "sentiment": ["negative"] * 4 + ["positive"] * 4})
    terms = top_terms(mentions)["size"]
    assert "runs" in terms["negative"][:3] and "love" in terms["positive"][:3]
    assert "size" not in terms["negative"]  # the seed term itself says nothing


def scored(rows: list[tuple[str, str, str, int, str]]) -> pd.DataFrame:
    """(week_start, product, sentiment, rating, negative_aspects) -> REVIEW_SCORES-like rows in one category."""
    return pd.DataFrame([{"week_start": dt.date.fromisoformat(w), "product_id": p, "category": "apparel", "sentiment": s,
                          "rating": r, "negative_aspects": a} for w, p, s, r, a in rows])


def test_weekly_sentiment_by_product_and_category() -> None:
    scores = scored([("2026-03-02", "P1", "negative", 1, "size"), ("2026-03-02", "P1", "positive", 5, ""),
                     ("2026-03-02", "P2", "positive", 4, ""), ("2026-03-02", "P2", "neutral", 3, "")])
    report = weekly_sentiment(scores).set_index("product_id")
    assert report.loc["P1", ["reviews", "mean_rating", "negative_share", "positive_share"]].tolist() == [2, 3.0, 0.5, 0.5]
    assert report.loc["P1", "top_negative_aspect"] == "size" and pd.isna(report.loc["P2", "top_negative_aspect"])
    whole = report.loc[ALL_PRODUCTS]
    assert whole["reviews"] == 4 and whole["negative_share"] == 0.25 and whole["neutral_share"] == 0.25


def test_a_planted_negative_spike_is_found_with_its_aspect_and_traceable_numbers() -> None:
    weeks = ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    rows = []
    for week in weeks[:4]:  # four ordinary weeks: one negative review in ten, for both products
        for product in ("P1", "P2"):
            rows += [(week, product, "positive", 5, "")] * 9 + [(week, product, "negative", 2, "quality")]
    rows += [(weeks[4], "P1", "negative", 1, "size")] * 7 + [(weeks[4], "P1", "positive", 5, "")] * 3  # P1 turns
    rows += [(weeks[4], "P2", "positive", 5, "")] * 9 + [(weeks[4], "P2", "negative", 2, "size")]
    spikes = negative_spikes(scored(rows))
    assert spikes["product_id"].tolist() == ["P1"] and str(spikes["week_start"].item()) == weeks[4]
    spike = spikes.iloc[0]
    assert (spike["reviews"], spike["negative_reviews"], spike["main_aspect"]) == (10, 7, "size")
    # expected share: P1's four weeks before (4 of 40) shrunk toward the category's share (16 of 100 reviews)
    assert spike["expected_share"] == pytest.approx((4 + 10 * 16 / 100) / (40 + 10))
    assert spike["p_value"] < 0.001
    narrative = spike["narrative"]
    assert f"{spike['negative_reviews']} of {spike['reviews']} reviews" in narrative
    assert f"({spike['negative_share']:.0%})" in narrative and f"expected {spike['expected_share']:.0%}" in narrative
    assert "size" in narrative and weeks[4] in narrative


def test_a_few_negative_reviews_are_not_a_spike() -> None:
    rows = [("2026-03-02", "P1", "positive", 5, "")] * 10 + [("2026-03-09", "P1", "negative", 1, "fit")] * (MIN_SPIKE_REVIEWS - 1)
    assert negative_spikes(scored(rows)).empty
