"""The cases API's request shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from central.cases import workflow


class CaseActionIn(BaseModel):
    action: str = Field(description=f"one of {sorted({a for _, a in workflow.TRANSITIONS})}")
    note: str | None = Field(default=None, max_length=2000)
