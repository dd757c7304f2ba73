"""Errors raised by the edge drivers (serial lines, and later the sign buses).

    DriverError                     anything a driver refuses or cannot do
     └── SerialLineError            a serial line (``.line``, ``.device``) cannot do it
          └── SerialDeviceGone      the device cannot be opened, or vanished while open

Library errors (pyserial's ``SerialException``, ``OSError``) are mapped into these at the
driver boundary, ``raise ... from exc``, so callers never import pyserial to catch them.
Wire-format errors stay ``firmware_protocols.errors.ProtocolError``: a driver counts them,
it does not wrap them. Add a branch per resource (``SignBusError`` beside
``SerialLineError``), each carrying the attributes that name the resource.
"""

from __future__ import annotations

__all__ = ["DriverError", "SerialDeviceGone", "SerialLineError"]


class DriverError(Exception):
    """Base of every driver error; ``reason`` is the plain sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SerialLineError(DriverError):
    """Something a serial line cannot do."""

    def __init__(self, reason: str, *, line: str, device: str | None = None) -> None:
        self.line = line
        self.device = device
        where = f"line {line}" + (f" ({device})" if device else "")
        super().__init__(reason)
        self.args = (f"{where}: {reason}",)


class SerialDeviceGone(SerialLineError):
    """The device cannot be opened, or failed or reached end of file while open."""
