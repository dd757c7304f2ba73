"""The uplink v1 vocabularies: the enumerations the payloads share."""

from __future__ import annotations

from enum import StrEnum


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
    SIGN_WRONG = "sign_wrong"  # answers, but does not show what was written (dark, rebooted)
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
