"""What this box knows of the other boxes' lots, from their retained MQTT states, and
whether it can trust that now (its own link to the broker is up).

Signs read it to offer a fallback ("full: go to P3"); nothing here drives a sign. Followers
are told after every change (another lot's figures, a box going on or off line, the link).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from edge.agents.guidance import RemoteLot, own_lot, remote_lot_of
from edge.agents.occupancy import LotSnapshot
from firmware_protocols.uplink.models import LotState


class TownView:
    def __init__(self, *, box_id: str, own_lots: Mapping[str, object]) -> None:
        self._box_id = box_id
        self._own_lots = own_lots
        self.network_up = False
        self.remote_lots: dict[str, tuple[str, LotState]] = {}  # lot -> (box, state)
        self.remote_boxes: dict[str, bool] = {}
        self._followers: list[Callable[[], None]] = []

    def follow(self, on_change: Callable[[], None]) -> None:
        self._followers.append(on_change)

    def _changed(self) -> None:
        for on_change in self._followers:
            on_change()

    def connection(self, up: bool) -> None:
        """The uplink's link to the broker went up or down."""
        if up != self.network_up:
            self.network_up = up
            self._changed()

    def remote_lot(self, box_id: str, state: LotState) -> None:
        if box_id == self._box_id or state.lot_id in self._own_lots:
            return
        self.remote_lots[state.lot_id] = (box_id, state)
        self._changed()

    def remote_box(self, box_id: str, online: bool) -> None:
        if box_id == self._box_id:
            return
        self.remote_boxes[box_id] = online
        self._changed()

    def lots(self, own: Mapping[str, LotSnapshot]) -> dict[str, RemoteLot]:
        """Every lot a sign may point to: the other boxes' (as MQTT says) and this box's."""
        # A box never heard (None: no status yet, or none we may read) is unknown by the
        # availability rule: its lot's figures may be from before it died.
        view = {
            lot_id: remote_lot_of(state, self.remote_boxes.get(box_id))
            for lot_id, (box_id, state) in self.remote_lots.items()
        }
        for snap in own.values():
            view[snap.lot_id] = own_lot(snap)
        return view
