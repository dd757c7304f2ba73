"""A concentrator's table of the last uplink heard from each sensor, and its replay answer.

A box that starts (or re-opens its line) sends a replay request (0x83); the concentrator
answers from this table with one stored uplink (0x04) per sensor, its age in milliseconds
since it was heard, then the end marker (0x05) with the count (docs/protocols/
concentrator.md). Pure: times are given by the caller, on the concentrator's own clock.
"""

from __future__ import annotations

from firmware_protocols.concentrator import ReplayEnd, StoredUplink, UplinkFrame

AGE_MAX_MS = 0xFFFF_FFFF


class UplinkTable:
    """The last uplink from each sensor and when it was heard."""

    def __init__(self) -> None:
        self.heard: dict[int, tuple[UplinkFrame, float]] = {}

    def record(self, uplink: UplinkFrame, at: float) -> None:
        self.heard[uplink.sensor_id] = (uplink, at)

    def answer(self, request_id: int, now: float) -> list[StoredUplink | ReplayEnd]:
        """Every stored uplink with its age at ``now``, then the end marker."""
        frames: list[StoredUplink | ReplayEnd] = []
        for uplink, at in self.heard.values():
            age_ms = min(max(round((now - at) * 1000), 0), AGE_MAX_MS)
            frames.append(StoredUplink(request_id=request_id, age_ms=age_ms, uplink=uplink))
        frames.append(ReplayEnd(request_id=request_id, count=len(self.heard)))
        return frames
