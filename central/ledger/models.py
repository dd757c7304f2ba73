"""The ledger API's request shapes (review steps, permits)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from central.ledger import workflow


class ActionIn(BaseModel):
    action: str = Field(description=f"one of {sorted({a for _, a in workflow.TRANSITIONS})}")
    reason: str | None = Field(default=None, max_length=2000)


class PermitIn(BaseModel):
    plate: str = Field(min_length=2, max_length=32)
    area: str = Field(default="truck_ban", max_length=64)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)
