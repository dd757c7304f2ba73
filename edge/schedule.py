"""Stall-zone schedules: from weekly windows and date overrides to the phase a zone is in.

Theory of operation
-------------------
A zone's rules (:class:`ZoneRules`) are local times in the site's time zone: weekly windows
("mon-fri 06:00-09:30") and date overrides that replace a whole day's windows (a market
day, a holiday, a closure for an event). To answer "what is the zone doing at ``now``",
:func:`phase_at` lays the concrete windows of the days around ``now`` onto the UTC time
line, merges the ones that touch, and reads off one of five phases::

    window start              end - closing_soon_s     window end        end + grace_s
         |---------- open ----------|-- closing_soon --|---- closing ----|---- closed ...
                                                                               (until the
    prohibited zone: always_closed, forever                                   next start)

A window whose end is not after its start ends the next day (``22:00-02:00``), so a night
market crossing midnight is one window; ``start == end`` is a 24-hour window. A window
belongs to the day it starts on, so an override of a date replaces the windows that start
on that date, not a window that began the evening before.

Local times become instants with :mod:`zoneinfo`, ``fold=0``: a local time the clocks skip
(spring forward, ``02:30`` in Europe/Berlin) is read with the offset before the change, which
puts it one hour later on the wall clock (``03:30``); a local time that happens twice
(autumn) is its first occurrence. Zones in a time zone without DST (Asia/Shanghai) never
meet either case.

Nothing here reads a clock or keeps state: ``now`` is epoch seconds passed in, so a clock
that jumps (an NTP step) or a box restarted in the middle of a window simply asks again and
gets the phase that is true at the new ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

ZoneClassName = Literal["prohibited", "controlled", "regulated"]
PhaseName = Literal["open", "closing_soon", "closing", "closed", "always_closed"]
SeverityName = Literal["info", "warning", "escalated", "critical"]

DAY_S = 86_400.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for the next window before giving up: a zone closed for a season
# by overrides still reports when it opens again, up to a year ahead.
HORIZON_DAYS = (14, 400)


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """Local ``start``..``end``; an ``end`` not after ``start`` is on the next day."""

    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True, kw_only=True)
class WeeklyWindow:
    days: frozenset[int]  # 0 = Monday, as ``date.weekday()``
    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderStep:
    """An alert step: ``after_s`` seconds after the grace period ends, at ``severity``."""

    after_s: float
    severity: SeverityName


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneRules:
    """Everything the schedule says about one zone, in the zone's time zone."""

    zone_id: str
    zone_class: ZoneClassName
    tz: ZoneInfo
    weekly: tuple[WeeklyWindow, ...] = ()
    overrides: Mapping[dt.date, tuple[DailyWindow, ...]] = field(default_factory=dict)
    grace_s: float = 0.0
    closing_soon_s: float = 0.0
    ladder: tuple[LadderStep, ...] = ()
    version: int = 0


@dataclass(frozen=True, slots=True)
class Interval:
    """A concrete window on the time line, epoch seconds, ``[start, end)``."""

    start: float
    end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """Where a zone stands at one instant and when that next changes."""

    name: PhaseName
    window: Interval | None  # in force (open, closing_soon) or just ended (closing)
    closed_since: float | None  # when the zone last stopped trading, if known
    next_change: float | None  # the next phase boundary, None if never
    state_ends: float | None  # when the uplink state (open/closing/closed) next changes


def windows_on(rules: ZoneRules, day: dt.date) -> tuple[DailyWindow, ...]:
    """The windows that start on ``day``: its override, else the weekly ones of its weekday."""
    override = rules.overrides.get(day)
    if override is not None:
        return override
    weekday = day.weekday()
    return tuple(DailyWindow(w.start, w.end) for w in rules.weekly if weekday in w.days)


def local_instant(day: dt.date, at: dt.time, tz: ZoneInfo) -> float:
    """Epoch seconds of local ``day`` ``at`` (``fold=0``: see the module docstring)."""
    return dt.datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).timestamp()


def intervals_between(rules: ZoneRules, first: dt.date, last: dt.date) -> list[Interval]:
    """The zone's windows starting on ``first``..``last`` (local dates), merged, in order."""
    found: list[Interval] = []
    day = first
    while day <= last:
        for window in windows_on(rules, day):
            end_day = day if window.end > window.start else day + dt.timedelta(days=1)
            start = local_instant(day, window.start, rules.tz)
            end = local_instant(end_day, window.end, rules.tz)
            if end > start:  # a window inside a skipped hour has no length: it never opens
                found.append(Interval(start, end))
        day += dt.timedelta(days=1)
    return merge(found)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and join overlapping or touching intervals (two windows back to back are one)."""
    merged: list[Interval] = []
    for item in sorted(intervals, key=lambda i: (i.start, i.end)):
        if merged and item.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, item.end))
        else:
            merged.append(item)
    return merged


def _local_date(ts: float, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts, tz).date()


def phase_at(rules: ZoneRules, now: float) -> Phase:
    """The zone's phase at ``now`` (epoch seconds)."""
    if rules.zone_class == "prohibited":
        return Phase(
            name="always_closed", window=None, closed_since=None, next_change=None, state_ends=None
        )
    today = _local_date(now, rules.tz)
    # Two days back covers a window that began yesterday evening plus its grace period.
    first = today - dt.timedelta(days=2 + int(rules.grace_s // DAY_S))
    intervals: list[Interval] = []
    upcoming: Interval | None = None
    current: Interval | None = None
    unbounded = False
    for days in HORIZON_DAYS:
        last_day = today + dt.timedelta(days=days)
        intervals = intervals_between(rules, first, last_day)
        upcoming = next((i for i in intervals if i.start > now), None)
        current = next((i for i in intervals if i.start <= now < i.end), None)
        # A window still open at the horizon may run on into days not laid out yet.
        unbounded = current is not None and current.end >= local_instant(
            last_day, dt.time(0), rules.tz
        )
        if not unbounded and (current is not None or upcoming is not None):
            break
    next_start = upcoming.start if upcoming is not None else None
    if current is not None and unbounded:
        # Open around the clock for as far as we look: no end to announce.
        return Phase(
            name="open", window=current, closed_since=None, next_change=None, state_ends=None
        )
    if current is not None:
        soon_at = max(current.start, current.end - rules.closing_soon_s)
        if now >= soon_at:
            return Phase(
                name="closing_soon",
                window=current,
                closed_since=None,
                next_change=current.end,
                state_ends=current.end,
            )
        return Phase(
            name="open",
            window=current,
            closed_since=None,
            next_change=soon_at,
            state_ends=current.end,
        )
    ended = [i for i in intervals if i.end <= now]
    last = ended[-1] if ended else None
    if last is not None and now < last.end + rules.grace_s:
        grace_end = last.end + rules.grace_s
        change = grace_end if next_start is None else min(grace_end, next_start)
        return Phase(
            name="closing",
            window=last,
            closed_since=last.end,
            next_change=change,
            state_ends=change,
        )
    return Phase(
        name="closed",
        window=None,
        closed_since=last.end if last is not None else None,
        next_change=next_start,
        state_ends=next_start,
    )


def step_due(rules: ZoneRules, since: float, now: float) -> int:
    """The highest ladder step due at ``now`` for a violation that began at ``since``; -1 if
    none is due yet (still inside the grace period)."""
    due = -1
    for index, step in enumerate(rules.ladder):
        if now >= since + rules.grace_s + step.after_s:
            due = index
    return due


def next_step_at(rules: ZoneRules, since: float, raised: int) -> float | None:
    """When the ladder step after ``raised`` falls due, or None at the top of the ladder."""
    if raised + 1 >= len(rules.ladder):
        return None
    return since + rules.grace_s + rules.ladder[raised + 1].after_s


def weekday_numbers(days: Sequence[str]) -> frozenset[int]:
    """``("mon", "sat")`` -> ``{0, 5}``."""
    return frozenset(WEEKDAYS.index(day) for day in days)
