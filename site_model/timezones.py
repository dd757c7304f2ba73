"""A time zone named in a config file: an IANA name this machine's zoneinfo knows."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def known_timezone(value: str) -> str:
    """``value`` if it names a zone; a ValueError saying so otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
    return value


# The site file's town, a camera's clock and a box's local time all use this one check.
TimeZoneName = Annotated[str, AfterValidator(known_timezone)]
