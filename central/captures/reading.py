"""A camera's body read by its kind's reader, and what central refuses of a reading.

Pure: bytes in, a ``Reading`` (or a refusal) out; the intake stores what is left.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from central.errors import Invalid
from firmware_protocols.cameras import Reading, decode_parkgrid, read_dahua, read_hikvision


def read_body(kind: str, body: bytes, content_type: str | None, camera_tz: dt.tzinfo) -> Reading:
    """The camera's body read by its kind's reader (DecodeError for an unreadable body)."""
    if kind == "hikvision":
        return read_hikvision(body, content_type, assume_tz=camera_tz)
    if kind == "dahua":
        return read_dahua(body, content_type, camera_tz=camera_tz)
    return Reading(captures=(decode_parkgrid(body, content_type),))


def check_reading(kind: str, reading: Reading) -> list[dict[str, Any]]:
    """What the reading refused, as the API reports it; ``Invalid`` when nothing in it can
    be stored (every capture refused, or no event at all)."""
    refused = [{"where": r.where, "reason": r.reason} for r in reading.refused]
    if not reading.captures and refused:
        first = reading.refused[0]
        raise Invalid(f"{kind}: {first.where}: {first.reason}", field="body")
    if not reading.captures and not reading.heartbeats:
        reason = (
            f"{', '.join(reading.ignored)}: not ANPR or a plate event (nothing stored)"
            if reading.ignored
            else "no event in the body (nothing stored)"
        )
        raise Invalid(f"{kind}: {reason}", field="body")
    return refused
