"""The town's clock: simulated time that runs ``speed`` times faster than the wall clock,
and where a simulated day starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from site_model.site import Site

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TownClock:
    """Simulated time runs ``speed`` times faster than the wall clock from a common origin."""

    sim_start: float
    wall_start: float
    speed: float

    def sim(self, wall: float) -> float:
        return self.sim_start + (wall - self.wall_start) * self.speed

    def wall(self, sim: float) -> float:
        return self.wall_start + (sim - self.sim_start) / self.speed


def day_start(day: date, at: time, tz: ZoneInfo) -> float:
    """Epoch seconds of ``day`` at ``at`` in the site's time zone."""
    return datetime.combine(day, at, tzinfo=tz).timestamp()


def default_start(site: Site, *, at: str = "04:30", days_back: int = 1) -> float:
    """The town's day starts at ``at`` local time, ``days_back`` days before today.

    The simulated day lies in the past so that no capture is stamped in the future.
    """
    tz = ZoneInfo(site.site.timezone)
    today = datetime.now(tz).date() - timedelta(days=days_back)
    hh, mm = map(int, at.split(":"))
    return day_start(today, time(hh, mm), tz)
