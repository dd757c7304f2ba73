"""``GET /api/v1/lots/{lot_id}/forecast``: the lot's free bays in 15, 30 and 60 minutes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from central.deps import CentralDep
from central.errors import NotFound

router = APIRouter(prefix="/api/v1/lots", tags=["lots (public)"])


class ForecastPoint(BaseModel):
    minutes: int = Field(description="How far ahead: 15, 30 or 60")
    free: int = Field(description="Expected free bays")
    low: int = Field(description="Free bays, 10th percentile (busier than expected)")
    high: int = Field(description="Free bays, 90th percentile (quieter than expected)")
    basis: Literal["model", "persistence"] = Field(
        description="'persistence' where the lot's profile has no data for the hour"
    )


class ForecastOut(BaseModel):
    lot_id: str
    status: Literal["ok", "insufficient_history", "no_data", "not_ready"]
    detail: str
    made_at: str | None = Field(description="When the forecast was made (RFC 3339)")
    points: list[ForecastPoint]


@router.get(
    "/{lot_id}/forecast",
    response_model=ForecastOut,
    responses={404: {"description": "No such lot"}},
    summary="The lot's free bays in 15, 30 and 60 minutes, with an interval",
)
def lot_forecast(lot_id: str, request: Request, central: CentralDep) -> ForecastOut:
    if not central.shows(lot_id):  # a lot of another town of the county
        raise NotFound("lot", lot_id)
    forecaster = request.app.state.forecaster
    return ForecastOut.model_validate(forecaster.of(lot_id))
