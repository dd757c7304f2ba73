"""What happens in the town: the events of a plan (``simulators.town.plan_town``), each
at its time on the town's clock, and how they are counted and printed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class BayChange:
    """A vehicle arrives in (``occupied``) or leaves a bay of a lot or a stall pitch."""

    at: float
    bay_id: str
    occupied: bool
    why: str = "car"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureSeen:
    """A camera sees a plate; ``captured_at`` may be earlier than ``at`` (a replay)."""

    at: float
    captured_at: float
    camera_id: str
    plate: str
    plate_colour: str
    vehicle_class: str
    event_id: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorDies:
    at: float
    bay_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignReboots:
    at: float
    sign_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxNetwork:
    """A box loses (``up=False``) or gets back its network."""

    at: float
    box_id: str
    up: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxRestarts:
    """A box's process is stopped and started again (a power cut, a watchdog reset)."""

    at: float
    box_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """A driver reaches a lot's entrance and decides by its sign where to park (``drivers=
    "signs"``); ``knows_town`` drivers ignore a full sign's direction and try the lots they
    know, nearest first. Where they end up is decided when they arrive, not in the plan."""

    at: float
    lot_id: str
    dwell_s: float
    knows_town: bool
    driver_id: int


TownEvent = BayChange | CaptureSeen | SensorDies | SignReboots | BoxNetwork | BoxRestarts | Arrival


def event_record(event: TownEvent) -> dict[str, Any]:
    """An event as a JSON-able dict with its type name (``parkgrid sim town --plan``)."""
    return {"type": type(event).__name__, **asdict(event)}


def summarise(events: Sequence[TownEvent]) -> dict[str, int]:
    """Counts by kind and reason: what a plan holds, for people and tests."""
    counts: dict[str, int] = {}
    for event in events:
        key = type(event).__name__
        if isinstance(event, BayChange | CaptureSeen):
            key = f"{key}: {event.why}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
