"""Guidance and warning signs: what each sign shows, as a pure function of the snapshots.

A sign's display is a projection: of its own lot's snapshot, of the other lots' state
learned from MQTT (for "full: go to P3"), and of whether the box can currently trust that
remote state at all. Nothing here talks to a bus; the sign bus owner makes the sign match
the projection, refreshes it, and rewrites its watchdog.

    own lot status     guidance sign shows
    spacesAvailable    green, free count, the sign's arrow
    almostFull         amber, free count, the sign's arrow
    full               "FULL", and when a fallback lot has space (and the box is online and
                       that lot's box is online): its free count, its arrow, its label;
                       otherwise red, 0, no arrow
    closed             "CLOSED", red, no arrow
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
)

ARROWS = {"none": Arrow.NONE, "left": Arrow.LEFT, "right": Arrow.RIGHT, "ahead": Arrow.AHEAD}
COLOURS = {
    "spacesAvailable": Colour.GREEN,
    "almostFull": Colour.AMBER,
    "full": Colour.RED,
    "closed": Colour.RED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteLot:
    """Another box's lot, as its retained MQTT state says."""

    lot_id: str
    free: int
    status: str
    box_online: bool


def pick_fallback(
    sign: SignConfig, remote: Mapping[str, RemoteLot], *, network_up: bool
) -> tuple[RemoteLot, Arrow] | None:
    """The first fallback lot, nearest first, that can take a car; None offline."""
    if not network_up:
        return None
    for target in sign.fallback:
        lot = remote.get(target.lot)
        if lot is None or not lot.box_online:
            continue
        if lot.status in ("full", "closed") or lot.free <= 0:
            continue
        return lot, ARROWS[target.arrow]
    return None


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
    if own.status == "full":
        fallback = pick_fallback(sign, remote, network_up=network_up)
        if fallback is None:
            return GuidanceDisplay(
                free=0,
                colour=Colour.RED,
                mode=GuidanceMode.FULL,
                brightness=sign.brightness,
                label=label,
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
    if own.status == "full":
        return NumericDisplay(text="FULL")
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
