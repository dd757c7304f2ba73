"""The state lane: latest-value-wins documents for bays, lots, zones and signs (retained)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from firmware_protocols.uplink.models.base import (
    Count,
    Document,
    Id,
    ModbusUnit,
    Text,
    Ts,
    WireModel,
    one_of_lot_or_zone,
    v_field,
)
from firmware_protocols.uplink.models.vocabularies import (
    BayOccupancy,
    LotStatus,
    SensorFlag,
    SignArrow,
    SignColour,
    SignMode,
    Trend,
    ZoneClass,
    ZoneOpenState,
)


class SensorInfo(WireModel):
    sensor_id: Id = Field(description="Id of the ground sensor in the bay.")
    battery_mv: Count | None = Field(default=None, description="Battery voltage, mV.")
    battery_pct: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="Battery level, percent, where the format reports it."
    )
    temperature_c: float | None = Field(default=None, description="Temperature, degrees C.")
    rssi_dbm: float | None = Field(default=None, description="RSSI of the last frame, dBm.")
    snr_db: float | None = Field(default=None, description="SNR of the last frame, dB.")
    last_seen: AwareDatetime | None = Field(
        default=None, description="When the box last heard this sensor."
    )
    flags: tuple[SensorFlag, ...] = Field(default=(), description="Health flags.")


class BayState(Document):
    """The latest state of one bay; retained on ``.../bay/{bay_id}``."""

    v: Literal[1] = v_field()
    bay_id: Id = Field(description="The bay.")
    lot_id: Id | None = Field(default=None, description="The lot the bay belongs to, if any.")
    zone_id: Id | None = Field(default=None, description="The zone the bay belongs to, if any.")
    state: BayOccupancy = Field(description="free, occupied, unknown or closed.")
    since: AwareDatetime = Field(description="When the bay entered this state (sensor time).")
    sensor: SensorInfo | None = Field(
        default=None, description="The bay's sensor and its health; null if none is mapped."
    )
    ts: Ts

    @model_validator(mode="after")
    def _check(self) -> Self:
        one_of_lot_or_zone(self.lot_id, self.zone_id)
        return self


# --- LotState ------------------------------------------------------------------------------


class LotState(Document):
    """A lot's figures; retained on ``.../lot/{lot_id}``. The four counts sum to capacity."""

    v: Literal[1] = v_field()
    lot_id: Id = Field(description="The lot.")
    capacity: Count = Field(description="Bays in the lot.")
    free: Count = Field(description="Bays free.")
    occupied: Count = Field(description="Bays occupied.")
    unknown: Count = Field(description="Bays whose state is unknown (never shown as free).")
    closed: Count = Field(description="Bays closed by staff.")
    status: LotStatus = Field(description="DATEX II status, with the box's hysteresis applied.")
    trend: Trend = Field(description="Filling, emptying or steady over the recent minutes.")
    ts: Ts

    @model_validator(mode="after")
    def _counts_sum(self) -> Self:
        total = self.free + self.occupied + self.unknown + self.closed
        if total != self.capacity:
            raise ValueError(
                f"free+occupied+unknown+closed = {total}, but capacity is {self.capacity}"
            )
        return self


# --- ZoneState -----------------------------------------------------------------------------


class Window(WireModel):
    start: AwareDatetime = Field(description="Start of the window (inclusive).")
    end: AwareDatetime = Field(description="End of the window (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("a window must end after it starts")
        return self


class ZoneState(Document):
    """A stall zone's schedule state; retained on ``.../zone/{zone_id}``."""

    v: Literal[1] = v_field()
    zone_id: Id = Field(description="The zone.")
    zone_class: ZoneClass = Field(description="prohibited, controlled or regulated.")
    state: ZoneOpenState = Field(description="open, closing (grace), closed, always_closed.")
    window: Window | None = Field(
        default=None, description="The trading window now in force, or null outside one."
    )
    next_transition: AwareDatetime | None = Field(
        default=None, description="When the state next changes by schedule; null if never."
    )
    occupied: Count = Field(description="Bays or detections occupied in the zone now.")
    schedule_version: Count = Field(description="Version of the schedule that decided this.")
    ts: Ts


# --- SignState -----------------------------------------------------------------------------


class SignDisplay(WireModel):
    """What a sign shows: a mode plus the typed fields that mode uses."""

    mode: SignMode = Field(description="count, text, message (by index), blank or dashes.")
    count: Count | None = Field(default=None, description="Number shown in count mode.")
    text: Text | None = Field(default=None, description="Text shown in text mode.")
    message_index: Count | None = Field(
        default=None, description="Index of a stored message in message mode."
    )
    colour: SignColour | None = Field(default=None, description="Colour, if the sign has one.")
    arrow: SignArrow | None = Field(default=None, description="Arrow, if the sign has one.")
    flashing: bool = Field(default=False, description="Whether the display flashes.")

    @model_validator(mode="after")
    def _mode_fields(self) -> Self:
        needed = {
            SignMode.COUNT: ("count", self.count),
            SignMode.TEXT: ("text", self.text),
            SignMode.MESSAGE: ("message_index", self.message_index),
        }.get(self.mode)
        if needed is not None and needed[1] is None:
            raise ValueError(f"mode {self.mode.value} needs {needed[0]}")
        return self


class SignState(Document):
    """What a sign shows and whether it answers; retained on ``.../sign/{sign_id}``."""

    v: Literal[1] = v_field()
    sign_id: Id = Field(description="The sign.")
    bus: Id = Field(description="The sign bus it hangs on.")
    unit: ModbusUnit = Field(description="Its Modbus unit address (0 for Modbus TCP default).")
    profile: Id = Field(description="Register-map profile of the sign model.")
    display: SignDisplay = Field(description="What the box last wrote to it.")
    up: bool = Field(description="Whether the sign answers.")
    last_verified: AwareDatetime | None = Field(
        default=None, description="When the shown value was last read back and matched."
    )
    override_until: AwareDatetime | None = Field(
        default=None, description="If staff override the sign: until when; else null."
    )
    shown: SignDisplay | None = Field(
        default=None,
        description="What the sign's last read-back found (dashes while its watchdog has "
        "expired, blank after a reboot); null before the first read-back.",
    )
    problem: Text | None = Field(
        default=None,
        description="While the sign does not show what was written: why, in words "
        "(rebooted, dark, shows something else); null when the last read-back matched.",
    )
    wrong_since: AwareDatetime | None = Field(
        default=None, description="Since when the sign has not shown what was written."
    )
    faults: list[Id] = Field(
        default_factory=list, description="Fault bits the sign reports (e.g. led_module)."
    )
    reboots: Count = Field(default=0, description="Reboots the box has seen since it started.")
    mismatches: Count = Field(
        default=0, description="Read-backs that did not match since the box started."
    )
    ts: Ts
