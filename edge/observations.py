"""What the drivers hand to the agents: typed, timestamped, already decoded."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocols.sensors import SensorReading


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorObservation:
    """One sensor payload heard on a serial line.

    ``sensor_id`` is canonical (see ``edge.config``): 8 hex digits for radio sensors,
    ``M77-<host>-<detector>`` for 433 MHz detectors. ``received_at`` is wall-clock seconds
    (the sensor formats carry no time of their own, so this is the event's sensor time).

    ``stored_age_s`` is set on an uplink the concentrator replayed from its table (a
    ``StoredUplink``): it heard the sensor that long before the box received the replay,
    and ``received_at`` is set back by it. None for a live uplink.
    """

    line: str
    sensor_id: str
    reading: SensorReading
    received_at: float
    rssi_dbm: int | None = None
    snr_db: float | None = None
    fault: bool = False
    stored_age_s: float | None = None
