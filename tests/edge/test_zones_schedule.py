"""Schedule maths: windows on the time line, phases, midnight, overrides, DST, the ladder."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.schedule import (
    DailyWindow,
    LadderStep,
    WeeklyWindow,
    ZoneRules,
    intervals_between,
    next_step_at,
    phase_at,
    step_due,
    weekday_numbers,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = weekday_numbers(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def at(tz: ZoneInfo, text: str) -> float:
    """Epoch seconds of a local 'YYYY-MM-DD HH:MM[:SS]' in ``tz``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def rules(
    *windows: tuple[str, str, frozenset[int]],
    tz: ZoneInfo = SHANGHAI,
    zone_class: str = "regulated",
    overrides: dict[dt.date, tuple[DailyWindow, ...]] | None = None,
    grace_s: float = 600,
    closing_soon_s: float = 900,
) -> ZoneRules:
    return ZoneRules(
        zone_id="M1",
        zone_class=zone_class,  # type: ignore[arg-type]
        tz=tz,
        weekly=tuple(
            WeeklyWindow(days=days, start=dt.time.fromisoformat(s), end=dt.time.fromisoformat(e))
            for s, e, days in windows
        ),
        overrides=overrides or {},
        grace_s=grace_s,
        closing_soon_s=closing_soon_s,
        ladder=(
            LadderStep(after_s=0, severity="warning"),
            LadderStep(after_s=900, severity="escalated"),
        ),
    )


MORNING = rules(("06:00", "09:30", weekday_numbers(["mon", "tue", "wed", "thu", "fri"])))


def test_schedule_morning_market_walks_through_every_phase() -> None:
    """Open, closing soon in the last 15 minutes, closing for the grace, then closed."""
    expected = [
        ("2025-03-03 05:59", "closed", "2025-03-03 06:00"),
        ("2025-03-03 06:00", "open", "2025-03-03 09:15"),
        ("2025-03-03 09:15", "closing_soon", "2025-03-03 09:30"),
        ("2025-03-03 09:30", "closing", "2025-03-03 09:40"),
        ("2025-03-03 09:40", "closed", "2025-03-04 06:00"),
    ]
    for now, name, change in expected:
        phase = phase_at(MORNING, at(SHANGHAI, now))
        assert (phase.name, phase.next_change) == (name, at(SHANGHAI, change)), now


def test_schedule_window_and_closed_since_are_reported() -> None:
    """In grace the phase names the window that ended and when the zone closed."""
    phase = phase_at(MORNING, at(SHANGHAI, "2025-03-03 09:35"))
    assert phase.window is not None
    assert (phase.window.start, phase.window.end) == (
        at(SHANGHAI, "2025-03-03 06:00"),
        at(SHANGHAI, "2025-03-03 09:30"),
    )
    assert phase.closed_since == at(SHANGHAI, "2025-03-03 09:30")
    assert phase.state_ends == at(SHANGHAI, "2025-03-03 09:40")


def test_schedule_friday_close_reopens_monday() -> None:
    """After Friday's window the next change is Monday morning, over the weekend."""
    phase = phase_at(MORNING, at(SHANGHAI, "2025-03-07 12:00"))
    assert phase.name == "closed"
    assert phase.next_change == at(SHANGHAI, "2025-03-10 06:00")


def test_schedule_window_crossing_midnight_is_one_window() -> None:
    """A night market 22:00-02:00 on Saturdays is open at 01:00 on Sunday."""
    night = rules(("22:00", "02:00", weekday_numbers(["sat"])), grace_s=0, closing_soon_s=0)
    sunday_1am = phase_at(night, at(SHANGHAI, "2025-03-09 01:00"))
    assert sunday_1am.name == "open"
    assert sunday_1am.next_change == at(SHANGHAI, "2025-03-09 02:00")
    assert phase_at(night, at(SHANGHAI, "2025-03-09 02:00")).name == "closed"
    # Sunday 22:00 is not a window start: the window belongs to the day it starts on.
    assert phase_at(night, at(SHANGHAI, "2025-03-09 22:30")).name == "closed"


def test_schedule_equal_start_and_end_is_a_whole_day() -> None:
    """start == end means 24 hours, crossing midnight."""
    day = rules(("08:00", "08:00", weekday_numbers(["mon"])), grace_s=0, closing_soon_s=0)
    assert phase_at(day, at(SHANGHAI, "2025-03-04 07:59")).name == "open"
    assert phase_at(day, at(SHANGHAI, "2025-03-04 08:00")).name == "closed"


def test_schedule_back_to_back_windows_merge() -> None:
    """Two windows touching are one: no closing soon or grace between them."""
    split = rules(("06:00", "09:00", ALL_DAYS), ("09:00", "12:00", ALL_DAYS))
    phase = phase_at(split, at(SHANGHAI, "2025-03-03 08:50"))
    assert phase.name == "open"
    assert phase.next_change == at(SHANGHAI, "2025-03-03 11:45")


def test_schedule_override_market_day_adds_hours() -> None:
    """A market day replaces the weekday's windows with its own."""
    market = dt.date(2025, 3, 8)  # a Saturday: no weekly window
    with_market = rules(
        ("06:00", "09:30", weekday_numbers(["mon", "tue", "wed", "thu", "fri"])),
        overrides={market: (DailyWindow(dt.time(5), dt.time(13)),)},
    )
    assert phase_at(with_market, at(SHANGHAI, "2025-03-08 12:00")).name == "open"
    assert phase_at(with_market, at(SHANGHAI, "2025-03-15 12:00")).name == "closed"


def test_schedule_override_holiday_closes_the_day() -> None:
    """An override with no windows keeps the zone closed all day."""
    holiday = dt.date(2025, 3, 4)
    closed = rules(
        ("06:00", "09:30", weekday_numbers(["mon", "tue", "wed", "thu", "fri"])),
        overrides={holiday: ()},
    )
    phase = phase_at(closed, at(SHANGHAI, "2025-03-04 07:00"))
    assert phase.name == "closed"
    assert phase.next_change == at(SHANGHAI, "2025-03-05 06:00")


def test_schedule_long_closure_still_finds_the_reopening() -> None:
    """A month closed by overrides: the next change is still found, a month ahead."""
    start = dt.date(2025, 3, 3)
    month = {start + dt.timedelta(days=i): () for i in range(31)}
    closure = rules(("06:00", "09:30", ALL_DAYS), overrides=month)  # type: ignore[arg-type]
    phase = phase_at(closure, at(SHANGHAI, "2025-03-03 07:00"))
    assert phase.name == "closed"
    assert phase.next_change == at(SHANGHAI, "2025-04-03 06:00")


def test_schedule_prohibited_is_always_closed() -> None:
    """A prohibited zone never opens and never changes."""
    never = rules(zone_class="prohibited")
    phase = phase_at(never, at(SHANGHAI, "2025-03-03 07:00"))
    assert (phase.name, phase.next_change, phase.window) == ("always_closed", None, None)


def test_schedule_berlin_windows_follow_local_time_across_dst() -> None:
    """06:00 local is 05:00 UTC before the spring change and 04:00 UTC after it."""
    daily = rules(("06:00", "09:30", ALL_DAYS), tz=BERLIN)
    before = intervals_between(daily, dt.date(2025, 3, 29), dt.date(2025, 3, 29))
    after = intervals_between(daily, dt.date(2025, 3, 31), dt.date(2025, 3, 31))
    utc = dt.UTC
    assert dt.datetime.fromtimestamp(before[0].start, utc).hour == 5
    assert dt.datetime.fromtimestamp(after[0].start, utc).hour == 4
    assert before[0].end - before[0].start == after[0].end - after[0].start == 3.5 * 3600


def test_schedule_berlin_night_window_is_shorter_on_spring_night() -> None:
    """22:00-06:00 over the spring change lasts 7 hours, over the autumn change 9."""
    night = rules(("22:00", "06:00", ALL_DAYS), tz=BERLIN)
    spring = intervals_between(night, dt.date(2025, 3, 29), dt.date(2025, 3, 29))
    autumn = intervals_between(night, dt.date(2025, 10, 25), dt.date(2025, 10, 25))
    assert spring[0].end - spring[0].start == 7 * 3600
    assert autumn[0].end - autumn[0].start == 9 * 3600


def test_schedule_berlin_skipped_and_repeated_times() -> None:
    """02:30 that never happens starts at 03:30 CEST; 02:30 that happens twice, the first."""
    early = rules(("02:30", "05:00", ALL_DAYS), tz=BERLIN, grace_s=0, closing_soon_s=0)
    spring = intervals_between(early, dt.date(2025, 3, 30), dt.date(2025, 3, 30))
    assert spring[0].start == dt.datetime(2025, 3, 30, 1, 30, tzinfo=dt.UTC).timestamp()
    autumn = intervals_between(early, dt.date(2025, 10, 26), dt.date(2025, 10, 26))
    assert autumn[0].start == dt.datetime(2025, 10, 26, 0, 30, tzinfo=dt.UTC).timestamp()
    assert phase_at(early, at(BERLIN, "2025-03-30 03:15")).name == "closed"
    assert phase_at(early, at(BERLIN, "2025-03-30 03:45")).name == "open"


def test_schedule_open_around_the_clock_has_no_end() -> None:
    """A zone open every day all day reports no next change (nothing to sleep until)."""
    always = rules(("00:00", "00:00", ALL_DAYS))
    phase = phase_at(always, at(SHANGHAI, "2025-03-03 12:00"))
    assert (phase.name, phase.next_change, phase.state_ends) == ("open", None, None)


def test_schedule_ladder_steps_fall_due_after_grace() -> None:
    """Step 0 at since + grace, step 1 a further 900 s later; none before the grace ends."""
    since = 1_000.0
    assert step_due(MORNING, since, since + 599) == -1
    assert step_due(MORNING, since, since + 600) == 0
    assert step_due(MORNING, since, since + 1_499) == 0
    assert step_due(MORNING, since, since + 1_500) == 1
    assert next_step_at(MORNING, since, -1) == since + 600
    assert next_step_at(MORNING, since, 0) == since + 1_500
    assert next_step_at(MORNING, since, 1) is None


windows = st.tuples(
    st.times().map(lambda t: t.replace(microsecond=0, second=0)),
    st.times().map(lambda t: t.replace(microsecond=0, second=0)),
    st.frozensets(st.integers(0, 6), min_size=1),
)


@settings(max_examples=150, deadline=None)
@given(
    weekly=st.lists(windows, min_size=1, max_size=3),
    grace=st.integers(0, 7200),
    lead=st.integers(0, 3600),
    now=st.integers(
        int(dt.datetime(2025, 3, 20, tzinfo=dt.UTC).timestamp()),
        int(dt.datetime(2025, 4, 10, tzinfo=dt.UTC).timestamp()),
    ),
)
def test_schedule_phase_holds_until_next_change(
    weekly: list[tuple[dt.time, dt.time, frozenset[int]]], grace: int, lead: int, now: int
) -> None:
    """Across a DST change: the phase holds up to its next change and differs at it."""
    zone = ZoneRules(
        zone_id="Z",
        zone_class="controlled",
        tz=BERLIN,
        weekly=tuple(WeeklyWindow(days=d, start=s, end=e) for s, e, d in weekly),
        grace_s=grace,
        closing_soon_s=lead,
    )
    phase = phase_at(zone, now)
    if phase.next_change is None:  # open around the clock: nothing ever changes
        assert phase.name == "open" and phase_at(zone, now + 30 * 86_400).name == "open"
        return
    assert phase.next_change > now
    assert phase_at(zone, phase.next_change - 0.5).name == phase.name
    assert phase_at(zone, (now + phase.next_change) / 2).name == phase.name
    assert phase_at(zone, phase.next_change).name != phase.name
