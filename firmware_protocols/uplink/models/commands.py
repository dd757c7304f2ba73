"""Central's commands to a box (``.../cmd/{name}``), the zone schedule, and the box's replies."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import time
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from firmware_protocols.uplink.models.base import (
    COMMAND_DESCRIPTION,
    Count,
    Document,
    Id,
    Text,
    Ts,
    WireModel,
    v_field,
)
from firmware_protocols.uplink.models.states import SignDisplay
from firmware_protocols.uplink.models.vocabularies import Severity, Weekday, ZoneClass
from firmware_protocols.uplink.topics import CommandName


class Rebirth(WireModel):
    """Publish birth and every retained state again."""

    command: Literal["rebirth"] = Field(default="rebirth", description=COMMAND_DESCRIPTION)


class SignOverride(WireModel):
    """Show ``display`` on a sign until ``until``; ``display`` null lifts an override."""

    command: Literal["sign-override"] = Field(
        default="sign-override", description=COMMAND_DESCRIPTION
    )
    sign_id: Id = Field(description="The sign.")
    display: SignDisplay | None = Field(description="What to show; null lifts the override.")
    until: AwareDatetime | None = Field(
        default=None, description="End of the override; required with a display."
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.display is not None and self.until is None:
            raise ValueError("an override needs an until: a forgotten one must not last forever")
        return self


class CloseBay(WireModel):
    command: Literal["close-bay"] = Field(default="close-bay", description=COMMAND_DESCRIPTION)
    bay_id: Id = Field(description="The bay to take out of service.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why (shown in the audit trail)."
    )


class OpenBay(WireModel):
    command: Literal["open-bay"] = Field(default="open-bay", description=COMMAND_DESCRIPTION)
    bay_id: Id = Field(description="The bay to put back in service.")
    reason: Text | None = Field(default=None, description="Why, if given.")


class TimeWindow(WireModel):
    """A daily window in the schedule's time zone; ``end <= start`` ends the next day."""

    start: time = Field(description="Local start time, HH:MM[:SS].")
    end: time = Field(description="Local end time; not after start means the next day.")


class WeeklyWindow(TimeWindow):
    days: tuple[Weekday, ...] = Field(min_length=1, description="Days the window starts on.")


class DateOverride(WireModel):
    """A date whose windows replace the weekly ones (market day, holiday)."""

    date: dt.date = Field(description="Local date.")
    windows: tuple[TimeWindow, ...] = Field(
        default=(), description="Windows of that date; empty means closed all day."
    )
    note: Text | None = Field(default=None, description="Why, e.g. 'market day'.")


class LadderStep(WireModel):
    """One step of a zone's escalation ladder."""

    after_s: Count = Field(description="Seconds after the grace period ends.")
    severity: Severity = Field(description="Severity of the alert at this step.")


class ZoneSchedule(WireModel):
    zone_id: Id = Field(description="The zone.")
    zone_class: ZoneClass = Field(description="prohibited, controlled or regulated.")
    grace_s: Count = Field(default=0, description="Grace period after a window ends, seconds.")
    weekly: tuple[WeeklyWindow, ...] = Field(
        default=(), description="Weekly trading windows; empty for a prohibited zone."
    )
    overrides: tuple[DateOverride, ...] = Field(default=(), description="Date overrides.")
    closing_soon_s: Count | None = Field(
        default=None,
        description="Seconds before a window ends when signs say 'closing soon'; "
        "null keeps the box's configured value.",
    )
    ladder: tuple[LadderStep, ...] | None = Field(
        default=None,
        description="Escalation ladder, steps in order; null keeps the box's configured one.",
    )


class ScheduleDocument(WireModel):
    version: Annotated[int, Field(ge=1)] = Field(description="Monotonic schedule version.")
    effective_from: AwareDatetime = Field(description="When this version takes effect.")
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="Asia/Shanghai", description="IANA time zone of the windows' local times."
    )
    zones: tuple[ZoneSchedule, ...] = Field(description="Every zone the box runs.")


class ZoneScheduleCommand(WireModel):
    """Install a schedule version; the box keeps the newest it has and reports its version."""

    command: Literal["zone-schedule"] = Field(
        default="zone-schedule", description=COMMAND_DESCRIPTION
    )
    schedule: ScheduleDocument = Field(description="The schedule document.")


SHA256_DIGEST = r"^sha256:[0-9a-f]{64}$"
CONFIG_DOCUMENT_MAX_CHARS = 256 * 1024


class ConfigPush(WireModel):
    """Run this configuration: the site-derived sections of the box's config (as TOML text,
    which keeps times and dates), never its secrets, wiring or bays (docs/fleet.md).

    The box checks the document against ``hash`` (``site_model.site_config.digest`` of the
    parsed TOML), merges it with what it keeps locally, validates the result with its own
    loader, and runs it through its health gate; its status reports the outcome."""

    command: Literal["config-push"] = Field(default="config-push", description=COMMAND_DESCRIPTION)
    version: Annotated[int, Field(ge=1)] = Field(
        description="Central's version of this box's config."
    )
    hash: Annotated[str, StringConstraints(pattern=SHA256_DIGEST)] = Field(
        description="sha256 of the document's canonical form, 'sha256:<64 hex>'."
    )
    document: Annotated[str, StringConstraints(max_length=CONFIG_DOCUMENT_MAX_CHARS)] = Field(
        description="The site-derived sections of the box's edge.toml, as TOML."
    )


RELEASE_VERSION = r"^[0-9]+(\.[0-9]+){0,3}([.+-][0-9A-Za-z.+-]{1,40})?$"
ReleaseVersion = Annotated[str, StringConstraints(max_length=60, pattern=RELEASE_VERSION)]


TRIAL_WINDOW_MIN_S = 30
TRIAL_WINDOW_MAX_S = 3600


class InstallRelease(WireModel):
    """Install this release from central's store, then restart into it (docs/fleet.md).

    The box downloads ``GET /api/v1/releases/{version}/bundle`` with its own token, checks
    that the file's sha256 is ``sha256`` before anything else, and then runs the same
    verification as ``parkgrid edge update --from FILE`` (signature under the box's key,
    platform, no downgrade, disk). It replies once: ok when the new slot is installed and
    switched (it then restarts through its supervisor, and its next birth reports the
    release on trial, later confirmed or rolled back), or an error saying why nothing
    changed. A repeat for the version it already runs confirmed replies ok at once."""

    command: Literal["install-release"] = Field(
        default="install-release", description=COMMAND_DESCRIPTION
    )
    version: ReleaseVersion = Field(description="The release to install, e.g. '1.4.0'.")
    sha256: Annotated[str, StringConstraints(pattern=SHA256_DIGEST)] = Field(
        description="sha256 of the whole bundle file as central stores it, 'sha256:<64 hex>'."
    )
    rollout: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The rollout this install belongs to, for the box's log."
    )
    confirm_within_s: (
        Annotated[float, Field(ge=TRIAL_WINDOW_MIN_S, le=TRIAL_WINDOW_MAX_S)] | None
    ) = Field(
        default=None,
        description="The trial window: seconds from the new release's first start to pass "
        "its health gate, or it rolls itself back (the rollout's; absent: the box's default, "
        "600).",
    )


CommandBody = Annotated[
    Rebirth | SignOverride | CloseBay | OpenBay | ZoneScheduleCommand | ConfigPush | InstallRelease,
    Field(discriminator="command"),
]


class Command(Document):
    """A command on ``.../cmd/{name}``; ``body.command`` equals the topic's ``{name}``."""

    v: Literal[1] = v_field()
    command_id: uuid.UUID = Field(description="Id the reply refers to; repeats are ignored.")
    issued_at: AwareDatetime = Field(description="When central issued it.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this the box must not act on it (it replies an error)."
    )
    body: CommandBody = Field(description="The typed command, discriminated on 'command'.")

    @property
    def name(self) -> CommandName:
        return CommandName(self.body.command)


class CommandReply(Document):
    """The box's answer on ``.../reply/{name}``."""

    v: Literal[1] = v_field()
    command_id: uuid.UUID = Field(description="The command answered.")
    command: CommandName = Field(description="Its name.")
    ok: bool = Field(description="Whether the box carried it out.")
    error: Text | None = Field(default=None, description="Why not, when ok is false.")
    ts: Ts

    @model_validator(mode="after")
    def _error_iff_failed(self) -> Self:
        if self.ok == (self.error is not None):
            raise ValueError("error must be set exactly when ok is false")
        return self
