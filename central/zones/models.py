from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ZoneOut(BaseModel):
    id: str
    name: str
    zone_class: str
    box_id: str
    state: str | None
    occupied: int | None
    schedule_version: int | None
    window_start: datetime | None
    window_end: datetime | None
    next_transition: datetime | None
    stale: bool
    availability: Literal["online", "stale", "unknown"] = Field(
        description="The zone's box: online, stale (cut off, for the site's stale_for_s) or "
        "unknown (site_model/availability.py)."
    )
    updated: datetime | None
