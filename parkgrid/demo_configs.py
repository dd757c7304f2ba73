"""The demo's box configs: the one config projection, with the town clock's timings.

Every box's edge.toml is ``site_model.edge_config``'s projection of the site file (what
``provision-box`` gives a technician), filled in as a technician would (the serial line,
each bay's sensor, the signs' unit ids) with the demo's timings: every duration divided by
the town clock's speed, and each stall zone's trading hours as date overrides at the wall
times the town's clock reaches them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Sensors heartbeat every 10 minutes of town time and go unknown after 30 silent minutes
# (the box's field default), both scaled by --speed; on the wall clock a heartbeat round of
# every sensor is kept at least 6 s apart so a fast demo does not flood the serial lines.
HEARTBEAT_INTERVAL_TOWN_S = 600.0
HEARTBEAT_TIMEOUT_TOWN_S = 1800.0
HEARTBEAT_INTERVAL_MIN_S = 6.0


def heartbeat_wall_s(speed: float) -> tuple[float, float]:
    """(interval, timeout) of sensor heartbeats in wall seconds at ``speed``."""
    interval = max(HEARTBEAT_INTERVAL_MIN_S, HEARTBEAT_INTERVAL_TOWN_S / speed)
    return interval, max(3 * interval, HEARTBEAT_TIMEOUT_TOWN_S / speed)


def zone_overrides(
    windows: list[str], *, clock: Any, tz: ZoneInfo, sim_from: float, sim_to: float
) -> list[dict[str, Any]]:
    """The zone's trading windows in the town's time, as wall-clock date overrides.

    Each window the town's clock reaches between ``sim_from`` and ``sim_to`` becomes a
    window at the wall time the clock reaches it, grouped by wall date.
    """
    from simulators.town import DAY, _hours

    by_date: dict[dt.date, list[dict[str, dt.time]]] = {}
    sim_tz_day = dt.datetime.fromtimestamp(sim_from, tz).date()
    for offset in range(-1, int((sim_to - sim_from) // DAY) + 2):
        day = sim_tz_day + dt.timedelta(days=offset)
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz).timestamp()
        for text in windows:
            opens, closes = _hours(text, midnight)
            if closes < sim_from or opens > sim_to:
                continue
            w_open = dt.datetime.fromtimestamp(clock.wall(opens), tz)
            w_close = dt.datetime.fromtimestamp(clock.wall(closes), tz)
            window = {
                "start": w_open.time().replace(microsecond=0),
                "end": w_close.time().replace(microsecond=0),
            }
            by_date.setdefault(w_open.date(), []).append(window)
    return [
        {"date": d, "windows": w, "note": "demo: town clock"} for d, w in sorted(by_date.items())
    ]


def box_configs(
    *,
    site: Any,
    sensors: dict[str, Any],
    run_dir: Path,
    mqtt_urls: dict[str, str],
    box_dirs: dict[str, Path],
    conc_paths: dict[str, Path],
    sign_ports: dict[str, int],
    sign_units: dict[str, tuple[str, int]],
    health_ports: dict[str, int],
    clock: Any,
    sim_to: float,
) -> dict[str, dict[str, Any]]:
    """One box config (as TOML-ready data) per box of the site: the projection
    ``provision-box`` gives a technician (``site_model.edge_config``), with what the
    technician fills in (the line, the sensors, the signs' units) and the demo's timings:
    every duration divided by the town clock's speed, the zones' windows at the wall times
    the town's clock reaches them."""
    from site_model.edge_config import Deployment, SignBus, edge_config

    tz = ZoneInfo(site.site.timezone)
    speed = clock.speed
    configs: dict[str, dict[str, Any]] = {}
    for box_id in site.boxes:
        units = {sign_id: unit for sign_id, (box, unit) in sign_units.items() if box == box_id}
        bus = None
        if units and box_id in sign_ports:
            bus = SignBus(
                host="127.0.0.1",
                port=sign_ports[box_id],
                units=units,
                settings={"timeout_s": 0.5, "refresh_interval_s": 5, "watchdog_timeout_s": 30},
            )
        town_windows = {
            zone_id: zone_overrides(
                site.zones[zone_id].trading_hours,
                clock=clock,
                tz=tz,
                sim_from=clock.sim_start,
                sim_to=sim_to,
            )
            for zone_id in site.zones_of_box(box_id)
        }
        deployment = Deployment(
            mqtt_url=mqtt_urls[box_id],
            box_etc=str(box_dirs[box_id]),
            data_dir=str(run_dir / "boxes" / box_id / "data"),
            serial_device=str(conc_paths[box_id]),
            sensors={
                p.bay_id: (p.sensor_id, p.fmt) for p in sensors.values() if p.box_id == box_id
            },
            sign_bus=bus,
            time_scale=speed,
            zone_overrides=town_windows,
            mqtt_keepalive_s=10,
            heartbeat_timeout_s=round(heartbeat_wall_s(speed)[1], 3),
            resend_after_s=5,
            health_listen=f"127.0.0.1:{health_ports[box_id]}",
            status_interval_s=15,
        )
        configs[box_id] = edge_config(site, box_id, deployment)
    return configs
