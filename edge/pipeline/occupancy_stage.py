"""Sensor readings to bay states and lot snapshots: the serial lines' sink.

Each observation goes through the occupancy agent; every bay that changed is told to the
office (a ``BayChanged`` event and the bay's retained state), every sensor notice to the
sensor reports, every lot whose bays changed to the lot board as a new snapshot, and a
change of a zone's bay to the zone stage. The clock loop calls ``tick`` at occupancy's
deadlines (a heartbeat expiring); the ``close-bay`` and ``open-bay`` commands come here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from pydantic import BaseModel

from edge.agents.occupancy import BayChange, Occupancy, SensorNotice
from edge.observations import SensorObservation
from edge.pipeline.lot_board import LotBoard
from edge.pipeline.outlet import Outlet
from edge.pipeline.sensor_notices import SensorNotices
from edge.pipeline.uplink_states import bay_changed, bay_state, utc
from edge.pipeline.zone_stage import ZoneStage
from firmware_protocols.uplink.models import CloseBay, Command, OpenBay
from firmware_protocols.uplink.topics import Topics

log = logging.getLogger(__name__)


class OccupancyStage:
    def __init__(
        self,
        occupancy: Occupancy,
        *,
        notices: SensorNotices,
        lots: LotBoard,
        zones: ZoneStage,
        outlet: Outlet,
        topics: Topics,
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.occupancy = occupancy
        self._notices = notices
        self._lots = lots
        self._zones = zones
        self._outlet = outlet
        self._topics = topics
        self._wake = wake
        self._clock = clock

    def observe(self, obs: SensorObservation) -> None:
        """A serial line heard a sensor."""
        changes, notices = self.occupancy.observe(obs)
        # A stored uplink's changes are dated back by its age; the lots' figures are now's.
        self._apply(
            changes, notices, obs.received_at if obs.stored_age_s is None else self._clock()
        )
        self._wake()  # its heartbeat deadline moved

    def tick(self, now: float) -> None:
        changes, notices = self.occupancy.tick(now)
        self._apply(changes, notices, now)

    def next_deadline(self) -> float | None:
        return self.occupancy.next_deadline()

    def snapshot_lots(self, lot_ids: Iterable[str], now: float) -> None:
        """Put a fresh snapshot of each lot on the board (at start-up)."""
        for lot_id in lot_ids:
            self._lots.put(self.occupancy.lot_snapshot(lot_id, now))

    def close_or_open_bay(self, command: Command, now: float) -> str | None:
        """The ``close-bay`` and ``open-bay`` commands."""
        body = command.body
        assert isinstance(body, CloseBay | OpenBay)  # the command table sends only these
        if body.bay_id not in self.occupancy.bays:
            return f"no bay {body.bay_id} on this box"
        act = self.occupancy.close_bay if isinstance(body, CloseBay) else self.occupancy.open_bay
        log.info("%s %s by command %s", body.command, body.bay_id, command.command_id)
        self._apply(act(body.bay_id, now), [], now)
        return None

    def _apply(self, changes: list[BayChange], notices: list[SensorNotice], now: float) -> None:
        lots: set[str] = set()
        for change in changes:
            self._outlet.emit(bay_changed(change), ts=utc(now))
            self._outlet.publish_state(
                self._topics.bay(change.bay_id),
                bay_state(self.occupancy.bays[change.bay_id], self._clock()),
            )
            if change.lot_id is not None:
                lots.add(change.lot_id)
        for notice in notices:
            self._notices.report(notice)
        for lot_id in lots:
            self._lots.put(self.occupancy.lot_snapshot(lot_id, now))
        if any(change.zone_id is not None for change in changes):
            self._zones.refresh(now)

    def states(self) -> Iterator[tuple[str, BaseModel]]:
        """Each bay's retained state, for the birth."""
        for bay_id, bay in self.occupancy.bays.items():
            yield self._topics.bay(bay_id), bay_state(bay, self._clock())
