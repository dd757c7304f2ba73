"""An M77 receiver's answer as the common sensor reading, and its detectors' ids. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from firmware_protocols.m77 import FMT as M77_FMT
from firmware_protocols.m77 import M77Answer
from firmware_protocols.sensors import SensorReading

_M77_OCCUPIED: Final[Mapping[str, bool | None]] = MappingProxyType(
    {"free": False, "occupied": True, "fault": None}
)


def m77_sensor_id(host_id: int, detector_id: int) -> str:
    """The canonical id of a detector behind an M77 receiver (``M77-001-007``)."""
    return f"M77-{host_id:03d}-{detector_id:03d}"


def m77_reading(answer: M77Answer, *, raw: bytes = b"") -> SensorReading:
    """An M77 answer as the common reading; a fault gives ``occupied=None``."""
    return SensorReading(
        fmt=M77_FMT,
        kind="status",
        occupied=_M77_OCCUPIED[answer.state],
        raw=raw,
        extra={
            "battery_level": answer.battery,
            "threshold": answer.threshold,
            "delay_ms": answer.delay_ms,
            "channel": answer.channel,
            "state": answer.state,
        },
    )
