"""The prediction service over real HTTP (uvicorn on 127.0.0.1): auth, answers, 4xx, reload on promotion;
forecasts, review scoring and receipt extraction."""

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sales_analytics.curated.assets import SALES_BY_SERIES_KEY
from sales_analytics.generator import GeneratorConfig, SalesGenerator
from sales_analytics.ml.assets import DEMAND_MODEL_NAME
from sales_analytics.ml.features import FeatureConfig, dense_panel
from sales_analytics.ml.forecasting import train
from sales_analytics.ml.registry import ModelRegistry
from sales_analytics.nlp.assets import SENTIMENT_MODEL_NAME
from sales_analytics.nlp.sentiment import review_texts, sentiment_of_rating, train_sentiment
from sales_analytics.ocr.reader import MAX_IMAGE_BYTES
from sales_analytics.profiles import initialized
from sales_analytics.schema import SALES_BY_SERIES
from sales_analytics.service.app import API_KEY_HEADER, MAX_REVIEW_CHARS, MAX_REVIEW_TEXTS, create_app
from sales_analytics.storage.parquet_io import partition_object_key, table_to_parquet_bytes
from sales_analytics_tests.helpers import REAL_DATA, serving

KEY = "k" * 24
SROIE = REAL_DATA / "sroie_receipts"
START, DAYS, HORIZON = dt.date(2026, 1, 1), 150, 14
SERIES = {("S1", "tea"): 20.0, ("S1", "coffee"): 50.0, ("S2", "tea"): 8.0}


def curated_history(lake: Any) -> pd.DataFrame:
    """Weekly-shaped daily units for three series, written as curated partitions."""
    rng = np.random.default_rng(3)
    rows = []
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        units = {s: max(0, round(base * (1.5 if day.weekday() >= 5 else 1.0) + rng.normal(0, base * 0.1))) for s, base in SERIES.items()}
        table = pa.table({"sale_date": pa.array([day] * len(units), pa.date32()), "store_id": [s for s, _ in units],
                          "product_id": [f"P-{c}" for _, c in units], "category": [c for _, c in units],
                          "region": ["north"] * len(units), "store_format": ["express"] * len(units),
                          "units": pa.array(list(units.values()), pa.int64()),
                          "net_sales": [float(u) * 3 for u in units.values()]}).cast(SALES_BY_SERIES.arrow_schema())
        lake.put_bytes(partition_object_key(SALES_BY_SERIES_KEY, "sale_date", day.isoformat()), table_to_parquet_bytes(table))
        rows += [{"series_id": f"{s}|{c}", "date": day, "y": float(u)} for (s, c), u in units.items()]
    return dense_panel(pd.DataFrame(rows))


def promote_new_model(lake: Any, dense: pd.DataFrame, wape: float) -> str:
    model = train(dense, dense["date"].max(), FeatureConfig(horizon=HORIZON), max_iter=40)
    registry = ModelRegistry(lake)
    metrics = {"target": "units", "horizon": HORIZON, "level": "store_category",
               **{m: {"wape": w} for m, w in (("model", wape), ("seasonal_naive", 0.3), ("exponential_smoothing", 0.25))}}
    manifest = registry.save(DEMAND_MODEL_NAME, model.models, model.features, model.trained_until,
                             [str(START), model.trained_until], metrics)
    registry.record_verdict(DEMAND_MODEL_NAME, manifest.version, True, "beats seasonal naive")
    registry.promote(DEMAND_MODEL_NAME, manifest.version)
    return manifest.version


@pytest.fixture
def service(local_env: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with initialized(local_env["lake"]) as lake:
        dense = curated_history(lake)
        version = promote_new_model(lake, dense, 0.1)
        with serving(create_app(lake, [KEY], recheck_seconds=0)) as url:
            yield {"url": url, "lake": lake, "dense": dense, "version": version}


def call(url: str, path: str, body: object | None = None, key: str | None = KEY, raw: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": content_type, **({API_KEY_HEADER: key} if key else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_forecasts_come_with_quantiles_and_the_model_version(service: dict[str, Any]) -> None:
    status, answer = call(service["url"], "/v1/forecast", {"series": ["S1|tea", "S2|tea"], "horizon": 7})
    assert status == 200 and answer["model_version"] == service["version"] and answer["target"] == "units"
    points = answer["forecasts"]
    assert len(points) == 2 * 7 and all(p["p10"] <= p["p50"] <= p["p90"] for p in points)
    first_day = (START + dt.timedelta(days=DAYS)).isoformat()
    assert min(p["date"] for p in points) == first_day and answer["origin_date"] == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    big, small = (np.mean([p["p50"] for p in points if p["series_id"] == s]) for s in ("S1|tea", "S2|tea"))
    assert big > 1.5 * small  # each series at its own level
    status, info = call(service["url"], "/v1/model")
    assert status == 200 and info["model_version"] == service["version"] and info["horizon"] == HORIZON


@pytest.mark.parametrize("key", [None, "wrong-key-of-enough-length", KEY[:-1]])
def test_requests_without_the_right_key_are_refused(service: dict[str, Any], key: str | None) -> None:
    for path, body in (("/v1/forecast", {"series": ["S1|tea"], "horizon": 1}), ("/v1/model", None)):
        status, answer = call(service["url"], path, body, key=key)
        assert status == 401 and answer["detail"] == "missing or unknown API key"


def test_bad_requests_get_clear_4xx(service: dict[str, Any]) -> None:
    status, answer = call(service["url"], "/v1/forecast", {"series": ["S1|tea", "S9|nope"], "horizon": 3})
    assert status == 404 and answer["detail"] == {"reason": "unknown series", "series": ["S9|nope"]}
    status, answer = call(service["url"], "/v1/forecast", {"series": ["S1|tea"], "horizon": HORIZON + 1})
    assert status == 422 and "beyond the model's 14 days" in answer["detail"]
    for body in ({"series": [], "horizon": 3}, {"series": ["S1|tea"], "horizon": 0}, {"series": "S1|tea", "horizon": 3}, {}):
        assert call(service["url"], "/v1/forecast", body)[0] == 422
    status, _ = call(service["url"], "/v1/forecast", raw=b"{not json")
    assert status == 422


def test_openapi_schema_describes_the_endpoints(service: dict[str, Any]) -> None:
    status, schema = call(service["url"], "/openapi.json", key=None)
    assert status == 200 and {"/v1/forecast", "/v1/model"} <= set(schema["paths"])
    assert API_KEY_HEADER in json.dumps(schema["components"]["securitySchemes"])


def test_a_newly_promoted_model_is_served_without_a_restart(service: dict[str, Any]) -> None:
    newer = promote_new_model(service["lake"], service["dense"], 0.09)
    status, answer = call(service["url"], "/v1/forecast", {"series": ["S1|tea"], "horizon": 2})
    assert status == 200 and answer["model_version"] == newer != service["version"]


def test_the_service_refuses_to_start_without_proper_keys(local_env: dict[str, Any]) -> None:
    for keys in ([], ["short"]):
        with pytest.raises(ValueError, match="API keys of at least 16 characters"):
            create_app(local_env["lake"], keys)


def promote_sentiment_model(lake: Any) -> str:
    """A sentiment model trained on a few weeks of generated reviews, promoted."""
    generator = SalesGenerator(GeneratorConfig(days=42, stores=4, products=30))
    reviews = pa.concat_tables([generator.week_reviews(week) for week in generator.review_weeks()]).to_pandas()
    model = train_sentiment(review_texts(reviews), sentiment_of_rating(reviews["rating"].astype(int)))
    registry = ModelRegistry(lake)
    manifest = registry.save(SENTIMENT_MODEL_NAME, model.stored(), ["title", "text"], "2026-02-01", ["2026-01-01", "2026-02-01"], {})
    registry.record_verdict(SENTIMENT_MODEL_NAME, manifest.version, True, "beats the lexicon")
    registry.promote(SENTIMENT_MODEL_NAME, manifest.version)
    return manifest.version


def test_review_texts_are_scored_with_aspects_and_the_model_version(service: dict[str, Any]) -> None:
    texts = ["Runs very small, I had to return it.", "Great quality, really well made. Arrived quickly and well packed.", ""]
    status, answer = call(service["url"], "/v1/reviews/score", {"texts": texts})
    assert status == 503 and "no sentiment model" in answer["detail"]
    version = promote_sentiment_model(service["lake"])
    status, answer = call(service["url"], "/v1/reviews/score", {"texts": texts})
    assert status == 200 and answer["model_version"] == version
    negative, positive, empty = answer["scores"]
    assert negative["sentiment"] == "negative" and negative["negative_aspects"] == ["size"]
    assert positive["sentiment"] == "positive" and set(positive["aspects"]) == {"quality", "delivery"}
    probabilities = positive["probabilities"]
    assert positive["negative_aspects"] == [] and probabilities["negative"] + probabilities["positive"] == pytest.approx(1.0)
    assert probabilities["positive"] > 0.5 and 0 <= probabilities["neutral"] <= 1
    assert empty["sentiment"] == "neutral" and empty["aspects"] == []


def test_review_scoring_refuses_bad_bodies_and_missing_keys(service: dict[str, Any]) -> None:
    promote_sentiment_model(service["lake"])
    assert call(service["url"], "/v1/reviews/score", {"texts": ["fine"]}, key=None)[0] == 401
    for body in ({"texts": []}, {"texts": ["x"] * (MAX_REVIEW_TEXTS + 1)}, {"texts": ["x" * (MAX_REVIEW_CHARS + 1)]},
                 {"texts": "not a list"}, {"texts": [3]}, {}):
        status, answer = call(service["url"], "/v1/reviews/score", body)
        assert status == 422 and "Traceback" not in json.dumps(answer)


def upload(url: str, data: bytes, filename: str = "receipt.jpg", key: str | None = KEY, query: str = "") -> tuple[int, Any]:
    """A multipart/form-data POST of one file field ``image``, as a browser or curl -F sends it."""
    boundary = "----sales-analytics-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return call(url, f"/v1/receipts/extract{query}", key=key, raw=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_a_receipt_upload_is_read_into_fields_with_confidences(service: dict[str, Any]) -> None:
    receipt = (SROIE / "img" / "108.jpg").read_bytes()
    status, answer = upload(service["url"], receipt, query="?currency=MYR")  # the store's currency
    assert status == 200
    assert answer["total"]["value"] == "7.00" and answer["date"]["value"] == "2018-02-03" and answer["currency"] == "MYR"
    assert answer["confident"] is True and answer["doubts"] == []
    assert all(0 < answer[f]["confidence"] <= 1 for f in ("vendor", "date", "total"))
    # The asset's rule: the text confirms a configured currency, it never supplies or overrides one.
    _, unconfigured = upload(service["url"], receipt)
    assert (unconfigured["currency"], unconfigured["confident"]) == (None, False)
    _, contradicted = upload(service["url"], receipt, query="?currency=EUR")
    assert contradicted["confident"] is False and contradicted["doubts"] == ["it states MYR, not the configured EUR"]
    assert upload(service["url"], receipt, query="?currency=euro")[0] == 422


def test_bad_uploads_get_clear_4xx(service: dict[str, Any]) -> None:
    assert upload(service["url"], b"x" * 10, key=None)[0] == 401
    status, answer = upload(service["url"], b"%PDF-1.4 not an image", filename="receipt.pdf")
    assert status == 415 and "not a recognised image format (accepted: JPEG, PNG" in answer["detail"]
    assert "object at 0x" not in answer["detail"] and "BytesIO" not in answer["detail"]  # no internals
    status, answer = upload(service["url"], (SROIE / "img" / "108.jpg").read_bytes()[:2000])
    assert status == 415 and answer["detail"] == "not a readable image: its data is truncated or corrupt"
    status, answer = upload(service["url"], b"\xff\xd8" + bytes(MAX_IMAGE_BYTES))
    assert status == 413 and "byte limit" in answer["detail"]
    status, _ = call(service["url"], "/v1/receipts/extract", {"image": "not a file"})
    assert status == 422
