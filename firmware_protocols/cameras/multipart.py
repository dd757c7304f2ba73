"""A small, strict ``multipart/form-data`` reader (RFC 7578) for camera uploads.

Theory of operation
-------------------
Cameras push one event as one HTTP body: the event document (XML or JSON) and its pictures
as parts. This reader takes the whole body and the ``Content-Type`` header and returns the
parts; it never streams (the HTTP layer caps the body size first) and never touches a disk.
::

    --BOUNDARY CRLF
    Content-Disposition: form-data; name="anpr.xml"; filename="anpr.xml" CRLF
    Content-Type: text/xml CRLF
    CRLF
    <EventNotificationAlert ...> CRLF
    --BOUNDARY CRLF
    Content-Disposition: form-data; name="licensePlatePicture.jpg"; filename="..." CRLF
    Content-Type: image/jpeg CRLF
    CRLF
    <JPEG bytes> CRLF
    --BOUNDARY-- CRLF

Some firmware ends lines with a bare LF; both are accepted. A body without the closing
delimiter is truncated and refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from firmware_protocols.errors import DecodeError

FMT = "multipart"
MAX_PARTS = 16
MAX_HEADER_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def media_type(content_type: str | None) -> str:
    """``text/xml; charset=utf-8`` -> ``text/xml``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _param(header: str, key: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{key}\s*=\s*(?:"([^"]*)"|([^;\s]+))', header, re.IGNORECASE)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def boundary_of(content_type: str) -> str:
    boundary = _param(content_type, "boundary")
    if not boundary or len(boundary) > 200:
        raise DecodeError(
            f"multipart content type without a usable boundary: {content_type!r}", fmt=FMT
        )
    return boundary


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Every part of a ``multipart/*`` body, in order; DecodeError on anything malformed."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise DecodeError("multipart body without its boundary", fmt=FMT, data=body[:64])
    parts: list[Part] = []
    pos = start + len(delimiter)
    while True:
        if body.startswith(b"--", pos):
            return parts
        if body.startswith(b"\r\n", pos):
            pos += 2
        elif body.startswith(b"\n", pos):
            pos += 1
        else:
            raise DecodeError(
                "multipart delimiter not followed by a line end",
                fmt=FMT,
                data=body[pos : pos + 16],
                offset=pos,
            )
        if len(parts) >= MAX_PARTS:
            raise DecodeError(f"more than {MAX_PARTS} parts", fmt=FMT, offset=pos)
        end = body.find(b"\n" + delimiter, pos)
        if end < 0:
            raise DecodeError(
                "multipart body truncated (no closing boundary)",
                fmt=FMT,
                data=body[pos : pos + 64],
                offset=pos,
            )
        chunk = body[pos:end]
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        parts.append(_part(chunk, pos))
        pos = end + 1 + len(delimiter)


def _part(chunk: bytes, offset: int) -> Part:
    match = re.search(rb"\r?\n\r?\n", chunk[: MAX_HEADER_BYTES + 4])
    if match is None:
        if chunk.startswith((b"\r\n", b"\n")):
            head, data = b"", chunk.lstrip(b"\r\n")
        else:
            raise DecodeError(
                "multipart part without a header/body separator",
                fmt=FMT,
                data=chunk[:64],
                offset=offset,
            )
    else:
        head, data = chunk[: match.start()], chunk[match.end() :]
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    name = _param(disposition, "name") or ""
    filename = _param(disposition, "filename")
    return Part(
        name=name,
        filename=filename,
        content_type=media_type(headers.get("content-type")) or "application/octet-stream",
        data=data,
    )
