"""Errors of the sensor-payload registry.

    ProtocolError                         (firmware_protocols.errors)
     ├── DecodeError (ValueError)         a payload that does not read as its format says
     │    └── UnknownFormatError          a format id nobody registered
     └── EncodeError (ValueError)         a value the format cannot carry
          └── UnknownFormatError          (the same class: caught by either branch)

Every other failure of the sensor codecs is a plain ``DecodeError`` / ``EncodeError`` from
``firmware_protocols.errors`` with ``fmt``, ``port`` and ``data`` set.
"""

from __future__ import annotations

from firmware_protocols.errors import DecodeError, EncodeError

__all__ = ["UnknownFormatError"]


class UnknownFormatError(DecodeError, EncodeError):
    """A format id that is not in the registry (reason ``"unknown format"``)."""

    def __init__(self, fmt: str, *, data: bytes = b"", port: int | None = None) -> None:
        super().__init__("unknown format", fmt=fmt, data=data, port=port)
