"""Drivers who read the signs, judged by outcome, and the town's truth timeline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from firmware_protocols.signs import (
    PARKGRID_GUIDANCE,
    Arrow,
    GuidanceDisplay,
    GuidanceMode,
    NumericDisplay,
    encode_display,
    merge_writes,
    watchdog_write,
)
from simulators.signs import SignSimulator
from simulators.town import (
    Arrival,
    BayChange,
    TownClock,
    day_start,
    plan_town,
)
from simulators.town_driver import TownDriver
from simulators.town_outcomes import SignFace, SignFollowers, read_face
from site_model.site import load_site

SITE = load_site(Path(__file__).resolve().parents[2] / "sites" / "xigang.toml")
START = day_start(dt.date(2026, 3, 7), dt.time(4, 30), __import__("zoneinfo").ZoneInfo(
    "Asia/Shanghai"))  # fmt: skip


def followers(faces: dict[str, SignFace], free: dict[str, list[str]]) -> SignFollowers:
    return SignFollowers(
        site=SITE,
        read_sign=lambda sign_id: faces.get(sign_id[:2]),
        free_bays=lambda lot: free.get(lot, []),
        seed=1,
    )


def test_read_face_tells_count_full_with_a_way_and_unknown() -> None:
    full_to = GuidanceDisplay(free=12, mode=GuidanceMode.FULL, arrow=Arrow.RIGHT, label="P4")
    assert read_face("满 FULL → P4 12 green", full_to) == SignFace(
        "满 FULL → P4 12 green", "full_to", count=12, to_lot="P4"
    )
    assert read_face("P1 3 ← amber", GuidanceDisplay(free=3, label="P1")).kind == "count"
    assert read_face("--", GuidanceDisplay(free=3, label="P1")).kind == "unknown"
    assert read_face("", None).kind == "unknown"
    assert read_face("FULL >P4 12", NumericDisplay(text="FULL >P4 12")).to_lot == "P4"


def test_sign_followers_outcomes() -> None:
    """A count at a full lot and a way to a full lot mislead; a full sign with space turns
    drivers away; drivers who know the town look for themselves."""
    count = SignFace("P1 3", "count", count=3)
    to_p4 = SignFace("满 FULL → P4 12", "full_to", count=12, to_lot="P4")
    space = {"P1": ["P1-001"], "P4": ["P4-001"]}
    _, d = followers({"P1": count}, space).arrive("P1", knows_town=False)
    assert (d.parked, d.bay_id, d.misled) == ("P1", "P1-001", None)
    _, d = followers({"P1": count}, {"P4": ["P4-001"]}).arrive("P1", knows_town=False)
    assert d.parked is None and d.misled and "showed 3 free" in d.misled
    _, d = followers({"P1": to_p4}, {"P1": []}).arrive("P1", knows_town=False)
    assert (d.parked, d.misled) == (None, "P1's sign sent them to P4, which was full")
    _, d = followers({"P1": to_p4}, space).arrive("P1", knows_town=False)
    assert (d.parked, d.turned_away_with_space) == ("P4", True)
    _, d = followers({"P1": SignFace("满 FULL", "full")}, space).arrive("P1", knows_town=False)
    assert (d.parked, d.turned_away_with_space) == (None, True)
    _, d = followers({"P1": to_p4}, {"P2": ["P2-009"]}).arrive("P1", knows_town=True)
    assert (d.parked, d.misled) == ("P2", None)  # P1 then its fallbacks P4, P2


def test_plan_with_sign_following_drivers_has_arrivals_not_bays() -> None:
    events = plan_town(SITE, seed=3, start=START + 2 * 3600, hours=2, drivers="signs")
    arrivals = [e for e in events if isinstance(e, Arrival)]
    assert arrivals and all(a.dwell_s > 0 for a in arrivals)
    assert 0 < sum(a.knows_town for a in arrivals) < len(arrivals)
    assert not [e for e in events if isinstance(e, BayChange) and e.why.startswith("car")]


async def test_town_driver_drivers_read_the_live_sign_and_the_timeline_says_so(
    tmp_path: Path,
) -> None:
    """P1's real (simulated) sign says full, go right to P4: drivers who follow it park in
    P4; the truth timeline holds each driver, each bay change with its lot's truth."""
    async with SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as sign:
        assert sign.port is not None
        client = AsyncModbusTcpClient("127.0.0.1", port=sign.port, timeout=1, retries=0)
        assert await client.connect()
        shown = GuidanceDisplay(free=12, mode=GuidanceMode.FULL, arrow=Arrow.RIGHT, label="P4")
        writes = merge_writes(
            [*encode_display(PARKGRID_GUIDANCE, shown), watchdog_write(PARKGRID_GUIDANCE, 1)]
        )
        for address, values in writes:
            assert not (await client.write_registers(address, list(values), device_id=1)).isError()
        client.close()
        events = [
            Arrival(at=START + n, lot_id="P1", dwell_s=600, knows_town=False, driver_id=n)
            for n in range(1, 6)
        ]
        timeline = tmp_path / "truth.jsonl"
        driver = TownDriver(
            site=SITE, events=events, sensors={}, concentrators={},
            clock=TownClock(sim_start=START, wall_start=0.0, speed=1e9),
            signs={"P1-ENTRANCE": (sign, 1)}, timeline=timeline, wall=lambda: 1.0, seed=7,
        )  # fmt: skip
        await driver.run()
    tally = driver.followers.tally
    assert (tally.arrived, tally.parked_elsewhere, tally.turned_away_with_space) == (5, 5, 5)
    lines = [json.loads(line) for line in timeline.read_text().splitlines()]
    drivers = [r for r in lines if r["kind"] == "driver"]
    assert [d["parked"] for d in drivers] == ["P4"] * 5
    assert drivers[0]["read"] == "满 FULL → P4 12 green"
    bays = [r for r in lines if r["kind"] == "bay"]
    assert len(bays) == 10  # five arrivals and, played before the end, five departures
    assert bays[0]["lot"] == "P4" and bays[0]["truth"]["free"] == 129
    assert all({"wall", "town"} <= r.keys() for r in lines)
