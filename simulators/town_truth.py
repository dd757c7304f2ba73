"""The town's truth: what every bay holds, replayed from the plan, and what each lot should
report (a dead sensor's bay is ``unknown``): the demo's end-of-run check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from simulators.town_events import BayChange, SensorDies, TownEvent
from site_model.site import Site


@dataclass(slots=True)
class TownTruth:
    """Bays' true state, replayed from the plan; what each lot should report."""

    site: Site
    occupied: dict[str, bool] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)

    def apply(self, event: TownEvent) -> None:
        if isinstance(event, BayChange):
            self.occupied[event.bay_id] = event.occupied
        elif isinstance(event, SensorDies):
            self.dead.add(event.bay_id)

    def apply_all(self, events: Iterable[TownEvent]) -> TownTruth:
        for event in events:
            self.apply(event)
        return self

    _bays: dict[str, list[str]] = field(default_factory=dict)
    _lot_of: dict[str, str] = field(default_factory=dict)

    def bays_of(self, lot_id: str) -> list[str]:
        if not self._bays:
            self._bays = {lot_id: lot.bay_ids(lot_id) for lot_id, lot in self.site.lots.items()}
            self._lot_of = {b: lot for lot, bays in self._bays.items() for b in bays}
        return self._bays[lot_id]

    def lot_of(self, bay_id: str) -> str | None:
        """The lot a bay belongs to (None: a stall pitch or unknown bay)."""
        if not self._bays:
            self.bays_of(next(iter(self.site.lots)))
        return self._lot_of.get(bay_id)

    def free_bays(self, lot_id: str) -> list[str]:
        """Bays with no car in them now (a dead sensor's bay may be one)."""
        return [b for b in self.bays_of(lot_id) if not self.occupied.get(b, False)]

    def lot_figure(self, lot_id: str, *, dead_unknown: bool = True) -> dict[str, int]:
        """One lot: capacity, free, occupied, unknown (dead sensors), closed."""
        figures = {"capacity": 0, "free": 0, "occupied": 0, "unknown": 0, "closed": 0}
        for bay_id in self.bays_of(lot_id):
            figures["capacity"] += 1
            if dead_unknown and bay_id in self.dead:
                figures["unknown"] += 1
            elif self.occupied.get(bay_id, False):
                figures["occupied"] += 1
            else:
                figures["free"] += 1
        return figures

    def lot_figures(self, *, dead_unknown: bool = True) -> dict[str, dict[str, int]]:
        """Per lot: capacity, free, occupied, unknown (dead sensors), closed."""
        return {
            lot_id: self.lot_figure(lot_id, dead_unknown=dead_unknown) for lot_id in self.site.lots
        }

    def zone_occupied(self) -> dict[str, int]:
        return {
            zone_id: sum(self.occupied.get(b, False) for b in zone.bay_ids(zone_id))
            for zone_id, zone in self.site.zones.items()
        }
