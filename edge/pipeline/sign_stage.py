"""The signs: what each one should show, told to its bus owner, and reported to the office.

A sign's display is a projection (``edge.agents.guidance``) of its lot's snapshot and the
town view, or of its zone's state, or its fixed message, unless the office overrides it for
a while. The stage keeps what it last told each sign (``shown``), the overrides and when it
last sent each sign's state, and re-projects on every change that can move a display: a lot's
figures, the town view, a zone redrawn, an override set or ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from pydantic import BaseModel

from edge.agents.guidance import LOT_PROJECTIONS, fixed_warning_display
from edge.agents.occupancy import LotSnapshot
from edge.agents.sign_display import UnsupportedDisplay, from_override
from edge.config import EdgeConfig, SignConfig
from edge.drivers.sign_bus import SignBus
from edge.pipeline.outlet import Outlet
from edge.pipeline.town_view import TownView
from edge.pipeline.uplink_states import sign_state
from firmware_protocols.errors import EncodeError
from firmware_protocols.signs import Display, WarningDisplay
from firmware_protocols.uplink.models import Command, SignOverride, SignState
from firmware_protocols.uplink.topics import Topics

log = logging.getLogger(__name__)

# A sign whose read-back keeps matching has its state (last_verified) re-sent this often;
# any change of what it shows, or of its truth, is sent at once.
SIGN_VERIFIED_REPUBLISH_S = 30.0


class ZoneDisplay(Protocol):
    """What a zone's warning signs show now (``ZoneAgent.display``)."""

    def __call__(self, zone_id: str, *, brightness: int) -> WarningDisplay: ...


class SignStage:
    def __init__(
        self,
        config: EdgeConfig,
        *,
        buses: Mapping[str, SignBus],
        lots: Mapping[str, LotSnapshot],
        town: TownView,
        zone_display: ZoneDisplay,
        outlet: Outlet,
        topics: Topics,
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._own_lots = config.lots
        self._buses = buses
        self._lots = lots
        self._town = town
        self._zone_display = zone_display
        self._outlet = outlet
        self._topics = topics
        self._wake = wake
        self._clock = clock
        self.table: dict[str, tuple[str, SignConfig]] = {
            sign_id: (bus_id, sign)
            for bus_id, bus in config.sign_buses.items()
            for sign_id, sign in bus.signs.items()
        }
        self.overrides: dict[str, tuple[Display, float]] = {}
        self.shown: dict[str, Display] = {}
        self._published: dict[str, tuple[float, SignState]] = {}  # last sent, when

    # --- what moves a display ----------------------------------------------------------

    def project_all(self) -> None:
        for sign_id in self.table:
            self.project(sign_id)

    def lot_changed(self, snapshot: LotSnapshot) -> None:
        """Any sign may point to any lot (a fallback), so every sign is projected again."""
        self.project_all()

    def redraw_zones(self, zone_ids: set[str]) -> None:
        for sign_id, (_, sign) in self.table.items():
            if sign.zone is not None and sign.zone in zone_ids:
                self.project(sign_id)

    def override(self, command: Command, now: float) -> str | None:
        """The ``sign-override`` command: show a display until a time, or lift it."""
        body = command.body
        assert isinstance(body, SignOverride)  # the command table sends only these here
        sign_id, wanted, until = body.sign_id, body.display, body.until
        if sign_id not in self.table:
            return f"no sign {sign_id} on this box"
        if wanted is None:
            self.overrides.pop(sign_id, None)
            self.project(sign_id)
            return None
        _, sign = self.table[sign_id]
        try:
            display = from_override(sign.profile, wanted, brightness=sign.brightness)
        except UnsupportedDisplay as exc:
            return str(exc)
        assert until is not None  # the model refuses an override without an end
        self.overrides[sign_id] = (display, until.timestamp())
        self.project(sign_id)
        self._wake()
        return None

    def next_deadline(self) -> float | None:
        return min((until for _, until in self.overrides.values()), default=None)

    def expire_overrides(self, now: float) -> None:
        expired = [s for s, (_, until) in self.overrides.items() if until <= now]
        for sign_id in expired:
            log.info("override of sign %s ended", sign_id)
            del self.overrides[sign_id]
            self.project(sign_id)

    # --- projecting ---------------------------------------------------------------------

    def project(self, sign_id: str) -> None:
        bus_id, _ = self.table[sign_id]
        display = self.projection(sign_id)
        if display is None or self.shown.get(sign_id) == display:
            return
        try:
            self._buses[bus_id].set_display(sign_id, display)
        except EncodeError as exc:
            log.error("sign %s cannot show %s: %s", sign_id, display, exc)
            return
        self.shown[sign_id] = display
        self.publish(sign_id)

    def projection(self, sign_id: str) -> Display | None:
        """What ``sign_id`` should show now."""
        _, sign = self.table[sign_id]
        override = self.overrides.get(sign_id)
        if override is not None:
            return override[0]
        project = LOT_PROJECTIONS.get(sign.profile)
        if project is not None and sign.lot is not None:
            snapshot = self._lots.get(sign.lot)
            if snapshot is None:
                return None
            remote = self._town.lots(self._lots)
            remote.pop(sign.lot, None)
            # Offline, remote figures may be stale: only this box's own lots stay eligible.
            link_up = self._town.network_up
            network_up = link_up or any(t.lot in self._own_lots for t in sign.fallback)
            if not link_up:
                remote = {k: v for k, v in remote.items() if k in self._own_lots}
            return project(sign, snapshot, remote, network_up=network_up)
        if sign.zone is not None:
            return self._zone_display(sign.zone, brightness=sign.brightness)
        if sign.message is not None:
            return fixed_warning_display(sign)
        return None

    # --- reporting ----------------------------------------------------------------------

    def publish(self, sign_id: str) -> None:
        state = self.sign_state(sign_id)
        if state is not None:
            self._published[sign_id] = (self._clock(), state)
            self._outlet.publish_state(self._topics.sign(sign_id), state)

    def has_news(self, sign_id: str) -> bool:
        """Whether a matching read-back is worth a sign state: what the sign shows changed
        since the last one sent, or that one is older than SIGN_VERIFIED_REPUBLISH_S."""
        last = self._published.get(sign_id)
        state = self.sign_state(sign_id)
        if last is None or state is None:
            return True
        at, sent = last
        return sent.shown != state.shown or self._clock() - at >= SIGN_VERIFIED_REPUBLISH_S

    def sign_state(self, sign_id: str) -> SignState | None:
        """What ``sign_id`` shows and whether it answers; None before its first display."""
        bus_id, sign = self.table[sign_id]
        display = self.shown.get(sign_id)
        if display is None:
            return None
        override = self.overrides.get(sign_id)
        return sign_state(
            sign_id,
            bus_id,
            sign,
            display=display,
            status=self._buses[bus_id].status(sign_id),
            override_until=override[1] if override else None,
            now=self._clock(),
        )

    def states(self) -> Iterator[tuple[str, BaseModel]]:
        """Each sign's retained state (those shown at least once), for the birth."""
        for sign_id in self.table:
            state = self.sign_state(sign_id)
            if state is not None:
                yield self._topics.sign(sign_id), state
