"""The forecast model on small hand-made records: cleaning, day types, too little history."""

from __future__ import annotations

import datetime as dt

import pytest

from central.forecast.calendar import CalendarError, parse_calendar
from central.forecast.model import (
    Calendar,
    Observation,
    TooLittleHistory,
    fit,
    predict,
    prepare,
)

TZ = dt.timezone(dt.timedelta(hours=8))
MONDAY = dt.datetime(2026, 11, 2, tzinfo=TZ)


def _days(n: int, shape, *, capacity: int = 100, start: dt.datetime = MONDAY) -> list[Observation]:
    """``n`` days every 5 minutes; ``shape(day, hour)`` gives the occupied count."""
    out = []
    for i in range(n * 288):
        at = start + dt.timedelta(minutes=5 * i)
        jitter = (i * 7919) % 5 - 2  # a live count never sits still for long
        out.append(Observation(at, shape(at.date(), at.hour + at.minute / 60) + jitter, capacity))
    return out


def workday_peak(day: dt.date, hour: float) -> float:
    if day.weekday() >= 5:
        return 10.0
    return 80.0 if 8 <= hour < 17 else 10.0


def test_too_little_history_says_so() -> None:
    grid = prepare(_days(6, workday_peak))
    with pytest.raises(TooLittleHistory) as caught:
        fit(grid, Calendar())
    assert caught.value.days == 6 and "needs 7" in caught.value.detail


def test_forecast_follows_the_days_shape_and_weekends() -> None:
    model = fit(prepare(_days(21, workday_peak)), Calendar())
    monday_morning = dt.datetime(2026, 11, 23, 7, 30)
    points = predict(model, local=monday_morning, occupied=10, occupied_15min_ago=10)
    at_60 = next(p for p in points if p.minutes == 60)
    assert at_60.basis == "model" and at_60.free < 40  # the 08:00 peak is coming
    assert at_60.low <= at_60.free <= at_60.high
    saturday_morning = dt.datetime(2026, 11, 28, 7, 30)
    at_60 = predict(model, local=saturday_morning, occupied=10, occupied_15min_ago=10)[2]
    assert at_60.free > 80  # no peak on a Saturday


def test_a_holiday_is_forecast_like_a_rest_day_until_it_has_history() -> None:
    holiday = dt.date(2026, 11, 25)  # a Wednesday in the calendar file
    model = fit(prepare(_days(21, workday_peak)), Calendar(holidays=frozenset({holiday})))
    morning = dt.datetime(2026, 11, 25, 7, 30)
    at_60 = predict(model, local=morning, occupied=10, occupied_15min_ago=10)[2]
    assert at_60.free > 80


def test_prepare_clamps_overcounts_drops_glitches_and_stuck_runs() -> None:
    obs = _days(2, workday_peak)
    obs[100] = Observation(obs[100].at, 190, 100)  # a glitch: 10 -> 190
    obs[150] = Observation(obs[150].at, 104, 100)  # an overcount while full (80 -> 104)
    stuck = [Observation(MONDAY + dt.timedelta(days=2, minutes=5 * i), 33, 100) for i in range(288)]
    grid = prepare(obs + stuck)
    assert grid.dropped["above_capacity"] == 2 and grid.dropped["stuck"] > 0
    assert max(y for y in grid.y if y is not None) == 1.0
    assert grid.at(obs[100].at.timestamp()) == pytest.approx(
        obs[99].occupied / 100
    )  # the glitch is gone
    assert grid.at(obs[150].at.timestamp()) == pytest.approx(1.0)  # the overcount is full
    assert grid.at((MONDAY + dt.timedelta(days=2, hours=12)).timestamp()) is None  # stuck


def test_prepare_uses_each_records_own_offset_for_local_time() -> None:
    summer = dt.timezone(dt.timedelta(hours=2))
    winter = dt.timezone(dt.timedelta(hours=1))
    obs = [
        Observation(dt.datetime(2026, 10, 24, 9, 0, tzinfo=summer), 5, 10),
        Observation(dt.datetime(2026, 10, 26, 9, 0, tzinfo=winter), 5, 10),
    ]
    grid = prepare(obs)
    assert grid.local[0].hour == 9 and grid.local[-1].hour == 9


def test_calendar_file_refuses_what_is_not_a_date() -> None:
    calendar = parse_calendar({"holidays": {"2026-10-01": "国庆节"}, "workdays": ["2026-09-20"]})
    assert dt.date(2026, 10, 1) in calendar.holidays
    assert calendar.group(dt.date(2026, 9, 20)) == "workday"  # a Sunday worked
    with pytest.raises(CalendarError) as caught:
        parse_calendar({"holidays": {"someday": "x"}})
    assert "holidays.someday" in str(caught.value)
