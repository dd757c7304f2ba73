from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class BoxOut(BaseModel):
    id: str
    name: str | None
    online: bool
    availability: Literal["online", "stale", "unknown"] = Field(
        description="online; stale (offline for less than the site's stale_for_s); unknown "
        "(never heard, or offline longer): site_model/availability.py"
    )
    offline_for_s: float | None = Field(
        description="Seconds since central marked it offline; null while online."
    )
    seen: bool = Field(description="Whether central ever heard a status from it.")
    boot_id: str | None
    offline_reason: str | None
    status_changed: datetime | None
    last_seen: datetime | None
    software_version: str | None
    config_hash: str | None
    sensor_count: int | None
    acked_seq: int | None = Field(description="Central's ack watermark for its events.")
    lots: list[str]
    zones: list[str]
    health: dict[str, Any] | None = Field(description="The health summary of its last birth.")
    clock: dict[str, Any] | None
    site_problems: int


class SignOut(BaseModel):
    id: str
    box_id: str
    up: bool | None
    state: dict[str, Any]
    updated: datetime | None
