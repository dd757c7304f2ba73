"""The rollouts' API shapes (requests and answers); the rules are in ``rollout_plan``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from central.fleet.rollout_plan import (
    BOX_DEFAULT_TRIAL_WINDOW_S,
    DEFAULT_WINDOW,
    BoxState,
    RolloutState,
)
from firmware_protocols.uplink.models.commands import TRIAL_WINDOW_MAX_S, TRIAL_WINDOW_MIN_S

DEFAULT_CONFIRM_TIMEOUT_S = 900.0


class RolloutIn(BaseModel):
    version: str = Field(description="A release stored at central (release add).")
    town: str = Field(description="The town (the site file's id); a county central later.")
    canary: int = Field(default=1, description="Boxes in the first wave (0: no canary).")
    share: int = Field(default=25, description="Percent of the remaining boxes in wave two.")
    max_failures: int = Field(default=1, description="Halt when this many boxes have failed.")
    confirm_timeout_s: float = Field(
        default=DEFAULT_CONFIRM_TIMEOUT_S,
        description="A box not confirmed this long after its install command has failed.",
    )
    trial_window_s: float | None = Field(
        default=None,
        description="Seconds a box's new release has from its first start to pass its health "
        f"gate, sent in the install command ({TRIAL_WINDOW_MIN_S} to {TRIAL_WINDOW_MAX_S}); "
        f"none: the box's default ({BOX_DEFAULT_TRIAL_WINDOW_S:g} s). confirm_timeout_s must "
        "be longer.",
    )
    window: str = Field(
        default=DEFAULT_WINDOW,
        description="When a box that was offline gets the release once back, in town time: "
        "HH:MM-HH:MM, several split by commas.",
    )


class RollbackIn(BaseModel):
    version: str = Field(
        description="The release to take the boxes to: a release built with --rollback "
        "(boxes refuse an older one otherwise), stored at central."
    )


class RolloutBoxOut(BaseModel):
    box_id: str
    wave: str = Field(description="canary, share or rest.")
    state: BoxState
    command_id: str | None
    sent_at: datetime | None
    reason: str | None = Field(description="Why it failed, was deferred or skipped.")


class RolloutOut(BaseModel):
    id: int
    town: str
    version: str
    kind: str = Field(description="rollout, or rollback (of rollback_of).")
    rollback_of: int | None
    state: RolloutState
    wave: str = Field(description="The wave under way: canary, share or rest.")
    canary: int
    share: int
    max_failures: int
    confirm_timeout_s: float
    trial_window_s: float | None = Field(description="Sent to each box; none: its default.")
    window: str
    reason: str | None = Field(description="Why it halted (which boxes failed, and why).")
    created_by: str
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int] = Field(description="Boxes per state.")
    boxes: list[RolloutBoxOut]
