"""The lots API's response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LotStatusOut = Literal["spacesAvailable", "almostFull", "full", "closed", "unknown"]


class Location(BaseModel):
    lat: float
    lon: float


class LotOut(BaseModel):
    """A lot as drivers and navigation apps see it, by the availability rule
    (``site_model/availability.py``, docs/architecture.md).

    ``availability`` says whether the figures can be believed: ``online`` (current),
    ``stale`` (the box is cut off: its last figures, ``age_s`` seconds old, for the site's
    ``[availability] stale_for_s``), ``unknown`` (never reported, cut off longer, or the
    figures vouch for nothing: every bay unknown). When unknown, bays last reported free are
    counted as ``unknown`` and ``free`` is 0: nobody is sent to a space that may be gone.
    ``last_known_free`` keeps the box's last figure for the office.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    capacity: int
    free: int
    occupied: int
    unknown: int
    closed: int
    status: LotStatusOut
    trend: Literal["filling", "emptying", "steady"] | None
    stale: bool = Field(description="The figures are not current: availability is not online.")
    availability: Literal["online", "stale", "unknown"] = Field(
        description="online: current; stale: the box is cut off, figures age_s old; unknown."
    )
    age_s: float | None = Field(
        description="Seconds since central marked the lot's box offline; null while online."
    )
    last_known_free: int | None
    updated: datetime | None = Field(description="When the box last reported the lot.")
    location: Location | None
    address: str | None


class LotsOut(BaseModel):
    lots: list[LotOut]


class SensorOut(BaseModel):
    sensor_id: str
    flags: list[str]
    detail: dict[str, Any] | None


class BayOut(BaseModel):
    id: str
    lot_id: str | None
    zone_id: str | None
    state: Literal["free", "occupied", "unknown", "closed"] = Field(
        description="What to believe now: 'unknown' when the box is offline and the bay "
        "was last free, or when nothing was ever reported."
    )
    reported_state: str | None = Field(description="The box's last report.")
    stale: bool
    availability: Literal["online", "stale", "unknown"]
    since: datetime | None
    updated: datetime | None
    sensor: SensorOut | None


class OccupancyPoint(BaseModel):
    at: datetime
    occupied: int
    free: int
    unknown: int
    closed: int
    occupancy: float = Field(description="occupied / (capacity - closed), 0..1")


class OccupancyHistory(BaseModel):
    lot_id: str
    capacity: int
    start: datetime
    end: datetime
    step_s: int
    points: list[OccupancyPoint]


class DwellStats(BaseModel):
    lot_id: str
    start: datetime
    end: datetime
    stays: int = Field(description="Completed stays (occupied -> not occupied) in the range.")
    mean_s: float | None
    median_s: float | None
    p90_s: float | None
    max_s: float | None
    histogram: dict[str, int] = Field(description="Stays by duration bucket.")
