"""Auth's API shapes and role vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    CAMERA = "camera"
    BOX = "box"


USER_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
MACHINE_ROLES = (Role.CAMERA, Role.BOX)
# A human role includes the ones below it; machine roles include nothing else.
RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who is calling: a user (by login) or a machine token."""

    name: str
    role: Role
    user_id: int | None = None
    token_hash: str = ""
    town: str | None = None  # the county's town it acts in; None: every town (county staff)

    @property
    def label(self) -> str:
        """How the audit trail names this actor."""
        return f"user:{self.name}" if self.user_id is not None else f"token:{self.name}"

    def has(self, needed: Role) -> bool:
        if needed in RANK and self.role in RANK:
            return RANK[self.role] >= RANK[needed]
        return self.role == needed


Username = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: Role


class Me(BaseModel):
    name: str
    role: Role
    kind: str = Field(description="'user' or 'token'")
    town: str | None = Field(default=None, description="the town it acts in; null: every town")


class UserIn(BaseModel):
    username: Username
    password: str = Field(min_length=8, max_length=200)
    role: Role
    town: str | None = Field(default=None, description="a county's town; null: county-wide")


class UserPatch(BaseModel):
    """What an admin may change of a user: disabled, role (each optional)."""

    disabled: bool | None = None
    role: Role | None = None


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    town: str | None = None


class TokenInfo(BaseModel):
    """A live token as an admin sees it: never the token itself."""

    id: str = Field(description="The first 16 hex digits of the token's sha256")
    name: str
    role: Role
    user: str | None = Field(description="The user of a login session; null for a machine token")
    created_at: datetime
    expires_at: datetime
    town: str | None = None


TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


class MachineTokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    role: Role
    ttl_days: int = Field(default=365, ge=1, le=3650)
    town: str | None = Field(default=None, description="a county's town; null: county-wide")
