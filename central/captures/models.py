"""The captures API's request shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ConfirmTimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use: Literal["camera", "received"] = Field(
        description="which time the capture has: the camera's stated time or its receipt"
    )
    reason: str | None = Field(default=None, max_length=500)
