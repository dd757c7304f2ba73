"""parkgrid's own capture JSON (``POST /api/v1/captures``), into a Capture.

For cameras and integrators that speak neither ISAPI nor Dahua: one JSON object, alone or
as the part named ``capture`` of a ``multipart/form-data`` body whose other parts are the
pictures. A picture listed with a ``sha256`` and no part refers to one uploaded before::

    {"camera_id": "C1", "event_id": "5d1c...", "time": "2025-03-01T08:00:00Z",
     "plate": "苏A8HK52", "plate_color": "blue", "vehicle_class": "car",
     "kind": "present", "lot_id": null, "zone_id": null, "bay_id": null,
     "pictures": [{"name": "plate.jpg", "kind": "plate"},
                  {"name": "scene.jpg", "kind": "scene", "sha256": "9f86d0..."}]}
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from firmware_protocols.cameras.capture import Capture, CaptureKind, Picture, PictureKind
from firmware_protocols.cameras.hikvision import plausible
from firmware_protocols.cameras.multipart import media_type, parse_multipart
from firmware_protocols.cameras.plates import (
    checked_plate,
    ga_plate_type,
    is_readable,
    normalise_plate,
    vehicle_class_of,
)
from firmware_protocols.errors import DecodeError

FMT = "parkgrid-capture"
MAX_JSON_BYTES = 64 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024


class PictureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: PictureKind = PictureKind.OTHER
    content_type: str = Field(default="image/jpeg", max_length=100)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class CaptureIn(BaseModel):
    """The JSON document; ``time`` must carry its offset."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    event_id: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    plate: str = Field(default="", max_length=32)
    plate_color: str | None = Field(default=None, max_length=32)
    vehicle_class: str | None = Field(default=None, max_length=32)
    ga_plate_type: str | None = Field(default=None, pattern=r"^[0-9]{2}$")
    kind: CaptureKind = CaptureKind.PRESENT
    lot_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    zone_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    bay_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    confidence: float | None = Field(default=None, ge=0, le=100)
    pictures: list[PictureIn] = Field(default_factory=list, max_length=8)


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )


def decode_document(data: bytes, parts: dict[str, tuple[str, bytes]] | None = None) -> Capture:
    """The JSON document, with the picture parts by name (``name -> (type, bytes)``)."""
    if len(data) > MAX_JSON_BYTES:
        raise DecodeError(f"JSON over {MAX_JSON_BYTES} bytes", fmt=FMT, data=data[:64])
    try:
        doc = CaptureIn.model_validate_json(data)
    except ValidationError as exc:
        raise DecodeError(_reasons(exc), fmt=FMT, data=data[:64]) from None
    parts = dict(parts or {})
    pictures = []
    for item in doc.pictures:
        sent = parts.pop(item.name, None)
        if sent is None and item.sha256 is None:
            raise DecodeError(f"picture {item.name!r} has neither a part nor a sha256", fmt=FMT)
        if sent is not None and len(sent[1]) > MAX_PICTURE_BYTES:
            raise DecodeError(f"picture {item.name!r} over {MAX_PICTURE_BYTES} bytes", fmt=FMT)
        pictures.append(
            Picture(
                name=item.name,
                kind=item.kind,
                content_type=sent[0] if sent else item.content_type,
                data=sent[1] if sent else None,
                sha256=None if sent else item.sha256,
            )
        )
    if parts:
        raise DecodeError(f"part {sorted(parts)[0]!r} is not listed in pictures", fmt=FMT)
    plate, colour = normalise_plate(doc.plate, doc.plate_color)
    plate = checked_plate(plate, fmt=FMT)
    if doc.plate_color and colour is None:
        raise DecodeError(f"plate_color {doc.plate_color!r} is not a plate colour", fmt=FMT)
    vclass = vehicle_class_of(doc.vehicle_class)
    return Capture(
        source="parkgrid",
        event_id=doc.event_id,
        captured_at=plausible(doc.time, FMT).astimezone(dt.UTC),
        plate=plate,
        plate_raw=doc.plate,
        plate_readable=is_readable(plate),
        plate_color=colour,
        vehicle_class=vclass,
        ga_plate_type=ga_plate_type(plate, colour, vclass, stated=doc.ga_plate_type),
        kind=doc.kind,
        camera_ref=doc.camera_id,
        confidence=doc.confidence,
        lot_id=doc.lot_id,
        zone_id=doc.zone_id,
        bay_id=doc.bay_id,
        pictures=tuple(pictures),
    )


def decode_parkgrid(body: bytes, content_type: str | None) -> Capture:
    """A parkgrid capture body: JSON alone, or multipart with a ``capture`` part."""
    kind = media_type(content_type)
    if not body:
        raise DecodeError("empty body", fmt=FMT)
    if kind.startswith("multipart/"):
        parts = parse_multipart(body, content_type or "")
        docs = [p for p in parts if p.name == "capture"]
        if len(docs) != 1:
            raise DecodeError("multipart capture needs exactly one part named 'capture'", fmt=FMT)
        files: dict[str, tuple[str, bytes]] = {}
        for part in parts:
            if part is docs[0]:
                continue
            name = part.filename or part.name
            if not re.fullmatch(r"[^/\\]{1,200}", name) or name in files:
                raise DecodeError(f"picture part name {name!r} is unusable or repeated", fmt=FMT)
            files[name] = (part.content_type, part.data)
        return decode_document(docs[0].data, files)
    if kind in ("", "application/json"):
        return decode_document(body)
    raise DecodeError(f"content type {kind!r} is neither JSON nor multipart", fmt=FMT)
