"""The one config projection: every box of Xigang projects to a config the box's loader takes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edge.config import load_config
from site_model.edge_config import (
    Deployment,
    EdgeConfigError,
    SignBus,
    edge_config,
    edge_config_toml,
)
from site_model.site import Site, load_site

XIGANG = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "xigang.toml"


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(XIGANG)


def deployed(site: Site, box_id: str, tmp_path: Path, **options: object) -> Deployment:
    """Every bay of the box with a sensor, every sign of it on one TCP bus."""
    bays = [b for _, b in site.lot_bays()] + [b for _, b in site.zone_bays()]
    sensors = {bay: (f"{0x00A00000 + n:08X}", "nwave-nps") for n, bay in enumerate(bays)}
    mine = {b for lot in site.lots_of_box(box_id) for b in site.lots[lot].bay_ids(lot)}
    mine |= {b for zone in site.zones_of_box(box_id) for b in site.zones[zone].bay_ids(zone)}
    signs = [s for s, sign in site.signs.items() if sign.box_id == box_id]
    return Deployment(
        mqtt_url="mqtts://broker.town:8883",
        box_etc=str(tmp_path / "etc"),
        data_dir=str(tmp_path / "data"),
        serial_device="/dev/ttyCONC",
        sensors={bay: sensor for bay, sensor in sensors.items() if bay in mine},
        sign_bus=SignBus(
            host="127.0.0.1", port=5020, units={s: n for n, s in enumerate(signs, start=1)}
        ),
        **options,  # type: ignore[arg-type]
    )


def test_every_xigang_box_projects_to_a_config_the_box_loads(site: Site, tmp_path: Path) -> None:
    for box_id in site.boxes:
        path = tmp_path / f"{box_id}.toml"
        path.write_text(edge_config_toml(site, box_id, deployed(site, box_id, tmp_path)))
        config = load_config(path)
        assert (config.site, config.box_id, config.timezone) == ("xigang", box_id, "Asia/Shanghai")
        assert config.mqtt.username == box_id and config.mqtt.ca_file is not None
        assert list(config.lots) == site.lots_of_box(box_id)
        assert list(config.zones) == site.zones_of_box(box_id)
        for lot_id, lot in config.lots.items():
            assert list(lot.bays) == site.lots[lot_id].bay_ids(lot_id)
        for zone_id, zone in config.zones.items():
            assert list(zone.bays) == site.zones[zone_id].bay_ids(zone_id)
            assert zone.grace == site.zones[zone_id].grace_min * 60
            hours = [f"{w.start:%H:%M}-{w.end:%H:%M}" for w in zone.windows]
            assert hours == site.zones[zone_id].trading_hours
        signs = {s for bus in config.sign_buses.values() for s in bus.signs}
        assert signs == {s for s, sign in site.signs.items() if sign.box_id == box_id}


def test_the_starter_projection_of_every_box_loads(site: Site, tmp_path: Path) -> None:
    """No sensors or signs yet (what provision-box gives a technician): still a valid config."""
    for box_id in site.boxes:
        path = tmp_path / f"{box_id}.toml"
        path.write_text(edge_config_toml(site, box_id, Deployment(mqtt_url="mqtt://broker:1883")))
        config = load_config(path)
        assert config.mqtt.password_file == Path("/etc/parkgrid/mqtt-password")
        assert all(not lot.bays for lot in config.lots.values())


def test_a_faster_town_clock_scales_grace_notice_and_ladder(site: Site, tmp_path: Path) -> None:
    window = {"start": dt.time(9), "end": dt.time(9, 5)}
    override = {"date": dt.date(2026, 12, 6), "windows": [window]}
    deployment = deployed(
        site, "box-stalls-market", tmp_path, time_scale=60.0, zone_overrides={"S1": [override]}
    )
    doc = edge_config(site, "box-stalls-market", deployment)
    s1, s2 = doc["zones"]["S1"], doc["zones"]["S2"]
    assert s1["overrides"] == [override] and "windows" not in s1
    assert (s1["grace_s"], s1["closing_soon_s"]) == (10.0, 15.0)  # 10 min, 15 min over 60
    assert s2["ladder"] == [
        {"after_s": 0.0, "severity": "warning"},
        {"after_s": 30.0, "severity": "escalated"},
    ]


def test_what_the_site_does_not_give_the_box_is_refused_by_name(site: Site, tmp_path: Path) -> None:
    with pytest.raises(EdgeConfigError, match="box-zz: not in the site file's"):
        edge_config(site, "box-zz", Deployment(mqtt_url="mqtt://b:1883"))
    stray = Deployment(mqtt_url="mqtt://b:1883", sensors={"P2-001": ("00A00001", "nwave-nps")})
    with pytest.raises(EdgeConfigError, match="P2-001") as refused:
        edge_config(site, "box-p1", stray)
    assert refused.value.box_id == "box-p1"
    unnumbered = Deployment(mqtt_url="mqtt://b:1883", sign_bus=SignBus(host="h", units={}))
    with pytest.raises(EdgeConfigError, match="sign P1-ENTRANCE has no unit id"):
        edge_config(site, "box-p1", unnumbered)
