"""The town's plan: deterministic, complete, and consistent with the site file."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import tty
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware_protocols.cameras import decode_hikvision, decode_parkgrid
from simulators.cameras import CameraPoster, isapi_multipart, parkgrid_multipart, picture
from simulators.concentrator import ConcentratorSimulator
from simulators.sites import XIGANG
from simulators.town import (
    BayChange,
    BoxNetwork,
    CaptureSeen,
    SensorDies,
    SignReboots,
    TownClock,
    TownTruth,
    day_start,
    plan_town,
    sensor_plan,
)
from simulators.town_driver import NetworkCut, TownDriver
from site_model.site import SiteError, load_site, parse_site

SITE_FILE = XIGANG
SITE = load_site(SITE_FILE)
TZ = ZoneInfo("Asia/Shanghai")
START = day_start(dt.date(2026, 3, 7), dt.time(4, 30), TZ)  # a Saturday


def plan(seed: int = 7, hours: float = 3.0) -> list:
    return plan_town(SITE, seed=seed, start=START, hours=hours)


def test_xigang_site_has_what_the_plan_decided() -> None:
    """4 lots with 600+ bays, 6 stall zones, the capture roads, entries, village grids."""
    bays = sum(len(lot.bay_ids(lot_id)) for lot_id, lot in SITE.lots.items())
    assert len(SITE.lots) == 4 and bays >= 600
    assert len(SITE.zones) == 6 and all(z.trading_hours for z in SITE.zones.values())
    roads = {seg.road for seg in SITE.segments.values()}
    assert {"笃西路", "新港路", "香舍里大街", "级西路"} <= roads
    assert all(any(c.entry == e for c in SITE.cameras.values()) for e in SITE.entries)
    names = " ".join(g.name for g in SITE.grids.values())
    for village in ("西岗", "柴里", "张庄", "田岗", "南荒", "卓楼", "野庄", "高庙", "矿区"):
        assert village in names
    assert all(lot_id in {s.lot for s in SITE.signs.values()} for lot_id in SITE.lots)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        pytest.param({"signs": {"X": {"box_id": "box-p1", "kind": "guidance"}}}, "signs.X.lot",
                     id="guidance-without-lot"),
        pytest.param({"signs": {"X": {"box_id": "nobox", "kind": "warning",
                                      "message": "truck_ban"}}},
                     "signs.X.box_id", id="unknown-box"),
        pytest.param({"cameras": {"X": {"kind": "hikvision", "entry": "nowhere"}}},
                     "cameras.X.entry", id="unknown-entry"),
        pytest.param({"zones": {"S1": {"name": "x", "class": "regulated", "box_id": "box-p1",
                                       "trading_hours": ["5:00-07:00"]}}},
                     "zones.S1.trading_hours.0", id="bad-hours"),
    ],
)  # fmt: skip
def test_site_additions_name_the_bad_field(patch: dict, path: str) -> None:
    """A wrong sign, entry camera or trading window is refused with its dotted path."""
    import tomllib

    data = tomllib.loads(SITE_FILE.read_text())
    for section, items in patch.items():
        data[section] = {**data.get(section, {}), **items}
    with pytest.raises(SiteError) as caught:
        parse_site(data)
    assert any(p.path.startswith(path) for p in caught.value.problems), caught.value.problems


def test_town_plan_same_seed_same_events() -> None:
    """The plan is a pure function of the site and the seed; another seed differs."""
    assert plan(7) == plan(7)
    assert plan(7) != plan(8)


def test_town_plan_holds_every_scene() -> None:
    """Three hours from 04:30 hold the truck, a violation and a near miss, late vendors, faults."""
    events = plan()
    whys = {e.why for e in events if isinstance(e, CaptureSeen | BayChange)}
    assert {"big truck entering at night", "illegal parker", "illegal parker, left in time",
            "car abandoned for days", "vendor late", "overnight"} <= whys  # fmt: skip
    truck = next(e for e in events if isinstance(e, CaptureSeen) and e.vehicle_class == "truck")
    assert truck.plate_colour == "yellow" and SITE.cameras[truck.camera_id].entry is not None
    assert dt.datetime.fromtimestamp(truck.at, TZ).hour < 6
    assert any(isinstance(e, SensorDies) for e in events)
    assert any(isinstance(e, SignReboots) for e in events)
    cuts = [e for e in events if isinstance(e, BoxNetwork)]
    assert [c.up for c in cuts] == [False, True] and cuts[0].box_id == cuts[1].box_id
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))


def test_town_plan_illegal_parker_meets_the_evidence_rule() -> None:
    """A parker who stays is captured K times over T minutes; one who leaves early is not."""
    rule = SITE.rules.no_parking
    by_plate: dict[str, list[CaptureSeen]] = {}
    for e in plan():
        if isinstance(e, CaptureSeen) and e.why.startswith("illegal parker"):
            by_plate.setdefault(e.plate, []).append(e)
    stays = [v for v in by_plate.values() if v[0].why == "illegal parker"]
    misses = [v for v in by_plate.values() if v[0].why != "illegal parker"]
    assert any(
        len(v) >= rule.min_captures
        and v[-1].captured_at - v[0].captured_at >= rule.min_minutes * 60
        for v in stays
    )
    assert all(
        len(v) < rule.min_captures or v[-1].captured_at - v[0].captured_at < rule.min_minutes * 60
        for v in misses
    )


def test_town_plan_abandoned_car_is_seen_on_several_days() -> None:
    """The abandoned car's captures span the rule's number of local days, posted early."""
    shots = [e for e in plan() if isinstance(e, CaptureSeen) and e.why == "car abandoned for days"]
    days = {dt.datetime.fromtimestamp(s.captured_at, TZ).date() for s in shots}
    assert len({s.plate for s in shots}) == 1
    assert len(days) >= SITE.rules.left_for_days.days
    assert all(s.at < START + 10 * 60 for s in shots)


def test_town_plan_late_vendor_stays_past_close_and_grace() -> None:
    """Each zone window closing in the period has a vendor still there after close + grace."""
    events = plan()
    s1 = SITE.zones["S1"]
    close = day_start(dt.date(2026, 3, 7), dt.time(6, 30), TZ)
    leaves = [e for e in events if isinstance(e, BayChange) and e.bay_id.startswith("S1-")
              and not e.occupied]  # fmt: skip
    assert any(e.at > close + s1.grace_min * 60 for e in leaves)


def test_town_plan_drivers_follow_signs_when_full() -> None:
    """With the market lot overrun, drivers go on to the lots its sign points to, in order."""
    events = plan_town(SITE, seed=3, start=START + 2 * 3600, hours=4, demand={"P1": 6.0})
    redirected = [e for e in events if isinstance(e, BayChange) and e.why == "car from full P1"]
    assert redirected and all(e.bay_id[:2] in ("P4", "P2") for e in redirected)
    assert [t.lot for t in SITE.signs["P1-ENTRANCE"].fallback] == ["P4", "P2"]


def test_town_truth_counts_add_up_to_capacity() -> None:
    """For every lot free + occupied + unknown + closed is its capacity; a dead bay is unknown."""
    events = plan()
    truth = TownTruth(site=SITE).apply_all(events)
    for lot_id, figures in truth.lot_figures().items():
        total = figures["free"] + figures["occupied"] + figures["unknown"] + figures["closed"]
        assert total == figures["capacity"] == len(SITE.lots[lot_id].bay_ids(lot_id))
    assert sum(f["unknown"] for f in truth.lot_figures().values()) == 1


def test_sensor_plan_gives_every_bay_one_sensor() -> None:
    """Every lot bay and stall pitch gets its own sensor id, heard by its place's box."""
    plans = sensor_plan(SITE)
    assert len(plans) == len({p.sensor_id for p in plans.values()})
    assert set(plans) == {b for _, b in SITE.lot_bays()} | {b for _, b in SITE.zone_bays()}
    assert plans["S1-01"].box_id == SITE.zones["S1"].box_id


def test_town_clock_maps_both_ways() -> None:
    """Simulated and wall time convert into each other at the given speed."""
    clock = TownClock(sim_start=1000.0, wall_start=50.0, speed=120.0)
    assert clock.sim(60.0) == 1000.0 + 1200.0
    assert clock.wall(clock.sim(77.5)) == pytest.approx(77.5)


def test_cameras_bodies_decode_with_central_codecs() -> None:
    """Every capture the town makes decodes as ISAPI and as parkgrid JSON, with pictures."""
    shots = [e for e in plan() if isinstance(e, CaptureSeen)]
    for shot in shots:
        body, ctype = isapi_multipart(shot, camera_id=shot.camera_id, tz=TZ)
        hik = decode_hikvision(body, ctype)
        assert (hik.plate, hik.plate_color) == (shot.plate, shot.plate_colour)
        assert hik.captured_at.timestamp() == pytest.approx(shot.captured_at, abs=1)
        assert len(hik.pictures) == 2
        body, ctype = parkgrid_multipart(shot, camera_id=shot.camera_id)
        own = decode_parkgrid(body, ctype)
        assert own.camera_ref == shot.camera_id and own.plate == shot.plate
    truck = next(s for s in shots if s.vehicle_class == "truck")
    assert decode_hikvision(*isapi_multipart(truck, camera_id="C", tz=TZ)).ga_plate_type == "01"
    assert picture(shots[0], "plate") != picture(shots[1], "plate")


def test_camera_poster_routes_by_camera_kind() -> None:
    """Hikvision cameras post ISAPI to their endpoint; parkgrid cameras post JSON captures."""
    shots = {SITE.cameras[e.camera_id].kind.value: e for e in plan() if isinstance(e, CaptureSeen)}
    tokens = dict.fromkeys(SITE.cameras, "t")
    poster = CameraPoster(site=SITE, base_url="http://x", tokens=tokens, client=None)  # type: ignore[arg-type]
    path, query, _, headers = poster.request(shots["hikvision"])
    assert path == "/api/v1/cameras/hikvision" and query["camera_id"]
    assert headers["Authorization"] == "Bearer t"
    path, _, _, headers = poster.request(shots["parkgrid"])
    assert path == "/api/v1/captures" and headers["Content-Type"].startswith("multipart/form-data")


async def test_town_driver_plays_frames_on_a_real_pty(tmp_path: Path) -> None:
    """The driver writes each bay change as a frame on the box's pty and kills a sensor."""
    from firmware_protocols.concentrator import ConcentratorDecoder, UplinkFrame

    sensors = {b: p for b, p in sensor_plan(SITE).items() if p.box_id == "box-p2"}
    events = [e for e in plan() if getattr(e, "bay_id", "").startswith("P2-")][:40]
    clock = TownClock(sim_start=START, wall_start=0.0, speed=1e9)
    async with ConcentratorSimulator(
        sensors={p.sensor_id: p.fmt for p in sensors.values()}, link=tmp_path / "tty"
    ) as conc:
        fd = os.open(conc.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        driver = TownDriver(site=SITE, events=events, clock=clock, sensors=sensors,
                            concentrators={"box-p2": conc}, wall=lambda: 1.0)  # fmt: skip
        await driver.run()
        await asyncio.sleep(0.1)
        decoder = ConcentratorDecoder()
        try:
            decoder.feed(os.read(fd, 1 << 20))
        finally:
            os.close(fd)
        frames = [f for f in decoder if isinstance(f, UplinkFrame)]
    changes = [e for e in events if isinstance(e, BayChange)]
    assert len(frames) == driver.stats.bay_changes == len(changes)
    dead = [e for e in events if isinstance(e, SensorDies)]
    assert {sensors[d.bay_id].sensor_id for d in dead} <= conc.core.silent


async def _connect_when_listening(
    port: int,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    for _ in range(200):  # restore() listens again from a task: a moment later
        with contextlib.suppress(ConnectionRefusedError):
            return await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.01)
    raise AssertionError("the relay never listened again")


async def test_network_cut_drops_and_restores_a_tcp_path() -> None:
    """The relay carries bytes, refuses while cut, and carries again once restored. While
    cut it accepts no TCP connection at all, as a dropped 4G link: a box's bare TCP probe of
    the broker fails, so the probe that succeeds once the path is back is news (a relay that
    accepted and hung up kept P3's box waiting out its back-off: stale 6 s after the cut)."""

    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(100):
            w.write(data)
            await w.drain()
        w.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = await NetworkCut(target_host="127.0.0.1", target_port=port).start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", relay.port)
        w.write(b"ping")
        assert await r.readexactly(4) == b"ping"
        relay.cut()
        assert await asyncio.wait_for(r.read(10), 2) == b""
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", relay.port)
        relay.restore()
        r3, w3 = await _connect_when_listening(relay.port)
        w3.write(b"back")
        assert await r3.readexactly(4) == b"back"
        w3.close()
    finally:
        await relay.close()
        server.close()
