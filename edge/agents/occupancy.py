"""Occupancy: from sensor readings to bay states, lot figures and sensor health.

Theory of operation
-------------------
Each bay follows its sensor. A bay is ``occupied`` or ``free`` as the sensor last said,
``unknown`` when the sensor has been silent past its heartbeat timeout (the availability
rule's ``sensor_silent``, site_model/availability.py) or reports a fault,
and ``closed`` while staff have taken it out of service (the sensor is still followed
underneath, so reopening returns the bay to what its sensor says). Unknown bays never count
as free: drivers must not be sent to a space nobody can vouch for.

A *stored* uplink (the concentrator's replay of the last frame it heard from each sensor,
``SensorObservation.stored_age_s``, asked for when the box opens its line) counts as if
heard ``stored_age_s`` ago: ``since`` and ``last_seen`` are set back by its age, so the
silence timeout runs from when the sensor really spoke, and one older than the timeout
leaves the bay as it is. A stored uplink no newer than what the bay already knows (a live
frame, or the box's bay memory) is ignored: the newest word wins.

An optional flap filter (``min_dwell_s``) holds a new sensor state back until it has lasted
that long; the change is then dated from when it began, so history stays true.

A lot's figures are counts of its bays' states. Its status follows DATEX II
(``spacesAvailable``, ``almostFull``, ``full``, ``closed``). Almost full has separate
increasing and decreasing thresholds, so a lot hovering near one does not flicker between
green and amber (the count shown is true either way):

    occupancy% = (bays in service - free) / bays in service * 100

    spacesAvailable --(>= almost_full_increasing)--> almostFull --(free <= full_band)--> full
    spacesAvailable <--(<  almost_full_decreasing)-- almostFull <--(free >  full_band)--- full

Full has no hysteresis: a lot is full exactly while ``free <= full_band`` (per lot, default
0). A full lot's sign sends drivers on, so every second of "full" with a bay free turns a
driver away from a space; the band trades that against drivers who circle for the last
bay or two (docs/edge.md, "The full band").

A lot with no bay in service is ``closed``. The trend compares the occupied count with what it
was ``[sensors] trend_window_s`` ago (15 minutes; a demo's faster town divides it by its
speed), occupied, not free, so bays leaving "unknown" are no trend.

Nothing here reads a clock: every method takes ``now`` (wall seconds), so tests move time by
hand and the box can compute when it next needs to look (``next_deadline``).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal

from edge.config import EdgeConfig
from edge.observations import SensorObservation
from site_model.availability import sensor_silent

BayStateName = Literal["free", "occupied", "unknown", "closed"]
LotStatus = Literal["spacesAvailable", "almostFull", "full", "closed"]
Trend = Literal["filling", "emptying", "steady"]

BATTERY_PLAUSIBLE_MV = (2000, 4500)


@dataclass(slots=True)
class SensorHealth:
    """What we know of one sensor's health, updated from every frame it sends."""

    last_seen: float | None = None
    battery_mv: int | None = None
    battery_health: str | None = None
    temperature_c: float | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    firmware: str | None = None
    frames: int = 0
    frame_counter: int | None = None
    frame_counter_gaps: int = 0
    reset_causes: Counter[str] = field(default_factory=Counter)
    implausible: set[str] = field(default_factory=set)
    fault: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "last_seen": self.last_seen,
            "battery_mv": self.battery_mv,
            "battery_health": self.battery_health,
            "temperature_c": self.temperature_c,
            "rssi_dbm": self.rssi_dbm,
            "snr_db": self.snr_db,
            "firmware": self.firmware,
            "frames": self.frames,
            "frame_counter_gaps": self.frame_counter_gaps,
            "reset_causes": dict(self.reset_causes),
            "implausible": sorted(self.implausible),
            "fault": self.fault,
        }


@dataclass(slots=True)
class Bay:
    """One bay of a lot, or (``lot_id`` None, ``zone_id`` set) a stall pitch or kerb space."""

    bay_id: str
    lot_id: str | None
    sensor_id: str | None  # None: a bay listed with no sensor commissioned yet (unknown)
    heartbeat_timeout_s: float
    state: BayStateName = "unknown"
    since: float = 0.0
    sensor_occupied: bool | None = None
    pending: tuple[bool, float] | None = None
    closed: bool = False
    health: SensorHealth = field(default_factory=SensorHealth)
    zone_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BayChange:
    """A bay moved from one state to another; ``at`` is when it really happened."""

    bay_id: str
    lot_id: str | None
    sensor_id: str | None
    previous: BayStateName
    current: BayStateName
    at: float
    reason: Literal["sensor", "heartbeat_timeout", "fault", "closed", "reopened"]
    zone_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LotSnapshot:
    lot_id: str
    capacity: int
    free: int
    occupied: int
    unknown: int
    closed: int
    status: LotStatus
    trend: Trend
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorNotice:
    """Something about a sensor worth an event: it went silent or came back, a reset, ..."""

    sensor_id: str
    bay_id: str | None
    kind: Literal["unknown_sensor", "implausible", "reset", "silent", "recovered"]
    detail: str
    at: float


@dataclass(slots=True)
class _LotTrack:
    status: LotStatus = "spacesAvailable"
    history: deque[tuple[float, int]] = field(default_factory=deque)


class Occupancy:
    """Every bay and lot of one box. Not thread-safe: one task owns it."""

    def __init__(self, config: EdgeConfig, *, now: float) -> None:
        self._config = config
        self._min_dwell = config.sensors.min_dwell_s
        self._trend_window = config.sensors.trend_window_s
        self.bays: dict[str, Bay] = {}
        self._by_sensor: dict[str, Bay] = {}
        self._lot_bays: dict[str, list[Bay]] = {lot_id: [] for lot_id in config.lots}
        for lot_id, bay_id, bay_cfg in config.bays():
            timeout = bay_cfg.heartbeat_timeout_s or config.sensors.heartbeat_timeout_s
            bay = Bay(
                bay_id=bay_id,
                lot_id=lot_id,
                sensor_id=bay_cfg.sensor,
                heartbeat_timeout_s=timeout,
                since=now,
            )
            self.bays[bay_id] = bay
            self._by_sensor[bay_cfg.sensor] = bay
            self._lot_bays[lot_id].append(bay)
        # Stall pitches and kerb spaces follow their sensors the same way; no lot figures.
        for zone_id, bay_id, bay_cfg in config.zone_bays():
            timeout = bay_cfg.heartbeat_timeout_s or config.sensors.heartbeat_timeout_s
            bay = Bay(
                bay_id=bay_id,
                lot_id=None,
                zone_id=zone_id,
                sensor_id=bay_cfg.sensor,
                heartbeat_timeout_s=timeout,
                since=now,
            )
            self.bays[bay_id] = bay
            self._by_sensor[bay_cfg.sensor] = bay
        # Bays the site lists that no sensor is commissioned in yet: counted, always unknown.
        for in_lot, in_zone, bay_id in config.sensorless_bays():
            bay = Bay(
                bay_id=bay_id,
                lot_id=in_lot,
                zone_id=in_zone,
                sensor_id=None,
                heartbeat_timeout_s=config.sensors.heartbeat_timeout_s,
                since=now,
            )
            self.bays[bay_id] = bay
            if in_lot is not None:
                self._lot_bays[in_lot].append(bay)
        self._lots = {lot_id: _LotTrack() for lot_id in config.lots}
        self.unknown_sensors: Counter[str] = Counter()
        for lot_id in self._lots:
            self._record_trend(lot_id, now)

    # -- inputs ---------------------------------------------------------------------------

    def observe(self, obs: SensorObservation) -> tuple[list[BayChange], list[SensorNotice]]:
        """Apply one reading; return the bay changes and notices it caused."""
        now = obs.received_at
        bay = self._by_sensor.get(obs.sensor_id)
        if bay is None:
            self.unknown_sensors[obs.sensor_id] += 1
            if self.unknown_sensors[obs.sensor_id] == 1:
                notice = SensorNotice(
                    sensor_id=obs.sensor_id,
                    bay_id=None,
                    kind="unknown_sensor",
                    detail=f"sensor {obs.sensor_id} on line {obs.line} is not mapped to a bay",
                    at=now,
                )
                return [], [notice]
            return [], []
        if obs.stored_age_s is not None and not self._fresher(bay, obs, obs.stored_age_s):
            return [], []
        notices = self._update_health(bay, obs)
        was_silent = bay.state == "unknown" and not bay.health.fault and bay.health.frames > 1
        bay.health.fault = obs.fault
        changes: list[BayChange] = []
        if obs.fault:
            bay.pending = None
            self._set(bay, "unknown", now, "fault", changes)
            return changes, notices
        occupied = obs.reading.occupied
        if occupied is not None:
            changes.extend(self._sensor_says(bay, occupied, now))
        elif bay.state == "unknown" and bay.sensor_occupied is not None and not bay.closed:
            # A heartbeat without occupancy proves the sensor is alive again: its last
            # reported state stands.
            self._set(bay, "occupied" if bay.sensor_occupied else "free", now, "sensor", changes)
        if was_silent and bay.state != "unknown":
            notices.append(
                SensorNotice(
                    sensor_id=obs.sensor_id,
                    bay_id=bay.bay_id,
                    kind="recovered",
                    detail="sensor heard again",
                    at=now,
                )
            )
        return changes, notices

    def tick(self, now: float) -> tuple[list[BayChange], list[SensorNotice]]:
        """Expire silent sensors and settle held-back states; call at ``next_deadline()``."""
        changes: list[BayChange] = []
        notices: list[SensorNotice] = []
        for bay in self.bays.values():
            if bay.pending is not None and now - bay.pending[1] >= self._min_dwell:
                occupied, began = bay.pending
                bay.pending = None
                bay.sensor_occupied = occupied
                if not bay.closed:
                    self._set(bay, "occupied" if occupied else "free", began, "sensor", changes)
            last = bay.health.last_seen
            silent_since = last if last is not None else bay.since
            if (
                bay.sensor_id is not None
                and bay.state in ("free", "occupied")
                and sensor_silent(now - silent_since, bay.heartbeat_timeout_s)
            ):
                bay.pending = None
                self._set(bay, "unknown", now, "heartbeat_timeout", changes)
                notices.append(
                    SensorNotice(
                        sensor_id=bay.sensor_id,
                        bay_id=bay.bay_id,
                        kind="silent",
                        detail=f"no frame for {now - silent_since:.0f} s",
                        at=now,
                    )
                )
        return changes, notices

    def close_bay(self, bay_id: str, now: float) -> list[BayChange]:
        bay = self.bays[bay_id]
        bay.closed = True
        changes: list[BayChange] = []
        self._set(bay, "closed", now, "closed", changes)
        return changes

    def open_bay(self, bay_id: str, now: float) -> list[BayChange]:
        bay = self.bays[bay_id]
        bay.closed = False
        changes: list[BayChange] = []
        if bay.health.fault or bay.sensor_occupied is None or self._silent(bay, now):
            target: BayStateName = "unknown"
        else:
            target = "occupied" if bay.sensor_occupied else "free"
        self._set(bay, target, now, "reopened", changes)
        return changes

    # -- outputs --------------------------------------------------------------------------

    def lot_snapshot(self, lot_id: str, now: float) -> LotSnapshot:
        counts: Counter[str] = Counter(bay.state for bay in self._lot_bays[lot_id])
        capacity = len(self._lot_bays[lot_id])
        track = self._lots[lot_id]
        track.status = self._next_status(lot_id, track.status, counts, capacity)
        return LotSnapshot(
            lot_id=lot_id,
            capacity=capacity,
            free=counts["free"],
            occupied=counts["occupied"],
            unknown=counts["unknown"],
            closed=counts["closed"],
            status=track.status,
            trend=self._trend(lot_id, counts["occupied"], capacity, now),
            updated_at=now,
        )

    def lot_of(self, bay_id: str) -> str | None:
        return self.bays[bay_id].lot_id

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do, or None."""
        deadlines = []
        for bay in self.bays.values():
            if bay.pending is not None:
                deadlines.append(bay.pending[1] + self._min_dwell)
            if bay.state in ("free", "occupied"):
                last = bay.health.last_seen if bay.health.last_seen is not None else bay.since
                deadlines.append(last + bay.heartbeat_timeout_s)
        return min(deadlines, default=None)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _fresher(bay: Bay, obs: SensorObservation, age_s: float) -> bool:
        """A stored uplink counts only if newer than what the bay knows and not too old."""
        last = bay.health.last_seen
        if last is not None and last >= obs.received_at:
            return False
        return not sensor_silent(age_s, bay.heartbeat_timeout_s)

    def _silent(self, bay: Bay, now: float) -> bool:
        last = bay.health.last_seen
        return last is None or sensor_silent(now - last, bay.heartbeat_timeout_s)

    def _sensor_says(self, bay: Bay, occupied: bool, now: float) -> list[BayChange]:
        changes: list[BayChange] = []
        current = bay.sensor_occupied
        if self._min_dwell <= 0 or current is None or bay.state == "unknown":
            bay.pending = None
            bay.sensor_occupied = occupied
            if not bay.closed:
                self._set(bay, "occupied" if occupied else "free", now, "sensor", changes)
            return changes
        if occupied == current:
            bay.pending = None
        elif bay.pending is None or bay.pending[0] != occupied:
            bay.pending = (occupied, now)
        return changes

    def _set(
        self,
        bay: Bay,
        state: BayStateName,
        at: float,
        reason: Literal["sensor", "heartbeat_timeout", "fault", "closed", "reopened"],
        changes: list[BayChange],
    ) -> None:
        if bay.state == state:
            return
        changes.append(
            BayChange(
                bay_id=bay.bay_id,
                lot_id=bay.lot_id,
                sensor_id=bay.sensor_id,
                previous=bay.state,
                current=state,
                at=at,
                reason=reason,
                zone_id=bay.zone_id,
            )
        )
        bay.state = state
        bay.since = at
        if bay.lot_id is not None:
            self._record_trend(bay.lot_id, at)

    def _update_health(self, bay: Bay, obs: SensorObservation) -> list[SensorNotice]:
        health = bay.health
        reading = obs.reading
        notices: list[SensorNotice] = []
        health.last_seen = obs.received_at
        health.frames += 1
        if obs.rssi_dbm is not None:
            health.rssi_dbm = obs.rssi_dbm
        if obs.snr_db is not None:
            health.snr_db = obs.snr_db
        if reading.firmware is not None:
            health.firmware = reading.firmware
        if reading.battery_health is not None:
            health.battery_health = reading.battery_health
        if reading.battery_mv is not None:
            health.battery_mv = reading.battery_mv
            low, high = BATTERY_PLAUSIBLE_MV
            self._flag(health, "battery_mv", not low <= reading.battery_mv <= high)
            if health.battery_health is None and reading.battery_mv < (
                self._config.sensors.battery_low_mv
            ):
                health.battery_health = "low"
        if reading.temperature_c is not None:
            health.temperature_c = reading.temperature_c
            low_c, high_c = self._config.sensors.temperature_range_c
            self._flag(health, "temperature_c", not low_c <= reading.temperature_c <= high_c)
            if "temperature_c" in health.implausible:
                notices.append(
                    SensorNotice(
                        sensor_id=obs.sensor_id,
                        bay_id=bay.bay_id,
                        kind="implausible",
                        detail=f"temperature {reading.temperature_c} °C is implausible",
                        at=obs.received_at,
                    )
                )
        if reading.reset_cause is not None:
            health.reset_causes[reading.reset_cause] += 1
            notices.append(
                SensorNotice(
                    sensor_id=obs.sensor_id,
                    bay_id=bay.bay_id,
                    kind="reset",
                    detail=f"sensor restarted ({reading.reset_cause})",
                    at=obs.received_at,
                )
            )
        if reading.frame_counter is not None:
            previous = health.frame_counter
            # A restart sets the counter back; a jump forward skipped frames we never heard.
            if previous is not None and reading.frame_counter > previous + 1:
                health.frame_counter_gaps += reading.frame_counter - previous - 1
            health.frame_counter = reading.frame_counter
        return notices

    @staticmethod
    def _flag(health: SensorHealth, name: str, bad: bool) -> None:
        if bad:
            health.implausible.add(name)
        else:
            health.implausible.discard(name)

    def _next_status(
        self, lot_id: str, current: LotStatus, counts: Counter[str], capacity: int
    ) -> LotStatus:
        in_service = capacity - counts["closed"]
        if in_service <= 0:
            return "closed"
        lot = self._config.lots[lot_id]
        thresholds = lot.thresholds
        pct = (in_service - counts["free"]) * 100.0 / in_service
        if current == "closed":
            current = "spacesAvailable"
        if counts["free"] <= lot.full_band:
            return "full"
        if pct >= thresholds.almost_full_increasing:
            return "almostFull"
        if current in ("almostFull", "full") and pct >= thresholds.almost_full_decreasing:
            return "almostFull"
        return "spacesAvailable"

    def _record_trend(self, lot_id: str, at: float) -> None:
        occupied = sum(1 for bay in self._lot_bays[lot_id] if bay.state == "occupied")
        history = self._lots[lot_id].history
        history.append((at, occupied))
        while len(history) > 2 and history[1][0] <= at - self._trend_window:
            history.popleft()

    def _trend(self, lot_id: str, occupied: int, capacity: int, now: float) -> Trend:
        history = self._lots[lot_id].history
        # The occupied count as it stood when the window began (or as far back as we know).
        # Occupied, not free: bays coming out of "unknown" at start-up are not a trend.
        past = history[0][1] if history else occupied
        for at, value in history:
            if at > now - self._trend_window:
                break
            past = value
        step = max(1, capacity // 50)
        if occupied >= past + step:
            return "filling"
        if occupied <= past - step:
            return "emptying"
        return "steady"
