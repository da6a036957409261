"""Review NLP in the graph: the sentiment model trained, promoted by its blocking check, and the review
reports built from generated review exports, the planted negative spike found."""

import datetime as dt
from typing import Any

import dagster as dg
import pytest

from sales_analytics.definitions import build_defs
from sales_analytics.generator import GeneratorConfig, SalesGenerator, generate
from sales_analytics.jobs import reference_job
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.nlp.assets import (
    SENTIMENT_MODEL_NAME,
    review_insights,
    review_published_reports,
    sentiment_model,
    sentiment_model_champion,
    sentiment_verdict,
)
from sales_analytics.nlp.sentiment import Evaluation
from sales_analytics.profiles import initialized
from sales_analytics.schema import ALL_PRODUCTS, NEGATIVE_REVIEW_SPIKES, REVIEW_SENTIMENT

CONFIG = GeneratorConfig(days=84, stores=4, products=60, start=dt.date(2026, 1, 5), orders_per_store_day=5)


def test_reviews_are_scored_reported_and_the_planted_spike_found(local_env: dict[str, Any]) -> None:
    with initialized(local_env["lake"]) as lake:
        generated = generate(lake, CONFIG, progress=False)
    instance = dg.DagsterInstance.ephemeral()
    reference = build_defs(local_env).resolve_job_def(reference_job.name).execute_in_process(instance=instance)
    assert reference.success
    reviews = reference.output_for_node("clean_reviews", "rows")
    rejected = reference.output_for_node("clean_reviews", "quarantine")
    assert reviews.num_rows + rejected.num_rows == generated.review_rows  # every landed review accounted for
    assert rejected.num_rows == len(SalesGenerator(CONFIG).review_weeks()) and "rating" in rejected["column"].to_pylist()

    trained = materialize_in_graph(local_env, [sentiment_model, sentiment_model_champion], instance=instance)
    assert trained.success
    metadata = trained.asset_materializations_for_node(sentiment_model.op.name)[0].metadata
    assert metadata["model/macro_f1"].value > metadata["lexicon/macro_f1"].value
    check = trained.get_asset_check_evaluations()[0]
    assert check.passed and "no champion yet" in check.metadata["reason"].value
    with initialized(local_env["lake"]) as lake:
        assert ModelRegistry(lake).champion(SENTIMENT_MODEL_NAME) == metadata["version"].value

    built = materialize_in_graph(local_env, [review_insights, *review_published_reports], instance=instance)
    assert built.success
    scores = built.output_for_node(review_insights.op.name, "scores")
    assert scores.num_rows == reviews.num_rows and set(scores["model_version"].to_pylist()) == {metadata["version"].value}
    product, week = SalesGenerator(CONFIG).spike()
    spikes = built.output_for_node(review_insights.op.name, NEGATIVE_REVIEW_SPIKES.name).to_pylist()
    planted = [s for s in spikes if (s["product_id"], s["week_start"]) == (product, week)]
    assert len(planted) == 1 and planted[0]["main_aspect"] == "size" and product in planted[0]["narrative"]
    assert len(spikes) <= 2  # the planted one, and at most one chance jump among ~700 product-weeks
    with initialized(local_env["report_db"]) as db:
        weekly = db.read(REVIEW_SENTIMENT, week.isoformat())
        ours = next(r for r in weekly if r["product_id"] == product)
        assert ours["negative_share"] > 0.5 and ours["top_negative_aspect"] == "size"
        category = next(r for r in weekly if r["product_id"] == ALL_PRODUCTS and r["category"] == ours["category"])
        assert category["reviews"] >= ours["reviews"]
        assert {(r["product_id"], r["week_start"]) for r in db.read(NEGATIVE_REVIEW_SPIKES)} == {
            (s["product_id"], s["week_start"]) for s in spikes}
    with initialized(local_env["serving_store"]) as serving:  # a product's weeks, one query
        served = serving.query(REVIEW_SENTIMENT, product)
    assert {i["week_start"] for i in served} >= {week.isoformat()} and {i["category"] for i in served} == {ours["category"]}
    assert float(next(i for i in served if i["week_start"] == week.isoformat())["negative_share"]) == pytest.approx(
        ours["negative_share"])

    seeded = materialize_in_graph(local_env, [review_insights], instance=instance, run_config={"ops": {review_insights.op.name: {
        "config": {"aspect_seeds": {"sizing": ["size", "sizes", "small", "large", "runs small", "too big"]}}}}})
    spikes = seeded.output_for_node(review_insights.op.name, NEGATIVE_REVIEW_SPIKES.name).to_pylist()
    assert [s["main_aspect"] for s in spikes if (s["product_id"], s["week_start"]) == (product, week)] == ["sizing"]

    again = materialize_in_graph(local_env, [sentiment_model, sentiment_model_champion], instance=instance)
    check = again.get_asset_check_evaluations()[0]
    assert check.passed and "on the same held-out reviews" in check.metadata["reason"].value


def evaluation(macro_f1: float) -> Evaluation:
    return Evaluation(accuracy=macro_f1, macro_f1=macro_f1, f1={}, confusion=[], reviews=100)


def test_promotion_needs_the_lexicon_beaten_and_the_champion_held() -> None:
    assert not sentiment_verdict(evaluation(0.40), evaluation(0.45), None)[0]
    assert sentiment_verdict(evaluation(0.60), evaluation(0.45), None)[0]
    ok, reason = sentiment_verdict(evaluation(0.60), evaluation(0.45), ("v1", evaluation(0.70)))
    assert not ok and "worse than champion v1's 0.700" in reason
    assert sentiment_verdict(evaluation(0.69), evaluation(0.45), ("v1", evaluation(0.70)))[0]  # within the tolerance
from sales_analytics_tests.helpers import materialize_in_graph
