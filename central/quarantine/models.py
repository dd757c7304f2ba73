from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class QuarantinedOut(BaseModel):
    id: int
    topic: str
    box_id: str | None
    reason: str
    received_at: datetime
    payload_size: int
    payload: str = Field(description="The bytes as text (invalid UTF-8 replaced), cut at 64 KiB.")


class RetentionOut(BaseModel):
    """How much the quarantine keeps, holds now, and dropped (oldest first) to stay so."""

    max_bytes: int = Field(description="Stored bytes kept at most (QUARANTINE_MAX_BYTES).")
    max_age_days: float = Field(description="Rows older than this are dropped.")
    rows: int = Field(description="Rows held now (all boxes).")
    bytes: int = Field(description="Stored bytes held now: payload + topic + reason.")
    dropped_by_size: int = Field(description="Rows dropped for the size cap since start.")
    dropped_by_age: int = Field(description="Rows dropped for age since start.")


class QuarantineOut(BaseModel):
    total: int
    items: list[QuarantinedOut]
    retention: RetentionOut
