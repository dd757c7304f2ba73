"""The demo's past and its clock: four weeks of generated history, and central on town time.

``parkgrid demo`` calls two things here (docs/forecast.md, docs/drivers.md):

* ``town_clock_env(run_dir)`` before central starts: central reads the town's clock from
  the demo's state file (``PARKGRID_TOWN_CLOCK_FILE``), so the drivers' page and the
  forecasts run on town time;
* ``start_demo_history(...)`` once the town's clock is fixed: in a worker thread, four
  weeks of the town model's history (``simulators.history``) before the town's start,
  mapped onto central's time axis (the boxes stamp wall time, the town runs ``speed`` times
  faster) and bulk-written into central's store, marked generated
  (``central.lots.generated``). The demo awaits it before the town plays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from central.db.engine import make_engine
from central.lots.generated import AlreadyGenerated, GeneratedChange, write_generated_history
from simulators.history import bay_changes, town_days
from simulators.town import TownClock
from site_model.site import Site

HISTORY_DAYS = 28


def demo_town_clock(
    sim_start: float, *, speed: float, wall_now: float, allowance_s: float
) -> TownClock:
    """The town's clock: ``sim_start`` (town) at least ``allowance_s`` wall seconds from
    now, on a whole wall second. The boxes get the zones' hours as wall times to the second;
    from a whole second, a town minute at the demo's speeds (60, 120, ...) is a whole number
    of wall seconds, so a market opening at 05:00 opens at 05:00:00 in the town, not 04:59."""
    return TownClock(
        sim_start=sim_start, wall_start=float(math.ceil(wall_now + allowance_s)), speed=speed
    )


def town_clock_env(run_dir: Path) -> None:
    """Point central (started after this, inheriting the environment) at the town's clock."""
    os.environ["PARKGRID_TOWN_CLOCK_FILE"] = str(run_dir / "demo.json")


def _changes(site: Site, clock: TownClock, *, days: int, seed: int) -> Iterator[GeneratedChange]:
    tz = ZoneInfo(site.site.timezone)
    start_day = dt.datetime.fromtimestamp(clock.sim_start, tz).date()
    first = start_day - dt.timedelta(days=days)
    for at, bay_id, occupied in bay_changes(town_days(site, first_day=first, days=days, seed=seed)):
        yield GeneratedChange(at=clock.wall(at), bay_id=bay_id, occupied=occupied)


def _first_moment(site: Site, clock: TownClock, days: int) -> float:
    tz = ZoneInfo(site.site.timezone)
    start_day = dt.datetime.fromtimestamp(clock.sim_start, tz).date()
    first = start_day - dt.timedelta(days=days)
    return dt.datetime.combine(first, dt.time(0), tzinfo=tz).timestamp()


def write_demo_history(
    site: Site,
    database_url: str,
    clock: TownClock,
    *,
    days: int = HISTORY_DAYS,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> int:
    """Write ``days`` of generated history ending at the town's start; rows written."""
    began = time.monotonic()
    engine = make_engine(database_url)
    try:
        rows = write_generated_history(
            engine,
            site,
            _changes(site, clock, days=days, seed=seed),
            until=clock.wall(clock.sim_start),
            since=clock.wall(_first_moment(site, clock, days)),
            source=f"simulators.history: {days} town days before the demo (seed {seed})",
        )
    except AlreadyGenerated as exc:
        say(f"history: kept ({exc})")
        return 0
    except Exception as exc:  # the town runs without its past rather than not at all
        say(f"history: not written ({type(exc).__name__}: {exc})")
        return 0
    finally:
        engine.dispose()
    say(
        f"history: {days} days of the town before its start, {rows:,} bay changes "
        f"(generated) in {time.monotonic() - began:.1f} s"
    )
    return rows


def start_demo_history(
    site: Site,
    database_url: str,
    clock: TownClock,
    *,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> asyncio.Task[int]:
    """``write_demo_history`` in a worker thread while the demo starts its boxes."""
    return asyncio.create_task(
        asyncio.to_thread(write_demo_history, site, database_url, clock, seed=seed, say=say),
        name="history",
    )
