"""Helpers shared by the format modules: error builders and the encoder's field reader."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn, TypeAlias

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors.reading import SensorReading

__all__ = [
    "Decoder",
    "Fields",
    "KindEncoder",
    "fail",
    "need",
    "parse_firmware",
]

Decoder: TypeAlias = Callable[[bytes, "int | None"], SensorReading]
"""``(payload, port) -> SensorReading``; raises ``DecodeError``."""

KindEncoder: TypeAlias = Callable[["Fields"], tuple[int, bytes]]
"""``(fields) -> (port, payload)`` for one kind; raises ``EncodeError``."""


def fail(
    fmt: str, reason: str, data: bytes, port: int | None, offset: int | None = None
) -> NoReturn:
    raise DecodeError(reason, fmt=fmt, data=data, port=port, offset=offset)


def need(fmt: str, data: bytes, port: int | None, size: int, what: str) -> None:
    """Refuse a payload shorter than ``size`` bytes."""
    if len(data) < size:
        fail(fmt, f"{what} needs at least {size} bytes, got {len(data)}", data, port, len(data))


def parse_firmware(fmt: str, kind: str, text: str, parts: int) -> tuple[int, ...]:
    """``"2.4.9"`` -> ``(2, 4, 9)``, each part a byte; ``EncodeError`` otherwise."""
    pieces = text.split(".")
    if len(pieces) != parts or not all(p.isdigit() and p.isascii() for p in pieces):
        raise EncodeError(
            f"{kind}: firmware {text!r} is not {parts} dot-separated numbers", fmt=fmt
        )
    numbers = tuple(int(p) for p in pieces)
    if any(n > 0xFF for n in numbers):
        raise EncodeError(f"{kind}: firmware {text!r} has a part above 255", fmt=fmt)
    return numbers


class _Required:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


class Fields:
    """Typed, range-checked access to an encoder's keyword fields.

    Each getter removes the field it reads; ``done()`` refuses any field left over, so a
    misspelt keyword is an error rather than a silently ignored value.
    """

    __slots__ = ("_left", "fmt", "kind")

    def __init__(self, fmt: str, kind: str, fields: Mapping[str, object]) -> None:
        self.fmt = fmt
        self.kind = kind
        self._left = dict(fields)

    def error(self, reason: str, port: int | None = None) -> EncodeError:
        return EncodeError(f"{self.kind}: {reason}", fmt=self.fmt, port=port)

    def _take(self, name: str, default: object) -> object:
        value = self._left.pop(name, None)
        if value is None:
            # None means "not given" throughout, so a default (or "required") applies.
            value = default
        if value is _REQUIRED:
            raise self.error(f"field {name!r} is required")
        return value

    def value(self, name: str, default: object = _REQUIRED) -> object:
        """The field as given, for the caller to check."""
        return self._take(name, default)

    def int_(self, name: str, lo: int, hi: int, default: object = _REQUIRED) -> int:
        value = self._take(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{name} must be an int, got {value!r}")
        if not lo <= value <= hi:
            raise self.error(f"{name}={value} outside {lo}..{hi}")
        return value

    def number(self, name: str, default: object = _REQUIRED) -> float:
        value = self._take(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{name} must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.error(f"{name} must be finite, got {value!r}")
        return float(value)

    def bool_(self, name: str, default: object = _REQUIRED) -> bool:
        value = self._take(name, default)
        if not isinstance(value, bool):
            raise self.error(f"{name} must be a bool, got {value!r}")
        return value

    def optional_bool(self, name: str) -> bool | None:
        value = self._take(name, None)
        if value is not None and not isinstance(value, bool):
            raise self.error(f"{name} must be a bool or None, got {value!r}")
        return value

    def optional_int(self, name: str, lo: int, hi: int) -> int | None:
        if self._left.get(name) is None:
            self._left.pop(name, None)
            return None
        return self.int_(name, lo, hi)

    def optional_number(self, name: str) -> float | None:
        if self._left.get(name) is None:
            self._left.pop(name, None)
            return None
        return self.number(name)

    def str_(self, name: str, default: object = _REQUIRED) -> str:
        value = self._take(name, default)
        if not isinstance(value, str):
            raise self.error(f"{name} must be a str, got {value!r}")
        return value

    def bytes_(self, name: str, default: object = _REQUIRED) -> bytes:
        value = self._take(name, default)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise self.error(f"{name} must be bytes, got {value!r}")
        return bytes(value)

    def mag_xyz(self, name: str = "mag_xyz") -> tuple[int, int, int]:
        value = self._take(name, (0, 0, 0))
        if (
            not isinstance(value, tuple | list)
            or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise self.error(f"{name} must be three ints, got {value!r}")
        x, y, z = (int(v) for v in value)
        for v in (x, y, z):
            if not -0x8000 <= v <= 0x7FFF:
                raise self.error(f"{name} component {v} outside a signed 16-bit int")
        return x, y, z

    def done(self) -> None:
        # None means "not carried" anywhere in SensorReading, so a simulator may pass the
        # same field set to every format; a real value the kind cannot carry is an error.
        left = sorted(name for name, value in self._left.items() if value is not None)
        if left:
            raise self.error(f"fields not carried by this kind: {left}")
