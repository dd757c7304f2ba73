"""Stall zones: the zone tables run over the zones' bays, what they produced published, and
the zones' warning signs redrawn.

Run after every change of a zone's bay, at the zone agent's deadlines and when a new
schedule is installed by command. A new schedule version is told to ``schedule_changed``
(the status carries it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from pydantic import BaseModel

from edge.agents.occupancy import Occupancy
from edge.agents.zones import BayView, ScheduleRejected, ZoneAgent
from edge.pipeline.outlet import Outlet
from edge.pipeline.uplink_states import utc
from firmware_protocols.uplink.models import Command, ZoneScheduleCommand
from firmware_protocols.uplink.topics import Topics

log = logging.getLogger(__name__)


class ZoneStage:
    def __init__(
        self,
        agent: ZoneAgent,
        *,
        occupancy: Occupancy,
        outlet: Outlet,
        topics: Topics,
        redraw: Callable[[set[str]], None],
        schedule_changed: Callable[[], None],
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.agent = agent
        self._occupancy = occupancy
        self._outlet = outlet
        self._topics = topics
        self._redraw = redraw
        self._schedule_changed = schedule_changed
        self._wake = wake
        self._clock = clock

    def refresh(self, now: float) -> None:
        """Run the zone tables; publish what they produced and redraw the zones' signs."""
        if not self.agent.zones:
            return
        version = self.agent.schedule_version
        bays = {
            bay_id: BayView(bay.state, bay.since)
            for bay_id, bay in self._occupancy.bays.items()
            if bay.zone_id is not None
        }
        update = self.agent.evaluate(now, bays)
        for body, at in update.events:
            self._outlet.emit(body, ts=utc(at))
        for state in update.states:
            self._outlet.publish_state(self._topics.zone(state.zone_id), state)
        if update.zones_redrawn:
            self._redraw(update.zones_redrawn)
        if self.agent.schedule_version != version:
            self._schedule_changed()

    def next_deadline(self) -> float | None:
        return self.agent.next_deadline()

    def install(self, command: Command, now: float) -> str | None:
        """The ``zone-schedule`` command: a new schedule, checked, kept and applied at once."""
        body = command.body
        assert isinstance(body, ZoneScheduleCommand)  # the command table sends only these
        try:
            outcome = self.agent.install(body.schedule, now)
        except ScheduleRejected as exc:
            return exc.reason
        log.info("zone-schedule by command %s: %s", command.command_id, outcome)
        self.refresh(now)
        self._schedule_changed()  # the status carries its version
        self._wake()
        return None

    def states(self) -> Iterator[tuple[str, BaseModel]]:
        """Each zone's retained state, for the birth."""
        for zone_id in self.agent.zones:
            yield self._topics.zone(zone_id), self.agent.zone_state(zone_id, self._clock())
