from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class SiteProblemOut(BaseModel):
    box_id: str
    subject: str
    message: str
    first_seen: datetime
    last_seen: datetime
    count: int


class SiteOut(BaseModel):
    id: str
    name: str
    timezone: str
    document: dict[str, Any]
