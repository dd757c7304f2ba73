"""What the box says on the uplink about a bay, a lot or a sign: pure conversions from the
agents' and drivers' own records to the uplink v1 models (``firmware_protocols.uplink``)."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.agents.occupancy import Bay, BayChange, LotSnapshot
from edge.agents.sign_display import to_uplink
from edge.config import SignConfig
from edge.drivers.sign_bus import SignUnitStatus
from firmware_protocols.signs import Display
from firmware_protocols.uplink.models import (
    BayChanged,
    BayOccupancy,
    BayState,
    LotState,
    LotStatus,
    SensorFlag,
    SensorInfo,
    SignDisplay,
    SignMode,
    SignState,
    Trend,
)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def bay_changed(change: BayChange) -> BayChanged:
    return BayChanged(
        bay_id=change.bay_id,
        lot_id=change.lot_id,
        zone_id=change.zone_id,
        from_state=BayOccupancy(change.previous),
        to_state=BayOccupancy(change.current),
        sensor_id=change.sensor_id,
        sensor_ts=utc(change.at),
    )


def bay_state(bay: Bay, now: float) -> BayState:
    health = bay.health
    flags = [SensorFlag.IMPLAUSIBLE] if health.implausible else []
    if health.battery_health in ("low", "critical"):
        flags.append(SensorFlag.LOW_BATTERY)
    if bay.state == "unknown" and health.fault:
        flags.append(SensorFlag.FAULT)
    elif bay.state == "unknown" and health.last_seen is not None:
        flags.append(SensorFlag.SILENT)
    return BayState(
        bay_id=bay.bay_id,
        lot_id=bay.lot_id,
        zone_id=bay.zone_id,
        state=BayOccupancy(bay.state),
        since=utc(bay.since),
        sensor=None
        if bay.sensor_id is None
        else SensorInfo(
            sensor_id=bay.sensor_id,
            battery_mv=health.battery_mv,
            temperature_c=health.temperature_c,
            rssi_dbm=health.rssi_dbm,
            snr_db=health.snr_db,
            last_seen=utc(health.last_seen) if health.last_seen is not None else None,
            flags=tuple(flags),
        ),
        ts=utc(now),
    )


def lot_state(snapshot: LotSnapshot) -> LotState:
    return LotState(
        lot_id=snapshot.lot_id,
        capacity=snapshot.capacity,
        free=snapshot.free,
        occupied=snapshot.occupied,
        unknown=snapshot.unknown,
        closed=snapshot.closed,
        status=LotStatus(snapshot.status),
        trend=Trend(snapshot.trend),
        ts=utc(snapshot.updated_at),
    )


def sign_state(
    sign_id: str,
    bus_id: str,
    sign: SignConfig,
    *,
    display: Display,
    status: SignUnitStatus,
    override_until: float | None,
    now: float,
) -> SignState:
    """What a sign was told to show (``display``), what it shows and whether it answers."""
    faults = status.faults or frozenset()
    shown = None
    if "watchdog_expired" in faults:
        # An orphaned guidance sign shows "--"; a warning sign goes dark.
        dark = sign.profile == "parkgrid-warning"
        shown = SignDisplay(mode=SignMode.BLANK if dark else SignMode.DASHES)
    elif status.shown is not None:
        shown = to_uplink(status.shown)
    return SignState(
        sign_id=sign_id,
        bus=bus_id,
        unit=sign.unit,
        profile=sign.profile,
        display=to_uplink(display),
        up=status.up,
        last_verified=utc(status.verified_at) if status.verified_at is not None else None,
        override_until=utc(override_until) if override_until is not None else None,
        shown=shown,
        problem=status.problem,
        wrong_since=utc(status.wrong_since) if status.wrong_since is not None else None,
        faults=sorted(faults),
        reboots=status.counters.reboots_seen,
        mismatches=status.counters.verify_mismatches,
        ts=utc(now),
    )
