"""Errors raised by the wire formats.

    ProtocolError                 anything a wire format refuses
     ├── DecodeError (ValueError) bytes that do not read as the format says
     └── EncodeError (ValueError) a typed value that the format cannot carry

Every error carries structured fields so callers can count and report without parsing
the message: ``fmt`` (the format id, e.g. ``"nwave-nps"``), ``port`` (the radio port where
the format has one), ``data`` (the offending bytes) and ``offset`` (where in them, if known).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every wire-format error."""

    def __init__(
        self,
        reason: str,
        *,
        fmt: str,
        data: bytes = b"",
        port: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.fmt = fmt
        self.data = bytes(data)
        self.port = port
        self.offset = offset
        super().__init__(self._message())

    def _message(self) -> str:
        where = [f"format {self.fmt}"]
        if self.port is not None:
            where.append(f"port {self.port}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        shown = self.data[:64].hex(" ") + (" ..." if len(self.data) > 64 else "")
        return f"{self.reason} ({', '.join(where)}; bytes: {shown or '<empty>'})"


class DecodeError(ProtocolError, ValueError):
    """Bytes that do not read as the format says."""


class EncodeError(ProtocolError, ValueError):
    """A value the format cannot carry (out of range, unknown option)."""
