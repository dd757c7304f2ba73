from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

EXAMPLES = [
    {"body": {"command": "rebirth"}},
    {"body": {"command": "close-bay", "bay_id": "P1-017", "reason": "resurfacing"}},
    {"body": {"command": "open-bay", "bay_id": "P1-017", "reason": None}},
    {
        "body": {
            "command": "sign-override",
            "sign_id": "P1-entry",
            "display": {"mode": "text", "text": "FULL", "colour": "red"},
            "until": "2025-03-01T09:00:00Z",
        }
    },
]


class CommandIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": EXAMPLES}}

    body: dict[str, Any] = Field(
        description="A command body of uplink v1 (docs/protocols/uplink-v1/command.json): "
        "rebirth, sign-override (with an until), close-bay, open-bay, zone-schedule."
    )
    expires_in_s: int | None = Field(
        default=None, ge=5, le=86400, description="The box ignores it after this; default 300."
    )


class ReplyOut(BaseModel):
    ok: bool
    error: str | None
    at: datetime


class CommandOut(BaseModel):
    id: str
    box_id: str
    name: str
    body: dict[str, Any]
    issued_by: str
    issued_at: datetime
    expires_at: datetime | None
    state: Literal["sent", "ok", "failed", "expired"]
    reply: ReplyOut | None
