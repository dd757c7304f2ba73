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


class QuarantineOut(BaseModel):
    total: int
    items: list[QuarantinedOut]
