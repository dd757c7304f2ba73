"""The demo's town clock starts on a whole wall second, so its zones open on the minute.

The boxes keep the wall clock: each stall zone's trading hours go into its box's config as
wall-clock windows, written to the second. A town clock started at a fractional wall second
put the market's 05:00 at 04:59:0x in the town at 60x (seen on the dashboard's zones page).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from parkgrid.demo import zone_overrides
from parkgrid.demo_history import demo_town_clock

TZ = ZoneInfo("Asia/Shanghai")
SIM_START = dt.datetime(2026, 12, 6, 4, 30, tzinfo=TZ).timestamp()


def test_zone_windows_come_back_on_the_towns_minute_at_60x() -> None:
    clock = demo_town_clock(SIM_START, speed=60.0, wall_now=1_796_591_452.553, allowance_s=25)
    assert clock.wall_start >= 1_796_591_452.553 + 25  # the start allowance is kept
    (override,) = zone_overrides(
        ["05:00-06:30"], clock=clock, tz=TZ, sim_from=SIM_START, sim_to=SIM_START + 3 * 3600
    )
    (window,) = override["windows"]
    day = override["date"]
    back = [
        dt.datetime.fromtimestamp(clock.sim(dt.datetime.combine(day, t, TZ).timestamp()), TZ)
        for t in (window["start"], window["end"])
    ]
    assert [f"{b:%H:%M:%S}" for b in back] == ["05:00:00", "06:30:00"]
