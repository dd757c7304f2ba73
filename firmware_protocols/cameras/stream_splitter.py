"""An incremental reader of a never-ending ``multipart/x-mixed-replace`` event stream.

Theory of operation
-------------------
Dahua's ``eventManager.cgi?action=attach`` (and ``snapManager.cgi``) answer one GET with a
stream that never ends: parts separated by ``--<boundary>`` lines, each with its headers
(``Content-Type``, ``Content-Length``) and data; ``Heartbeat`` text parts keep it alive.
:class:`StreamSplitter` is fed the bytes as they arrive, in chunks of any size, and returns
each part as soon as it is whole: it never raises on the data and never waits for an end.

::

    --myboundary CRLF
    Content-Type: text/plain CRLF
    Content-Length: 412 CRLF
    CRLF
    Code=TrafficJunction;action=Pulse;index=0;data={...}  CRLF CRLF
    --myboundary CRLF
    Content-Type: image/jpeg CRLF
    Content-Length: 183220 CRLF
    CRLF
    <JPEG bytes>

A part with a ``Content-Length`` is whole when that many bytes are in (a delimiter-like
line inside a JPEG does not cut it); one without is whole at the next delimiter line. Bytes
before the first delimiter, or between a part and the next delimiter, are skipped and
counted in ``dropped``; a part larger than ``max_part_bytes`` is skipped whole and counted
in ``oversize`` (the stream resynchronises on the next delimiter). Each returned part is a
:class:`~firmware_protocols.cameras.multipart.Part`.
"""

from __future__ import annotations

import re

from firmware_protocols.cameras.multipart import MAX_HEADER_BYTES, Part, boundary_of, media_type

DEFAULT_MAX_PART_BYTES = 16 * 1024 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LENGTH = re.compile(rb"(?im)^content-length\s*:\s*(\d{1,12})\s*$")
_TYPE = re.compile(rb"(?im)^content-type\s*:\s*([^\r\n]*)\r?$")


class StreamSplitter:
    """Feed bytes, get whole parts. Pure: no I/O, no clock."""

    def __init__(self, content_type: str, *, max_part_bytes: int = DEFAULT_MAX_PART_BYTES) -> None:
        self.delimiter = b"--" + boundary_of(content_type).encode("latin-1")
        self.max_part_bytes = max_part_bytes
        self.buffer = bytearray()
        self.dropped = 0
        self.oversize = 0

    def feed(self, data: bytes) -> list[Part]:
        self.buffer += data
        parts: list[Part] = []
        while True:
            progress, part = self._next()
            if part is not None:
                parts.append(part)
            if not progress:
                return parts

    def _drop(self, count: int) -> None:
        self.dropped += count
        del self.buffer[:count]

    def _skip(self, count: int) -> None:
        """Skip bytes outside any part: line ends after a part's data are not noise."""
        if bytes(self.buffer[:count]).strip(b"\r\n"):
            self.dropped += count
        del self.buffer[:count]

    def _next(self) -> tuple[bool, Part | None]:
        """(whether bytes were consumed, the part completed if any)."""
        buf = self.buffer
        start = self._find_delimiter(0)
        if start < 0:
            # Keep a tail that may be the start of a delimiter; the rest is noise.
            keep = len(self.delimiter) + 2
            if len(buf) > keep:
                self._skip(len(buf) - keep)
            return False, None
        if start:
            self._skip(start)
        body_from = len(self.delimiter)
        while body_from < len(buf) and buf[body_from] in b"\r\n":
            body_from += 1
        if buf.startswith(b"--", len(self.delimiter)):
            self._drop(len(self.delimiter) + 2)  # a closing delimiter: the stream says it ends
            return True, None
        head_end = _HEAD_END.search(buf, body_from, body_from + MAX_HEADER_BYTES + 4)
        if head_end is None:
            if len(buf) - body_from > MAX_HEADER_BYTES:
                self._drop(len(self.delimiter))  # headers that never end: resynchronise
                return True, None
            return False, None
        head = bytes(buf[body_from : head_end.start()])
        length = _LENGTH.search(head)
        if length is not None:
            size = int(length.group(1))
            if size > self.max_part_bytes:
                self.oversize += 1
                self._drop(head_end.end())  # its data is skipped as noise up to a delimiter
                return True, None
            end = head_end.end() + size
            if len(buf) < end:
                return False, None
            data = bytes(buf[head_end.end() : end])
            del buf[:end]
        else:
            stop = self._find_delimiter(head_end.end())
            if stop < 0:
                if len(buf) > self.max_part_bytes:
                    self.oversize += 1
                    self._drop(head_end.end())
                    return True, None
                return False, None
            data = bytes(buf[head_end.end() : stop]).rstrip(b"\r\n")
            del buf[:stop]
        ctype = _TYPE.search(head)
        kind = media_type(ctype.group(1).decode("latin-1")) if ctype else "text/plain"
        return True, Part(name="", filename=None, content_type=kind or "text/plain", data=data)

    def _find_delimiter(self, start: int) -> int:
        """Where the next delimiter line begins (at ``start`` or after a line end), or -1."""
        buf = self.buffer
        if buf.startswith(self.delimiter, start) and (start == 0 or buf[start - 1] == 0x0A):
            return start
        found = buf.find(b"\n" + self.delimiter, start)
        return found + 1 if found >= 0 else -1
