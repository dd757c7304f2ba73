"""The drivers' board, pure: lot states, opening hours across midnight, zones' next change."""

from __future__ import annotations

import datetime as dt

import pytest

from central.lots.models import LotOut
from central.public.board import CLOSED, FULL, NO_DATA, TIGHT, in_window, lot_state, next_change

TZ = dt.timezone(dt.timedelta(hours=8))


def at(hhmm: str) -> dt.datetime:
    h, m = hhmm.split(":")
    return dt.datetime(2026, 6, 3, int(h), int(m), tzinfo=TZ)


@pytest.mark.parametrize(
    ("hours", "now", "inside"),
    [
        ("05:00-22:00", "04:59", False),
        ("05:00-22:00", "05:00", True),
        ("05:00-22:00", "22:00", False),
        ("18:00-01:00", "23:30", True),
        ("18:00-01:00", "00:59", True),
        ("18:00-01:00", "01:00", False),
        ("00:00-24:00", "13:00", True),
    ],
)
def test_in_window(hours: str, now: str, inside: bool) -> None:
    assert in_window(hours, at(now)) is inside


def test_next_change_of_a_zone() -> None:
    assert next_change(["05:00-06:30"], at("05:10")) == (True, "06:30")
    assert next_change(["05:00-06:30"], at("07:00")) == (False, "05:00")  # tomorrow morning
    assert next_change(["05:00-06:30", "18:00-22:30"], at("07:00")) == (False, "18:00")
    assert next_change(["18:00-01:00"], at("23:00")) == (True, "01:00")
    assert next_change([], at("12:00")) == (False, None)


def _lot(status: str, *, stale: bool = False) -> LotOut:
    return LotOut(
        id="P1", name="P1", capacity=10, free=2, occupied=8, unknown=0, closed=0,
        status=status, trend="steady", stale=stale, last_known_free=2, updated=None,
        location=None, address=None, availability="stale" if stale else "online",
        age_s=12.0 if stale else None,
    )  # fmt: skip


def test_lot_state() -> None:
    assert lot_state(_lot("almostFull"), open_now=True) == TIGHT
    assert lot_state(_lot("full"), open_now=True) == FULL
    assert lot_state(_lot("spacesAvailable"), open_now=False) == CLOSED
    assert lot_state(_lot("spacesAvailable", stale=True), open_now=True) == NO_DATA
    assert lot_state(_lot("unknown"), open_now=True) == NO_DATA


def test_both_languages_have_every_word() -> None:
    from central.public.router import strings

    zh, en = strings("zh"), strings("en")
    assert set(zh) == set(en)
    assert all(zh[key].strip() and en[key].strip() for key in zh)
