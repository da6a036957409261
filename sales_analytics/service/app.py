"""The prediction service (FastAPI): forecasts of the promoted demand model, behind an API key.

    sales-analytics serve [--host 127.0.0.1] [--port 8080]    # keys from SALES_ANALYTICS_API_KEYS

Every answer names the model version. Errors are 4xx with a plain reason: unknown series (404),
a horizon beyond the model's (422), a malformed body (422), a missing or wrong key (401).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from sales_analytics.service.forecasts import ChampionForecasts, NoChampion
from sales_analytics.storage.lake import LakeResource

API_KEY_HEADER = "X-API-Key"


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


def create_app(lake: LakeResource, api_keys: list[str], recheck_seconds: float = 5.0) -> FastAPI:
    if not api_keys or any(len(k) < 16 for k in api_keys):
        raise ValueError("the service needs API keys of at least 16 characters (SALES_ANALYTICS_API_KEYS)")
    champion = ChampionForecasts(lake, recheck_seconds)
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    def authenticated(key: str | None = Security(header)) -> None:
        # compare_digest against every key: the time taken does not tell how much of a key matched
        if key is None or not any(hmac.compare_digest(key.encode(), k.encode()) for k in api_keys):
            raise HTTPException(status_code=401, detail="missing or unknown API key", headers={"WWW-Authenticate": API_KEY_HEADER})

    def served() -> object:
        try:
            return champion.current()
        except NoChampion as err:
            raise HTTPException(status_code=503, detail=str(err)) from err

    app = FastAPI(title="sales_analytics prediction service", version="1",
                  description="Forecasts of the promoted demand model (P10 / P50 / P90), versioned.")

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

    return app
