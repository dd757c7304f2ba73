"""The demo's generated box configs carry the site file's sign settings (no hard-coding)."""

from __future__ import annotations

from pathlib import Path

from central.site import load_site
from parkgrid.demo import box_configs
from simulators.town import TownClock, sensor_plan

ROOT = Path(__file__).resolve().parents[1]


def _configs(tmp_path: Path) -> dict[str, dict[str, object]]:
    site = load_site(ROOT / "sites" / "xigang.toml")
    boxes = sorted(site.boxes)
    sign_units = {sign_id: (sign.box_id, n) for n, (sign_id, sign) in
                  enumerate(sorted(site.signs.items()), start=1)}  # fmt: skip
    return box_configs(
        site=site,
        sensors=sensor_plan(site),
        run_dir=tmp_path,
        mqtt_urls={b: "mqtt://127.0.0.1:1883" for b in boxes},
        conc_paths={b: tmp_path / f"{b}.pty" for b in boxes},
        sign_ports={b: 5020 + i for i, b in enumerate(boxes)},
        sign_units=sign_units,
        health_ports={b: 8100 + i for i, b in enumerate(boxes)},
        clock=TownClock(sim_start=1_700_000_000.0, wall_start=1_700_000_000.0, speed=60.0),
        sim_to=1_700_000_000.0 + 86_400,
    )


def test_demo_signs_take_their_arrows_from_the_site_file(tmp_path: Path) -> None:
    """Finding 2: the fallbacks' arrows are the site file's, not "ahead" for every one."""
    configs = _configs(tmp_path)
    sign = configs["box-p1"]["sign_buses"]["bus"]["signs"]["P1-ENTRANCE"]  # type: ignore[index]
    assert sign["fallback"] == [{"lot": "P4", "arrow": "right"}, {"lot": "P2", "arrow": "ahead"}]
    arrows = {
        target["arrow"]
        for config in configs.values()
        for bus in config.get("sign_buses", {}).values()  # type: ignore[attr-defined]
        for s in bus["signs"].values()
        for target in s.get("fallback", [])
    }
    assert len(arrows) > 1


def test_demo_box_config_carries_the_full_band(tmp_path: Path) -> None:
    configs = _configs(tmp_path)
    assert configs["box-p1"]["lots"]["P1"]["full_band"] == 0  # type: ignore[index]
