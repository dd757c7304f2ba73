"""What a sign shows and which bays a lot has are the office's, pushed; the sign's wiring and
which sensor sits in which bay stay the box's (issue 20: a bay added, a sign's profile)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edge.agents.guidance import guidance_display
from edge.agents.occupancy import Occupancy
from edge.config import ConfigError, SignConfig, parse_config
from edge.observations import SensorObservation
from firmware_protocols.sensors import decode
from firmware_protocols.signs import GuidanceMode
from site_model.edge_config import Deployment, SignBus, edge_config, office_part
from site_model.site import load_site
from site_model.site_config import (
    differing,
    digest,
    local_keys,
    merge,
    section_digests,
    set_aside,
    site_part,
    unwired_signs,
)

XIGANG = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "xigang.toml"
BOX = "box-p1"
LOT = "P1"
SIGN = "P1-ENTRANCE"


def _deployment(tmp_path: Path, *, every_sensor: bool = True) -> Deployment:
    site = load_site(XIGANG)
    bays = site.lots[LOT].bay_ids(LOT)
    chosen = bays if every_sensor else bays[:2]
    units = {sign_id: n for n, sign_id in enumerate(sorted(site.signs), 1)
             if site.signs[sign_id].box_id == BOX}  # fmt: skip
    return Deployment(
        mqtt_url="mqtts://broker.town:8883",
        box_etc=str(tmp_path / "etc"),
        data_dir=str(tmp_path / "data"),
        sensors={bay: (f"00A{n:05X}", "nwave-nps") for n, bay in enumerate(chosen, 1)},
        sign_bus=SignBus(units=units, host="10.0.0.9", bus_id="roadside"),
    )


def _own_with_two_buses(tmp_path: Path) -> dict[str, Any]:
    """The box's file as a technician left it: the entrance sign moved to a second bus."""
    whole = edge_config(load_site(XIGANG), BOX, _deployment(tmp_path))
    roadside = whole["sign_buses"]["roadside"]
    whole["sign_buses"]["entrance"] = {
        "transport": "rtu", "device": "/dev/ttyRS485", "baud": 19200,
        "signs": {SIGN: {**roadside["signs"].pop(SIGN), "brightness": 40}},
    }  # fmt: skip
    return whole


def test_the_office_part_carries_displays_and_bay_ids_and_no_wiring(tmp_path: Path) -> None:
    site = load_site(XIGANG)
    part = office_part(site, BOX, _deployment(tmp_path))
    assert local_keys(part) == []
    assert part["signs"][SIGN] == {
        "profile": "parkgrid-guidance", "lot": LOT, "arrow": "left",
        "fallback": [{"lot": "P4", "arrow": "right"}, {"lot": "P2", "arrow": "ahead"}],
    }  # fmt: skip
    assert set(part["signs"]) == {s for s, sign in site.signs.items() if sign.box_id == BOX}
    assert part["lots"][LOT]["bay_ids"] == sorted(site.lots[LOT].bay_ids(LOT))
    assert "sign_buses" not in part and all("bays" not in lot for lot in part["lots"].values())
    assert f"signs.{SIGN}" in section_digests(part)


def test_a_box_that_runs_the_projection_is_in_sync_without_a_push(tmp_path: Path) -> None:
    """provision-box's file (no bay_ids, displays under the bus) reports the desired part."""
    deployment = _deployment(tmp_path)
    site = load_site(XIGANG)
    whole = edge_config(site, BOX, deployment)
    assert "bay_ids" not in whole["lots"][LOT] and "signs" not in whole
    assert digest(site_part(whole)) == digest(office_part(site, BOX, deployment))
    # a box with only some bays commissioned counts fewer bays than the office: it differs
    partial = edge_config(site, BOX, _deployment(tmp_path, every_sensor=False))
    assert differing(
        section_digests(site_part(partial)), section_digests(office_part(site, BOX, deployment))
    ) == [f"lots.{LOT}"]


def test_wiring_in_a_pushed_sign_is_refused(tmp_path: Path) -> None:
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    part["signs"][SIGN]["unit"] = 9
    part["signs"][SIGN]["brightness"] = 100
    assert local_keys(part) == [f"signs.{SIGN}.brightness", f"signs.{SIGN}.unit"]


def test_merge_lays_a_pushed_sign_over_the_bus_the_box_has_it_on(tmp_path: Path) -> None:
    own = _own_with_two_buses(tmp_path)
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    part["signs"][SIGN].update(arrow="right", fallback=[{"lot": "P2", "arrow": "left"}])
    merged = merge(own, part)
    sign = merged["sign_buses"]["entrance"]["signs"][SIGN]
    assert (sign["unit"], sign["brightness"]) == (own["sign_buses"]["entrance"]["signs"][SIGN]
                                                  ["unit"], 40)  # fmt: skip
    assert (sign["arrow"], sign["fallback"]) == ("right", [{"lot": "P2", "arrow": "left"}])
    assert SIGN not in merged["sign_buses"]["roadside"]["signs"]
    assert {k: v for k, v in merged["sign_buses"]["entrance"].items() if k != "signs"} == {
        "transport": "rtu", "device": "/dev/ttyRS485", "baud": 19200}  # fmt: skip
    assert "signs" not in merged
    config = parse_config(merged)
    assert config.sign_buses["entrance"].signs[SIGN].fallback[0].arrow == "left"
    assert digest(site_part(merged)) == digest(part)  # the box reports what it was sent
    assert unwired_signs(own, part) == []


def test_a_pushed_display_replaces_the_old_one_whole(tmp_path: Path) -> None:
    own = _own_with_two_buses(tmp_path)
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    part["signs"][SIGN] = {"profile": "parkgrid-guidance", "lot": LOT}  # no arrow, no fallback
    sign = merge(own, part)["sign_buses"]["entrance"]["signs"][SIGN]
    assert "fallback" not in sign and "arrow" not in sign
    assert parse_config(merge(own, part)).sign_buses["entrance"].signs[SIGN].fallback == []


def test_a_pushed_sign_the_box_has_no_wiring_for_is_named(tmp_path: Path) -> None:
    own = _own_with_two_buses(tmp_path)
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    part["signs"]["P1-EXIT"] = {"profile": "parkgrid-guidance", "lot": LOT}
    assert unwired_signs(own, part) == ["P1-EXIT"]


def test_a_bay_added_is_a_real_bay_without_a_sensor_and_one_removed_is_set_aside(
    tmp_path: Path,
) -> None:
    own = edge_config(load_site(XIGANG), BOX, _deployment(tmp_path))
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    bay_ids = part["lots"][LOT]["bay_ids"]
    gone, added = bay_ids[-1], f"{LOT}-NEW"
    part["lots"][LOT]["bay_ids"] = sorted([*bay_ids[:-1], added])
    merged = merge(own, part)
    assert merged["lots"][LOT]["bays"] == {
        bay: mapping for bay, mapping in own["lots"][LOT]["bays"].items() if bay != gone
    }  # the sensor mapping stays the box's, cut to the bays the office lists
    assert set_aside(own, part) == [f"lots.{LOT}.bays.{gone}"]
    assert digest(site_part(merged)) == digest(part)
    config = parse_config(merged)
    assert config.lots[LOT].capacity == len(bay_ids)
    assert list(config.sensorless_bays()) == [(LOT, None, added)]
    occupancy = Occupancy(config, now=100.0)
    assert occupancy.bays[added].sensor_id is None and occupancy.bays[added].state == "unknown"
    snapshot = occupancy.lot_snapshot(LOT, 101.0)
    assert (snapshot.capacity, snapshot.unknown) == (len(bay_ids), len(bay_ids))
    assert occupancy.tick(1e9)[1] == []  # a bay without a sensor never goes "silent"


def test_a_box_reports_the_bay_ids_it_was_sent_in_their_order(tmp_path: Path) -> None:
    own = edge_config(load_site(XIGANG), BOX, _deployment(tmp_path))
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    part["lots"][LOT]["bay_ids"].reverse()
    assert digest(site_part(merge(own, part))) == digest(part)


def test_an_older_push_without_bay_ids_or_signs_keeps_the_box_own(tmp_path: Path) -> None:
    own = _own_with_two_buses(tmp_path)
    part = office_part(load_site(XIGANG), BOX, _deployment(tmp_path))
    old = copy.deepcopy(part)
    del old["signs"]
    for body in old["lots"].values():
        del body["bay_ids"]
    merged = merge(own, old)
    assert merged["lots"][LOT]["bays"] == own["lots"][LOT]["bays"]
    assert merged["sign_buses"] == own["sign_buses"]
    assert digest(site_part(merged)) == digest(part)


def test_a_file_that_maps_a_bay_its_bay_ids_do_not_list_is_refused_with_where() -> None:
    data = {
        "site": "t", "box_id": "b",
        "serial": {"conc": {"device": "/dev/ttyX", "protocol": "concentrator"}},
        "lots": {"P1": {"bay_ids": ["B1", "B1"],
                        "bays": {"B2": {"sensor": "00B10001", "format": "nwave-nps"}}}},
    }  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    where = sorted(p.path for p in caught.value.problems)
    assert where == ["lots.P1.bay_ids.B1", "lots.P1.bays.B2"]


@pytest.mark.parametrize(("mapped", "shown"), [(10, GuidanceMode.FULL), (2, GuidanceMode.UNKNOWN)])
def test_a_bay_without_a_sensor_counts_in_the_full_logic(mapped: int, shown: GuidanceMode) -> None:
    """All mapped bays occupied and one bay without a sensor: FULL while the unknown share is
    at most 10 % (1 of 11), "--" beyond it (1 of 3): never full for lack of news."""
    config = parse_config({
        "site": "t", "box_id": "b",
        "serial": {"c": {"device": "/dev/x", "protocol": "concentrator"}},
        "lots": {"P1": {
            "bay_ids": [f"B{i:03d}" for i in range(1, mapped + 2)],
            "bays": {f"B{i:03d}": {"sensor": f"{i:08X}", "format": "nwave-nps"}
                     for i in range(1, mapped + 1)},
        }},
    })  # fmt: skip
    occupancy = Occupancy(config, now=0.0)
    for i in range(1, mapped + 1):
        reading = decode("nwave-nps", bytes([0x01]), port=1)
        occupancy.observe(
            SensorObservation(line="c", sensor_id=f"{i:08X}", reading=reading, received_at=1.0)
        )
    snapshot = occupancy.lot_snapshot("P1", 2.0)
    assert (snapshot.capacity, snapshot.occupied, snapshot.unknown) == (mapped + 1, mapped, 1)
    sign = SignConfig(unit=1, profile="parkgrid-guidance", lot="P1")
    assert guidance_display(sign, snapshot, {}, network_up=True).mode is shown
