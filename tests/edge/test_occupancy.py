"""Occupancy: bays follow sensors, silence makes them unknown, lots follow DATEX II."""

from __future__ import annotations

import pytest

from edge.agents.guidance import RemoteLot, guidance_display, numeric_display
from edge.agents.occupancy import Occupancy
from edge.config import EdgeConfig, parse_config
from edge.observations import SensorObservation
from firmware_protocols.sensors import decode
from firmware_protocols.signs import Arrow, Colour, GuidanceMode, guidance_text
from site_model.availability import Availability, LotFigures

T0 = 1_700_000_000.0


def _remote(lot_id: str, free: int, status: str, *, online: bool, capacity: int = 100) -> RemoteLot:
    """Another box's lot (every bay known), its box online or offline."""
    figures = LotFigures(
        capacity=capacity, free=free, occupied=capacity - free, unknown=0, closed=0, status=status
    )
    box = Availability.ONLINE if online else Availability.UNKNOWN
    return RemoteLot(lot_id=lot_id, figures=figures, box=box)


def make_config(bays: int = 10, **sensors: object) -> EdgeConfig:
    data: dict[str, object] = {
        "site": "xigang",
        "box_id": "box-p1",
        "serial": {"c": {"device": "/dev/x", "protocol": "concentrator"}},
        "lots": {
            "P1": {
                "bays": {
                    f"B{i:03d}": {"sensor": f"{i:08X}", "format": "nwave-nps"}
                    for i in range(1, bays + 1)
                }
            }
        },
        "sensors": {"heartbeat_timeout_s": 600, **sensors},
    }
    return parse_config(data)


def obs(sensor: int, occupied: bool, at: float) -> SensorObservation:
    reading = decode("nwave-nps", bytes([0x01 if occupied else 0x00]), port=1)
    return SensorObservation(line="c", sensor_id=f"{sensor:08X}", reading=reading, received_at=at)


def heartbeat(sensor: int, at: float) -> SensorObservation:
    reading = decode("nwave-nps", bytes([0x01, 0x80, 0x14]), port=2)
    return SensorObservation(line="c", sensor_id=f"{sensor:08X}", reading=reading, received_at=at)


def test_occupancy_bays_start_unknown_and_never_count_free() -> None:
    """Before any sensor speaks, every bay is unknown and the lot shows no free space."""
    occ = Occupancy(make_config(), now=T0)
    snap = occ.lot_snapshot("P1", T0)
    assert (snap.capacity, snap.free, snap.unknown) == (10, 0, 10)
    assert snap.status == "full"


def test_occupancy_car_arrives_and_leaves() -> None:
    """A status frame moves the bay, with the change dated by the reading."""
    occ = Occupancy(make_config(), now=T0)
    changes, _ = occ.observe(obs(1, False, T0 + 1))
    assert [(c.previous, c.current) for c in changes] == [("unknown", "free")]
    changes, _ = occ.observe(obs(1, True, T0 + 5))
    assert [(c.bay_id, c.current, c.at) for c in changes] == [("B001", "occupied", T0 + 5)]
    changes, _ = occ.observe(obs(1, True, T0 + 6))
    assert changes == []


def test_occupancy_silent_sensor_becomes_unknown_then_recovers() -> None:
    """No frame within the heartbeat timeout: unknown; a heartbeat brings it back."""
    occ = Occupancy(make_config(), now=T0)
    occ.observe(obs(1, False, T0))
    assert occ.next_deadline() == T0 + 600
    changes, notices = occ.tick(T0 + 599)
    assert changes == [] and notices == []
    changes, notices = occ.tick(T0 + 600)
    assert [(c.current, c.reason) for c in changes] == [("unknown", "heartbeat_timeout")]
    assert [n.kind for n in notices] == ["silent"]
    changes, notices = occ.observe(heartbeat(1, T0 + 700))
    assert [c.current for c in changes] == ["occupied"]
    assert [n.kind for n in notices] == ["recovered"]


def test_occupancy_unknown_sensor_reported_once() -> None:
    """A sensor not in the config is counted every time and reported once."""
    occ = Occupancy(make_config(), now=T0)
    _, first = occ.observe(obs(0xDEAD, True, T0))
    _, second = occ.observe(obs(0xDEAD, False, T0 + 1))
    assert [n.kind for n in first] == ["unknown_sensor"] and second == []
    assert occ.unknown_sensors["0000DEAD"] == 2


def test_occupancy_flap_filter_holds_short_changes() -> None:
    """With a minimum dwell, a blip shorter than it changes nothing; a lasting one is dated back."""
    occ = Occupancy(make_config(min_dwell_s=30), now=T0)
    occ.observe(obs(1, False, T0))
    assert occ.observe(obs(1, True, T0 + 10))[0] == []
    assert occ.observe(obs(1, False, T0 + 20))[0] == []
    assert occ.tick(T0 + 60)[0] == []
    occ.observe(obs(1, True, T0 + 100))
    changes, _ = occ.tick(T0 + 131)
    assert [(c.current, c.at) for c in changes] == [("occupied", T0 + 100)]


def test_occupancy_closed_bay_keeps_following_sensor() -> None:
    """A closed bay counts as closed; reopening returns it to what its sensor says."""
    occ = Occupancy(make_config(), now=T0)
    occ.observe(obs(1, False, T0))
    assert [c.current for c in occ.close_bay("B001", T0 + 1)] == ["closed"]
    assert occ.observe(obs(1, True, T0 + 2))[0] == []
    assert occ.lot_snapshot("P1", T0 + 2).closed == 1
    assert [c.current for c in occ.open_bay("B001", T0 + 3)] == ["occupied"]


def test_occupancy_implausible_temperature_flagged() -> None:
    """The Dingtek vendor example's -117 °C decodes, and the edge flags it."""
    occ = Occupancy(make_config(), now=T0)
    reading = decode("nwave-nps", bytes([0x00, 0x80, 0x14]), port=2)
    cold = SensorObservation(
        line="c",
        sensor_id="00000001",
        reading=type(reading)(**{**_fields(reading), "temperature_c": -117.0}),
        received_at=T0,
    )
    _, notices = occ.observe(cold)
    assert "temperature_c" in occ.bays["B001"].health.implausible
    assert any(n.kind == "implausible" for n in notices)


def _fields(reading: object) -> dict[str, object]:
    return {name: getattr(reading, name) for name in reading.__slots__}  # type: ignore[attr-defined]


def fill(occ: Occupancy, occupied: int, total: int, at: float) -> None:
    for i in range(1, total + 1):
        occ.observe(obs(i, i <= occupied, at))


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        pytest.param([5, 9], "almostFull", id="up-to-90pct"),
        pytest.param([9, 8], "spacesAvailable", id="below-almost-full-decreasing-85pct"),
        pytest.param([10, 9, 10], "full", id="full-again"),
        pytest.param([10], "full", id="no-free-space"),
        pytest.param([10, 9], "almostFull", id="full-to-almost-at-one-free-bay"),
        pytest.param([0], "spacesAvailable", id="empty"),
    ],
)
def test_occupancy_lot_status_hysteresis(sequence: list[int], expected: str) -> None:
    """Almost full follows its thresholds (90/85); full means no free bay (full_band 0)."""
    occ = Occupancy(make_config(), now=T0)
    for step, occupied in enumerate(sequence):
        fill(occ, occupied, 10, T0 + step)
        snap = occ.lot_snapshot("P1", T0 + step)
    assert snap.status == expected


def test_occupancy_hysteresis_with_thresholds_80_70() -> None:
    """At 75 % a lot that was almost full stays so; one that was not does not become so."""
    data = make_config(bays=20).model_dump()
    data["lots"]["P1"]["thresholds"] = {"almost_full_increasing": 80, "almost_full_decreasing": 70}
    config = parse_config(data)
    rising = Occupancy(config, now=T0)
    fill(rising, 15, 20, T0)
    assert rising.lot_snapshot("P1", T0).status == "spacesAvailable"
    falling = Occupancy(config, now=T0)
    fill(falling, 16, 20, T0)
    assert falling.lot_snapshot("P1", T0).status == "almostFull"
    fill(falling, 15, 20, T0 + 1)
    assert falling.lot_snapshot("P1", T0 + 1).status == "almostFull"
    fill(falling, 13, 20, T0 + 2)
    assert falling.lot_snapshot("P1", T0 + 2).status == "spacesAvailable"


def test_occupancy_trend() -> None:
    """Cars arriving over the window is filling; leaving is emptying."""
    occ = Occupancy(make_config(), now=T0)
    fill(occ, 0, 10, T0)
    assert occ.lot_snapshot("P1", T0 + 1).trend == "steady"
    fill(occ, 5, 10, T0 + 300)
    assert occ.lot_snapshot("P1", T0 + 301).trend == "filling"
    fill(occ, 1, 10, T0 + 2000)
    assert occ.lot_snapshot("P1", T0 + 2001).trend == "emptying"
    assert occ.lot_snapshot("P1", T0 + 5000).trend == "steady"


def guidance_config(bays: int = 10) -> EdgeConfig:
    data = make_config(bays).model_dump()
    data["sign_buses"] = {
        "bus": {
            "transport": "tcp",
            "host": "127.0.0.1",
            "signs": {
                "S1": {
                    "unit": 1,
                    "profile": "parkgrid-guidance",
                    "lot": "P1",
                    "arrow": "left",
                    "fallback": [{"lot": "P2", "arrow": "right"}, {"lot": "P3"}],
                }
            },
        }
    }
    return parse_config(data)


def test_guidance_projection_follows_status() -> None:
    """Green with the count while there is space, amber almost full, full points elsewhere."""
    config = guidance_config()
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    fill(occ, 3, 10, T0)
    shown = guidance_display(sign, occ.lot_snapshot("P1", T0), {}, network_up=True)
    assert (shown.free, shown.colour, shown.arrow) == (7, Colour.GREEN, Arrow.LEFT)
    fill(occ, 9, 10, T0 + 1)
    shown = guidance_display(sign, occ.lot_snapshot("P1", T0 + 1), {}, network_up=True)
    assert (shown.free, shown.colour) == (1, Colour.AMBER)
    fill(occ, 10, 10, T0 + 2)
    full = occ.lot_snapshot("P1", T0 + 2)
    remote = {
        "P2": _remote("P2", 0, "full", online=True),
        "P3": _remote("P3", 37, "spacesAvailable", online=True),
    }
    shown = guidance_display(sign, full, remote, network_up=True)
    assert (shown.mode, shown.label, shown.free, shown.arrow) == (
        GuidanceMode.FULL,
        "P3",
        37,
        Arrow.AHEAD,
    )
    assert guidance_text(shown) == "满 FULL ↑ P3 37"
    # Offline, or the fallback's box down: full, nowhere to send drivers, no label at all.
    offline = guidance_display(sign, full, remote, network_up=False)
    assert (offline.mode, offline.label, offline.free) == (GuidanceMode.FULL, "", 0)
    assert guidance_text(offline) == "满 FULL"
    p3_box_down = {
        **remote,
        "P3": _remote("P3", 37, "spacesAvailable", online=False),
    }
    assert guidance_display(sign, full, p3_box_down, network_up=True).label == ""
    assert numeric_display(sign, full, remote, network_up=True).text == "FULL ^P3 37"
    assert numeric_display(sign, full, p3_box_down, network_up=True).text == "FULL"


def test_guidance_arrows_come_from_the_fallback_targets() -> None:
    """Finding 2: each fallback carries its own direction; nothing defaults every arrow to up."""
    config = guidance_config()
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    fill(occ, 10, 10, T0)
    full = occ.lot_snapshot("P1", T0)
    p2_has_space = {"P2": _remote("P2", 4, "almostFull", online=True)}
    shown = guidance_display(sign, full, p2_has_space, network_up=True)
    assert (shown.label, shown.arrow) == ("P2", Arrow.RIGHT)
    assert guidance_text(shown) == "满 FULL → P2 4"


def test_guidance_unknown_at_start_up_is_dashes_not_full() -> None:
    """Finding 3: with every bay unknown (a box just started) the sign shows --, not FULL."""
    config = guidance_config()
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    start = occ.lot_snapshot("P1", T0)
    assert start.unknown == start.capacity
    remote = {"P2": _remote("P2", 4, "almostFull", online=True)}
    shown = guidance_display(sign, start, remote, network_up=True)
    assert shown.mode is GuidanceMode.UNKNOWN
    assert guidance_text(shown) == "--"
    assert numeric_display(sign, start, remote, network_up=True).text == "--"
    # One sensor speaks (occupied): nine bays are still unknown, so "no free bay" is no news
    # that the lot is full (a restarted box measured on the bench showed FULL with 23 bays
    # free this way): still --, never sending drivers away.
    occ.observe(obs(1, True, T0 + 1))
    one_known = occ.lot_snapshot("P1", T0 + 1)
    assert guidance_display(sign, one_known, remote, network_up=True).mode is GuidanceMode.UNKNOWN
    assert numeric_display(sign, one_known, remote, network_up=True).text == "--"
    # A known free bay is a true count, a lower bound: shown, whatever is unknown.
    occ.observe(obs(2, False, T0 + 2))
    shown = guidance_display(sign, occ.lot_snapshot("P1", T0 + 2), remote, network_up=True)
    assert (shown.mode, shown.free) == (GuidanceMode.NORMAL, 1)


def test_guidance_full_with_a_dead_sensor_or_two_is_full() -> None:
    """A lot with no free bay and at most 10 % of its bays unknown (a dead sensor) is full."""
    config = guidance_config()
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    for i in range(1, 10):
        occ.observe(obs(i, True, T0))  # bay 10's sensor never speaks: 1 unknown in 10
    snap = occ.lot_snapshot("P1", T0)
    assert (snap.free, snap.unknown) == (0, 1)
    assert guidance_display(sign, snap, {}, network_up=True).mode is GuidanceMode.FULL


def test_full_band_default_shows_the_last_free_bays() -> None:
    """Finding 4: by default a lot is full only with no free bay; one freed bay shows 1
    (40 bays: one free is 97.5 % occupied, inside the old 97 % band that kept FULL)."""
    config = guidance_config(bays=40)
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    fill(occ, 40, 40, T0)
    assert occ.lot_snapshot("P1", T0).status == "full"
    fill(occ, 39, 40, T0 + 1)
    snap = occ.lot_snapshot("P1", T0 + 1)
    assert snap.status != "full"
    shown = guidance_display(sign, snap, {}, network_up=True)
    assert (shown.mode, shown.free) == (GuidanceMode.NORMAL, 1)


def test_full_band_is_a_per_lot_setting() -> None:
    """A lot with full_band = 2 counts as full while 2 or fewer bays are free."""
    data = guidance_config().model_dump()
    data["lots"]["P1"]["full_band"] = 2
    config = parse_config(data)
    occ = Occupancy(config, now=T0)
    fill(occ, 8, 10, T0)
    assert occ.lot_snapshot("P1", T0).status == "full"
    fill(occ, 7, 10, T0 + 1)
    assert occ.lot_snapshot("P1", T0 + 1).status != "full"


def test_a_fallback_full_by_its_own_band_is_not_offered() -> None:
    """The rule: a sign never sends drivers to a lot whose own sign says full, even when
    that lot's band leaves a few bays free, so the two signs never contradict each other."""
    config = guidance_config()
    sign = config.sign_buses["bus"].signs["S1"]
    occ = Occupancy(config, now=T0)
    fill(occ, 10, 10, T0)
    full = occ.lot_snapshot("P1", T0)
    remote = {
        "P2": _remote("P2", 2, "full", online=True),
        "P3": _remote("P3", 6, "spacesAvailable", online=True),
    }
    assert guidance_display(sign, full, remote, network_up=True).label == "P3"


def test_occupancy_trend_window_is_the_configs() -> None:
    """A demo's town at 60x gives the box a 15 s window: 15 town minutes, not 15 town hours."""
    occ = Occupancy(make_config(trend_window_s=15), now=T0)
    fill(occ, 0, 10, T0)
    fill(occ, 5, 10, T0 + 10)
    assert occ.lot_snapshot("P1", T0 + 11).trend == "filling"
    assert occ.lot_snapshot("P1", T0 + 40).trend == "steady"  # 15 s on, no change since


def stored(sensor: int, occupied: bool, *, replayed_at: float, age_s: float) -> SensorObservation:
    """An uplink the concentrator heard ``age_s`` before it replayed it to the box."""
    reading = decode("nwave-nps", bytes([0x01 if occupied else 0x00]), port=1)
    return SensorObservation(
        line="c",
        sensor_id=f"{sensor:08X}",
        reading=reading,
        received_at=replayed_at - age_s,
        stored_age_s=age_s,
    )


def test_occupancy_stored_uplink_counts_with_its_age() -> None:
    """A replayed uplink sets the bay from when the concentrator heard it, so the silence
    timeout runs from then; one older than the timeout leaves the bay unknown."""
    occ = Occupancy(make_config(bays=3), now=T0)
    now = T0 + 1000
    changes, _ = occ.observe(stored(1, False, replayed_at=now, age_s=120))
    assert [(c.bay_id, c.current, c.at) for c in changes] == [("B001", "free", now - 120)]
    assert occ.bays["B001"].health.last_seen == now - 120
    assert occ.observe(stored(2, True, replayed_at=now, age_s=601)) == ([], [])
    assert occ.bays["B002"].state == "unknown"
    snap = occ.lot_snapshot("P1", now)
    assert (snap.free, snap.occupied, snap.unknown) == (1, 0, 2)
    # The timeout runs from when the concentrator heard it: 600 s after now - 120.
    changes, _ = occ.tick(now + 479)
    assert changes == []
    changes, _ = occ.tick(now + 481)
    assert [(c.bay_id, c.current) for c in changes] == [("B001", "unknown")]


def test_occupancy_live_uplink_wins_over_an_older_stored_one() -> None:
    """A live frame heard after the stored one was heard stands; a stored frame newer than
    what the box knows (its bay memory, an earlier frame) replaces it."""
    occ = Occupancy(make_config(bays=2), now=T0)
    occ.observe(obs(1, True, T0 + 10))
    assert occ.observe(stored(1, False, replayed_at=T0 + 11, age_s=5)) == ([], [])
    assert occ.bays["B001"].state == "occupied"
    occ.observe(obs(2, True, T0 + 10))
    changes, _ = occ.observe(stored(2, False, replayed_at=T0 + 20, age_s=5))
    assert [(c.bay_id, c.current, c.at) for c in changes] == [("B002", "free", T0 + 15)]
