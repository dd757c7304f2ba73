"""A box's birth and death: ``BoxStatus`` with its health summary, retained on ``.../status``."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from firmware_protocols.uplink.models.base import (
    BoxId,
    Count,
    Document,
    Id,
    ModbusUnit,
    Text,
    Ts,
    WireModel,
    check_line,
    line_field,
    line_from_field,
    v_field,
)
from firmware_protocols.uplink.models.commands import SHA256_DIGEST, ReleaseVersion
from firmware_protocols.uplink.models.vocabularies import OfflineReason, Online


class ClockStatus(WireModel):
    synchronised: bool = Field(description="Whether the box clock is disciplined (NTP/GNSS).")
    offset_s: float | None = Field(
        default=None, description="Last measured offset from the reference, seconds, if known."
    )
    source: Text | None = Field(
        default=None, description="Time source, e.g. 'ntp:pool.ntp.org' or 'rtc'."
    )


class LaneHealth(WireModel):
    depth: Count = Field(description="Messages waiting in this outbox lane.")
    bytes: Count = Field(description="Bytes held by this lane.")
    cap_bytes: Count = Field(description="Byte cap of this lane.")


class OutboxHealth(WireModel):
    state: LaneHealth = Field(description="The state lane (conflated, latest value wins).")
    event: LaneHealth = Field(description="The event lane (kept until acked).")
    oldest_event_age_s: float | None = Field(
        default=None, ge=0, description="Age of the oldest unacked event, seconds; null if none."
    )
    dropped_events_total: Count = Field(
        default=0, description="Events dropped on overflow since the outbox was created."
    )


class SerialLineHealth(WireModel):
    line: Id = Field(description="Serial line id from the box config.")
    up: bool = Field(description="Whether the line currently delivers frames.")
    frames: Count = Field(default=0, description="Frames decoded.")
    crc_errors: Count = Field(default=0, description="Frames rejected by their CRC.")
    garbage_bytes: Count = Field(default=0, description="Bytes skipped while resynchronising.")
    timeouts: Count = Field(default=0, description="Polls that got no answer.")


class SignUnitHealth(WireModel):
    unit: ModbusUnit = Field(description="Modbus unit (slave) address.")
    up: bool = Field(description="Whether the unit answers.")
    requests: Count = Field(default=0, description="Requests sent.")
    timeouts: Count = Field(default=0, description="Requests without an answer.")
    crc_errors: Count = Field(default=0, description="Answers with a bad CRC.")
    exceptions: Count = Field(default=0, description="Modbus exception answers.")


class SignBusHealth(WireModel):
    bus: Id = Field(description="Sign bus id from the box config.")
    units: tuple[SignUnitHealth, ...] = Field(default=(), description="Per-unit figures.")


class SensorsHealth(WireModel):
    total: Count = Field(description="Sensors mapped to bays.")
    silent: Count = Field(default=0, description="Sensors silent past their heartbeat timeout.")
    low_battery: Count = Field(default=0, description="Sensors reporting a low battery.")
    faulty: Count = Field(default=0, description="Sensors reporting a fault.")


class HealthSummary(WireModel):
    outbox: OutboxHealth = Field(description="Outbox depth per lane.")
    serial_lines: tuple[SerialLineHealth, ...] = Field(default=(), description="Serial lines.")
    sign_buses: tuple[SignBusHealth, ...] = Field(default=(), description="Sign buses.")
    sensors: SensorsHealth = Field(description="Sensor population summary.")


ConfigApplyState = Literal["applying", "confirmed", "failed", "rolled_back"]


class ConfigApply(WireModel):
    """Where the box is with the last configuration central pushed to it."""

    version: Annotated[int, Field(ge=1)] = Field(description="The pushed version.")
    hash: Annotated[str, StringConstraints(pattern=SHA256_DIGEST)] = Field(
        description="The pushed document's hash."
    )
    state: ConfigApplyState = Field(
        description="applying (running it, its health gate not passed yet), confirmed (the "
        "gate passed), failed (refused: nothing changed), rolled_back (the gate failed in "
        "time: the box went back to the configuration it ran before)."
    )
    reason: Text | None = Field(default=None, description="Why failed or rolled back.")
    ts: Ts


class SiteConfigReport(WireModel):
    """The site-derived part of the configuration the box runs (docs/fleet.md)."""

    hash: Annotated[str, StringConstraints(pattern=SHA256_DIGEST)] = Field(
        description="sha256 of the canonical form of the site-derived sections it runs."
    )
    sections: dict[
        Annotated[str, StringConstraints(max_length=140)],
        Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")],
    ] = Field(
        default_factory=dict,
        max_length=1024,
        description="A short hash of each section, and of each lot and zone ('lots.P1').",
    )
    apply: ConfigApply | None = Field(default=None, description="The last push's outcome.")


ReleaseState = Literal["confirmed", "on_trial", "rolled_back", "unmanaged"]


class ReleaseReport(WireModel):
    """Which release the box runs from its A/B slots, and how its last install ended."""

    version: ReleaseVersion | None = Field(
        default=None, description="The release the box runs now (null: not from a slot)."
    )
    state: ReleaseState = Field(
        description="confirmed (its health gate passed: the good slot), on_trial (installed, "
        "the gate not passed yet), rolled_back (the last install, 'failed_version', did not "
        "confirm in time or crashed on start: the box went back to 'version'), unmanaged "
        "(not installed into a slot, e.g. a developer's checkout)."
    )
    failed_version: ReleaseVersion | None = Field(
        default=None, description="With rolled_back: the release that was rolled back."
    )
    reason: Text | None = Field(default=None, description="With rolled_back: why.")
    ts: Ts


class BoxStatus(Document):
    """Birth (``online``) and death (``offline``) of a box; retained on ``.../status``.

    The Last Will is registered at connect time, so a will's ``ts`` is the connect time; the
    moment of death is when the broker delivers it. Fields other than the first five may be
    null when ``state`` is ``offline``; an ``online`` status must carry them all.
    """

    v: Literal[1] = v_field()
    box_id: BoxId = Field(description="The box publishing this status.")
    state: Online = Field(description="online (birth) or offline (Last Will or shutdown).")
    boot_id: uuid.UUID = Field(description="Random id of the current boot of the box.")
    ts: Ts
    reason: OfflineReason | None = Field(
        default=None, description="Why offline: 'shutdown' (clean) or 'connection_lost' (will)."
    )
    software_version: Text | None = Field(default=None, description="parkgrid version.")
    config_hash: Text | None = Field(
        default=None, description="Hash of the box's effective configuration, e.g. 'sha256:...'."
    )
    sensor_count: Count | None = Field(default=None, description="Sensors mapped to bays.")
    clock: ClockStatus | None = Field(default=None, description="Clock discipline.")
    zone_schedule_version: Count | None = Field(
        default=None, description="Version of the zone schedule in force; null if none."
    )
    health: HealthSummary | None = Field(default=None, description="Health summary.")
    site_config: SiteConfigReport | None = Field(
        default=None,
        description="The site-derived configuration it runs and the last push's outcome; "
        "absent from boxes older than configuration pushes.",
    )
    release: ReleaseReport | None = Field(
        default=None,
        description="The release it runs and its last install's outcome; absent from boxes "
        "older than rollouts.",
    )
    line: uuid.UUID | None = line_field()
    line_from: int | None = line_from_field()

    @model_validator(mode="after")
    def _birth_is_complete(self) -> Self:
        check_line(self.line, self.line_from)
        if self.state is Online.ONLINE:
            missing = [
                name
                for name in ("software_version", "config_hash", "sensor_count", "clock", "health")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an online status needs {', '.join(missing)}")
            if self.reason is not None:
                raise ValueError("reason is only for an offline status")
        return self


class CentralStatus(Document):
    """Central online/offline; retained on ``parkgrid/v1/{site}/_central/status``."""

    v: Literal[1] = v_field()
    state: Online = Field(description="online, or offline (Last Will or shutdown).")
    instance: Id = Field(description="Id of the central instance (host or deployment name).")
    ts: Ts
