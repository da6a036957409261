"""Review NLP in the graph: train the sentiment model, score every review, and the review reports.

The model goes through the same registry and blocking ``promotable`` check as forecasting: a new
version is promoted only if it beats the VADER lexicon on the held-out reviews and is not worse
than the champion there, both scored on the same reviews, unseen by either.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from sales_analytics.alerts import precondition_failed
from sales_analytics.catalog import CLEAN_PRODUCTS, CLEAN_REVIEWS, SENTIMENT_MODEL_NAME
from sales_analytics.lake.assets import table_metadata
from sales_analytics.metrics import rounded_score
from sales_analytics.ml.assets import champion_asset
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.nlp.aspects import ASPECTS, mine_aspects, top_terms
from sales_analytics.nlp.insights import aspect_report, negative_spikes, weekly_sentiment
from sales_analytics.nlp.scoring import score_texts
from sales_analytics.nlp.sentiment import (
    SENTIMENTS,
    Evaluation,
    IncompatibleModel,
    SentimentModel,
    evaluate,
    is_held_out,
    lexicon_sentiment,
    review_texts,
    sentiment_of_rating,
    train_sentiment,
)
from sales_analytics.reports.publish import publish_whole_assets
from sales_analytics.schema import NEGATIVE_REVIEW_SPIKES, REVIEW_ASPECTS, REVIEW_SCORES, REVIEW_SENTIMENT, TableSpec
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.parquet_io import INPUT_COLUMNS

SENTIMENT_MODEL = dg.AssetKey(["ml", "sentiment_model"])
SENTIMENT_CHAMPION = dg.AssetKey(["ml", "sentiment_model_champion"])
REVIEW_SCORES_KEY = dg.AssetKey(["ml", "review_scores"])
MIN_TRAINING_REVIEWS = 30  # per sentiment: fewer than this and there is nothing to learn from
CHAMPION_TOLERANCE = 0.02  # macro-F1 a candidate may lose against the champion and still replace it


REVIEW_INS = {
    "reviews": dg.AssetIn(CLEAN_REVIEWS, metadata={INPUT_COLUMNS: ["review_id", "product_id", "rating", "title", "text", "ts",
                                                                   "category", "delivered_on"]}),
    "products": dg.AssetIn(CLEAN_PRODUCTS, metadata={INPUT_COLUMNS: ["product_id", "category", "is_current"]}),
}


def load_reviews(reviews: pa.Table | None, products: pa.Table | None) -> pd.DataFrame:
    """clean/reviews with ``text`` (title and body), ``week_start`` (written, else delivered) and a
    ``category`` (the review's own, else the product's current one, else 'unknown')."""
    if reviews is None or reviews.num_rows == 0:
        raise precondition_failed("clean/reviews is empty: land a review export and materialize it first")
    frame = reviews.to_pandas()
    current = (products.filter(products["is_current"]).to_pandas().set_index("product_id")["category"]
               if products is not None else pd.Series(dtype=str))
    frame["category"] = frame["category"].fillna(frame["product_id"].map(current)).fillna("unknown")
    written = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None).dt.normalize()
    day = written.fillna(pd.to_datetime(frame["delivered_on"]))
    frame["week_start"] = (day - pd.to_timedelta(day.dt.dayofweek, unit="D")).dt.date
    frame["text"] = review_texts(frame)
    return frame


@dg.asset(
    key=SENTIMENT_MODEL,
    ins=REVIEW_INS,
    group_name="ml",
    kinds={"scikit-learn"},
    description=("Review sentiment (negative / neutral / positive) learned from star ratings: a polarity (1-2 vs 4-5 "
                 "stars) and a neutrality (3 stars vs the rest), each TF-IDF words with negation marked, character "
                 "n-grams and VADER's lexicon scores into a logistic regression, stored as a new version under "
                 f"`models/{SENTIMENT_MODEL_NAME}/`, evaluated on held-out reviews next to the VADER lexicon."),
    check_specs=[dg.AssetCheckSpec("promotable", asset=SENTIMENT_MODEL, blocking=True,
                                   description="Beats the lexicon's macro-F1 and is not worse than the champion's beyond 0.02.")],
)
def sentiment_model(context: dg.AssetExecutionContext, lake: LakeResource, reviews: pa.Table | None,
                    products: pa.Table | None) -> Iterator:
    reviews = load_reviews(reviews, products)
    labelled = reviews[reviews["text"] != ""].assign(label=lambda r: sentiment_of_rating(r["rating"]))
    held = is_held_out(labelled["review_id"])
    training, testing = labelled[~held], labelled[held]
    counts = training["label"].value_counts().reindex(list(SENTIMENTS), fill_value=0)
    if counts.min() < MIN_TRAINING_REVIEWS:
        raise precondition_failed(f"too few rated reviews to learn sentiment from: {counts.to_dict()} (need {MIN_TRAINING_REVIEWS} of each)")
    model = train_sentiment(training["text"], training["label"])
    ours = evaluate(testing["label"], model.predict(testing["text"]))
    lexicon = evaluate(testing["label"], lexicon_sentiment(testing["text"]))
    registry = ModelRegistry(lake)
    champion = _champion_on(registry, testing)
    written = [str(d) for d in (reviews["week_start"].min(), reviews["week_start"].max())]
    manifest = registry.save(SENTIMENT_MODEL_NAME, model.stored(), ["title", "text"], written[1], written,
                             {"model": ours.as_metrics(), "lexicon": lexicon.as_metrics(), "trained_on": len(training),
                              "neutral_band": model.neutral_band, "neutral_threshold": model.neutral_threshold,
                              "polar_certainty": model.polar_certainty})
    ok, reason = sentiment_verdict(ours, lexicon, champion)
    registry.record_verdict(SENTIMENT_MODEL_NAME, manifest.version, ok, reason)
    context.log.info(f"sentiment model {manifest.version}: {reason}")
    yield dg.MaterializeResult(asset_key=SENTIMENT_MODEL, metadata={
        "version": manifest.version, "trained_on": len(training), "held_out": len(testing),
        "neutral_band": rounded_score(model.neutral_band), "neutral_threshold": rounded_score(model.neutral_threshold),
        "polar_certainty": model.polar_certainty,
        "model/accuracy": rounded_score(ours.accuracy), "model/macro_f1": rounded_score(ours.macro_f1),
        "lexicon/accuracy": rounded_score(lexicon.accuracy), "lexicon/macro_f1": rounded_score(lexicon.macro_f1),
        "confusion": dg.MetadataValue.md(_confusion_markdown(ours, lexicon)),
    })
    yield dg.AssetCheckResult(check_name="promotable", asset_key=SENTIMENT_MODEL, passed=ok,
                              metadata={"reason": reason, "version": manifest.version})


def _champion_on(registry: ModelRegistry, testing: pd.DataFrame) -> tuple[str, Evaluation] | None:
    """The champion's evaluation on today's held-out reviews (held out of its training too: same hash); none
    when there is no champion, or one of an earlier form that cannot be scored (the candidate then faces the lexicon)."""
    version = registry.champion(SENTIMENT_MODEL_NAME)
    if version is None:
        return None
    try:
        model = SentimentModel.from_stored(registry.load(SENTIMENT_MODEL_NAME, version)[0])
    except IncompatibleModel:
        return None
    return version, evaluate(testing["label"], model.predict(testing["text"]))


def sentiment_verdict(ours: Evaluation, lexicon: Evaluation, champion: tuple[str, Evaluation] | None) -> tuple[bool, str]:
    if ours.macro_f1 <= lexicon.macro_f1:
        return False, f"macro-F1 {ours.macro_f1:.3f} does not beat the lexicon's {lexicon.macro_f1:.3f}"
    if champion is None:
        return True, f"macro-F1 {ours.macro_f1:.3f} beats the lexicon's {lexicon.macro_f1:.3f}; no champion yet"
    version, theirs = champion
    if ours.macro_f1 < theirs.macro_f1 - CHAMPION_TOLERANCE:
        return False, f"macro-F1 {ours.macro_f1:.3f} is worse than champion {version}'s {theirs.macro_f1:.3f} on the same reviews"
    return True, (f"macro-F1 {ours.macro_f1:.3f} beats the lexicon's {lexicon.macro_f1:.3f} and holds against champion "
                  f"{version}'s {theirs.macro_f1:.3f} on the same held-out reviews")


def _confusion_markdown(ours: Evaluation, lexicon: Evaluation) -> str:
    header = "| actual \\ predicted | " + " | ".join(SENTIMENTS) + " |\n|---|---|---|---|\n"
    tables = []
    for name, evaluation in (("model", ours), ("lexicon", lexicon)):
        rows = [f"| {actual} | " + " | ".join(str(n) for n in counts) + " |"
                for actual, counts in zip(SENTIMENTS, evaluation.confusion, strict=True)]
        tables.append(f"**{name}** (accuracy {evaluation.accuracy:.3f}, macro-F1 {evaluation.macro_f1:.3f})\n\n" + header + "\n".join(rows))
    return "\n\n".join(tables)


sentiment_model_champion = champion_asset(SENTIMENT_MODEL, SENTIMENT_CHAMPION, SENTIMENT_MODEL_NAME,
                                          "review sentiment model that scores reviews and the service's texts")


class ReviewInsightsConfig(dg.Config):
    aspect_seeds: dict[str, list[str]] | None = Field(
        default=None, description="seed aspects and the words that name each, e.g. {battery: [battery, charge]}; a "
                                  "catalogue gets those its reviews use, beside the words it mines. Default: a retail list "
                                  f"({', '.join(ASPECTS)})")


@dg.multi_asset(
    name="review_scoring",  # the job that runs it is review_insights
    outs={
        "scores": dg.AssetOut(key=REVIEW_SCORES_KEY, group_name="ml", kinds={"scikit-learn", "parquet"},
                              description=REVIEW_SCORES.description,
                              metadata=table_metadata(REVIEW_SCORES)),
        **{spec.name: dg.AssetOut(key=["reports", spec.name], group_name="reports",
                                  description=spec.description, metadata=table_metadata(spec))
           for spec in (REVIEW_SENTIMENT, REVIEW_ASPECTS, NEGATIVE_REVIEW_SPIKES)},
    },
    deps=[SENTIMENT_CHAMPION],  # the champion's version, read from the model registry
    ins=REVIEW_INS,
    check_specs=[dg.AssetCheckSpec("every_review_scored", asset=REVIEW_SCORES_KEY,
                                   description="Every review in clean/reviews has a sentiment from the champion.")],
)
def review_insights(context: dg.AssetExecutionContext, config: ReviewInsightsConfig, lake: LakeResource,
                    reviews: pa.Table | None, products: pa.Table | None) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Every review scored by the champion, then the weekly sentiment, aspect and spike reports from those scores."""
    registry = ModelRegistry(lake)
    version = registry.champion(SENTIMENT_MODEL_NAME)
    if version is None:
        raise precondition_failed("no promoted sentiment model yet: materialize ml/sentiment_model (its promotable check must pass)")
    try:
        model = SentimentModel.from_stored(registry.load(SENTIMENT_MODEL_NAME, version)[0])
    except IncompatibleModel as err:
        raise precondition_failed(f"champion {version}: {err}") from err
    reviews = load_reviews(reviews, products)
    seeds = None if config.aspect_seeds is None else {aspect: tuple(words) for aspect, words in config.aspect_seeds.items()}
    aspects, scored = {}, []
    for category, group in reviews.groupby("category"):  # each catalogue by its own aspects
        aspects[category] = mine_aspects(group["text"], seeds)
        scored.append(score_texts(model, group["text"], aspects[category]))
    scores = reviews.join(pd.concat([s.texts for s in scored])).assign(model_version=version)
    mentions = pd.concat([s.mentions for s in scored]).join(reviews[["week_start", "category"]], on="review")
    terms = top_terms(mentions, {aspect: terms for found in aspects.values() for aspect, terms in found.items()})
    spikes = negative_spikes(scores)
    yield dg.Output(_table(scores, REVIEW_SCORES), output_name="scores", metadata={
        "dagster/row_count": len(scores), "model_version": version,
        **{f"share/{s}": rounded_score((scores["sentiment"] == s).mean()) for s in SENTIMENTS}})
    yield dg.Output(_table(weekly_sentiment(scores), REVIEW_SENTIMENT), output_name=REVIEW_SENTIMENT.name)
    yield dg.Output(_table(aspect_report(mentions, terms), REVIEW_ASPECTS), output_name=REVIEW_ASPECTS.name, metadata={
        "top_terms": dg.MetadataValue.md(_terms_markdown(terms)),
        "aspects_per_category": dg.MetadataValue.md("\n".join(f"- {c}: {', '.join(a)}" for c, a in sorted(aspects.items())))})
    yield dg.Output(_table(spikes, NEGATIVE_REVIEW_SPIKES), output_name=NEGATIVE_REVIEW_SPIKES.name, metadata={
        "dagster/row_count": len(spikes), "spikes": dg.MetadataValue.md("\n".join(f"- {n}" for n in spikes["narrative"]) or "None.")})
    unscored = set(reviews["review_id"]) - set(scores.loc[scores["sentiment"].isin(SENTIMENTS), "review_id"])
    yield dg.AssetCheckResult(check_name="every_review_scored", asset_key=REVIEW_SCORES_KEY, passed=not unscored,
                              metadata={"reviews": len(reviews), "unscored": len(unscored),
                                        "first_unscored": ", ".join(sorted(map(str, unscored))[:10]) or "none"})


def _table(frame: pd.DataFrame, spec: TableSpec) -> pa.Table:
    return pa.Table.from_pandas(frame[spec.column_names], schema=spec.arrow_schema(), preserve_index=False)


def _terms_markdown(terms: dict[str, dict[str, list[str]]]) -> str:
    rows = [f"| {aspect} | {', '.join(t['negative'])} | {', '.join(t['positive'])} |" for aspect, t in sorted(terms.items())]
    return "| aspect | marks negative mentions | marks positive mentions |\n|---|---|---|\n" + "\n".join(rows)


review_published_reports = [asset for spec in (REVIEW_SENTIMENT, REVIEW_ASPECTS, NEGATIVE_REVIEW_SPIKES)
                            for asset in publish_whole_assets(spec, dg.AssetKey(["reports", spec.name]))]
