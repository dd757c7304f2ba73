"""Between what a sign shows (``firmware_protocols.signs`` displays) and what the uplink says.

Two pure mappings: ``to_uplink`` describes a sign's display in the uplink's profile-neutral
``SignDisplay``; ``from_override`` turns an office override (a ``SignDisplay`` from a
``sign-override`` command) into the display a given profile can show, or raises
``UnsupportedDisplay`` saying why not.
"""

from __future__ import annotations

from firmware_protocols.signs import (
    UNKNOWN_TEXT,
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    WarningDisplay,
    guidance_text,
)
from firmware_protocols.uplink.models import SignArrow, SignColour, SignDisplay, SignMode

_ARROW_OUT = {
    Arrow.NONE: SignArrow.NONE,
    Arrow.LEFT: SignArrow.LEFT,
    Arrow.RIGHT: SignArrow.RIGHT,
    Arrow.AHEAD: SignArrow.UP,
}
_ARROW_IN = {value: key for key, value in _ARROW_OUT.items()}
_COLOUR_OUT = {
    Colour.GREEN: SignColour.GREEN,
    Colour.AMBER: SignColour.AMBER,
    Colour.RED: SignColour.RED,
}
_COLOUR_IN = {value: key for key, value in _COLOUR_OUT.items()}


class UnsupportedDisplay(ValueError):
    """An override the sign's profile cannot show."""


def to_uplink(display: Display) -> SignDisplay:
    if isinstance(display, GuidanceDisplay):
        colour = _COLOUR_OUT[display.colour]
        arrow = _ARROW_OUT[display.arrow]
        if display.mode is GuidanceMode.BLANK:
            return SignDisplay(mode=SignMode.BLANK)
        if display.mode is GuidanceMode.CLOSED:
            return SignDisplay(mode=SignMode.TEXT, text="CLOSED", colour=colour, arrow=arrow)
        if display.mode is GuidanceMode.UNKNOWN:
            return SignDisplay(mode=SignMode.DASHES, colour=colour)
        if display.mode is GuidanceMode.FULL:
            # The sign's own words, so the office reads what the driver reads: the count
            # is the fallback's, after its arrow and label ("满 FULL → P4 12").
            return SignDisplay(
                mode=SignMode.TEXT, text=guidance_text(display), colour=colour, arrow=arrow
            )
        return SignDisplay(mode=SignMode.COUNT, count=display.free, colour=colour, arrow=arrow)
    if isinstance(display, WarningDisplay):
        if display.message is Message.BLANK:
            return SignDisplay(mode=SignMode.BLANK)
        return SignDisplay(
            mode=SignMode.MESSAGE, message_index=int(display.message), flashing=display.flashing
        )
    if display.text == UNKNOWN_TEXT:
        return SignDisplay(mode=SignMode.DASHES)
    if display.text is not None:
        return SignDisplay(mode=SignMode.TEXT, text=display.text)
    if display.value is None:
        return SignDisplay(mode=SignMode.BLANK)
    return SignDisplay(mode=SignMode.COUNT, count=max(display.value, 0))


def from_override(profile_name: str, wanted: SignDisplay, *, brightness: int = 100) -> Display:
    """The display of ``profile_name`` closest to ``wanted``; UnsupportedDisplay otherwise."""
    mode = wanted.mode
    if profile_name == "parkgrid-guidance":
        colour = _COLOUR_IN.get(wanted.colour or SignColour.GREEN, Colour.RED)
        arrow = _ARROW_IN.get(wanted.arrow or SignArrow.NONE)
        if arrow is None:
            raise UnsupportedDisplay(f"a guidance sign has no {wanted.arrow} arrow")
        if mode is SignMode.COUNT:
            return GuidanceDisplay(
                free=wanted.count or 0, colour=colour, arrow=arrow, brightness=brightness
            )
        if mode is SignMode.TEXT:
            return GuidanceDisplay(
                free=0,
                colour=colour,
                arrow=arrow,
                mode=GuidanceMode.CLOSED,
                brightness=brightness,
                label=(wanted.text or "")[:8],
            )
        if mode is SignMode.BLANK:
            return GuidanceDisplay(free=0, mode=GuidanceMode.BLANK, brightness=brightness)
        raise UnsupportedDisplay(f"a guidance sign cannot show mode {mode.value}")
    if profile_name == "parkgrid-warning":
        if mode is SignMode.MESSAGE:
            try:
                message = Message(wanted.message_index or 0)
            except ValueError:
                raise UnsupportedDisplay(
                    f"no message {wanted.message_index} in the warning sign's table"
                ) from None
            return WarningDisplay(message=message, flashing=wanted.flashing, brightness=brightness)
        if mode is SignMode.BLANK:
            return WarningDisplay(message=Message.BLANK, brightness=brightness)
        raise UnsupportedDisplay(f"a warning sign shows messages by index, not mode {mode.value}")
    if profile_name == "generic-led":
        if mode is SignMode.COUNT:
            return NumericDisplay(value=wanted.count or 0)
        if mode is SignMode.TEXT:
            return NumericDisplay(text=(wanted.text or "")[:16])
        if mode is SignMode.BLANK:
            return NumericDisplay(text="")
        raise UnsupportedDisplay(f"the numeric module cannot show mode {mode.value}")
    raise UnsupportedDisplay(f"unknown sign profile {profile_name}")
