"""The office's part of a box's config and the box's own: the cut, the merge and the hash."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from edge.config import parse_config
from site_model.edge_config import Deployment, edge_config
from site_model.site import load_site
from site_model.site_config import (
    differing,
    digest,
    local_keys,
    merge,
    section_digests,
    site_part,
)

XIGANG = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "xigang.toml"


def _box_document(tmp_path: Path) -> tuple[str, dict[str, object]]:
    site = load_site(XIGANG)
    box_id = next(b for b in sorted(site.boxes) if site.lots_of_box(b))
    lot = site.lots_of_box(box_id)[0]
    bay = site.lots[lot].bay_ids(lot)[0]
    deployment = Deployment(
        mqtt_url="mqtts://broker.town:8883",
        box_etc=str(tmp_path / "etc"),
        data_dir=str(tmp_path / "data"),
        sensors={bay: ("00A00001", "nwave-nps")},
    )
    return box_id, edge_config(site, box_id, deployment)


def test_the_part_pushed_carries_no_secret_wiring_or_bay(tmp_path: Path) -> None:
    _, whole = _box_document(tmp_path)
    part = site_part(whole)
    assert local_keys(part) == []
    assert "password_file" not in part["mqtt"] and "ca_file" not in part["mqtt"]
    assert part["mqtt"]["url"] == "mqtts://broker.town:8883"
    assert not {"site", "box_id", "data_dir", "serial", "health"} & set(part)
    assert all("bays" not in lot for lot in part["lots"].values())
    assert local_keys(whole) == sorted(
        ["box_id", "data_dir", "mqtt.password_file", "mqtt.ca_file", "mqtt.username", "serial",
         "site", *(f"lots.{lot}.bays" for lot, body in whole["lots"].items() if "bays" in body)]
    )  # fmt: skip


def test_merge_keeps_the_box_own_keys_and_takes_the_office_part(tmp_path: Path) -> None:
    _, whole = _box_document(tmp_path)
    part = site_part(whole)
    lot = next(iter(part["lots"]))
    part["lots"][lot]["full_band"] = 3
    part["mqtt"]["url"] = "mqtt://other:1883"
    merged = merge(whole, part)
    assert merged["lots"][lot]["full_band"] == 3
    assert merged["lots"][lot]["bays"] == whole["lots"][lot]["bays"]
    assert merged["mqtt"] == {**whole["mqtt"], "url": "mqtt://other:1883"}
    assert merged["serial"] == whole["serial"] and merged["box_id"] == whole["box_id"]
    parse_config(merged)  # the box's loader takes it
    assert site_part(merged) == part


def test_the_hash_is_the_same_after_toml_and_for_whole_floats(tmp_path: Path) -> None:
    _, whole = _box_document(tmp_path)
    part = site_part(whole)
    assert digest(tomllib.loads(tomli_w.dumps(part))) == digest(part)  # times stay times
    assert digest({"grace_s": 600}) == digest({"grace_s": 600.0})
    assert digest({"grace_s": 600.5}) != digest({"grace_s": 600})


def test_sections_say_what_differs(tmp_path: Path) -> None:
    _, whole = _box_document(tmp_path)
    before = site_part(whole)
    after = site_part(whole)
    lot = next(iter(after["lots"]))
    after["lots"][lot]["full_band"] = 7
    after["timezone"] = "Europe/Berlin"
    assert differing(section_digests(before), section_digests(after)) == sorted(
        [f"lots.{lot}", "timezone"]
    )
    assert differing(section_digests(before), section_digests(before)) == []
    assert differing({"a": "1"}, {}) == ["a"]
