"""site_model.availability: the one rule for whether a box, lot, bay or zone can be believed."""

from __future__ import annotations

import pytest

from site_model.availability import (
    Availability,
    AvailabilitySettings,
    LotFigures,
    bay_view,
    box_availability,
    fallback_eligible,
    figures_unknown,
    lot_view,
    sensor_silent,
    zone_view,
)
from site_model.site import SiteError, parse_site

ONLINE, STALE, UNKNOWN = Availability.ONLINE, Availability.STALE, Availability.UNKNOWN
FIVE_MIN = AvailabilitySettings(stale_for_s=300)


@pytest.mark.parametrize(
    ("online", "age_s", "settings", "expected"),
    [
        (True, None, AvailabilitySettings(), ONLINE),
        (None, None, FIVE_MIN, UNKNOWN),  # never heard
        (False, 10.0, AvailabilitySettings(), UNKNOWN),  # default: unknown at once
        (False, 0.0, FIVE_MIN, STALE),
        (False, 299.9, FIVE_MIN, STALE),
        (False, 300.0, FIVE_MIN, UNKNOWN),
        (False, None, FIVE_MIN, UNKNOWN),  # offline, and nobody knows since when
    ],
)
def test_box_availability_table(
    online: bool | None, age_s: float | None, settings: AvailabilitySettings, expected: str
) -> None:
    assert box_availability(online, age_s, settings) is expected


def _figures(
    free: int, occupied: int, unknown: int, closed: int = 0, status: str = ""
) -> LotFigures:
    capacity = free + occupied + unknown + closed
    status = status or ("full" if free == 0 else "spacesAvailable")
    return LotFigures(
        capacity=capacity,
        free=free,
        occupied=occupied,
        unknown=unknown,
        closed=closed,
        status=status,
    )


@pytest.mark.parametrize(
    ("free", "occupied", "unknown", "closed", "expected"),
    [
        (0, 0, 100, 0, True),  # a box that has heard none of its sensors
        (0, 95, 5, 0, False),  # full, 5 % unknown: believed
        (0, 89, 11, 0, True),  # looks full with 11 % unknown: not called full
        (1, 0, 99, 0, False),  # a known free bay is always a (lower-bound) count
        (0, 0, 0, 100, False),  # every bay closed: closed, not unknown
        (0, 0, 50, 50, True),
    ],
)
def test_figures_unknown_table(
    free: int, occupied: int, unknown: int, closed: int, expected: bool
) -> None:
    capacity = free + occupied + unknown + closed
    status = "full" if free == 0 and capacity > closed else "spacesAvailable"
    assert figures_unknown(capacity=capacity, unknown=unknown, closed=closed, status=status) is (
        expected
    )


def test_figures_unknown_follows_the_full_band() -> None:
    """A lot full by its band (2 free, band 3) with 20 % unknown is not called full."""
    assert figures_unknown(capacity=100, unknown=20, closed=0, status="full")
    assert not figures_unknown(capacity=100, unknown=20, closed=0, status="almostFull")


def test_lot_view_online_stale_unknown() -> None:
    figures = _figures(free=12, occupied=88, unknown=0)
    online = lot_view(ONLINE, figures, capacity=100, age_s=None)
    assert (online.availability, online.free, online.status, online.age_s) == (
        ONLINE, 12, "spacesAvailable", None
    )  # fmt: skip
    assert not online.stale
    stale = lot_view(STALE, figures, capacity=100, age_s=42.0)
    assert (stale.availability, stale.free, stale.status, stale.age_s) == (
        STALE, 12, "spacesAvailable", 42.0
    )  # fmt: skip
    assert stale.stale
    gone = lot_view(UNKNOWN, figures, capacity=100, age_s=400.0)
    assert (gone.availability, gone.free, gone.occupied, gone.unknown, gone.status) == (
        UNKNOWN, 0, 88, 12, "unknown"
    )  # fmt: skip
    never = lot_view(ONLINE, None, capacity=100, age_s=None)
    assert (never.availability, never.free, never.unknown, never.status) == (
        UNKNOWN, 0, 100, "unknown"
    )  # fmt: skip


def test_figures_from_before_the_present_connection_are_unknown() -> None:
    figures = _figures(free=12, occupied=88, unknown=0)
    view = lot_view(ONLINE, figures, capacity=100, age_s=None, current=False)
    assert (view.availability, view.free, view.status) == (UNKNOWN, 0, "unknown")
    assert bay_view(ONLINE, "free", current=False) == (UNKNOWN, "unknown")
    assert zone_view(ONLINE, reported=True, current=False) is UNKNOWN


def test_lot_view_every_bay_unknown_is_unknown_not_full() -> None:
    view = lot_view(ONLINE, _figures(free=0, occupied=0, unknown=100), capacity=100, age_s=None)
    assert (view.availability, view.status, view.free, view.unknown) == (UNKNOWN, "unknown", 0, 100)


def test_lot_view_closed_stays_closed() -> None:
    figures = _figures(free=0, occupied=0, unknown=0, closed=20, status="closed")
    assert lot_view(ONLINE, figures, capacity=20, age_s=None).status == "closed"
    assert lot_view(UNKNOWN, figures, capacity=20, age_s=9.0).status == "closed"


@pytest.mark.parametrize(
    ("box", "reported", "expected"),
    [
        (ONLINE, "free", (ONLINE, "free")),
        (STALE, "free", (STALE, "free")),
        (UNKNOWN, "free", (UNKNOWN, "unknown")),  # what was free may be taken
        (UNKNOWN, "occupied", (UNKNOWN, "occupied")),  # a car is no space either way
        (ONLINE, None, (UNKNOWN, "unknown")),
        (ONLINE, "unknown", (ONLINE, "unknown")),  # a silent sensor on a live box
    ],
)
def test_bay_view_table(box: Availability, reported: str | None, expected: tuple[str, str]) -> None:
    assert bay_view(box, reported) == expected


def test_sensor_silent_at_its_timeout() -> None:
    assert not sensor_silent(44.9, 45.0)
    assert sensor_silent(45.0, 45.0)


def test_zone_view_and_fallbacks() -> None:
    assert zone_view(ONLINE, reported=True) is ONLINE
    assert zone_view(ONLINE, reported=False) is UNKNOWN
    assert zone_view(STALE, reported=True) is STALE
    space = _figures(free=12, occupied=88, unknown=0)
    assert fallback_eligible(ONLINE, space)
    assert not fallback_eligible(STALE, space)  # a sign cannot show an age
    assert not fallback_eligible(UNKNOWN, space)
    assert not fallback_eligible(ONLINE, _figures(free=0, occupied=100, unknown=0))
    assert not fallback_eligible(ONLINE, _figures(free=2, occupied=98, unknown=0, status="full"))


def test_site_file_availability_section() -> None:
    base = {"site": {"id": "x", "name": "X"}}
    assert parse_site(base).availability.stale_for_s == 0
    assert (
        parse_site({**base, "availability": {"stale_for_s": 120}}).availability.stale_for_s == 120
    )
    with pytest.raises(SiteError) as refused:
        parse_site({**base, "availability": {"stale_for_s": -1, "stale_for": 5}})
    paths = {p.path for p in refused.value.problems}
    assert {"availability.stale_for_s", "availability.stale_for"} <= paths
