from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

FleetState = Literal["in sync", "pending", "applying", "failed", "rolled back"]


class FleetBoxOut(BaseModel):
    box_id: str
    desired_hash: str = Field(description="sha256 of the site-derived part the box should run.")
    desired_version: int | None = Field(
        description="The version last pushed with this hash; null when not pushed yet."
    )
    reported_hash: str | None = Field(description="What the box says it runs; null if unknown.")
    state: FleetState = Field(
        description="in sync (runs the desired part), pending (differs, or not reported), "
        "applying, failed (refused the push: nothing changed), rolled back (the box went "
        "back by itself: see reason)."
    )
    differs: list[str] = Field(
        description="Sections, lots and zones whose hash differs ('lots.P1', 'mqtt'), or why "
        "it cannot be told."
    )
    reason: str | None = Field(description="Why the last push failed or was rolled back.")
    applied_version: int | None = Field(description="The version of the last push's outcome.")
    applied_at: datetime | None
    release_version: str | None = Field(
        default=None, description="The release the box runs, from its birth (null: unknown)."
    )
    release_state: str | None = Field(
        default=None,
        description="confirmed, on_trial, rolled_back or unmanaged; null: the box does not "
        "report releases (older than rollouts).",
    )
    release_failed_version: str | None = Field(
        default=None, description="With rolled_back: the release the box went back from."
    )
    release_reason: str | None = Field(default=None, description="With rolled_back: why.")
    release_at: datetime | None = Field(default=None, description="When the box said so.")


class PushIn(BaseModel):
    box_id: str | None = Field(default=None, description="One box; null with all=true.")
    all: bool = Field(default=False, description="Every box of the site file.")


class PushOut(BaseModel):
    box_id: str
    version: int
    hash: str
    command_id: str | None = Field(description="Null when the box already runs it.")
    sent: bool
