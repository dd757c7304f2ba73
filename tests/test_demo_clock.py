"""The demo's clock: it starts on a whole wall second, so its zones open on the minute, and
the boxes' settings scale with ``--speed`` as docs/demo-clock.md's table says.

The boxes keep the wall clock: each stall zone's trading hours go into its box's config as
wall-clock windows, written to the second. A town clock started at a fractional wall second
put the market's 05:00 at 04:59:0x in the town at 60x (seen on the dashboard's zones page).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from parkgrid.demo_configs import box_configs, zone_overrides
from parkgrid.demo_history import demo_town_clock
from simulators.town import TownClock, sensor_plan
from site_model.site import load_site

TZ = ZoneInfo("Asia/Shanghai")
SIM_START = dt.datetime(2026, 12, 6, 4, 30, tzinfo=TZ).timestamp()


def test_zone_windows_come_back_on_the_towns_minute_at_60x() -> None:
    clock = demo_town_clock(SIM_START, speed=60.0, wall_now=1_796_591_452.553, allowance_s=25)
    assert clock.wall_start >= 1_796_591_452.553 + 25  # the start allowance is kept
    (override,) = zone_overrides(
        ["05:00-06:30"], clock=clock, tz=TZ, sim_from=SIM_START, sim_to=SIM_START + 3 * 3600
    )
    (window,) = override["windows"]
    day = override["date"]
    back = [
        dt.datetime.fromtimestamp(clock.sim(dt.datetime.combine(day, t, TZ).timestamp()), TZ)
        for t in (window["start"], window["end"])
    ]
    assert [f"{b:%H:%M:%S}" for b in back] == ["05:00:00", "06:30:00"]


ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "demo-clock.md"


def _box_rows() -> list[tuple[str, str]]:
    """(setting, decision) of each row of docs/demo-clock.md's box-config table."""
    section = DOCS.read_text(encoding="utf-8").split("### In each box's config", 1)[1]
    table = next(block for block in section.split("\n\n") if block.startswith("| setting"))
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[2]))
    return rows


def _configs(speed: float, tmp_path: Path) -> dict[str, Any]:
    site = load_site(ROOT / "sites" / "xigang.toml")
    boxes = sorted(site.boxes)
    sign_units = {sign_id: (sign.box_id, n) for n, (sign_id, sign) in
                  enumerate(sorted(site.signs.items()), start=1)}  # fmt: skip
    return box_configs(
        site=site,
        sensors=sensor_plan(site),
        run_dir=tmp_path,
        mqtt_urls={b: "mqtt://127.0.0.1:1883" for b in boxes},
        box_dirs={b: tmp_path / b for b in boxes},
        conc_paths={b: tmp_path / f"{b}.pty" for b in boxes},
        sign_ports={b: 5020 + i for i, b in enumerate(boxes)},
        sign_units=sign_units,
        health_ports={b: 8100 + i for i, b in enumerate(boxes)},
        clock=TownClock(sim_start=SIM_START, wall_start=1_796_591_478.0, speed=speed),
        sim_to=SIM_START + 86_400,
    )


def _values(node: Any, path: list[str]) -> list[Any]:
    """Every value at ``path`` (``*``: each item of a table or list), in a fixed order."""
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head == "*":
        items = [node[k] for k in sorted(node)] if isinstance(node, dict) else list(node)
        return [v for item in items for v in _values(item, rest)]
    return _values(node[head], rest) if isinstance(node, dict) and head in node else []


def test_the_speed_tables_box_settings_scale_as_it_says(tmp_path: Path) -> None:
    rows = _box_rows()
    assert len(rows) >= 10, rows
    at = {speed: _configs(speed, tmp_path) for speed in (60.0, 120.0)}
    checked = 0
    for setting, decision in rows:
        values = {s: _values([at[s][b] for b in sorted(at[s])], ["*", *setting.split(".")])
                  for s in at}  # fmt: skip
        assert values[60.0], f"{setting}: in no box's config"
        if decision == "÷ speed":
            assert values[60.0] == pytest.approx([2 * v for v in values[120.0]], abs=0.002), setting
        elif decision == "no":
            assert values[60.0] == values[120.0], setting
        else:
            continue  # floors or mappings: tested on their own (heartbeats, zone windows)
        checked += 1
    assert checked >= 9
