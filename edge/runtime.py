"""The edge box: every driver and agent of one box, wired together and supervised.

Theory of operation
-------------------
One asyncio event loop, one task per resource (each serial line, each sign bus, the MQTT
uplink, the health page) plus the box's own clock loop, all in one TaskGroup and each
wrapped by ``supervised`` so a crash restarts that loop, never the box.

Data moves by plain method calls on the loop, never across threads:

    SerialLine --observation--> EdgeBox._on_observation --> Occupancy.observe
        --> bay changes: Uplink.emit(BayChanged) + Uplink.publish_state(BayState)
        --> lot figures:  Uplink.publish_state(LotState) when they changed
        --> sign projections: SignBus.set_display (coalesced by the bus owner)
    SignBus --event--> EdgeBox._on_sign_event --> SignFault / alert events, SignState
    zone bay changes, deadlines --> ZoneAgent.evaluate --> ZoneTransition / AlertRaised /
        AlertResolved events, ZoneState, warning-sign projections
    Uplink --commands, other lots' state, connection--> EdgeBox callbacks

Events are committed to the outbox before they are published (the uplink's job), so a
power cut never loses one the box has accepted. State is recomputed from the sensors and
the schedule at start-up, never trusted from before a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from edge import box_health
from edge.agents.guidance import LOT_PROJECTIONS, RemoteLot, fixed_warning_display
from edge.agents.occupancy import BayChange, LotSnapshot, Occupancy, SensorNotice
from edge.agents.sign_display import UnsupportedDisplay, from_override, to_uplink
from edge.agents.uplink import Uplink
from edge.agents.zones import BayView, ScheduleRejected, ZoneAgent
from edge.clock import read_clock
from edge.config import EdgeConfig, SignConfig, config_hash
from edge.drivers.serial_line import SerialLine
from edge.drivers.sign_bus import SignBus, SignBusEvent, SignBusEventKind
from edge.health_http import HealthReport, HealthServer, Metric
from edge.observations import SensorObservation
from edge.outbox import Outbox
from edge.pipeline import commands
from edge.pipeline.commands import CommandTable
from edge.supervise import Restarts, supervised
from firmware_protocols.errors import EncodeError
from firmware_protocols.signs import Display
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertResolved,
    AlertType,
    BayChanged,
    BayOccupancy,
    BayState,
    BoxStatus,
    ClockStatus,
    CloseBay,
    Command,
    CommandReply,
    HealthSummary,
    LotState,
    LotStatus,
    Online,
    OpenBay,
    SensorFault,
    SensorFaultType,
    SensorFlag,
    SensorInfo,
    SensorRecovered,
    Severity,
    SignDisplay,
    SignFault,
    SignMode,
    SignOverride,
    SignRecovered,
    SignState,
    Trend,
    ZoneScheduleCommand,
)
from firmware_protocols.uplink.topics import Topics

log = logging.getLogger(__name__)


def _package_version() -> str:
    """pyproject.toml's version, from the installed package's metadata (its one place)."""
    try:
        return importlib.metadata.version("parkgrid")
    except importlib.metadata.PackageNotFoundError:  # a checkout never installed
        return "0+unknown"


SOFTWARE_VERSION = f"parkgrid-edge {_package_version()}"
SHUTDOWN_GRACE_S = 4.0
# A sign whose read-back keeps matching has its state (last_verified) re-sent this often;
# any change of what it shows, or of its truth, is sent at once.
SIGN_VERIFIED_REPUBLISH_S = 30.0


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class EdgeBox:
    """Everything one box runs. ``await box.run()`` until cancelled."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        config_digest: str = "unknown",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.boot_id = uuid.uuid4()
        self.started_at = clock()
        self.topics = Topics(config.site, config.box_id)
        self.config_digest = config_digest
        self.occupancy = Occupancy(config, now=self.started_at)
        self.restarts = Restarts()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(Outbox.path_in(config.data_dir), config=config.outbox)
        self.zones = ZoneAgent(config, data_dir=config.data_dir, now=self.started_at)
        self.uplink = Uplink(
            config=config,
            outbox=self.outbox,
            boot_id=self.boot_id,
            birth=self.birth,
            states=self.states,
            on_command=self.on_command,
            on_remote_lot=self._on_remote_lot,
            on_remote_box=self._on_remote_box,
            on_connection=self._on_connection,
            clock=clock,
        )
        self.lines = {
            name: SerialLine(name=name, config=line, sink=self._on_observation, clock=clock)
            for name, line in config.serial.items()
        }
        self.buses = {
            bus_id: SignBus(bus_id=bus_id, config=bus, on_event=self._on_sign_event, wall=clock)
            for bus_id, bus in config.sign_buses.items()
        }
        self.signs: dict[str, tuple[str, SignConfig]] = {
            sign_id: (bus_id, sign)
            for bus_id, bus in config.sign_buses.items()
            for sign_id, sign in bus.signs.items()
        }
        self.network_up = False
        self.remote_lots: dict[str, tuple[str, LotState]] = {}  # lot -> (box, state)
        self.remote_boxes: dict[str, bool] = {}
        self.overrides: dict[str, tuple[Display, float]] = {}
        self.shown: dict[str, Display] = {}
        self._lot_snapshots: dict[str, LotSnapshot] = {}
        self._open_alerts: dict[str, AlertRaised] = {}
        self._sign_published: dict[str, tuple[float, SignState]] = {}  # last sent, when
        self._wake = asyncio.Event()
        self.commands = CommandTable(
            {
                "rebirth": commands.rebirth,
                "close-bay": self._close_or_open_bay,
                "open-bay": self._close_or_open_bay,
                "sign-override": self._sign_override,
                "zone-schedule": self._zone_schedule,
            },
            clock=clock,
        )
        self._health_sources = box_health.HealthSources(
            box_id=config.box_id,
            boot_id=self.boot_id,
            started_at=self.started_at,
            clock=clock,
            network_up=lambda: self.network_up,
            uplink=self.uplink,
            lines=self.lines,
            buses=self.buses,
            occupancy=self.occupancy,
            lots=self._lot_snapshots,
            zones=self.zones,
            restarts=self.restarts,
        )
        self.health = HealthServer(
            listen=config.health.listen, health=self.health_report, metrics=self.metrics
        )

    # --- lifetime ------------------------------------------------------------------------

    async def run(self) -> None:
        now = self.clock()
        for lot_id in self.config.lots:
            self._refresh_lot(lot_id, now)
        self._refresh_zones(now)
        self._project_all_signs()
        try:
            await self.health.start()
        except OSError as exc:
            log.warning("health page not served on %s: %s", self.config.health.listen, exc)
        async with asyncio.TaskGroup() as group:

            def run_supervised(name: str, run: Callable[[], object]) -> None:
                group.create_task(
                    supervised(name, run, restarts=self.restarts),  # type: ignore[arg-type]
                    name=name,
                )

            run_supervised("uplink", self.uplink.run)
            for name, line in self.lines.items():
                run_supervised(f"serial:{name}", line.run)
            for bus_id, bus in self.buses.items():
                run_supervised(f"signs:{bus_id}", bus.run)
            run_supervised("clock", self._clock_loop)
            run_supervised("status", self._status_loop)
            if self.health._server is not None:
                run_supervised("health", self.health.run)

    async def _clock_loop(self) -> None:
        """Wake at the next deadline: a sensor's heartbeat expiry, an override's end."""
        while True:
            now = self.clock()
            deadlines = [
                d
                for d in (self.occupancy.next_deadline(), self.zones.next_deadline())
                if d is not None
            ]
            deadlines += [until for _, until in self.overrides.values()]
            delay = max(0.0, min(deadlines) - now) if deadlines else 60.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 60.0) + 0.001)
            now = self.clock()
            changes, notices = self.occupancy.tick(now)
            self._apply(changes, notices, now)
            self._refresh_zones(now)
            expired = [s for s, (_, until) in self.overrides.items() if until <= now]
            for sign_id in expired:
                log.info("override of sign %s ended", sign_id)
                del self.overrides[sign_id]
                self._project_sign(sign_id)

    def wake(self) -> None:
        """Look at every deadline again now (the clock was stepped, or a test moved it)."""
        self._wake.set()

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.health.status_interval_s)
            self.uplink.publish_state(self.topics.status, self.birth())

    # --- inputs --------------------------------------------------------------------------

    def _on_observation(self, obs: SensorObservation) -> None:
        changes, notices = self.occupancy.observe(obs)
        self._apply(changes, notices, obs.received_at)
        self._wake.set()

    def _apply(self, changes: list[BayChange], notices: list[SensorNotice], now: float) -> None:
        lots: set[str] = set()
        for change in changes:
            self.uplink.emit(
                BayChanged(
                    bay_id=change.bay_id,
                    lot_id=change.lot_id,
                    zone_id=change.zone_id,
                    from_state=BayOccupancy(change.previous),
                    to_state=BayOccupancy(change.current),
                    sensor_id=change.sensor_id,
                    sensor_ts=utc(change.at),
                ),
                ts=utc(now),
            )
            self.uplink.publish_state(self.topics.bay(change.bay_id), self.bay_state(change.bay_id))
            if change.lot_id is not None:
                lots.add(change.lot_id)
        for notice in notices:
            self._on_sensor_notice(notice)
        for lot_id in lots:
            self._refresh_lot(lot_id, now)
        if any(change.zone_id is not None for change in changes):
            self._refresh_zones(now)

    def _on_sensor_notice(self, notice: SensorNotice) -> None:
        at = utc(notice.at)
        alert_id = f"sensor-silent-{notice.sensor_id}"
        if notice.kind == "unknown_sensor":
            log.warning("%s", notice.detail)
        elif notice.kind == "silent":
            self.uplink.emit(
                SensorFault(
                    sensor_id=notice.sensor_id,
                    bay_id=notice.bay_id,
                    fault=SensorFaultType.SILENT,
                    detail=notice.detail,
                ),
                ts=at,
            )
            self._raise_alert(
                AlertRaised(
                    alert_id=alert_id,
                    alert_type=AlertType.SENSOR_SILENT,
                    severity=Severity.WARNING,
                    since=at,
                    bay_id=notice.bay_id,
                    sensor_id=notice.sensor_id,
                    message=f"sensor {notice.sensor_id} of bay {notice.bay_id}: {notice.detail}",
                )
            )
        elif notice.kind == "recovered":
            self.uplink.emit(
                SensorRecovered(
                    sensor_id=notice.sensor_id, bay_id=notice.bay_id, fault=SensorFaultType.SILENT
                ),
                ts=at,
            )
            self._resolve_alert(alert_id, "sensor heard again", at)
        elif notice.kind == "implausible":
            self.uplink.emit(
                SensorFault(
                    sensor_id=notice.sensor_id,
                    bay_id=notice.bay_id,
                    fault=SensorFaultType.IMPLAUSIBLE,
                    detail=notice.detail,
                ),
                ts=at,
            )

    def _raise_alert(self, alert: AlertRaised) -> None:
        if alert.alert_id in self._open_alerts:
            return
        self._open_alerts[alert.alert_id] = alert
        self.uplink.emit(alert, ts=alert.since)

    def _resolve_alert(self, alert_id: str, message: str, at: datetime) -> None:
        alert = self._open_alerts.pop(alert_id, None)
        if alert is None:
            return
        self.uplink.emit(
            AlertResolved(
                alert_id=alert_id,
                alert_type=alert.alert_type,
                since=alert.since,
                message=message,
                lot_id=alert.lot_id,
                zone_id=alert.zone_id,
                bay_id=alert.bay_id,
                sign_id=alert.sign_id,
                sensor_id=alert.sensor_id,
            ),
            ts=at,
        )

    def _on_sign_event(self, event: SignBusEvent) -> None:
        if event.sign_id is None:
            log.info("sign bus %s: %s %s", event.bus_id, event.kind, event.reason)
            return
        _, sign = self.signs[event.sign_id]
        at = utc(self.clock())
        alert_id = f"sign-down-{event.sign_id}"
        if event.kind is SignBusEventKind.UNIT_DOWN:
            self.uplink.emit(
                SignFault(
                    sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit, reason=event.reason
                ),
                ts=at,
            )
            self._raise_alert(
                AlertRaised(
                    alert_id=alert_id,
                    alert_type=AlertType.SIGN_DOWN,
                    severity=Severity.WARNING,
                    since=at,
                    sign_id=event.sign_id,
                    lot_id=sign.lot,
                    message=f"sign {event.sign_id} (bus {event.bus_id}, unit {sign.unit}) "
                    f"does not answer: {event.reason}",
                )
            )
        elif event.kind is SignBusEventKind.UNIT_UP:
            self.uplink.emit(
                SignRecovered(sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit), ts=at
            )
            self._resolve_alert(alert_id, "sign answers again", at)
        elif event.kind is SignBusEventKind.VERIFIED:
            wrong_id = f"sign-wrong-{event.sign_id}"
            if wrong_id in self._open_alerts:
                self._resolve_alert(wrong_id, f"sign {event.sign_id} {event.reason}", at)
            elif not self._sign_news(event.sign_id):
                return  # a routine read-back that matched: last_verified moves on quietly
        else:
            self._sign_wrong(event, sign, at)
        self._publish_sign(event.sign_id)

    def _sign_news(self, sign_id: str) -> bool:
        """Whether a matching read-back is worth a sign state: what the sign shows changed
        since the last one sent, or that one is older than SIGN_VERIFIED_REPUBLISH_S."""
        last = self._sign_published.get(sign_id)
        state = self.sign_state(sign_id)
        if last is None or state is None:
            return True
        at, sent = last
        return sent.shown != state.shown or self.clock() - at >= SIGN_VERIFIED_REPUBLISH_S

    def _sign_wrong(self, event: SignBusEvent, sign: SignConfig, at: datetime) -> None:
        """A reboot, a read-back mismatch or an expired watchdog: report it, raise an alert."""
        assert event.sign_id is not None
        status = self.buses[event.bus_id].status(event.sign_id)
        if status.problem is None:
            return  # e.g. a fault bit that does not change what the sign shows
        self.uplink.emit(
            SignFault(
                sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit, reason=status.problem
            ),
            ts=at,
        )
        since = utc(status.wrong_since) if status.wrong_since is not None else at
        self._raise_alert(
            AlertRaised(
                alert_id=f"sign-wrong-{event.sign_id}",
                alert_type=AlertType.SIGN_WRONG,
                severity=Severity.WARNING,
                since=since,
                sign_id=event.sign_id,
                lot_id=sign.lot,
                zone_id=sign.zone,
                message=f"sign {event.sign_id} (bus {event.bus_id}, unit {sign.unit}) "
                f"{status.problem}; the box is rewriting it",
            )
        )

    def _on_connection(self, up: bool) -> None:
        if up != self.network_up:
            self.network_up = up
            self._project_all_signs()

    def _on_remote_lot(self, box_id: str, state: LotState) -> None:
        if box_id == self.config.box_id or state.lot_id in self.config.lots:
            return
        self.remote_lots[state.lot_id] = (box_id, state)
        self._project_all_signs()

    def _on_remote_box(self, box_id: str, online: bool) -> None:
        if box_id == self.config.box_id:
            return
        self.remote_boxes[box_id] = online
        self._project_all_signs()

    async def on_command(self, command: Command) -> CommandReply:
        return await self.commands.run(command)

    def _close_or_open_bay(self, command: Command, now: float) -> str | None:
        """The ``close-bay`` and ``open-bay`` commands."""
        body = command.body
        assert isinstance(body, CloseBay | OpenBay)  # the command table sends only these
        if body.bay_id not in self.occupancy.bays:
            return f"no bay {body.bay_id} on this box"
        act = self.occupancy.close_bay if isinstance(body, CloseBay) else self.occupancy.open_bay
        log.info("%s %s by command %s", body.command, body.bay_id, command.command_id)
        self._apply(act(body.bay_id, now), [], now)
        return None

    def _sign_override(self, command: Command, now: float) -> str | None:
        body = command.body
        assert isinstance(body, SignOverride)  # the command table sends only these
        return self._override(body.sign_id, body.display, body.until)

    def _zone_schedule(self, command: Command, now: float) -> str | None:
        body = command.body
        assert isinstance(body, ZoneScheduleCommand)  # the command table sends only these
        try:
            outcome = self.zones.install(body.schedule, now)
        except ScheduleRejected as exc:
            return exc.reason
        log.info("zone-schedule by command %s: %s", command.command_id, outcome)
        self._refresh_zones(now)
        self.uplink.publish_state(self.topics.status, self.birth())  # its version
        self._wake.set()
        return None

    def _override(self, sign_id: str, wanted: object, until: datetime | None) -> str | None:
        if sign_id not in self.signs:
            return f"no sign {sign_id} on this box"
        if wanted is None:
            self.overrides.pop(sign_id, None)
            self._project_sign(sign_id)
            return None
        _, sign = self.signs[sign_id]
        try:
            display = from_override(sign.profile, wanted, brightness=sign.brightness)  # type: ignore[arg-type]
        except UnsupportedDisplay as exc:
            return str(exc)
        assert until is not None  # the model refuses an override without an end
        self.overrides[sign_id] = (display, until.timestamp())
        self._project_sign(sign_id)
        self._wake.set()
        return None

    # --- outputs -------------------------------------------------------------------------

    def _refresh_zones(self, now: float) -> None:
        """Run the zone tables; publish what they produced and redraw the zones' signs."""
        if not self.zones.zones:
            return
        version = self.zones.schedule_version
        bays = {
            bay_id: BayView(bay.state, bay.since)
            for bay_id, bay in self.occupancy.bays.items()
            if bay.zone_id is not None
        }
        update = self.zones.evaluate(now, bays)
        for body, at in update.events:
            self.uplink.emit(body, ts=utc(at))
        for state in update.states:
            self.uplink.publish_state(self.topics.zone(state.zone_id), state)
        for sign_id, (_, sign) in self.signs.items():
            if sign.zone is not None and sign.zone in update.zones_redrawn:
                self._project_sign(sign_id)
        if self.zones.schedule_version != version:
            self.uplink.publish_state(self.topics.status, self.birth())

    def _refresh_lot(self, lot_id: str, now: float) -> None:
        snapshot = self.occupancy.lot_snapshot(lot_id, now)
        previous = self._lot_snapshots.get(lot_id)
        self._lot_snapshots[lot_id] = snapshot
        if previous is not None and _same_figures(previous, snapshot):
            return
        self.uplink.publish_state(self.topics.lot(lot_id), self.lot_state(snapshot))
        self._project_all_signs()

    def _remote_view(self) -> dict[str, RemoteLot]:
        """Every lot a sign may point to: the other boxes' (as MQTT says) and this box's."""
        view = {
            lot_id: RemoteLot(
                lot_id=lot_id,
                free=state.free,
                status=state.status.value,
                # A box never heard (no status yet, or none we may read) is not trusted:
                # its lot's figures may be from before it died.
                box_online=self.remote_boxes.get(box_id, False),
            )
            for lot_id, (box_id, state) in self.remote_lots.items()
        }
        for lot_id, snap in self._lot_snapshots.items():
            view[lot_id] = RemoteLot(
                lot_id=lot_id, free=snap.free, status=snap.status, box_online=True
            )
        return view

    def _project_all_signs(self) -> None:
        for sign_id in self.signs:
            self._project_sign(sign_id)

    def _project_sign(self, sign_id: str) -> None:
        bus_id, _ = self.signs[sign_id]
        display = self.projection(sign_id)
        if display is None or self.shown.get(sign_id) == display:
            return
        try:
            self.buses[bus_id].set_display(sign_id, display)
        except EncodeError as exc:
            log.error("sign %s cannot show %s: %s", sign_id, display, exc)
            return
        self.shown[sign_id] = display
        self._publish_sign(sign_id)

    def projection(self, sign_id: str) -> Display | None:
        """What ``sign_id`` should show now."""
        _, sign = self.signs[sign_id]
        override = self.overrides.get(sign_id)
        if override is not None:
            return override[0]
        project = LOT_PROJECTIONS.get(sign.profile)
        if project is not None and sign.lot is not None:
            snapshot = self._lot_snapshots.get(sign.lot)
            if snapshot is None:
                return None
            remote = self._remote_view()
            remote.pop(sign.lot, None)
            # Offline, remote figures may be stale: only this box's own lots stay eligible.
            network_up = self.network_up or any(t.lot in self.config.lots for t in sign.fallback)
            if not self.network_up:
                remote = {k: v for k, v in remote.items() if k in self.config.lots}
            return project(sign, snapshot, remote, network_up=network_up)
        if sign.zone is not None:
            return self.zones.display(sign.zone, brightness=sign.brightness)
        if sign.message is not None:
            return fixed_warning_display(sign)
        return None

    def _publish_sign(self, sign_id: str) -> None:
        state = self.sign_state(sign_id)
        if state is not None:
            self._sign_published[sign_id] = (self.clock(), state)
            self.uplink.publish_state(self.topics.sign(sign_id), state)

    def sign_state(self, sign_id: str) -> SignState | None:
        """What ``sign_id`` shows and whether it answers; None before its first display."""
        bus_id, sign = self.signs[sign_id]
        display = self.shown.get(sign_id)
        if display is None:
            return None
        override = self.overrides.get(sign_id)
        status = self.buses[bus_id].status(sign_id)
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
            override_until=utc(override[1]) if override else None,
            shown=shown,
            problem=status.problem,
            wrong_since=utc(status.wrong_since) if status.wrong_since is not None else None,
            faults=sorted(faults),
            reboots=status.counters.reboots_seen,
            mismatches=status.counters.verify_mismatches,
            ts=utc(self.clock()),
        )

    def bay_state(self, bay_id: str) -> BayState:
        bay = self.occupancy.bays[bay_id]
        health = bay.health
        flags = [SensorFlag.IMPLAUSIBLE] if health.implausible else []
        if health.battery_health in ("low", "critical"):
            flags.append(SensorFlag.LOW_BATTERY)
        if bay.state == "unknown" and health.fault:
            flags.append(SensorFlag.FAULT)
        elif bay.state == "unknown" and health.last_seen is not None:
            flags.append(SensorFlag.SILENT)
        return BayState(
            bay_id=bay_id,
            lot_id=bay.lot_id,
            zone_id=bay.zone_id,
            state=BayOccupancy(bay.state),
            since=utc(bay.since),
            sensor=SensorInfo(
                sensor_id=bay.sensor_id,
                battery_mv=health.battery_mv,
                temperature_c=health.temperature_c,
                rssi_dbm=health.rssi_dbm,
                snr_db=health.snr_db,
                last_seen=utc(health.last_seen) if health.last_seen is not None else None,
                flags=tuple(flags),
            ),
            ts=utc(self.clock()),
        )

    def lot_state(self, snapshot: LotSnapshot) -> LotState:
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

    def states(self) -> Iterable[tuple[str, BaseModel]]:
        """Every retained state of the box, for birth and rebirth."""
        for lot_id, snapshot in self._lot_snapshots.items():
            yield self.topics.lot(lot_id), self.lot_state(snapshot)
        for bay_id in self.occupancy.bays:
            yield self.topics.bay(bay_id), self.bay_state(bay_id)
        for zone_id in self.zones.zones:
            yield self.topics.zone(zone_id), self.zones.zone_state(zone_id, self.clock())
        for sign_id in self.signs:
            state = self.sign_state(sign_id)
            if state is not None:
                yield self.topics.sign(sign_id), state

    def birth(self) -> BoxStatus:
        clock = read_clock()
        return BoxStatus(
            box_id=self.config.box_id,
            state=Online.ONLINE,
            boot_id=self.boot_id,
            ts=utc(self.clock()),
            software_version=SOFTWARE_VERSION,
            config_hash=self.config_digest,
            sensor_count=len(self.occupancy.bays),
            clock=ClockStatus(
                synchronised=clock.synchronised,
                offset_s=None,
                source=clock.source,
            ),
            zone_schedule_version=self.zones.schedule_version if self.config.zones else None,
            health=self.health_summary(),
        )

    def health_summary(self) -> HealthSummary:
        return box_health.health_summary(self._health_sources)

    def health_report(self) -> HealthReport:
        return box_health.health_report(self._health_sources)

    def metrics(self) -> list[Metric]:
        return box_health.box_metrics(self._health_sources)


def _same_figures(a: LotSnapshot, b: LotSnapshot) -> bool:
    return (a.free, a.occupied, a.unknown, a.closed, a.status, a.trend) == (
        b.free,
        b.occupied,
        b.unknown,
        b.closed,
        b.status,
        b.trend,
    )


def run_box(config: EdgeConfig, *, config_path: Path, log_level: str = "INFO") -> int:
    """The ``parkgrid edge run`` process: run until SIGTERM or SIGINT, then drain and exit."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    digest = f"sha256:{config_hash(config_path)}"

    async def main() -> None:
        # Built inside the loop: the Modbus clients bind to the running loop.
        box = EdgeBox(config, config_digest=digest)
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        log.info(
            "box %s of site %s starting: %d bay(s), %d line(s), %d sign(s)",
            config.box_id,
            config.site,
            len(box.occupancy.bays),
            len(box.lines),
            len(box.signs),
        )
        try:
            await box.run()
        except asyncio.CancelledError:
            log.info("stopping")
        finally:
            box.outbox.close()

    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    log.info("stopped after %.1f s", time.monotonic() - started)
    return 0
