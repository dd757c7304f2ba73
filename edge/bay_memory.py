"""What a box remembers of its car-park bays across a restart, so it does not start blind.

A restarted box used to forget every bay: its lots read unknown (``--`` on the signs,
``unknown`` at central) until it had heard most of its sensors again. Now the box keeps,
for each car-park bay, what its sensor last said and when it was last heard, in
``bays.json`` in its ``data_dir`` (rewritten whole from a worker thread every
``SAVE_EVERY_S`` and on the way out), and a restarted box takes its *occupied* bays back
*with their age*: a bay whose sensor was last heard longer ago than its heartbeat timeout
stays unknown, and the others expire by the same rule as if the box had never stopped
(``site_model/availability.py``'s ``sensor_silent``, in ``Occupancy.tick``). A sensor's
next frame replaces what was restored.

Bays last free stay unknown until their sensor speaks: a frame sent while the box was down
is lost (no one reads the serial line), and a car that took a bay in that gap would be
counted free. Measured in the demo with free bays restored too: after a 2 s restart at the
peak P1's sign showed 2 free with none free and sent a driver to a full lot. A bay restored
occupied whose car left in the gap only makes the count too low (never misleading) until
its sensor speaks. Stall-zone bays are not restored (the zone agent keeps its own state,
``zones_store``).
A file that cannot be read is moved aside (``.corrupt``) and logged; the box starts blind.

This is the fallback. A concentrator that answers the replay request (``edge/drivers/
line_replay.py``) tells the box, a fraction of a second after the line opens, the last frame
of every sensor with its age, free bays and the gap's changes included, and each replaces
what was restored here when it is newer. A concentrator with older firmware answers
nothing, and then this memory is all the box starts with.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any, TypeGuard

from edge.agents.occupancy import Occupancy
from edge.zones_store import read_json, write_atomically
from site_model.availability import sensor_silent

log = logging.getLogger(__name__)

FILE = "bays.json"
SAVE_EVERY_S = 5.0


def remembered(occupancy: Occupancy) -> dict[str, dict[str, Any]]:
    """Each car-park bay whose sensor has spoken: its sensor, state, since and last seen."""
    out: dict[str, dict[str, Any]] = {}
    for bay_id, bay in occupancy.bays.items():
        last_seen = bay.health.last_seen
        if bay.lot_id is None or bay.sensor_occupied is None or last_seen is None:
            continue
        since = bay.since if bay.state in ("free", "occupied") else last_seen
        out[bay_id] = {
            "sensor": bay.sensor_id,
            "occupied": bay.sensor_occupied,
            "since": since,
            "last_seen": last_seen,
        }
    return out


def restore(occupancy: Occupancy, records: object, now: float) -> int:
    """Take back the occupied bays ``remembered`` kept, with their age; returns how many.
    Bays last free (a car may have come while no one read the line), records of another
    sensor (the bay was remapped), a silent sensor, a fault or a time in the future are
    left out: those bays stay unknown until their sensor speaks."""
    if not isinstance(records, dict):
        return 0
    restored = 0
    for bay_id, record in records.items():
        bay = occupancy.bays.get(bay_id)
        if bay is None or bay.lot_id is None or not isinstance(record, dict):
            continue
        occupied, since, last_seen = (record.get(k) for k in ("occupied", "since", "last_seen"))
        if record.get("sensor") != bay.sensor_id or occupied is not True:
            continue
        if not (_time(since) and _time(last_seen)):
            continue
        if since > now or last_seen > now:
            continue
        if bay.state != "unknown" or bay.health.fault:
            continue
        if sensor_silent(now - last_seen, bay.heartbeat_timeout_s):
            continue
        bay.sensor_occupied = True
        bay.health.last_seen = last_seen
        bay.state = "occupied"
        bay.since = min(since, last_seen)
        restored += 1
    return restored


def _time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_into(occupancy: Occupancy, data_dir: Path, now: float) -> int:
    """Restore from ``data_dir``'s file, if any; log how many bays came back."""
    restored = restore(occupancy, read_json(data_dir / FILE), now)
    if restored:
        log.info("restored %d bay states from %s (each with its age)", restored, FILE)
    return restored


def save(occupancy: Occupancy, data_dir: Path) -> None:
    write_atomically(data_dir / FILE, remembered(occupancy))


async def keep(occupancy: Occupancy, data_dir: Path, every_s: float = SAVE_EVERY_S) -> None:
    """Save every ``every_s`` from a worker thread (no sign waits for the disk), and once
    more when cancelled (the box stopping)."""
    try:
        while True:
            await asyncio.sleep(every_s)
            records = remembered(occupancy)
            await asyncio.to_thread(write_atomically, data_dir / FILE, records)
    finally:
        try:
            save(occupancy, data_dir)
        except OSError as exc:
            log.warning("bay states not saved: %s", exc)
