"""Stall zones: the schedule's phase, the zone state machine, violations and their ladder.

Theory of operation
-------------------
Each zone runs two tables (state machines are tables: docs/architecture.md), both driven by
``now`` and the occupancy of the zone's bays, both re-evaluated whenever a bay changes or a deadline
(:meth:`ZoneAgent.next_deadline`) passes:

1. **The zone table** ``ZONE_TABLE[(state, phase)] -> (action, next_state)``. The input is
   the phase the schedule gives for ``now`` (``edge.schedule.phase_at``), never a remembered
   "the window just ended", so a box started in the middle of a window, or whose clock an
   NTP step moved by hours either way, lands in the phase that is true now and takes the
   table's row for that jump. Actions: ``derive`` (first look after start: publish, no
   transition event: nothing was seen to change), ``announce`` (a ``ZoneTransition`` event,
   state and signs), ``sign`` (open <-> closing soon: only the signs change, the uplink state
   stays ``open``), ``none``.

2. **The bay table** ``BAY_TABLE[(watch, condition)] -> (action, next_watch)``, one watch
   per bay. The condition is ``ok`` (free, or the zone trades), ``unknown`` (the sensor
   cannot vouch either way: nothing is raised and nothing resolved), ``waiting`` (occupied
   while the zone does not trade, no ladder step due yet) or ``due`` (a ladder step beyond
   the one raised is due)::

        clear --waiting--> pending --due--> alerted --due--> alerted (next step)
          ^                   |                |
          +-------ok----------+<------ok-------+  (resolve: space empty, or zone trades)

A violation begins at ``since = max(zone closed at, bay occupied at)``; ladder step ``k`` is
due at ``since + grace_s + ladder[k].after_s``. A bay occupied when the window ended gives a
``zone_overstay`` alert (the vendor stayed), one occupied later ``bay_occupied_while_closed``.
Alert ids are ``zone-<zone>-<bay>-<since>``: every step and the resolution carry the same id,
and the open alerts are kept on disk (``edge.zones_store``) so a restart neither raises a
duplicate nor forgets to resolve.

Schedule documents from central (``cmd/zone-schedule``) are validated against the box's
zones, staged until their effective time, kept with the one they replace (rollback), and
stored in ``data_dir`` so a restart runs the same version. A zone the document does not name
keeps the schedule of the config file. Version 0 is the config file's own schedule.

The agent emits uplink models (``ZoneState``, ``ZoneTransition``, ``AlertRaised``,
``AlertResolved``) and warning-sign displays; the box runtime publishes them.

Its rooms: ``zone_tables`` (the two tables, as data), ``zone_rules`` (a zone's rules from the
config or a schedule document, and the document check); this module runs them for every zone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from edge.agents.zone_rules import (
    ScheduleRejected,
    check_document,
    rules_from_config,
    rules_from_document,
)
from edge.agents.zone_tables import (
    UPLINK_STATE,
    BayCondition,
    BayOccupancy,
    BayWatch,
    ZoneStateName,
    bay_step,
    zone_step,
)
from edge.config import EdgeConfig, ZoneConfig
from edge.schedule import (
    Interval,
    Phase,
    ZoneRules,
    next_step_at,
    phase_at,
    step_due,
)
from edge.zones_store import AlertStore, OpenAlert, ScheduleStore
from firmware_protocols.signs import Message, WarningDisplay
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertResolved,
    AlertType,
    ScheduleDocument,
    Severity,
    Window,
    ZoneClass,
    ZoneSchedule,
    ZoneState,
    ZoneTransition,
)

__all__ = ["BayView", "ScheduleRejected", "ZoneAgent", "ZoneUpdate", "alert_id_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BayView:
    """A zone bay as occupancy sees it: its state and since when."""

    state: BayOccupancy
    since: float


@dataclass(slots=True)
class _Watch:
    watch: BayWatch = "clear"
    since: float = 0.0
    step: int = -1
    alert_type: AlertType = AlertType.BAY_OCCUPIED_WHILE_CLOSED
    alert_id: str = ""


@dataclass(slots=True)
class _Zone:
    zone_id: str
    config: ZoneConfig
    rules: ZoneRules
    state: ZoneStateName = "starting"
    phase: Phase | None = None
    occupied: int = 0
    watches: dict[str, _Watch] = field(default_factory=dict)
    published: tuple[object, ...] | None = None


@dataclass(slots=True)
class ZoneUpdate:
    """What one evaluation produced, in order: events to emit, states to publish, signs."""

    events: list[tuple[BaseModel, float]] = field(default_factory=list)
    states: list[ZoneState] = field(default_factory=list)
    zones_redrawn: set[str] = field(default_factory=set)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def alert_id_for(zone_id: str, bay_id: str, since: float) -> str:
    """Stable across steps and restarts: the zone, the bay and when the violation began."""
    candidate = f"zone-{zone_id}-{bay_id}-{int(since)}"
    if len(candidate) <= 64:
        return candidate
    digest = hashlib.sha256(candidate.encode()).hexdigest()[:40]
    return f"zone-{digest}"


class ZoneAgent:
    """Every stall zone of one box. Not thread-safe: the box's event loop owns it."""

    def __init__(self, config: EdgeConfig, *, data_dir: Path, now: float) -> None:
        self._config = config
        self._tz = config.tz
        self.schedules = ScheduleStore(data_dir)
        self.alerts = AlertStore(data_dir)
        self._now = now
        self.zones: dict[str, _Zone] = {}
        self.bay_zone: dict[str, str] = {
            bay_id: zone_id for zone_id, bay_id, _ in config.zone_bays()
        }
        self._stale: list[OpenAlert] = []
        self._build_rules()
        for alert in self.alerts.alerts.values():
            zone = self.zones.get(alert.zone_id)
            if zone is None or alert.bay_id not in zone.config.bays:
                self._stale.append(alert)  # the bay is gone from the config: close it
                continue
            zone.watches[alert.bay_id] = _Watch(
                watch="alerted",
                since=alert.since,
                step=alert.step,
                alert_type=AlertType(alert.alert_type),
                alert_id=alert.alert_id,
            )

    # -- schedule -------------------------------------------------------------------------

    @property
    def schedule_version(self) -> int:
        current = self.schedules.current
        return current.version if current is not None else 0

    def _build_rules(self) -> None:
        current = self.schedules.current
        entries: dict[str, ZoneSchedule] = {}
        tz = self._tz
        if current is not None:
            tz = ZoneInfo(current.timezone)
            entries = {entry.zone_id: entry for entry in current.zones}
        for zone_id, zone_cfg in self._config.zones.items():
            entry = entries.get(zone_id)
            if entry is not None and current is not None:
                rules = rules_from_document(entry, zone_cfg, tz, current.version)
            else:
                rules = rules_from_config(zone_id, zone_cfg, self._tz)
                if current is not None:
                    rules = replace(rules, version=current.version)
            zone = self.zones.get(zone_id)
            if zone is None:
                self.zones[zone_id] = _Zone(zone_id=zone_id, config=zone_cfg, rules=rules)
            else:
                zone.rules = rules

    def install(self, document: ScheduleDocument, now: float) -> str:
        """Take a schedule document from central; say what was done, or raise
        ``ScheduleRejected``. The caller evaluates afterwards."""
        check_document(document, self._config.zones)
        held = [d for d in (self.schedules.current, self.schedules.pending) if d is not None]
        for doc in held:
            if doc.version == document.version:
                if doc == document:
                    return f"version {document.version} already held"
                raise ScheduleRejected(
                    document.version, "a different document already has this version"
                )
        newest = max((d.version for d in held), default=0)
        if document.version < newest:
            raise ScheduleRejected(
                document.version, f"older than version {newest}, which this box holds"
            )
        self.schedules.stage(document, now)
        if self.schedules.current is document:
            self._build_rules()
            log.info("zone schedule version %d in force", document.version)
            return f"version {document.version} in force"
        log.info(
            "zone schedule version %d staged for %s",
            document.version,
            document.effective_from.isoformat(),
        )
        return f"version {document.version} staged for {document.effective_from.isoformat()}"

    def rollback(self) -> int:
        """Run the schedule in force before the current one again; return its version."""
        if self.schedules.rollback():
            self._build_rules()
        return self.schedule_version

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, now: float, bays: Mapping[str, BayView]) -> ZoneUpdate:
        """Run both tables for every zone at ``now`` with the zone bays' occupancy."""
        self._now = now
        update = ZoneUpdate()
        if self.schedules.promote(now):
            log.info("zone schedule version %d in force", self.schedule_version)
            self._build_rules()
        for alert in self._stale:
            self._resolve_record(alert, "bay no longer configured", now, update)
        self._stale.clear()
        for zone in self.zones.values():
            self._evaluate_zone(zone, now, bays, update)
        return update

    def _evaluate_zone(
        self, zone: _Zone, now: float, bays: Mapping[str, BayView], update: ZoneUpdate
    ) -> None:
        phase = phase_at(zone.rules, now)
        action, next_state = zone_step(zone.state, phase.name)
        previous = zone.state
        zone.state, zone.phase = next_state, phase
        if action == "announce":
            log.info("zone %s: %s -> %s", zone.zone_id, previous, next_state)
            if previous != "starting" and UPLINK_STATE[previous] != UPLINK_STATE[next_state]:
                update.events.append(
                    (
                        ZoneTransition(
                            zone_id=zone.zone_id,
                            from_state=UPLINK_STATE[previous],
                            to_state=UPLINK_STATE[next_state],
                            window=_window(phase.window),
                            schedule_version=zone.rules.version,
                        ),
                        now,
                    )
                )
        if action != "none":
            update.zones_redrawn.add(zone.zone_id)
        violating_before = self.violating(zone.zone_id)
        occupied = 0
        for bay_id in zone.config.bays:
            view = bays.get(bay_id, BayView("unknown", now))
            occupied += view.state == "occupied"
            self._evaluate_bay(zone, bay_id, view, phase, now, update)
        if self.violating(zone.zone_id) != violating_before:
            update.zones_redrawn.add(zone.zone_id)
        zone.occupied = occupied
        state = self.zone_state(zone.zone_id, now)
        key = (
            state.state,
            state.window,
            state.next_transition,
            state.occupied,
            state.schedule_version,
        )
        if key != zone.published:
            zone.published = key
            update.states.append(state)

    def _evaluate_bay(
        self,
        zone: _Zone,
        bay_id: str,
        view: BayView,
        phase: Phase,
        now: float,
        update: ZoneUpdate,
    ) -> None:
        watch = zone.watches.setdefault(bay_id, _Watch())
        trading = phase.name in ("open", "closing_soon")
        since = watch.since
        if watch.watch == "clear" and view.state == "occupied":
            closed_at = phase.closed_since if phase.closed_since is not None else view.since
            since = max(closed_at, view.since)
        condition: BayCondition
        if trading or view.state in ("free", "closed"):
            condition = "ok"
        elif view.state == "unknown":
            condition = "unknown"
        elif step_due(zone.rules, since, now) > (watch.step if watch.watch == "alerted" else -1):
            condition = "due"
        else:
            condition = "waiting"
        action, next_watch = bay_step(watch.watch, condition)
        if action in ("watch", "raise") and watch.watch == "clear":
            watch.since = since
            overstay = phase.closed_since is not None and view.since <= phase.closed_since
            watch.alert_type = (
                AlertType.ZONE_OVERSTAY if overstay else AlertType.BAY_OCCUPIED_WHILE_CLOSED
            )
            watch.alert_id = alert_id_for(zone.zone_id, bay_id, since)
            watch.step = -1
        if action in ("raise", "escalate"):
            watch.step = step_due(zone.rules, watch.since, now)
            self._raise(zone, bay_id, watch, update, now)
        elif action == "resolve":
            reason = "zone trading again" if trading else "space empty"
            self._resolve(zone, bay_id, watch, reason, now, update)
        elif action == "forget":
            watch.step = -1
        watch.watch = next_watch

    def _raise(
        self, zone: _Zone, bay_id: str, watch: _Watch, update: ZoneUpdate, now: float
    ) -> None:
        step = zone.rules.ladder[watch.step]
        name = zone.config.name or zone.zone_id
        local = dt.datetime.fromtimestamp(watch.since, zone.rules.tz).strftime("%Y-%m-%d %H:%M")
        what = (
            "still occupied after the zone closed"
            if watch.alert_type is AlertType.ZONE_OVERSTAY
            else "occupied while the zone is closed"
        )
        self.alerts.put(
            OpenAlert(
                alert_id=watch.alert_id,
                alert_type=watch.alert_type.value,
                zone_id=zone.zone_id,
                bay_id=bay_id,
                since=watch.since,
                step=watch.step,
            )
        )
        update.events.append(
            (
                AlertRaised(
                    alert_id=watch.alert_id,
                    alert_type=watch.alert_type,
                    severity=Severity(step.severity),
                    step=watch.step,
                    since=_utc(watch.since),
                    message=f"{zone.rules.zone_class} zone {name}: bay {bay_id} {what} "
                    f"since {local} (step {watch.step + 1} of {len(zone.rules.ladder)}, "
                    f"{step.severity})",
                    zone_id=zone.zone_id,
                    bay_id=bay_id,
                ),
                now,
            )
        )

    def _resolve(
        self, zone: _Zone, bay_id: str, watch: _Watch, reason: str, now: float, update: ZoneUpdate
    ) -> None:
        record = OpenAlert(
            alert_id=watch.alert_id,
            alert_type=watch.alert_type.value,
            zone_id=zone.zone_id,
            bay_id=bay_id,
            since=watch.since,
            step=watch.step,
        )
        self._resolve_record(record, reason, now, update)
        watch.step = -1

    def _resolve_record(
        self, alert: OpenAlert, reason: str, now: float, update: ZoneUpdate
    ) -> None:
        self.alerts.drop(alert.alert_id)
        update.events.append(
            (
                AlertResolved(
                    alert_id=alert.alert_id,
                    alert_type=AlertType(alert.alert_type),
                    since=_utc(alert.since),
                    message=reason,
                    zone_id=alert.zone_id,
                    bay_id=alert.bay_id,
                ),
                now,
            )
        )

    # -- outputs --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The next instant an evaluation can change something (after the last ``now``)."""
        deadlines: list[float] = []
        pending = self.schedules.pending
        if pending is not None:
            deadlines.append(pending.effective_from.timestamp())
        for zone in self.zones.values():
            if zone.phase is not None and zone.phase.next_change is not None:
                deadlines.append(zone.phase.next_change)
            for watch in zone.watches.values():
                if watch.watch != "clear":
                    at = next_step_at(zone.rules, watch.since, watch.step)
                    if at is not None:
                        deadlines.append(at)
        # A step whose bay is unknown stays due without firing: never wake for it in a loop.
        return min((d for d in deadlines if d > self._now), default=None)

    def state_name(self, zone_id: str) -> ZoneStateName:
        return self.zones[zone_id].state

    def violating(self, zone_id: str) -> list[str]:
        """The zone's bays occupied out of hours (in grace or alerted), sorted."""
        return sorted(b for b, w in self.zones[zone_id].watches.items() if w.watch != "clear")

    def zone_state(self, zone_id: str, now: float) -> ZoneState:
        zone = self.zones[zone_id]
        phase = zone.phase or phase_at(zone.rules, now)
        state = zone.state if zone.state != "starting" else phase.name
        return ZoneState(
            zone_id=zone_id,
            zone_class=ZoneClass(zone.rules.zone_class),
            state=UPLINK_STATE[state],
            window=_window(phase.window),
            next_transition=_utc(phase.state_ends) if phase.state_ends is not None else None,
            occupied=zone.occupied,
            schedule_version=zone.rules.version,
            ts=_utc(now),
        )

    def display(self, zone_id: str, *, brightness: int) -> WarningDisplay:
        """What the zone's warning signs show: the configured message for its state,
        flashing during the grace period and while a space is occupied out of hours."""
        zone = self.zones[zone_id]
        state = zone.state if zone.state != "starting" else "closed"
        name = getattr(zone.config.messages, state)
        flashing = state == "closing" or bool(self.violating(zone_id))
        return WarningDisplay(
            message=Message[name.upper()], flashing=flashing, brightness=brightness
        )


def _window(interval: Interval | None) -> Window | None:
    if interval is None:
        return None
    return Window(start=_utc(interval.start), end=_utc(interval.end))
