"""The town's drivers who read the signs, and the truth timeline the town writes.

Theory of operation
-------------------
With ``plan_town(..., drivers="signs")`` a car arriving at a lot is an :class:`Arrival`, not
a planned bay change: when the town's clock reaches it, :class:`SignFollowers` reads the
lot's entrance sign as the sign simulator shows it at that moment (the real LEDs, not what
the box meant to show) and decides, so guidance is judged by its outcome:

    the sign reads             a driver who follows the signs
    a count ("P1 37 →")        drives in; parks if a bay is free, else was *sent in to a
                               full lot* (misled) and leaves the town
    full with a way            goes to that lot: parks if it has a free bay, else was *sent
      ("满 FULL → P4 12")       to a full lot* (misled) and leaves; if its own lot had a
                               free bay, it was *turned away while its lot had space*
    full, nowhere ("满 FULL")   leaves the town (turned away, if its lot had space)
    "--", dark, CLOSED         drives in to look: parks if a bay is free, else leaves

A share of drivers *know the town* (``knows_town``): they look for themselves, their lot
first, then the sign's fallback lots nearest first, and leave if every one is full. They are
never misled; they are the baseline.

Arrival and departure are instant (no driving time between lots): a sign is judged by what
it shows when the driver reads it. The bay a driver takes is drawn from the free bays by a
seeded generator, and the driver leaves ``dwell_s`` later (a bay change the driver
schedules).

:class:`TruthTimeline` writes one JSON line per thing the town did, with the wall time and
the town's time, and for every bay change of a lot that lot's truth after it (free bays
counted the way a box must: a bay whose sensor is dead is unknown, never free)::

    {"wall": 1733480000.12, "town": 1733440000.0, "kind": "bay", "bay": "P1-017",
     "lot": "P1", "occupied": true, "why": "car",
     "truth": {"capacity": 180, "free": 11, "occupied": 168, "unknown": 1, "closed": 0}}
    {"wall": ..., "town": ..., "kind": "driver", "driver": 812, "lot": "P1",
     "read": "满 FULL → P4 12 green", "knows_town": false, "parked": "P4", "misled": null,
     "turned_away_with_space": false}
    {"wall": ..., "town": ..., "kind": "fault", "fault": "SignReboots", "sign_id": "P1-ENTRANCE"}
    {"wall": ..., "town": ..., "kind": "fault", "fault": "BoxStarted", "box_id": "box-p1"}

(``BoxStarted``: the process of a box that ``BoxRestarts`` stopped runs again.)

``kind`` ``lot`` lines (at the start) give every lot's truth before anything happened.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from firmware_protocols.signs import Display, GuidanceDisplay, GuidanceMode, NumericDisplay
from site_model.site import SignKind, Site

__all__ = ["Decision", "DriverTally", "SignFace", "SignFollowers", "TruthTimeline", "read_face"]


@dataclass(frozen=True, slots=True)
class SignFace:
    """What a driver reads on a sign: the words, and what they tell a driver to do."""

    text: str
    kind: str  # "count", "full_to", "full", "unknown"
    count: int | None = None
    to_lot: str | None = None


def read_face(text: str, display: Display | None) -> SignFace:
    """Classify a sign's face (the simulator's ``shown`` and decoded registers)."""
    if not text or text.startswith("--") or display is None:
        return SignFace(text, "unknown")
    if isinstance(display, GuidanceDisplay):
        if display.mode is GuidanceMode.NORMAL:
            return SignFace(text, "count", count=display.free)
        if display.mode is GuidanceMode.FULL:
            if display.label:
                return SignFace(text, "full_to", count=display.free, to_lot=display.label)
            return SignFace(text, "full")
        return SignFace(text, "unknown")  # closed, blank, unknown
    if isinstance(display, NumericDisplay):
        if display.value is not None:
            return SignFace(text, "count", count=display.value)
        if display.text and display.text.startswith("FULL"):
            parts = display.text.split()
            if len(parts) == 3:
                return SignFace(text, "full_to", count=int(parts[2]), to_lot=parts[1][1:])
            return SignFace(text, "full")
    return SignFace(text, "unknown")


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one driver ended up, and whether a sign misled them."""

    parked: str | None  # the lot, or None: left the town
    bay_id: str | None
    misled: str | None  # why, when a sign sent them to a lot with no free bay
    turned_away_with_space: bool  # a full sign sent them away while their lot had space


@dataclass(slots=True)
class DriverTally:
    arrived: int = 0
    parked: int = 0
    parked_elsewhere: int = 0
    left_town: int = 0
    misled: int = 0
    turned_away_with_space: int = 0
    knows_town: int = 0
    by_lot: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, lot_id: str, decision: Decision, *, knows_town: bool) -> None:
        self.arrived += 1
        self.knows_town += knows_town
        lot = self.by_lot.setdefault(
            lot_id, {"arrived": 0, "parked": 0, "misled": 0, "turned_away_with_space": 0}
        )
        lot["arrived"] += 1
        if decision.parked is None:
            self.left_town += 1
        else:
            self.parked += 1
            lot["parked"] += 1
            self.parked_elsewhere += decision.parked != lot_id
        if decision.misled:
            self.misled += 1
            lot["misled"] += 1
        if decision.turned_away_with_space:
            self.turned_away_with_space += 1
            lot["turned_away_with_space"] += 1


class SignFollowers:
    """Decides, when a driver arrives, where they park, from the live sign and the truth.

    ``read_sign(sign_id)`` returns the face as a driver reads it (None: no such sign);
    ``free_bays(lot_id)`` the bays physically free now (a dead sensor's bay may be free)."""

    def __init__(
        self,
        *,
        site: Site,
        read_sign: Callable[[str], SignFace | None],
        free_bays: Callable[[str], list[str]],
        seed: int,
    ) -> None:
        self.read_sign = read_sign
        self.free_bays = free_bays
        self.rng = random.Random(seed ^ 0x51E9)
        self.entrance: dict[str, str] = {}
        self.fallbacks: dict[str, list[str]] = {lot_id: [] for lot_id in site.lots}
        for sign_id, sign in sorted(site.signs.items()):
            if sign.kind is SignKind.GUIDANCE and sign.lot is not None:
                self.entrance.setdefault(sign.lot, sign_id)
                self.fallbacks[sign.lot] = [t.lot for t in sign.fallback]
        self.tally = DriverTally()

    def face(self, lot_id: str) -> SignFace:
        sign_id = self.entrance.get(lot_id)
        face = self.read_sign(sign_id) if sign_id is not None else None
        return face if face is not None else SignFace("", "unknown")

    def _park(self, lot_id: str) -> str | None:
        free = self.free_bays(lot_id)
        return self.rng.choice(free) if free else None

    def arrive(self, lot_id: str, *, knows_town: bool) -> tuple[SignFace, Decision]:
        face = self.face(lot_id)
        had_space = bool(self.free_bays(lot_id))
        if knows_town:
            for target in [lot_id, *self.fallbacks.get(lot_id, [])]:
                bay = self._park(target)
                if bay is not None:
                    return face, Decision(target, bay, None, False)
            return face, Decision(None, None, None, False)
        if face.kind in ("count", "unknown"):
            bay = self._park(lot_id)
            if bay is not None:
                return face, Decision(lot_id, bay, None, False)
            misled = f"{lot_id}'s sign showed {face.count} free" if face.kind == "count" else None
            return face, Decision(None, None, misled, False)
        if face.kind == "full_to" and face.to_lot is not None:
            bay = self._park(face.to_lot)
            if bay is not None:
                return face, Decision(face.to_lot, bay, None, had_space)
            misled = f"{lot_id}'s sign sent them to {face.to_lot}, which was full"
            return face, Decision(None, None, misled, had_space)
        return face, Decision(None, None, None, had_space)  # full, nowhere to go


class TruthTimeline:
    """Appends the town's truth as JSON lines (see the module docstring)."""

    def __init__(self, path: Path, *, wall: Callable[[], float]) -> None:
        self.path = path
        self.wall = wall
        self._out: IO[str] | None = path.open("a", encoding="utf-8")

    def write(self, town: float, kind: str, **fields: Any) -> None:
        if self._out is None:
            return
        record = {"wall": round(self.wall(), 4), "town": round(town, 3), "kind": kind, **fields}
        self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()

    def lots(self, town: float, figures: Mapping[str, Mapping[str, int]]) -> None:
        for lot_id, truth in figures.items():
            self.write(town, "lot", lot=lot_id, truth=dict(truth))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
