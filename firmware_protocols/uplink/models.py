"""The uplink v1 payloads: JSON on the wire, pydantic models here.

Theory of operation
-------------------
Two lanes share the broker. The **state lane** carries latest-value-wins documents
(``BoxStatus``, ``BayState``, ``LotState``, ``ZoneState``, ``SignState``), published retained
at QoS 1; a newer one simply replaces the older. The **event lane** carries ``Event``
envelopes that must each be stored exactly once::

    {"v":1, "box_id":"box-p1", "boot_id":"<uuid>", "seq":4711, "event_id":"<uuid>",
     "ts":"2025-03-01T08:00:00Z", "historical":false,
     "body":{"kind":"bay_changed", ...}}
          |                          |            |
          |                          |            +-- persistent per box, 1..2**63-1, never reused
          |                          +--------------- new on every boot of the box
          +------------------------------------------ protocol version of this document

Central stores events unique on ``(box_id, seq)`` and answers with a retained
``AckWatermark`` (``acked_seq``: it holds every event of that box with ``seq <= acked_seq``);
the box deletes its outbox up to there. An ``events_dropped`` event reports a seq range the
box had to throw away (outbox overflow), so central counts those seqs as settled and the
watermark can pass them.

Every top-level payload carries ``v`` (``1``). Every model is frozen and forbids unknown
fields, so a typo on either side is a validation error, not silently dropped data. All
timestamps are RFC 3339 with an offset (``Z`` when written by parkgrid).
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from firmware_protocols.uplink.topics import BOX_ID_PATTERN, ID_PATTERN, CommandName

MAX_SEQ = 2**63 - 1

Id = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
BoxId = Annotated[str, StringConstraints(pattern=f"^{BOX_ID_PATTERN}$")]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
Count = Annotated[int, Field(ge=0)]
Ts = Annotated[AwareDatetime, Field(description="When the box wrote this document (RFC 3339).")]
ModbusUnit = Annotated[int, Field(ge=0, le=247)]
Text = Annotated[str, StringConstraints(max_length=500)]


class _Model(BaseModel):
    # strict: on the wire "seq": "7" or "free": "3" is a sender's bug, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _require_v_in_schema(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    if "v" not in required:
        required.insert(0, "v")


class _Payload(_Model):
    """A top-level document. Its ``v`` defaults to 1 in Python but is required on the wire:
    the schema lists it as required and ``codec.decode_payload`` refuses a document
    without it, so a consumer never has to guess which version it reads."""

    model_config = ConfigDict(json_schema_extra=_require_v_in_schema)


def _v_field() -> Any:
    return Field(default=1, description="Uplink protocol version of this document; always 1.")


# --- shared vocabularies -------------------------------------------------------------------


class Online(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class OfflineReason(StrEnum):
    SHUTDOWN = "shutdown"
    CONNECTION_LOST = "connection_lost"


class BayOccupancy(StrEnum):
    FREE = "free"
    OCCUPIED = "occupied"
    UNKNOWN = "unknown"
    CLOSED = "closed"


class LotStatus(StrEnum):
    """DATEX II ``CarParkStatusEnum`` names."""

    SPACES_AVAILABLE = "spacesAvailable"
    ALMOST_FULL = "almostFull"
    FULL = "full"
    CLOSED = "closed"


class Trend(StrEnum):
    FILLING = "filling"
    EMPTYING = "emptying"
    STEADY = "steady"


class ZoneClass(StrEnum):
    PROHIBITED = "prohibited"
    CONTROLLED = "controlled"
    REGULATED = "regulated"


class ZoneOpenState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    ALWAYS_CLOSED = "always_closed"


class SensorFlag(StrEnum):
    IMPLAUSIBLE = "implausible"
    LOW_BATTERY = "low_battery"
    SILENT = "silent"
    FAULT = "fault"
    RESET = "reset"


class SensorFaultType(StrEnum):
    SILENT = "silent"
    LOW_BATTERY = "low_battery"
    HARDWARE = "hardware"
    IMPLAUSIBLE = "implausible"


class SignColour(StrEnum):
    OFF = "off"
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class SignArrow(StrEnum):
    NONE = "none"
    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"


class SignMode(StrEnum):
    COUNT = "count"
    TEXT = "text"
    MESSAGE = "message"
    BLANK = "blank"
    DASHES = "dashes"


class AlertType(StrEnum):
    ZONE_OVERSTAY = "zone_overstay"
    BAY_OCCUPIED_WHILE_CLOSED = "bay_occupied_while_closed"
    SIGN_DOWN = "sign_down"
    SENSOR_SILENT = "sensor_silent"
    SENSOR_LOW_BATTERY = "sensor_low_battery"
    OUTBOX_OVERFLOW = "outbox_overflow"
    CLOCK_UNSYNCHRONISED = "clock_unsynchronised"
    ACK_REFUSED = "ack_refused"  # central's ack named seqs the box never sent; nothing deleted


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ESCALATED = "escalated"
    CRITICAL = "critical"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


# --- BoxStatus -----------------------------------------------------------------------------


class ClockStatus(_Model):
    synchronised: bool = Field(description="Whether the box clock is disciplined (NTP/GNSS).")
    offset_s: float | None = Field(
        default=None, description="Last measured offset from the reference, seconds, if known."
    )
    source: Text | None = Field(
        default=None, description="Time source, e.g. 'ntp:pool.ntp.org' or 'rtc'."
    )


class LaneHealth(_Model):
    depth: Count = Field(description="Messages waiting in this outbox lane.")
    bytes: Count = Field(description="Bytes held by this lane.")
    cap_bytes: Count = Field(description="Byte cap of this lane.")


class OutboxHealth(_Model):
    state: LaneHealth = Field(description="The state lane (conflated, latest value wins).")
    event: LaneHealth = Field(description="The event lane (kept until acked).")
    oldest_event_age_s: float | None = Field(
        default=None, ge=0, description="Age of the oldest unacked event, seconds; null if none."
    )
    dropped_events_total: Count = Field(
        default=0, description="Events dropped on overflow since the outbox was created."
    )


class SerialLineHealth(_Model):
    line: Id = Field(description="Serial line id from the box config.")
    up: bool = Field(description="Whether the line currently delivers frames.")
    frames: Count = Field(default=0, description="Frames decoded.")
    crc_errors: Count = Field(default=0, description="Frames rejected by their CRC.")
    garbage_bytes: Count = Field(default=0, description="Bytes skipped while resynchronising.")
    timeouts: Count = Field(default=0, description="Polls that got no answer.")


class SignUnitHealth(_Model):
    unit: ModbusUnit = Field(description="Modbus unit (slave) address.")
    up: bool = Field(description="Whether the unit answers.")
    requests: Count = Field(default=0, description="Requests sent.")
    timeouts: Count = Field(default=0, description="Requests without an answer.")
    crc_errors: Count = Field(default=0, description="Answers with a bad CRC.")
    exceptions: Count = Field(default=0, description="Modbus exception answers.")


class SignBusHealth(_Model):
    bus: Id = Field(description="Sign bus id from the box config.")
    units: tuple[SignUnitHealth, ...] = Field(default=(), description="Per-unit figures.")


class SensorsHealth(_Model):
    total: Count = Field(description="Sensors mapped to bays.")
    silent: Count = Field(default=0, description="Sensors silent past their heartbeat timeout.")
    low_battery: Count = Field(default=0, description="Sensors reporting a low battery.")
    faulty: Count = Field(default=0, description="Sensors reporting a fault.")


class HealthSummary(_Model):
    outbox: OutboxHealth = Field(description="Outbox depth per lane.")
    serial_lines: tuple[SerialLineHealth, ...] = Field(default=(), description="Serial lines.")
    sign_buses: tuple[SignBusHealth, ...] = Field(default=(), description="Sign buses.")
    sensors: SensorsHealth = Field(description="Sensor population summary.")


class BoxStatus(_Payload):
    """Birth (``online``) and death (``offline``) of a box; retained on ``.../status``.

    The Last Will is registered at connect time, so a will's ``ts`` is the connect time; the
    moment of death is when the broker delivers it. Fields other than the first five may be
    null when ``state`` is ``offline``; an ``online`` status must carry them all.
    """

    v: Literal[1] = _v_field()
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

    @model_validator(mode="after")
    def _birth_is_complete(self) -> Self:
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


# --- BayState ------------------------------------------------------------------------------


class SensorInfo(_Model):
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


def _one_of_lot_or_zone(lot_id: str | None, zone_id: str | None) -> None:
    if (lot_id is None) == (zone_id is None):
        raise ValueError("exactly one of lot_id and zone_id must be set")


class BayState(_Payload):
    """The latest state of one bay; retained on ``.../bay/{bay_id}``."""

    v: Literal[1] = _v_field()
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
        _one_of_lot_or_zone(self.lot_id, self.zone_id)
        return self


# --- LotState ------------------------------------------------------------------------------


class LotState(_Payload):
    """A lot's figures; retained on ``.../lot/{lot_id}``. The four counts sum to capacity."""

    v: Literal[1] = _v_field()
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


class Window(_Model):
    start: AwareDatetime = Field(description="Start of the window (inclusive).")
    end: AwareDatetime = Field(description="End of the window (exclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("a window must end after it starts")
        return self


class ZoneState(_Payload):
    """A stall zone's schedule state; retained on ``.../zone/{zone_id}``."""

    v: Literal[1] = _v_field()
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


class SignDisplay(_Model):
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


class SignState(_Payload):
    """What a sign shows and whether it answers; retained on ``.../sign/{sign_id}``."""

    v: Literal[1] = _v_field()
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
    ts: Ts


_KIND = "Event kind; selects the body type."
_COMMAND = "Command name; equals the {name} level of the cmd topic."

# --- Event bodies --------------------------------------------------------------------------


class BayChanged(_Model):
    kind: Literal["bay_changed"] = Field(default="bay_changed", description=_KIND)
    bay_id: Id = Field(description="The bay.")
    lot_id: Id | None = Field(default=None, description="Its lot, if any.")
    zone_id: Id | None = Field(default=None, description="Its zone, if any.")
    from_state: BayOccupancy = Field(description="State before.")
    to_state: BayOccupancy = Field(description="State after.")
    sensor_id: Id | None = Field(default=None, description="Sensor that reported the change.")
    sensor_ts: AwareDatetime = Field(description="When the change happened (sensor time).")

    @model_validator(mode="after")
    def _check(self) -> Self:
        _one_of_lot_or_zone(self.lot_id, self.zone_id)
        return self


class SensorFault(_Model):
    kind: Literal["sensor_fault"] = Field(default="sensor_fault", description=_KIND)
    sensor_id: Id = Field(description="The sensor.")
    bay_id: Id | None = Field(default=None, description="Its bay, if mapped.")
    fault: SensorFaultType = Field(description="What is wrong.")
    detail: Text | None = Field(default=None, description="Human-readable detail.")
    last_seen: AwareDatetime | None = Field(default=None, description="Last frame heard.")


class SensorRecovered(_Model):
    kind: Literal["sensor_recovered"] = Field(default="sensor_recovered", description=_KIND)
    sensor_id: Id = Field(description="The sensor.")
    bay_id: Id | None = Field(default=None, description="Its bay, if mapped.")
    fault: SensorFaultType = Field(description="The fault that cleared.")


class SignFault(_Model):
    kind: Literal["sign_fault"] = Field(default="sign_fault", description=_KIND)
    sign_id: Id = Field(description="The sign.")
    bus: Id = Field(description="Its bus.")
    unit: ModbusUnit = Field(description="Its unit address.")
    reason: Text = Field(description="e.g. 'timeout', 'crc', 'exception 2', 'readback mismatch'.")
    failures: Count = Field(default=0, description="Consecutive failures before it went down.")


class SignRecovered(_Model):
    kind: Literal["sign_recovered"] = Field(default="sign_recovered", description=_KIND)
    sign_id: Id = Field(description="The sign.")
    bus: Id = Field(description="Its bus.")
    unit: ModbusUnit = Field(description="Its unit address.")
    down_since: AwareDatetime | None = Field(default=None, description="When it went down.")


class ZoneTransition(_Model):
    kind: Literal["zone_transition"] = Field(default="zone_transition", description=_KIND)
    zone_id: Id = Field(description="The zone.")
    from_state: ZoneOpenState = Field(description="State before.")
    to_state: ZoneOpenState = Field(description="State after.")
    window: Window | None = Field(default=None, description="The window now in force, if any.")
    schedule_version: Count = Field(description="Schedule version that decided it.")


class AlertRaised(_Model):
    """An alert, or a further step of it: same ``alert_id``, higher ``step``."""

    kind: Literal["alert_raised"] = Field(default="alert_raised", description=_KIND)
    alert_id: Id = Field(description="Stable id of this alert across its steps and resolution.")
    alert_type: AlertType = Field(description="What kind of alert.")
    severity: Severity = Field(description="info, warning, escalated or critical.")
    step: Count = Field(default=0, description="Escalation ladder step, 0 for the first.")
    since: AwareDatetime = Field(description="When the condition began.")
    message: Text = Field(description="Human-readable message.")
    lot_id: Id | None = Field(default=None, description="Lot concerned, if any.")
    zone_id: Id | None = Field(default=None, description="Zone concerned, if any.")
    bay_id: Id | None = Field(default=None, description="Bay concerned, if any.")
    sign_id: Id | None = Field(default=None, description="Sign concerned, if any.")
    sensor_id: Id | None = Field(default=None, description="Sensor concerned, if any.")


class AlertResolved(_Model):
    """The end of an alert; ``alert_id`` names the alert raised earlier."""

    kind: Literal["alert_resolved"] = Field(default="alert_resolved", description=_KIND)
    alert_id: Id = Field(description="The alert that ended.")
    alert_type: AlertType = Field(description="Its type.")
    since: AwareDatetime = Field(description="When the condition began.")
    message: Text | None = Field(default=None, description="How it ended, if known.")
    lot_id: Id | None = Field(default=None, description="Lot concerned, if any.")
    zone_id: Id | None = Field(default=None, description="Zone concerned, if any.")
    bay_id: Id | None = Field(default=None, description="Bay concerned, if any.")
    sign_id: Id | None = Field(default=None, description="Sign concerned, if any.")
    sensor_id: Id | None = Field(default=None, description="Sensor concerned, if any.")


class EventsDropped(_Model):
    """The outbox overflowed and the box deleted events ``first_seq..last_seq`` unsent.

    Central counts those seqs as settled so its ack watermark can pass them. The box reports
    a drop after it happened, so the range ends below the reporting event's own ``seq``
    (``Event`` refuses anything else); central also refuses a range longer than the box's
    outbox can hold (see docs/central.md).
    """

    kind: Literal["events_dropped"] = Field(default="events_dropped", description=_KIND)
    first_seq: Seq = Field(description="First dropped seq (inclusive).")
    last_seq: Seq = Field(description="Last dropped seq (inclusive).")
    count: Count = Field(description="Events dropped in this range.")
    total: Count = Field(description="Events dropped by this box ever.")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.last_seq < self.first_seq:
            raise ValueError("last_seq must not be below first_seq")
        if self.count > self.last_seq - self.first_seq + 1:
            raise ValueError("count exceeds the seq range")
        return self


EventBody = Annotated[
    BayChanged
    | SensorFault
    | SensorRecovered
    | SignFault
    | SignRecovered
    | ZoneTransition
    | AlertRaised
    | AlertResolved
    | EventsDropped,
    Field(discriminator="kind"),
]


class Event(_Payload):
    """One event on ``.../event``: the envelope that makes delivery exactly-once.

    The event's kind is ``body.kind`` (and the ``kind`` property): it lives in one place, so
    envelope and body cannot disagree.
    """

    v: Literal[1] = _v_field()
    box_id: BoxId = Field(description="The box that produced the event.")
    boot_id: uuid.UUID = Field(description="The boot of the box in which it was produced.")
    seq: Seq = Field(
        description="Per-box sequence number, persistent across reboots, 1..2**63-1; "
        "central stores events unique on (box_id, seq)."
    )
    event_id: uuid.UUID = Field(description="Globally unique id of the event.")
    ts: AwareDatetime = Field(description="When the event happened (box clock).")
    historical: bool = Field(
        default=False,
        description="True when sent again from the outbox backlog rather than live.",
    )
    body: EventBody = Field(description="The typed body, discriminated on 'kind'.")

    @property
    def kind(self) -> str:
        return self.body.kind

    @model_validator(mode="after")
    def _dropped_before_own_seq(self) -> Self:
        body = self.body
        if isinstance(body, EventsDropped) and body.last_seq >= self.seq:
            raise ValueError(
                f"events_dropped range {body.first_seq}..{body.last_seq} must end below the "
                f"event's own seq {self.seq}: a box reports a drop after it happened"
            )
        return self


# --- AckWatermark / CentralStatus ----------------------------------------------------------


class AckWatermark(_Payload):
    """Central's ack for one box; retained on ``.../{box_id}/ack``.

    The box deletes every outbox event with ``seq <= acked_seq``.
    """

    v: Literal[1] = _v_field()
    box_id: BoxId = Field(description="The box this ack is for.")
    acked_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = Field(
        description="Central holds (or counts as dropped) every event of the box with "
        "seq <= acked_seq; 0 when it holds none yet."
    )
    ts: Ts


class CentralStatus(_Payload):
    """Central online/offline; retained on ``parkgrid/v1/{site}/_central/status``."""

    v: Literal[1] = _v_field()
    state: Online = Field(description="online, or offline (Last Will or shutdown).")
    instance: Id = Field(description="Id of the central instance (host or deployment name).")
    ts: Ts


# --- Commands ------------------------------------------------------------------------------


class Rebirth(_Model):
    """Publish birth and every retained state again."""

    command: Literal["rebirth"] = Field(default="rebirth", description=_COMMAND)


class SignOverride(_Model):
    """Show ``display`` on a sign until ``until``; ``display`` null lifts an override."""

    command: Literal["sign-override"] = Field(default="sign-override", description=_COMMAND)
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


class CloseBay(_Model):
    command: Literal["close-bay"] = Field(default="close-bay", description=_COMMAND)
    bay_id: Id = Field(description="The bay to take out of service.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Why (shown in the audit trail)."
    )


class OpenBay(_Model):
    command: Literal["open-bay"] = Field(default="open-bay", description=_COMMAND)
    bay_id: Id = Field(description="The bay to put back in service.")
    reason: Text | None = Field(default=None, description="Why, if given.")


class TimeWindow(_Model):
    """A daily window in the schedule's time zone; ``end <= start`` ends the next day."""

    start: time = Field(description="Local start time, HH:MM[:SS].")
    end: time = Field(description="Local end time; not after start means the next day.")


class WeeklyWindow(TimeWindow):
    days: tuple[Weekday, ...] = Field(min_length=1, description="Days the window starts on.")


class DateOverride(_Model):
    """A date whose windows replace the weekly ones (market day, holiday)."""

    date: dt.date = Field(description="Local date.")
    windows: tuple[TimeWindow, ...] = Field(
        default=(), description="Windows of that date; empty means closed all day."
    )
    note: Text | None = Field(default=None, description="Why, e.g. 'market day'.")


class LadderStep(_Model):
    """One step of a zone's escalation ladder."""

    after_s: Count = Field(description="Seconds after the grace period ends.")
    severity: Severity = Field(description="Severity of the alert at this step.")


class ZoneSchedule(_Model):
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


class ScheduleDocument(_Model):
    version: Annotated[int, Field(ge=1)] = Field(description="Monotonic schedule version.")
    effective_from: AwareDatetime = Field(description="When this version takes effect.")
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="Asia/Shanghai", description="IANA time zone of the windows' local times."
    )
    zones: tuple[ZoneSchedule, ...] = Field(description="Every zone the box runs.")


class ZoneScheduleCommand(_Model):
    """Install a schedule version; the box keeps the newest it has and reports its version."""

    command: Literal["zone-schedule"] = Field(default="zone-schedule", description=_COMMAND)
    schedule: ScheduleDocument = Field(description="The schedule document.")


CommandBody = Annotated[
    Rebirth | SignOverride | CloseBay | OpenBay | ZoneScheduleCommand,
    Field(discriminator="command"),
]


class Command(_Payload):
    """A command on ``.../cmd/{name}``; ``body.command`` equals the topic's ``{name}``."""

    v: Literal[1] = _v_field()
    command_id: uuid.UUID = Field(description="Id the reply refers to; repeats are ignored.")
    issued_at: AwareDatetime = Field(description="When central issued it.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this the box must not act on it (it replies an error)."
    )
    body: CommandBody = Field(description="The typed command, discriminated on 'command'.")

    @property
    def name(self) -> CommandName:
        return CommandName(self.body.command)


class CommandReply(_Payload):
    """The box's answer on ``.../reply/{name}``."""

    v: Literal[1] = _v_field()
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


Payload = (
    BoxStatus
    | BayState
    | LotState
    | ZoneState
    | SignState
    | Event
    | AckWatermark
    | Command
    | CommandReply
    | CentralStatus
)
