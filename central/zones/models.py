from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
    updated: datetime | None
