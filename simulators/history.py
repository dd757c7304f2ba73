"""Weeks of Xigang's car-park history from the town model, for the forecasts and the demo.

``town_days(site, first_day=..., days=..., seed=...)`` plans each day with
``simulators.town.plan_town`` (the same model the demo plays live: hourly arrival rates,
dwell times, drivers following the signs) and yields each day's lot ``BayChange`` events.
``lot_series(...)`` samples them into per-lot occupancy every ``step_s``. Days differ the
way a town's do (INVENTED factors, plausible, documented in docs/forecast.md):

* market days (集日) on dates ending in 2 or 7, the farmers' market lot busier;
* weekends: the town-hall square lot (P2) half as busy, the shopping street lot (P3) 30 % busier;
* public holidays (a calendar file, ``simulators/sites/holidays-cn.toml``): P2 at 30 %, P3 at 150 %.

Each day is planned on its own (all bays free before its start, residents' cars parked
overnight), so days are independent and any one can be regenerated alone. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from simulators.town import BayChange, Site, day_start, plan_town  # Site: the site file model

WEEKEND = {"P2": 0.5, "P3": 1.3}
HOLIDAY = {"P2": 0.3, "P3": 1.5}


def is_market_day(day: dt.date) -> bool:
    return day.day % 10 in (2, 7)


def demand_of(
    day: dt.date, *, holidays: Iterable[dt.date] = (), workdays: Iterable[dt.date] = ()
) -> dict[str, float]:
    """Per-lot demand factors of ``day``: a holiday, a weekend (unless a make-up workday)."""
    if day in set(holidays):
        return dict(HOLIDAY)
    if day.weekday() >= 5 and day not in set(workdays):
        return dict(WEEKEND)
    return {}


@dataclass(frozen=True, slots=True)
class TownDay:
    day: dt.date
    start: float
    changes: list[BayChange]


def town_days(
    site: Site,
    *,
    first_day: dt.date,
    days: int,
    seed: int,
    holidays: Iterable[dt.date] = (),
    workdays: Iterable[dt.date] = (),
) -> Iterator[TownDay]:
    """Each day's bay changes in the site's lots, planned from local midnight for 24 hours."""
    tz = ZoneInfo(site.site.timezone)
    holidays, workdays = set(holidays), set(workdays)
    lot_bays = {bay for _, bay in site.lot_bays()}
    for n in range(days):
        day = first_day + dt.timedelta(days=n)
        start = day_start(day, dt.time(0, 0), tz)
        events = plan_town(
            site,
            seed=seed * 1000 + n,
            start=start,
            hours=24.0,
            market_day=is_market_day(day),
            demand=demand_of(day, holidays=holidays, workdays=workdays),
        )
        changes = [e for e in events if isinstance(e, BayChange) and e.bay_id in lot_bays]
        yield TownDay(day=day, start=start, changes=changes)


def lot_series(
    site: Site, days: Iterable[TownDay], *, step_s: float = 300.0
) -> dict[str, list[tuple[float, int]]]:
    """Per lot, ``(epoch, occupied)`` every ``step_s`` through every day."""
    lot_of = {bay: lot for lot, bay in site.lot_bays()}
    series: dict[str, list[tuple[float, int]]] = {lot: [] for lot in site.lots}
    for town_day in days:
        occupied: dict[str, bool] = {}
        counts = dict.fromkeys(site.lots, 0)
        changes = town_day.changes
        i = 0
        t = town_day.start
        end = town_day.start + 86400.0
        while t < end:
            while i < len(changes) and changes[i].at <= t:
                change = changes[i]
                i += 1
                before = occupied.get(change.bay_id, False)
                if before != change.occupied:
                    occupied[change.bay_id] = change.occupied
                    counts[lot_of[change.bay_id]] += 1 if change.occupied else -1
            for lot_id, count in counts.items():
                series[lot_id].append((t, count))
            t += step_s
    return series


def bay_changes(days: Iterable[TownDay]) -> Iterator[tuple[float, str, bool]]:
    """Every day's changes in time order as ``(epoch, bay_id, occupied)``; each day ends with
    its still-parked cars gone a second before midnight, as ``lot_series`` counts it."""
    for town_day in days:
        occupied: set[str] = set()
        for change in town_day.changes:
            if change.occupied:
                occupied.add(change.bay_id)
            else:
                occupied.discard(change.bay_id)
            yield change.at, change.bay_id, change.occupied
        end = town_day.start + 86400.0 - 1.0
        for bay_id in sorted(occupied):
            yield end, bay_id, False
