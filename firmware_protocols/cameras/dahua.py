"""Every Dahua push body, into a :class:`Reading` (several captures for a stream).

Theory of operation
-------------------
One entry point, :func:`read_dahua`, tells the forms apart by Content-Type and shape:

============================  ===============================================================
body                          read as
============================  ===============================================================
JSON object with ``Code``     one event (:mod:`dahua_event`)
JSON ``params.eventList``     every event of the list (``client.notifyEventStream``)
JSON with ``Picture``         an ITSAPI ``TollgateInfo`` upload (:mod:`dahua_itsapi`)
JSON ITSAPI ``KeepAlive``     a heartbeat
text ``Events[0].Code=...``   key=value events (:mod:`dahua_text`)
text ``Code=...;data={}``     one attach event
``multipart/form-data``       event parts, each followed by its JPEG parts
``multipart/x-mixed-replace`` an ``eventManager.cgi?action=attach`` or ``snapManager.cgi``
                              stream: event parts, ``Heartbeat`` parts, JPEG parts
============================  ===============================================================

In a multipart body the parts are read in order: a text or JSON part holds one or more
events; each picture part belongs to the last event read before it (a camera sends an
event's pictures right after it); a heartbeat is counted. A part that cannot be read is a
:class:`Refusal` naming the part and the reason, and the other events are still read: one
bad part never loses the stream. An event that is not a plate read (``VideoMotion``) is
listed as ignored. A stream cut inside its last part refuses that part only.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from firmware_protocols.cameras.capture import Capture, Picture, PictureKind, Reading, Refusal
from firmware_protocols.cameras.dahua_event import CODES, event_capture
from firmware_protocols.cameras.dahua_itsapi import is_keepalive, is_tollgate, tollgate_capture
from firmware_protocols.cameras.dahua_text import (
    attach_event,
    events_from_key_values,
    is_attach_event,
    is_heartbeat,
    looks_like_key_values,
)
from firmware_protocols.cameras.multipart import Part, media_type, parse_multipart, parse_stream
from firmware_protocols.errors import DecodeError

FMT = "dahua"
MAX_JSON_BYTES = 256 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024
_TEXT_TYPES = ("", "application/json", "text/plain", "text/json")


@dataclass
class _Pending:
    event: dict[str, Any]
    where: str
    pictures: list[Picture] = field(default_factory=list)


@dataclass
class _Found:
    pending: list[_Pending] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    heartbeats: int = 0


def _json_events(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("params"), dict):
        events = doc["params"].get("eventList")
        if not isinstance(events, list):
            raise DecodeError("event stream envelope without its eventList", fmt=FMT)
        doc = events
    items = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(item, dict) for item in items):
        raise DecodeError("an event is not a JSON object", fmt=FMT)
    return items


def _read_text(data: bytes, where: str, found: _Found, camera_tz: dt.tzinfo) -> None:
    """A text or JSON body or part: events to pending, or a heartbeat, or a TollgateInfo."""
    if is_heartbeat(data):
        found.heartbeats += 1
        return
    if is_attach_event(data):
        found.pending.append(_Pending(attach_event(data), where))
        return
    if looks_like_key_values(data) and not data.lstrip().startswith((b"{", b"[")):
        found.pending.extend(_Pending(e, where) for e in events_from_key_values(data))
        return
    if len(data) > MAX_JSON_BYTES:
        raise DecodeError(f"JSON over {MAX_JSON_BYTES} bytes", fmt=FMT, data=data[:64])
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed JSON: {exc}", fmt=FMT, data=data[:64]) from None
    if is_tollgate(doc):
        found.captures.append(tollgate_capture(doc, camera_tz=camera_tz))
    elif is_keepalive(doc):
        found.heartbeats += 1
    else:
        found.pending.extend(_Pending(e, where) for e in _json_events(doc))


def _picture(part: Part, index: int) -> Picture:
    if len(part.data) > MAX_PICTURE_BYTES:
        raise DecodeError(f"picture over {MAX_PICTURE_BYTES} bytes", fmt=FMT)
    name = part.filename or part.name or f"picture-{index}.jpg"
    return Picture(
        name=name[:200],
        kind=PictureKind.PLATE if "plate" in name.lower() else PictureKind.SCENE,
        content_type=part.content_type,
        data=part.data,
    )


def _read_parts(parts: list[Part], found: _Found, camera_tz: dt.tzinfo) -> None:
    for index, part in enumerate(parts):
        where = f"part {index}" + (f" ({part.name})" if part.name else "")
        try:
            if part.content_type.startswith("image/"):
                if not part.data:
                    raise DecodeError("empty picture", fmt=FMT)
                if not found.pending:
                    raise DecodeError("a picture before any event", fmt=FMT)
                found.pending[-1].pictures.append(_picture(part, index))
            elif part.content_type in _TEXT_TYPES or part.content_type.startswith("text/"):
                _read_text(part.data, where, found, camera_tz)
            else:
                raise DecodeError(
                    f"part of type {part.content_type} is neither event nor picture", fmt=FMT
                )
        except DecodeError as exc:
            found.refused.append(Refusal(where=where, reason=exc.reason))


def read_dahua(body: bytes, content_type: str | None, *, camera_tz: dt.tzinfo = dt.UTC) -> Reading:
    """Every event a Dahua push body carries (DecodeError only for an unreadable body)."""
    kind = media_type(content_type)
    if not body:
        raise DecodeError("empty body", fmt=FMT)
    found = _Found()
    if kind == "multipart/x-mixed-replace":
        parts, tail = parse_stream(body, content_type or "")
        _read_parts(parts, found, camera_tz)
        if tail:
            found.refused.append(
                Refusal(where=f"part {len(parts)}", reason="stream cut inside this part")
            )
    elif kind.startswith("multipart/"):
        _read_parts(parse_multipart(body, content_type or ""), found, camera_tz)
    elif kind in _TEXT_TYPES:
        _read_text(body, "body", found, camera_tz)
    else:
        raise DecodeError(f"content type {kind!r} is neither JSON, text nor multipart", fmt=FMT)
    for pending in found.pending:
        try:
            capture = event_capture(
                pending.event, camera_tz=camera_tz, pictures=tuple(pending.pictures)
            )
        except DecodeError as exc:
            found.refused.append(Refusal(where=pending.where, reason=exc.reason))
            continue
        if capture is None:
            found.ignored.append(str(pending.event.get("Code"))[:64])
        else:
            found.captures.append(capture)
    return Reading(
        captures=tuple(found.captures),
        refused=tuple(found.refused),
        ignored=tuple(found.ignored),
        heartbeats=found.heartbeats,
    )


def decode_dahua(
    body: bytes, content_type: str | None, *, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """Exactly one capture from a Dahua body; DecodeError with the reason otherwise."""
    reading = read_dahua(body, content_type, camera_tz=assume_tz)
    if reading.refused:
        first = reading.refused[0]
        raise DecodeError(f"{first.where}: {first.reason}", fmt=FMT)
    if len(reading.captures) != 1:
        ignored = (
            f" (event Code {reading.ignored[0]!r} is not one of {', '.join(CODES)})"
            if reading.ignored
            else ""
        )
        raise DecodeError(
            f"body with {len(reading.captures)} plate events (needs one){ignored}", fmt=FMT
        )
    return reading.captures[0]
