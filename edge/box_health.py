"""The box's health, assembled from what each driver and agent counts.

Three views of the same counters: the ``HealthSummary`` carried in the box's MQTT status,
the ``/healthz`` report for a technician, and the Prometheus families of ``/metrics``. They
only read; nothing here changes the parts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from edge.agents.occupancy import LotSnapshot, Occupancy
from edge.agents.zones import ZoneAgent
from edge.drivers.serial_line import SerialLine
from edge.drivers.sign_bus import SignBus
from edge.health_http import HealthReport, Metric
from edge.supervise import Restarts
from firmware_protocols.uplink.models import (
    HealthSummary,
    OutboxHealth,
    SensorsHealth,
    SerialLineHealth,
    SignBusHealth,
    SignUnitHealth,
)


class UplinkFigures(Protocol):
    """What health reads of the uplink."""

    def outbox_health(self) -> OutboxHealth: ...

    def stats(self) -> _AcksRefused: ...


class _AcksRefused(Protocol):
    @property
    def acks_refused(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSources:
    """The parts of a box its health is read from (read only, never changed here)."""

    box_id: str
    boot_id: uuid.UUID
    started_at: float
    clock: Callable[[], float]
    network_up: Callable[[], bool]
    uplink: UplinkFigures
    lines: Mapping[str, SerialLine]
    buses: Mapping[str, SignBus]
    occupancy: Occupancy
    lots: Mapping[str, LotSnapshot]
    zones: ZoneAgent
    restarts: Restarts


def health_summary(parts: HealthSources) -> HealthSummary:
    """The health part of the box status (birth and the periodic status)."""
    outbox = parts.uplink.outbox_health()
    lines = []
    for name, line in parts.lines.items():
        stats = line.stats()
        lines.append(
            SerialLineHealth(
                line=name,
                up=stats.up,
                frames=stats.frames,
                crc_errors=stats.crc_failures + stats.checksum_failures,
                garbage_bytes=stats.dropped_bytes,
                timeouts=sum(stats.timeouts.values()),
            )
        )
    buses = []
    for bus_id, bus in parts.buses.items():
        units = []
        for sign_id in bus.sign_ids:
            status = bus.status(sign_id)
            counters = status.counters
            units.append(
                SignUnitHealth(
                    unit=status.unit,
                    up=status.up,
                    requests=counters.requests,
                    timeouts=counters.timeouts,
                    exceptions=sum(counters.exceptions.values()),
                )
            )
        buses.append(SignBusHealth(bus=bus_id, units=tuple(units)))
    bays = parts.occupancy.bays.values()
    return HealthSummary(
        outbox=outbox,
        serial_lines=tuple(lines),
        sign_buses=tuple(buses),
        sensors=SensorsHealth(
            total=len(parts.occupancy.bays),
            silent=sum(1 for b in bays if b.state == "unknown" and not b.health.fault),
            low_battery=sum(1 for b in bays if b.health.battery_health in ("low", "critical")),
            faulty=sum(1 for b in bays if b.health.fault),
        ),
    )


def health_report(parts: HealthSources) -> HealthReport:
    """``/healthz``: ok only when MQTT is up and no line or sign is down."""
    lines_down = [name for name, line in parts.lines.items() if not line.up]
    signs_down = [
        sign_id
        for bus in parts.buses.values()
        for sign_id in bus.sign_ids
        if not bus.status(sign_id).up
    ]
    outbox = parts.uplink.outbox_health()
    detail: dict[str, object] = {
        "box_id": parts.box_id,
        "boot_id": str(parts.boot_id),
        "uptime_s": round(parts.clock() - parts.started_at, 1),
        "mqtt_connected": parts.network_up(),
        "serial_lines_down": lines_down,
        "signs_down": signs_down,
        "outbox_events": outbox.event.depth,
        "oldest_event_age_s": outbox.oldest_event_age_s,
        "unknown_sensors": dict(parts.occupancy.unknown_sensors),
        "restarts": dict(parts.restarts.counts),
        "lots": {
            lot_id: {"free": s.free, "capacity": s.capacity, "status": s.status}
            for lot_id, s in parts.lots.items()
        },
        "zones": {
            zone_id: {
                "state": parts.zones.state_name(zone_id),
                "violating": parts.zones.violating(zone_id),
            }
            for zone_id in parts.zones.zones
        },
    }
    ok = parts.network_up() and not lines_down and not signs_down
    return HealthReport(ok=ok, detail=detail)


def box_metrics(parts: HealthSources) -> list[Metric]:
    """``/metrics``: the counters the drivers and agents keep, as Prometheus families."""
    base = {"box": parts.box_id}
    metrics = [
        Metric(
            name="parkgrid_edge_mqtt_connected",
            kind="gauge",
            help="1 while the box is connected to the broker",
            samples=[(base, 1.0 if parts.network_up() else 0.0)],
        ),
    ]
    outbox = parts.uplink.outbox_health()
    metrics.append(
        Metric(
            name="parkgrid_edge_outbox_depth",
            kind="gauge",
            help="messages waiting in the outbox, per lane",
            samples=[
                ({**base, "lane": "event"}, outbox.event.depth),
                ({**base, "lane": "state"}, outbox.state.depth),
            ],
        )
    )
    metrics.append(
        Metric(
            name="parkgrid_edge_outbox_oldest_event_age_seconds",
            kind="gauge",
            help="age of the oldest event not yet acknowledged by central",
            samples=[(base, outbox.oldest_event_age_s or 0.0)],
        )
    )
    metrics.append(
        Metric(
            name="parkgrid_edge_acks_refused_total",
            kind="counter",
            help="acks above the outbox's last committed seq, refused (nothing deleted)",
            samples=[(base, parts.uplink.stats().acks_refused)],
        )
    )
    line_samples: dict[str, list[tuple[dict[str, str], float]]] = {
        "bytes": [],
        "frames": [],
        "observations": [],
        "crc_failures": [],
        "dropped_bytes": [],
        "up": [],
    }
    for name, line in parts.lines.items():
        stats = line.stats()
        labels = {**base, "line": name}
        line_samples["bytes"].append((labels, stats.bytes_in))
        line_samples["frames"].append((labels, stats.frames))
        line_samples["observations"].append((labels, stats.observations))
        line_samples["crc_failures"].append((labels, stats.crc_failures))
        line_samples["dropped_bytes"].append((labels, stats.dropped_bytes))
        line_samples["up"].append((labels, 1.0 if stats.up else 0.0))
    for key, samples in line_samples.items():
        kind = "gauge" if key == "up" else "counter"
        suffix = "" if key == "up" else "_total"
        metrics.append(
            Metric(
                name=f"parkgrid_edge_serial_{key}{suffix}",
                kind=kind,
                help=f"serial line {key.replace('_', ' ')}",
                samples=samples,
            )
        )
    unit_up, unit_requests, unit_timeouts = [], [], []
    for bus_id, bus in parts.buses.items():
        for sign_id in bus.sign_ids:
            status = bus.status(sign_id)
            labels = {**base, "bus": bus_id, "sign": sign_id, "unit": str(status.unit)}
            unit_up.append((labels, 1.0 if status.up else 0.0))
            unit_requests.append((labels, float(status.counters.requests)))
            unit_timeouts.append((labels, float(status.counters.timeouts)))
    metrics += [
        Metric(
            name="parkgrid_edge_sign_up",
            kind="gauge",
            help="1 while a sign answers",
            samples=unit_up,
        ),
        Metric(
            name="parkgrid_edge_sign_requests_total",
            kind="counter",
            help="Modbus requests sent to a sign",
            samples=unit_requests,
        ),
        Metric(
            name="parkgrid_edge_sign_timeouts_total",
            kind="counter",
            help="Modbus requests a sign did not answer",
            samples=unit_timeouts,
        ),
    ]
    lot_samples = [
        ({**base, "lot": lot_id, "state": state}, float(getattr(snap, state)))
        for lot_id, snap in parts.lots.items()
        for state in ("free", "occupied", "unknown", "closed")
    ]
    metrics.append(
        Metric(
            name="parkgrid_edge_lot_bays",
            kind="gauge",
            help="bays of a lot by state",
            samples=lot_samples,
        )
    )
    metrics.append(
        Metric(
            name="parkgrid_edge_unknown_sensor_frames_total",
            kind="counter",
            help="frames from sensors not mapped to any bay",
            samples=[(base, float(sum(parts.occupancy.unknown_sensors.values())))],
        )
    )
    metrics.append(
        Metric(
            name="parkgrid_edge_loop_restarts_total",
            kind="counter",
            help="supervised loops restarted after a crash",
            samples=[({**base, "loop": k}, float(v)) for k, v in parts.restarts.counts.items()],
        )
    )
    return metrics
