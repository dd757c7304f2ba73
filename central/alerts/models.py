from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

AlertStateName = Literal["raised", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    id: int
    box_id: str
    alert_id: str
    alert_type: str
    severity: str
    step: int
    since: datetime
    message: str | None
    lot_id: str | None
    zone_id: str | None
    bay_id: str | None
    sign_id: str | None
    sensor_id: str | None
    state: AlertStateName
    raised_at: datetime
    updated_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None


class AlertAction(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="Why, for the record.")
