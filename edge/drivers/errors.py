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


# --- sign buses (edge/drivers/sign_bus.py, edge/drivers/modbus_client.py) -------------------
#
#     DriverError
#      └── SignBusError                 a Modbus sign bus (``.bus``) cannot do it
#           ├── SignUnitTimeout         a unit (``.unit``) did not answer in time
#           ├── SignUnitException       a unit answered with exception ``.code`` (1..255)
#           └── SignBusConnectionError  the TCP connection or the serial port is gone
#
# ``.register`` is the first register address of the request (None when not about one).

__all__ += ["SignBusConnectionError", "SignBusError", "SignUnitException", "SignUnitTimeout"]


class SignBusError(DriverError):
    """Something a Modbus sign bus, or one unit on it, cannot do."""

    def __init__(
        self,
        reason: str,
        *,
        bus: str,
        unit: int | None = None,
        register: int | None = None,
    ) -> None:
        self.bus = bus
        self.unit = unit
        self.register = register
        where = f"sign bus {bus}"
        if unit is not None:
            where += f" unit {unit}"
        if register is not None:
            where += f" register 0x{register:04X}"
        super().__init__(reason)
        self.args = (f"{where}: {reason}",)


class SignUnitTimeout(SignBusError):
    """The unit sent no (valid) answer within the bus timeout."""


class SignUnitException(SignBusError):
    """The unit answered with a Modbus exception response; ``code`` is its exception code."""

    def __init__(
        self,
        reason: str,
        *,
        bus: str,
        code: int,
        unit: int | None = None,
        register: int | None = None,
    ) -> None:
        self.code = code
        super().__init__(reason, bus=bus, unit=unit, register=register)


class SignBusConnectionError(SignBusError):
    """The TCP connection or the serial port cannot be opened, or was lost."""
