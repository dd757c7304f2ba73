"""What a bay's chain of changes adds to its lot's rollups (pure).

A bay's chain is its ``bay_changed`` events in ``(ts, seq)`` order. Each event moves one
bay of its lot from the state before it (the previous event's ``to_state``, ``unknown``
before the first) to its own: -1 on the old state and +1 on the new, filed under the
minute and the hour it falls in. A minute key ``k`` holds the changes with
``(k - 1) * 60 < ts <= k * 60`` (an hour likewise), so the counts at a whole minute ``T``
are the lot's bays, all ``unknown``, plus every minute key up to ``T / 60``: the same as
replaying every change with ``ts <= T``. A stay is a run of ``occupied`` ended by any other
state: it began at the run's first event and ended at the event that ended it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

STATES = ("free", "occupied", "unknown", "closed")
INDEX = {s: i for i, s in enumerate(STATES)}
OCCUPIED = "occupied"
UNKNOWN = "unknown"
MINUTE = 60
HOUR = 3600


def key_of(ts: float, width: int) -> int:
    """The key ``k`` of the bucket ``((k - 1) * width, k * width]`` that holds ``ts``."""
    k = int(ts // width)
    if k * width < ts:
        k += 1
    return k


@dataclass(frozen=True, slots=True)
class Change:
    """One ``bay_changed`` event as the chain sees it."""

    ts: float
    seq: int
    box_id: str
    lot_id: str | None
    to_state: str
    counted: bool  # the bay is its lot's in the site file: it moves the lot's counts

    @property
    def order(self) -> tuple[float, int]:
        return (self.ts, self.seq)


@dataclass(frozen=True, slots=True)
class Stay:
    bay_id: str
    lot_id: str | None
    began: float
    ended: float
    seq: int  # the ending event's seq (two stays of a bay may end at one ts)


@dataclass(slots=True)
class Tip:
    """Where a bay's chain stands after its last change."""

    state: str = UNKNOWN
    run_began: float | None = None  # while occupied: when the run began
    ts: float | None = None
    seq: int | None = None
    lot_id: str | None = None


Deltas = dict[tuple[str, int], list[int]]  # (lot, key) -> change of (free, occ, unk, closed)


@dataclass(slots=True)
class Contribution:
    """What a stretch of a chain adds: count changes by minute and hour, stays, and each
    event's state before it (``prev``, by ``(box_id, seq)``)."""

    minutes: Deltas = field(default_factory=dict)
    hours: Deltas = field(default_factory=dict)
    stays: set[Stay] = field(default_factory=set)
    prev: dict[tuple[str, int], str] = field(default_factory=dict)

    def add(self, other: Contribution, sign: int = 1) -> None:
        for mine, theirs in ((self.minutes, other.minutes), (self.hours, other.hours)):
            for key, values in theirs.items():
                row = mine.setdefault(key, [0, 0, 0, 0])
                for i, v in enumerate(values):
                    row[i] += sign * v


def _bump(deltas: Deltas, key: tuple[str, int], before: str, after: str) -> None:
    row = deltas.setdefault(key, [0, 0, 0, 0])
    row[INDEX[before]] -= 1
    row[INDEX[after]] += 1


def walk(bay_id: str, tip: Tip, changes: Iterable[Change]) -> Contribution:
    """The contribution of ``changes`` (in chain order) following ``tip``; moves ``tip``."""
    out = Contribution()
    for c in changes:
        before = tip.state
        out.prev[(c.box_id, c.seq)] = before
        if c.counted and c.lot_id is not None and c.to_state != before:
            _bump(out.minutes, (c.lot_id, key_of(c.ts, MINUTE)), before, c.to_state)
            _bump(out.hours, (c.lot_id, key_of(c.ts, HOUR)), before, c.to_state)
        if c.to_state == OCCUPIED:
            if tip.run_began is None:
                tip.run_began = c.ts
        elif tip.run_began is not None:
            out.stays.add(Stay(bay_id, c.lot_id, tip.run_began, c.ts, c.seq))
            tip.run_began = None
        tip.state, tip.ts, tip.seq, tip.lot_id = c.to_state, c.ts, c.seq, c.lot_id
    return out


def nonzero(deltas: Deltas) -> Deltas:
    return {k: v for k, v in deltas.items() if any(v)}
