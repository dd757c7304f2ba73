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
delimiter is truncated and refused. A part's ``Content-Length``, when given, is its exact
size (Dahua's stream parts end with an extra CRLF before the next delimiter).

:func:`parse_stream` reads a ``multipart/x-mixed-replace`` event stream (Dahua's
``eventManager.cgi?action=attach`` and ``snapManager.cgi``), which never closes: it returns
every complete part and the bytes of an unfinished last part, so a stream cut mid-part
loses only that part, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from firmware_protocols.errors import DecodeError

FMT = "multipart"
MAX_PARTS = 16
MAX_STREAM_PARTS = 512
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
    length = headers.get("content-length", "").strip()
    if length.isdigit() and int(length) <= len(data):
        data = data[: int(length)]
    disposition = headers.get("content-disposition", "")
    name = _param(disposition, "name") or ""
    filename = _param(disposition, "filename")
    return Part(
        name=name,
        filename=filename,
        content_type=media_type(headers.get("content-type")) or "application/octet-stream",
        data=data,
    )


def parse_stream(body: bytes, content_type: str) -> tuple[list[Part], bytes]:
    """The complete parts of an event stream, and the unfinished tail (``b""`` if none).

    A part's ``Content-Length`` is trusted over a delimiter-like line inside its data (a
    JPEG may hold one); without it, the part runs to the next delimiter line.
    """
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise DecodeError("stream without its boundary", fmt=FMT, data=body[:64])
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            return parts, b""
        while body[pos : pos + 1] in (b"\r", b"\n"):
            pos += 1
        if pos >= len(body):
            return parts, b""
        if len(parts) >= MAX_STREAM_PARTS:
            raise DecodeError(f"more than {MAX_STREAM_PARTS} parts", fmt=FMT, offset=pos)
        head_end = re.compile(rb"\r?\n\r?\n").search(body, pos, pos + MAX_HEADER_BYTES + 4)
        first_line = body[pos : body.find(b"\n", pos) if b"\n" in body[pos:] else len(body)]
        if b":" not in first_line or first_line.lstrip().startswith(b"Code="):
            end = _next_delimiter(body, delimiter, pos)
            if end < 0:
                return parts, body[pos:]
            data = body[pos:end].rstrip(b"\r\n")
            parts.append(Part(name="", filename=None, content_type="text/plain", data=data))
            pos = end
            continue
        if head_end is None:
            return parts, body[pos:]
        found = re.search(rb"(?im)^content-length\s*:\s*(\d+)\s*$", body[pos : head_end.start()])
        if found is not None:
            stop = head_end.end() + int(found.group(1))
            if stop > len(body):
                return parts, body[pos:]
            end = _next_delimiter(body, delimiter, stop)
            chunk = body[pos:stop]
        else:
            end = _next_delimiter(body, delimiter, head_end.end())
            if end < 0:
                return parts, body[pos:]
            chunk = body[pos:end].rstrip(b"\r\n")
        parts.append(_part(chunk, pos))
        if end < 0:
            return parts, b""
        pos = end


def _next_delimiter(body: bytes, delimiter: bytes, start: int) -> int:
    """Where the next delimiter line begins (at ``start`` or after a line end), or -1."""
    if body.startswith(delimiter, start):
        return start
    found = body.find(b"\n" + delimiter, start)
    return found + 1 if found >= 0 else -1
