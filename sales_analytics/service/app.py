"""The service (FastAPI): predictions of the promoted models, report data and dashboards, behind an API key.

    sales-analytics serve [--host 127.0.0.1] [--port 8080]    # keys from SALES_ANALYTICS_API_KEYS

Every prediction names the model version. Errors are 4xx with a plain reason: unknown series (404),
a horizon beyond the model's (422), a malformed body or too many or too long texts (422), a bad
filter or range (400), a missing or wrong key (401), no promoted model yet (503). Error bodies say
what was wrong with the request, never how the server works (no traces, no SQL, no echoed input).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sales_analytics.nlp.scoring import score_texts
from sales_analytics.ocr.fields import ACCEPT_CONFIDENCE, verdict
from sales_analytics.ocr.reader import MAX_IMAGE_BYTES, UnreadableImage, read_receipt
from sales_analytics.service.auth import API_KEY_HEADER, DEFAULT_RATE_PER_KEY, KeyCheck
from sales_analytics.service.forecasts import ChampionForecasts, NoChampion
from sales_analytics.service.report_api import reports_router
from sales_analytics.service.reviews import ChampionSentiment
from sales_analytics.service.web import dashboards_router
from sales_analytics.storage.lake import LakeResource
from sales_analytics.storage.serving_store import ServingStore
from sales_analytics.storage.sql_store import SqlReportStore

__all__ = ["API_KEY_HEADER", "create_app"]
log = logging.getLogger(__name__)


class ForecastRequest(BaseModel):
    series: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=1000,
                                                                              description="store|category ids")
    horizon: int = Field(ge=1, description="days ahead, at most the model's horizon")


class QuantilePoint(BaseModel):
    series_id: str
    date: str
    p10: float
    p50: float
    p90: float


class ForecastResponse(BaseModel):
    model_version: str
    target: str
    origin_date: str
    forecasts: list[QuantilePoint]


class ModelInfo(BaseModel):
    model_version: str
    trained_until: str
    horizon: int
    target: str
    backtest_wape: dict[str, float]


MAX_REVIEW_TEXTS = 500
MAX_REVIEW_CHARS = 10_000


class ReviewScoreRequest(BaseModel):
    texts: list[Annotated[str, Field(max_length=MAX_REVIEW_CHARS)]] = Field(min_length=1, max_length=MAX_REVIEW_TEXTS,
                                                                           description="review texts (title and body)")


class ReviewScore(BaseModel):
    sentiment: str
    probabilities: dict[str, float] = Field(
        description="negative and positive: the polarity's (they sum to 1); neutral: the neutrality's own")
    aspects: list[str] = Field(description="aspects the text's sentences mention")
    negative_aspects: list[str] = Field(description="aspects mentioned in a negative sentence")


class ReviewScoreResponse(BaseModel):
    model_version: str
    scores: list[ReviewScore]


class ExtractedField(BaseModel):
    value: str | None
    confidence: float


class ReceiptExtraction(BaseModel):
    vendor: ExtractedField
    date: ExtractedField = Field(description="ISO yyyy-mm-dd")
    total: ExtractedField = Field(description="decimal with two places")
    currency: str | None = Field(description="the currency the request configured (the store's); the text only confirms it")
    confident: bool = Field(description=f"every field found with confidence >= {ACCEPT_CONFIDENCE}, a configured currency "
                                        "and none printed that contradicts it: the rule the receipts asset accepts by")
    doubts: list[str] = Field(description="why a person should check it; empty when confident")


def create_app(lake: LakeResource, api_keys: list[str], recheck_seconds: float = 5.0,
               report_db: SqlReportStore | None = None, serving_store: ServingStore | None = None,
               rate_per_key: float = DEFAULT_RATE_PER_KEY, cors_origins: list[str] | None = None) -> FastAPI:
    """The prediction endpoints and dashboards over the lake; report data too when given the stores.
    Browsers on other origins may call the API only when ``cors_origins`` names theirs."""
    keys = KeyCheck(api_keys, rate_per_key)
    authenticated = keys.dependency()
    champion = ChampionForecasts(lake, recheck_seconds)
    sentiment = ChampionSentiment(lake, recheck_seconds)

    def served() -> object:
        try:
            return champion.current()
        except NoChampion as err:
            raise HTTPException(status_code=503, detail=str(err)) from err

    app = FastAPI(title="sales_analytics service", version="1",
                  description="Forecasts of the promoted demand model (P10 / P50 / P90), review sentiment and receipt "
                              "extraction, versioned; report data from the serving and SQL stores; dashboards.")
    app.include_router(dashboards_router(lake, keys))
    if report_db is not None and serving_store is not None:
        app.include_router(reports_router(report_db, serving_store, authenticated))

    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"], allow_credentials=False, max_age=600)

    @app.exception_handler(Exception)
    def unexpected(request: Request, error: Exception) -> JSONResponse:
        # The trace goes to the server's log under an id; the client gets the id, not the trace or SQL.
        error_id = uuid.uuid4().hex[:12]
        log.error(f"error {error_id} on {request.method} {request.url.path}", exc_info=error)
        return JSONResponse(status_code=500, content={"detail": "internal error", "error_id": error_id})

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # Where and what, not the submitted value: a rejected key or token is not echoed back.
        problems = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model", response_model=ModelInfo, dependencies=[Depends(authenticated)])
    def model_info() -> ModelInfo:
        current = served()
        metrics = current.manifest.metrics
        return ModelInfo(model_version=current.manifest.version, trained_until=current.manifest.trained_until,
                         horizon=int(metrics["horizon"]), target=metrics["target"],
                         backtest_wape={m: float(metrics[m]["wape"]) for m in ("model", "seasonal_naive", "exponential_smoothing")})

    @app.post("/v1/forecast", response_model=ForecastResponse, dependencies=[Depends(authenticated)])
    def forecast(request: ForecastRequest) -> ForecastResponse:
        current = served()
        horizon = int(current.manifest.metrics["horizon"])
        if request.horizon > horizon:
            raise HTTPException(status_code=422, detail=f"horizon {request.horizon} is beyond the model's {horizon} days")
        table = current.table
        unknown = sorted(set(request.series) - set(table["series_id"]))
        if unknown:
            raise HTTPException(status_code=404, detail={"reason": "unknown series", "series": unknown[:20]})
        rows = table[table["series_id"].isin(request.series) & (table["step"] <= request.horizon)].sort_values(["series_id", "date"])
        return ForecastResponse(
            model_version=current.manifest.version, target=current.manifest.metrics["target"], origin_date=current.origin,
            forecasts=[QuantilePoint(series_id=r.series_id, date=r.date.date().isoformat(), p10=r.p10, p50=r.p50, p90=r.p90)
                       for r in rows.itertuples()])

    @app.post("/v1/reviews/score", response_model=ReviewScoreResponse, dependencies=[Depends(authenticated)])
    def score_reviews(request: ReviewScoreRequest) -> ReviewScoreResponse:
        try:
            version, model = sentiment.current()
        except NoChampion as err:
            raise HTTPException(status_code=503, detail=str(err)) from err
        scored = score_texts(model, pd.Series(request.texts)).texts
        return ReviewScoreResponse(model_version=version, scores=[
            ReviewScore(sentiment=r.sentiment, probabilities={"negative": r.p_negative, "neutral": r.p_neutral, "positive": r.p_positive},
                        aspects=[a for a in r.aspects.split(",") if a], negative_aspects=[a for a in r.negative_aspects.split(",") if a])
            for r in scored.itertuples()])

    @app.post("/v1/receipts/extract", response_model=ReceiptExtraction, dependencies=[Depends(authenticated)],
              responses={413: {"description": "image over the size limit"}, 415: {"description": "not an accepted image"}})
    def extract_receipt(image: UploadFile, currency: Annotated[str | None, Query(
            pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the store the receipt is from")] = None) -> ReceiptExtraction:
        data = image.file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(status_code=413, detail=f"image over the {MAX_IMAGE_BYTES:,}-byte limit")
        try:
            fields = read_receipt(data).fields
        except UnreadableImage as err:
            raise HTTPException(status_code=415, detail=str(err)) from err
        found = {name: ExtractedField(value=f.value, confidence=round(f.confidence, 3))
                 for name, f in (("vendor", fields.vendor), ("date", fields.date), ("total", fields.total))}
        judged = verdict(fields, currency)
        return ReceiptExtraction(**found, currency=judged.currency, confident=judged.accepted, doubts=judged.doubts)

    return app
