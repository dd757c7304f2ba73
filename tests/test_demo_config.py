"""The demo's generated box configs carry the site file's sign settings (no hard-coding)."""

from __future__ import annotations

from pathlib import Path

from parkgrid.demo import box_configs
from simulators.town import TownClock, sensor_plan
from site_model.site import load_site

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
        box_dirs={b: tmp_path / b for b in boxes},
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


def test_demo_sensor_heartbeat_and_timeout_follow_the_speed(tmp_path: Path) -> None:
    """Finding 9: the sensors' timeout is 30 town minutes at any --speed (was 45 wall s)."""
    from parkgrid.demo import heartbeat_wall_s

    assert heartbeat_wall_s(60) == (10.0, 30.0)
    interval, timeout = heartbeat_wall_s(300)
    assert interval == 6.0 and timeout == 18.0  # heartbeats kept 6 s apart; 3 missed
    configs = _configs(tmp_path)  # speed 60
    assert configs["box-p1"]["sensors"]["heartbeat_timeout_s"] == 30.0  # type: ignore[index]


def test_demo_duration_help_says_wall_seconds() -> None:
    import argparse

    from parkgrid.demo import configure

    parser = argparse.ArgumentParser()
    configure(parser)
    help_text = parser.format_help()
    assert "wall-clock seconds" in help_text
    assert "--demand" in help_text


def test_demo_busy_day_fills_a_lot_at_the_morning_peak() -> None:
    """Finding 9: with the demo's default demand some lot is truly full between 07:00 and
    09:30 (the default day used to fill none, for any seed)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from parkgrid.demo import DEFAULT_DEMAND
    from simulators.town import TownTruth, day_start, plan_town

    site = load_site(ROOT / "sites" / "xigang.toml")
    tz = ZoneInfo(site.site.timezone)
    start = day_start(dt.date(2026, 12, 5), dt.time(4, 30), tz)
    peak = (start + 2.5 * 3600, start + 5 * 3600)
    for seed in (1, 7, 42):
        events = plan_town(site, seed=seed, start=start, hours=6,
                           demand=dict.fromkeys(site.lots, DEFAULT_DEMAND))  # fmt: skip
        truth, full_at_peak = TownTruth(site=site), set()
        for event in events:
            truth.apply(event)
            if peak[0] <= event.at <= peak[1]:
                full_at_peak |= {lot for lot, f in truth.lot_figures().items() if f["free"] == 0}
        assert full_at_peak, f"seed {seed}: no lot fills at the morning peak"


def test_demo_faults_strike_in_the_peaks() -> None:
    """Finding 9: the fault script runs in the morning peak, the box restart in the evening."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from simulators.town import (
        BoxNetwork,
        BoxRestarts,
        SensorDies,
        SignReboots,
        day_start,
        plan_town,
    )

    site = load_site(ROOT / "sites" / "xigang.toml")
    tz = ZoneInfo(site.site.timezone)
    start = day_start(dt.date(2026, 12, 5), dt.time(4, 30), tz)
    events = plan_town(site, seed=7, start=start, hours=24, box_restarts=True)
    kinds = (SensorDies, SignReboots, BoxNetwork, BoxRestarts)
    faults = [e for e in events if isinstance(e, kinds)]
    hours = {type(e).__name__: dt.datetime.fromtimestamp(e.at, tz).hour for e in faults}
    assert 7 <= hours["SensorDies"] < 9 and 7 <= hours["SignReboots"] < 9
    assert 7 <= hours["BoxNetwork"] < 9
    assert 17 <= hours["BoxRestarts"] < 19
