"""The office's view of a sign (``to_uplink``) follows the same rules as the sign's face."""

from __future__ import annotations

from pathlib import Path

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


async def test_sign_state_shows_an_orphaned_sign_as_it_looks(tmp_path: Path) -> None:
    """With its watchdog expired a guidance sign reads "--" and a warning sign is dark: the
    sign state's ``shown`` says so, whatever the registers still hold."""
    from edge.config import parse_config
    from edge.runtime import EdgeBox
    from firmware_protocols.signs import Message, WarningDisplay

    config = parse_config(
        {
            "site": "xigang",
            "box_id": "box-p1",
            "data_dir": str(tmp_path),
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "serial": {"conc": {"device": str(tmp_path / "tty"), "protocol": "concentrator"}},
            "lots": {"P1": {"bays": {"B001": {"sensor": "00A10001", "format": "nwave-nps"}}}},
            "sign_buses": {
                "bus1": {
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": 1,
                    "signs": {
                        "G": {"unit": 1, "profile": "parkgrid-guidance", "lot": "P1"},
                        "W": {"unit": 2, "profile": "parkgrid-warning", "message": "no_parking"},
                    },
                }
            },
            "health": {"listen": "127.0.0.1:0"},
        }
    )
    box = EdgeBox(config)
    try:
        bus = box.buses["bus1"]
        shown = {
            "G": GuidanceDisplay(free=3, label="P1"),
            "W": WarningDisplay(message=Message.NO_PARKING),
        }
        for sign_id, display in shown.items():
            box.signs.shown[sign_id] = display
            unit = bus._units[sign_id]
            unit.shown = display
            unit.faults = frozenset({"watchdog_expired"})
        guidance, warning = box.signs.sign_state("G"), box.signs.sign_state("W")
        assert guidance is not None and guidance.shown is not None
        assert warning is not None and warning.shown is not None
        assert guidance.shown.mode is SignMode.DASHES
        assert warning.shown.mode is SignMode.BLANK
        assert warning.faults == ["watchdog_expired"]
    finally:
        box.outbox.close()
