"""The one value every sensor-payload decoder returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "KINDS",
    "BatteryHealth",
    "Kind",
    "SensorReading",
    "battery_health_for",
]

Kind = Literal[
    "status",
    "heartbeat",
    "startup",
    "telemetry",
    "parameters",
    "registration",
    "info",
    "debug",
]
KINDS: Final[tuple[Kind, ...]] = (
    "status",
    "heartbeat",
    "startup",
    "telemetry",
    "parameters",
    "registration",
    "info",
    "debug",
)

BatteryHealth = Literal["normal", "low", "critical"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorReading:
    """One decoded vendor payload; ``None`` wherever the format does not carry the value.

    ``extra`` holds what a format carries beyond the common fields (thresholds, alarms,
    humidity, distance, hardware health, debug codes, ...); its keys are documented per
    format in ``docs/protocols/``. ``extra`` takes no part in hashing, so readings stay
    usable as set members and dict keys.
    """

    fmt: str
    kind: Kind
    occupied: bool | None = None
    battery_mv: int | None = None
    battery_health: BatteryHealth | None = None
    temperature_c: float | None = None
    firmware: str | None = None
    reset_cause: str | None = None
    mag_xyz: tuple[int, int, int] | None = None
    frame_counter: int | None = None
    previous_state_minutes: int | None = None
    tag_id: str | None = None
    raw: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


def battery_health_for(battery_mv: int, temperature_c: float) -> BatteryHealth:
    """Nwave's battery rule: cold cells sag, so the limits drop 100 mV below -5 °C."""
    if temperature_c >= -5:
        low, critical = 3000, 2900
    else:
        low, critical = 2900, 2800
    if battery_mv < critical:
        return "critical"
    if battery_mv < low:
        return "low"
    return "normal"
