"""This box's lots: the newest snapshot of each, published when its figures change and handed
on to whoever follows the lots (the signs).

Occupancy puts a snapshot here after every change of a lot's bays; a snapshot whose figures
(free, occupied, unknown, closed, status, trend) equal the last one is kept but not sent on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import BaseModel

from edge.agents.occupancy import LotSnapshot
from edge.pipeline.outlet import Outlet
from edge.pipeline.uplink_states import lot_state
from firmware_protocols.uplink.topics import Topics


class LotBoard:
    def __init__(self, outlet: Outlet, topics: Topics) -> None:
        self._outlet = outlet
        self._topics = topics
        self.snapshots: dict[str, LotSnapshot] = {}
        self._followers: list[Callable[[LotSnapshot], None]] = []

    def follow(self, on_change: Callable[[LotSnapshot], None]) -> None:
        """Call ``on_change`` with each snapshot whose figures changed."""
        self._followers.append(on_change)

    def put(self, snapshot: LotSnapshot) -> None:
        previous = self.snapshots.get(snapshot.lot_id)
        self.snapshots[snapshot.lot_id] = snapshot
        if previous is not None and _same_figures(previous, snapshot):
            return
        self._outlet.publish_state(self._topics.lot(snapshot.lot_id), lot_state(snapshot))
        for on_change in self._followers:
            on_change(snapshot)

    def states(self) -> Iterator[tuple[str, BaseModel]]:
        """Each lot's retained state, for the birth."""
        for lot_id, snapshot in self.snapshots.items():
            yield self._topics.lot(lot_id), lot_state(snapshot)


def _same_figures(a: LotSnapshot, b: LotSnapshot) -> bool:
    return (a.free, a.occupied, a.unknown, a.closed, a.status, a.trend) == (
        b.free,
        b.occupied,
        b.unknown,
        b.closed,
        b.status,
        b.trend,
    )
