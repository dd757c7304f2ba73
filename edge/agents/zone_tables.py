"""The stall zones' two state tables, as data: the zone table and the per-bay watch table.

``ZONE_TABLE[(state, phase)] -> (action, next_state)`` and ``BAY_TABLE[(watch, condition)]
-> (action, next_watch)`` (docs/stall-zones.md explains both); ``zone_step`` and ``bay_step``
look a row up and raise ``ZoneTableError`` for an input with no row. Pure.
"""

from __future__ import annotations

from typing import Literal

from edge.schedule import PhaseName
from firmware_protocols.uplink.models import ZoneOpenState

ZoneStateName = Literal["starting", "open", "closing_soon", "closing", "closed", "always_closed"]
ZoneAction = Literal["derive", "announce", "sign", "none"]
BayWatch = Literal["clear", "pending", "alerted"]
BayCondition = Literal["ok", "unknown", "waiting", "due"]
BayAction = Literal["none", "watch", "forget", "raise", "escalate", "resolve"]
BayOccupancy = Literal["free", "occupied", "unknown", "closed"]

PHASES: tuple[PhaseName, ...] = ("open", "closing_soon", "closing", "closed", "always_closed")

# (state, phase the schedule gives now) -> (action, next state). Every phase can follow every
# state: a clock step, a restart or a new schedule can jump anywhere.
ZONE_TABLE: dict[tuple[ZoneStateName, PhaseName], tuple[ZoneAction, ZoneStateName]] = {
    ("starting", "open"): ("derive", "open"),
    ("starting", "closing_soon"): ("derive", "closing_soon"),
    ("starting", "closing"): ("derive", "closing"),
    ("starting", "closed"): ("derive", "closed"),
    ("starting", "always_closed"): ("derive", "always_closed"),
    ("open", "open"): ("none", "open"),
    ("open", "closing_soon"): ("sign", "closing_soon"),
    ("open", "closing"): ("announce", "closing"),
    ("open", "closed"): ("announce", "closed"),
    ("open", "always_closed"): ("announce", "always_closed"),
    ("closing_soon", "open"): ("sign", "open"),
    ("closing_soon", "closing_soon"): ("none", "closing_soon"),
    ("closing_soon", "closing"): ("announce", "closing"),
    ("closing_soon", "closed"): ("announce", "closed"),
    ("closing_soon", "always_closed"): ("announce", "always_closed"),
    ("closing", "open"): ("announce", "open"),
    ("closing", "closing_soon"): ("announce", "closing_soon"),
    ("closing", "closing"): ("none", "closing"),
    ("closing", "closed"): ("announce", "closed"),
    ("closing", "always_closed"): ("announce", "always_closed"),
    ("closed", "open"): ("announce", "open"),
    ("closed", "closing_soon"): ("announce", "closing_soon"),
    ("closed", "closing"): ("announce", "closing"),
    ("closed", "closed"): ("none", "closed"),
    ("closed", "always_closed"): ("announce", "always_closed"),
    ("always_closed", "open"): ("announce", "open"),
    ("always_closed", "closing_soon"): ("announce", "closing_soon"),
    ("always_closed", "closing"): ("announce", "closing"),
    ("always_closed", "closed"): ("announce", "closed"),
    ("always_closed", "always_closed"): ("none", "always_closed"),
}

# (watch, condition) -> (action, next watch)
BAY_TABLE: dict[tuple[BayWatch, BayCondition], tuple[BayAction, BayWatch]] = {
    ("clear", "ok"): ("none", "clear"),
    ("clear", "unknown"): ("none", "clear"),
    ("clear", "waiting"): ("watch", "pending"),
    ("clear", "due"): ("raise", "alerted"),
    ("pending", "ok"): ("forget", "clear"),
    ("pending", "unknown"): ("none", "pending"),
    ("pending", "waiting"): ("none", "pending"),
    ("pending", "due"): ("raise", "alerted"),
    ("alerted", "ok"): ("resolve", "clear"),
    ("alerted", "unknown"): ("none", "alerted"),
    ("alerted", "waiting"): ("none", "alerted"),  # the clock stepped back: no step is undone
    ("alerted", "due"): ("escalate", "alerted"),
}

UPLINK_STATE: dict[ZoneStateName, ZoneOpenState] = {
    "open": ZoneOpenState.OPEN,
    "closing_soon": ZoneOpenState.OPEN,
    "closing": ZoneOpenState.CLOSING,
    "closed": ZoneOpenState.CLOSED,
    "always_closed": ZoneOpenState.ALWAYS_CLOSED,
}


class ZoneTableError(LookupError):
    """An input the table has no row for: a bug, never a situation to guess through."""

    def __init__(self, table: str, state: str, value: str) -> None:
        self.table = table
        self.state = state
        self.input = value
        super().__init__(f"{table}: no transition from {state!r} on {value!r}")


def zone_step(state: ZoneStateName, phase: PhaseName) -> tuple[ZoneAction, ZoneStateName]:
    try:
        return ZONE_TABLE[(state, phase)]
    except KeyError:
        raise ZoneTableError("zone", state, phase) from None


def bay_step(watch: BayWatch, condition: BayCondition) -> tuple[BayAction, BayWatch]:
    try:
        return BAY_TABLE[(watch, condition)]
    except KeyError:
        raise ZoneTableError("bay", watch, condition) from None
