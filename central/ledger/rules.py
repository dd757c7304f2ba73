"""The rules, as pure functions of captures already stored (no store, no clock).

Each function takes the captures of one plate at one place, oldest first, and the rule's
settings from the site file, and says whether they make a violation, and with which
evidence. The service (``central.ledger.service``) finds the captures, asks, and appends
to the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from site_model.site import LeftForDaysRule, NoParkingRule, Site

# For "left for days" a camera may not pass by for a night or a weekend; a longer silence
# than this between two sightings counts as the vehicle having gone.
LEFT_MAX_GAP_S = 26 * 3600.0
EXEMPT_CLASSES = frozenset({"police", "fire", "ambulance", "sanitation"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """One stored capture, as the rules need it."""

    capture_id: int
    at: float
    departure: bool
    pictures: tuple[str, ...]  # SHA-256 of each picture


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """Captures that make a violation: what the ledger entry's evidence lists."""

    captures: tuple[Seen, ...]

    @property
    def first(self) -> Seen:
        return self.captures[0]

    @property
    def span_s(self) -> float:
        return self.captures[-1].at - self.captures[0].at


def runs(seen: Sequence[Seen], *, max_gap_s: float) -> list[list[Seen]]:
    """Split sightings into stays: a departure, or a gap over ``max_gap_s``, ends a stay."""
    stays: list[list[Seen]] = []
    current: list[Seen] = []
    for item in sorted(seen, key=lambda s: (s.at, s.capture_id)):
        if item.departure:
            if current:
                stays.append(current)
            current = []
            continue
        if current and item.at - current[-1].at > max_gap_s:
            stays.append(current)
            current = []
        current.append(item)
    if current:
        stays.append(current)
    return stays


def no_parking(seen: Sequence[Seen], rule: NoParkingRule) -> list[Finding]:
    """Stays with at least K captures spanning at least T minutes and one picture."""
    found = []
    for stay in runs(seen, max_gap_s=rule.max_gap_minutes * 60):
        if len(stay) < rule.min_captures:
            continue
        if stay[-1].at - stay[0].at < rule.min_minutes * 60:
            continue
        if not any(item.pictures for item in stay):
            continue
        found.append(Finding(captures=tuple(stay)))
    return found


def left_for_days(seen: Sequence[Seen], rule: LeftForDaysRule, tz: dt.tzinfo) -> list[Finding]:
    """Stays seen on ``days`` or more local days, or spanning ``dwell_hours`` or more."""
    found = []
    for stay in runs(seen, max_gap_s=LEFT_MAX_GAP_S):
        days = {dt.datetime.fromtimestamp(item.at, tz).date() for item in stay}
        if len(days) >= rule.days or stay[-1].at - stay[0].at >= rule.dwell_hours * 3600:
            found.append(Finding(captures=tuple(stay)))
    return found


def exemption(site: Site, *, plate: str, plate_color: str | None, vehicle_class: str) -> str | None:
    """Why no rule applies to this vehicle, or None."""
    for entry in site.exempt:
        if entry.plate.upper() == plate:
            return f"listed: {entry.reason}"
    if plate.endswith("警"):
        return "police plate"
    if "应急" in plate:
        return "emergency rescue plate"
    if plate_color == "white":
        return "white plate (police or military)"
    if vehicle_class in EXEMPT_CLASSES:
        return f"{vehicle_class} vehicle"
    return None
