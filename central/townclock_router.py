"""``GET /api/v1/clock``: the town's clock as central reads it (``central.townclock``).

The dashboard reads it at start and every half minute (an open page learns the demo's clock
when the town starts) and shows every time of the API, which are the boxes' wall times, on
the town's clock. Public: the time of day is no secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from central.townclock import TownClock

router = APIRouter(prefix="/api/v1", tags=["clock"])


class ClockOut(BaseModel):
    town: float = Field(description="The town's time now, epoch seconds")
    wall: float = Field(description="Central's wall clock now, epoch seconds")
    speed: float = Field(description="Town seconds per wall second (1 in a real town)")
    simulated: bool = Field(description="True when a simulated town's clock runs (the demo)")
    timezone: str = Field(description="The site's time zone: town times are shown in it")


def clock_reading(request: Request) -> dict[str, float | bool]:
    """The app's town clock now; the wall clock when the app has none (not started)."""
    clock = getattr(request.app.state, "town_clock", None)
    return (clock if clock is not None else TownClock(None)).reading()


@router.get("/clock", response_model=ClockOut, summary="The town's time now, and its speed")
def town_clock(request: Request) -> ClockOut:
    central = getattr(request.app.state, "central", None)
    zone = central.site.site.timezone if central is not None else "UTC"
    return ClockOut.model_validate({**clock_reading(request), "timezone": zone})
