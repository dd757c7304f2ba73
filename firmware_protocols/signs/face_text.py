"""What a sign's face shows, in words: for the simulator, the tools and the uplink."""

from __future__ import annotations

from collections.abc import Mapping

from firmware_protocols.signs.codec import decode_display, decode_status
from firmware_protocols.signs.displays import (
    ARROW_ASCII,
    ARROW_GLYPH,
    CUSTOM_SLOTS,
    FULL_WORDS,
    FULL_WORDS_ASCII,
    GUIDANCE_MAX_COUNT,
    MESSAGE_TEXT,
    UNKNOWN_TEXT,
    Arrow,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
)
from firmware_protocols.signs.registers import read_register
from firmware_protocols.signs.sign_profile import SignProfile


def format_numeric(value: int, decimals: int) -> str:
    if decimals == 0:
        return str(value)
    digits = f"{abs(value):0{decimals + 1}d}"
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def guidance_text(display: GuidanceDisplay) -> str:
    """The words on a guidance sign's face for ``display`` (colour aside; "" when dark).

    ``P1 37 →`` (space, the sign's own lot), ``满 FULL → P4 12`` (full: go to P4, 12 free),
    ``满 FULL`` (full, nowhere to send drivers), ``CLOSED``, ``--`` (unknown).
    """
    if display.brightness == 0 or display.mode is GuidanceMode.BLANK:
        return ""
    if display.mode is GuidanceMode.UNKNOWN:
        return UNKNOWN_TEXT
    if display.mode is GuidanceMode.CLOSED:
        return "CLOSED"
    arrow = ARROW_GLYPH[display.arrow]
    if display.mode is GuidanceMode.FULL:
        if not display.label:
            return FULL_WORDS
        parts = [FULL_WORDS, arrow, display.label, str(display.free)]
    else:
        parts = [display.label, str(display.free), arrow]
    return " ".join(p for p in parts if p)


def numeric_full_text(label: str, arrow: Arrow, free: int, *, width: int) -> str:
    """The numeric module's full text: ``FULL`` alone or ``FULL ^P3 37`` within ``width``."""
    if not label:
        return FULL_WORDS_ASCII
    text = f"{FULL_WORDS_ASCII} {ARROW_ASCII[arrow]}{label} {min(free, GUIDANCE_MAX_COUNT)}"
    if len(text) <= width:
        return text
    return f"{ARROW_ASCII[arrow]}{label} {min(free, GUIDANCE_MAX_COUNT)}"[:width]


def shown_text(
    profile: SignProfile,
    holding: Mapping[int, int],
    inputs: Mapping[int, int] | None = None,
) -> str:
    """Human text of what the sign's LEDs show for these registers ("" when dark)."""
    display = decode_display(profile, holding)
    expired = False
    if inputs is not None and profile.model_code is not None:
        expired = "watchdog_expired" in decode_status(profile, inputs).faults
    if isinstance(display, NumericDisplay):
        if display.text is not None:
            return display.text
        return format_numeric(display.value or 0, display.decimals)
    if isinstance(display, GuidanceDisplay):
        if expired:
            return UNKNOWN_TEXT
        text = guidance_text(display)
        if text in ("", UNKNOWN_TEXT):
            return text
        return f"{text} {display.colour.name.lower()}"
    if expired or display.brightness == 0 or display.message is Message.BLANK:
        return ""
    if display.message in CUSTOM_SLOTS:
        text = str(read_register(profile.register(f"custom_{display.message.value - 15}"), holding))
    else:
        text = MESSAGE_TEXT[display.message]
    return f"{text} (flashing)" if display.flashing and text else text
