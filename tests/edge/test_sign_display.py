"""The office's view of a sign (``to_uplink``) follows the same rules as the sign's face."""

from __future__ import annotations

from edge.agents.sign_display import to_uplink
from firmware_protocols.signs import (
    Arrow,
    Colour,
    GuidanceDisplay,
    GuidanceMode,
    NumericDisplay,
)
from firmware_protocols.uplink.models import SignArrow, SignMode


def test_office_sees_full_with_the_way_to_the_fallback() -> None:
    """Finding 1: central reads "满 FULL → P4 12", never "FULL -> P4" (P4 is not full)."""
    shown = to_uplink(
        GuidanceDisplay(
            free=12, mode=GuidanceMode.FULL, colour=Colour.GREEN, arrow=Arrow.RIGHT, label="P4"
        )
    )
    assert shown.mode is SignMode.TEXT
    assert shown.text == "满 FULL → P4 12"
    assert shown.arrow is SignArrow.RIGHT
    nowhere = to_uplink(GuidanceDisplay(free=0, mode=GuidanceMode.FULL, colour=Colour.RED))
    assert (nowhere.mode, nowhere.text) == (SignMode.TEXT, "满 FULL")


def test_office_sees_dashes_for_an_unknown_lot() -> None:
    """Finding 3: a lot nobody can vouch for is dashes at central too, not a count of 0."""
    shown = to_uplink(GuidanceDisplay(free=0, mode=GuidanceMode.UNKNOWN, colour=Colour.AMBER))
    assert shown.mode is SignMode.DASHES
    assert to_uplink(NumericDisplay(text="--")).mode is SignMode.DASHES


def test_office_sees_the_own_count_with_space() -> None:
    shown = to_uplink(GuidanceDisplay(free=37, arrow=Arrow.LEFT, label="P1"))
    assert (shown.mode, shown.count, shown.arrow) == (SignMode.COUNT, 37, SignArrow.LEFT)
