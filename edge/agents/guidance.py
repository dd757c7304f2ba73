"""Guidance and warning signs: what each sign shows, as a pure function of the snapshots.

A sign's display is a projection: of its own lot's snapshot, of the other lots' state
learned from MQTT (for "full: go to P3"), and of whether the box can currently trust that
remote state at all. Nothing here talks to a bus; the sign bus owner makes the sign match
the projection, refreshes it, and rewrites its watchdog.

    own lot                      guidance sign shows            numeric module shows
    nobody can vouch for it *    "--" (amber)                   "--"
    spacesAvailable              green, "P1 37 →" (own count)    "37"
    almostFull                   amber, "P1 3 →"                 "3"
    full, a fallback has space   green, "满 FULL → P4 12"         "FULL >P4 12"
    full, nowhere to go          red, "满 FULL"                   "FULL"
    closed                       red, "CLOSED"                   "----"

    * every bay in service unknown, or no free bay known and over 10 % unknown

The rules, the same for every profile and for the office's view (``sign_display``):

* a count shown is always the sign's own lot's free bays, unknown bays never counted free;
  in full mode the only count is the fallback's, after its arrow and label, so no face
  reads as "P4 is full";
* full means the lot's status is ``full``, i.e. ``free <= full_band`` of that lot;
* whether a lot can be believed is the one availability rule (``site_model/availability.py``,
  the same central uses for ``/api/v1/lots``): a fallback is offered only if it is
  ``online`` there (its box online, as heard by this box while its network is up, or one of
  this box's own lots; a sign cannot show a stale figure's age), its status is not ``full``
  or ``closed`` and it has a free bay. A fallback whose own band counts it full while a bay
  or two is free is *not* offered: drivers sent there would meet a sign saying full, so the
  two signs never contradict each other (with the default band 0 the case does not arise);
* the lot is unknown ("--") when its figures vouch for nothing (the same rule): no bay in
  service has a known state (a box starting up before any sensor has spoken, or every
  sensor silent), or it looks full but more than 10 % of its bays are unknown (a restarted
  box that has heard only a few sensors once showed FULL with 23 bays free): never "full"
  for lack of news. A known free bay is always shown as a count (a lower bound: unknown
  bays are never counted free). A box cut off from its sign beyond the watchdog shows "--"
  too (the sign does that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edge.agents.occupancy import LotSnapshot
from edge.config import SignConfig
from firmware_protocols.signs import (
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    WarningDisplay,
    numeric_full_text,
)
from firmware_protocols.uplink import LotState
from site_model.availability import (
    Availability,
    LotFigures,
    box_availability,
    fallback_eligible,
    figures_unknown,
)

NUMERIC_WIDTH = 16  # characters of the generic module's text register
ARROWS = {"none": Arrow.NONE, "left": Arrow.LEFT, "right": Arrow.RIGHT, "ahead": Arrow.AHEAD}
COLOURS = {
    "spacesAvailable": Colour.GREEN,
    "almostFull": Colour.AMBER,
    "full": Colour.RED,
    "closed": Colour.RED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteLot:
    """A lot a sign may point to: its figures and its box's availability (as this box
    hears it; this box's own lots are always online)."""

    lot_id: str
    figures: LotFigures
    box: Availability

    @property
    def free(self) -> int:
        return self.figures.free


def remote_lot_of(state: LotState, box_online: bool | None) -> RemoteLot:
    """Another box's lot from its retained state; ``box_online`` its box's retained status
    as heard, None when never heard."""
    figures = LotFigures(
        capacity=state.capacity,
        free=state.free,
        occupied=state.occupied,
        unknown=state.unknown,
        closed=state.closed,
        status=state.status.value,
    )
    box = box_availability(box_online, None)
    return RemoteLot(lot_id=state.lot_id, figures=figures, box=box)


def own_lot(snapshot: LotSnapshot) -> RemoteLot:
    return RemoteLot(
        lot_id=snapshot.lot_id, figures=snapshot_figures(snapshot), box=Availability.ONLINE
    )


def snapshot_figures(snapshot: LotSnapshot) -> LotFigures:
    return LotFigures(
        capacity=snapshot.capacity,
        free=snapshot.free,
        occupied=snapshot.occupied,
        unknown=snapshot.unknown,
        closed=snapshot.closed,
        status=snapshot.status,
    )


def pick_fallback(
    sign: SignConfig, remote: Mapping[str, RemoteLot], *, network_up: bool
) -> tuple[RemoteLot, Arrow] | None:
    """The first fallback lot, nearest first, that can take a car; None offline."""
    if not network_up:
        return None
    for target in sign.fallback:
        lot = remote.get(target.lot)
        if lot is None or not fallback_eligible(lot.box, lot.figures):
            continue
        return lot, ARROWS[target.arrow]
    return None


def lot_unknown(own: LotSnapshot) -> bool:
    """Nobody can vouch for the lot's state (the availability rule's ``figures_unknown``)."""
    return figures_unknown(
        capacity=own.capacity, unknown=own.unknown, closed=own.closed, status=own.status
    )


def guidance_display(
    sign: SignConfig,
    own: LotSnapshot,
    remote: Mapping[str, RemoteLot],
    *,
    network_up: bool,
) -> GuidanceDisplay:
    label = own.lot_id
    if own.status == "closed":
        return GuidanceDisplay(
            free=0,
            colour=Colour.RED,
            mode=GuidanceMode.CLOSED,
            brightness=sign.brightness,
            label=label,
        )
    if lot_unknown(own):
        return GuidanceDisplay(
            free=0, colour=Colour.AMBER, mode=GuidanceMode.UNKNOWN, brightness=sign.brightness
        )
    if own.status == "full":
        fallback = pick_fallback(sign, remote, network_up=network_up)
        if fallback is None:
            return GuidanceDisplay(
                free=0, colour=Colour.RED, mode=GuidanceMode.FULL, brightness=sign.brightness
            )
        lot, arrow = fallback
        return GuidanceDisplay(
            free=lot.free,
            colour=Colour.GREEN,
            arrow=arrow,
            mode=GuidanceMode.FULL,
            brightness=sign.brightness,
            label=lot.lot_id,
        )
    return GuidanceDisplay(
        free=own.free,
        colour=COLOURS[own.status],
        arrow=ARROWS[sign.arrow],
        brightness=sign.brightness,
        label=label,
    )


def numeric_display(
    sign: SignConfig,
    own: LotSnapshot,
    remote: Mapping[str, RemoteLot],
    *,
    network_up: bool,
) -> NumericDisplay:
    """The cheap numeric module can only show digits or a few letters."""
    if own.status == "closed":
        return NumericDisplay(text="----")
    if lot_unknown(own):
        return NumericDisplay(text="--")
    if own.status == "full":
        fallback = pick_fallback(sign, remote, network_up=network_up)
        if fallback is None:
            return NumericDisplay(text=numeric_full_text("", Arrow.NONE, 0, width=NUMERIC_WIDTH))
        lot, arrow = fallback
        return NumericDisplay(
            text=numeric_full_text(lot.lot_id, arrow, lot.free, width=NUMERIC_WIDTH)
        )
    return NumericDisplay(value=own.free)


def fixed_warning_display(sign: SignConfig) -> WarningDisplay:
    """A warning sign with a fixed message (no-parking kerb, truck-ban entry)."""
    message = Message[(sign.message or "blank").upper().replace("-", "_")]
    return WarningDisplay(message=message, brightness=sign.brightness)


LotProjection = Callable[..., Display]

# profile name -> how a lot snapshot becomes that sign's display
LOT_PROJECTIONS: dict[str, LotProjection] = {
    "parkgrid-guidance": guidance_display,
    "generic-led": numeric_display,
}
