"""A sign's register vocabulary and the single-register codecs.

A :class:`Register` is one value in a sign's register map (address, table, type, scale,
access, meaning, power-on value); :func:`encode_register` turns its engineering value into
16-bit words and :func:`decode_register` back. :func:`merge_writes` coalesces holding-register
writes into as few function-16 requests as the Modbus spec allows.

Register words are big-endian 16-bit values; a u32 spans two registers, high word first;
text carries two bytes per register, high byte first, NUL-padded at the end. Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from firmware_protocols.errors import DecodeError, EncodeError

FMT = "sign-profile"
MAX_WRITE_REGISTERS = 123  # function 16 carries at most 123 registers (Modbus spec 6.12)


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


class DataType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    ASCII = "ascii"
    UTF8 = "utf8"


class Access(StrEnum):
    R = "r"
    RW = "rw"
    W = "w"


Value = int | float | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """One value in a sign's register map (possibly spanning several 16-bit registers)."""

    name: str
    address: int
    table: Table
    dtype: DataType
    access: Access
    meaning: str
    count: int = 1  # 16-bit registers spanned: 2 for u32, chars/2 for text
    scale: float = 1.0  # engineering value = raw * scale
    unit: str = ""
    minimum: int | None = None  # raw limits, inclusive
    maximum: int | None = None
    power_on: Value = 0

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.count)


class WriteBlock(NamedTuple):
    """Holding registers to write in one request: ``(address, values)``."""

    address: int
    values: tuple[int, ...]


def _words_bytes(words: Sequence[int]) -> bytes:
    return b"".join(struct.pack(">H", w & 0xFFFF) for w in words)


def encode_register(reg: Register, value: Value) -> tuple[int, ...]:
    """One register's engineering value as 16-bit words; EncodeError names what is wrong."""
    if reg.dtype in (DataType.ASCII, DataType.UTF8):
        if not isinstance(value, str):
            raise EncodeError(f"{reg.name}: text expected, got {value!r}", fmt=FMT)
        try:
            raw = value.encode("ascii" if reg.dtype is DataType.ASCII else "utf-8")
        except UnicodeEncodeError:
            raise EncodeError(f"{reg.name}: {value!r} is not {reg.dtype}", fmt=FMT) from None
        if reg.dtype is DataType.ASCII and any(b < 0x20 or b > 0x7E for b in raw):
            raise EncodeError(f"{reg.name}: {value!r} has unprintable characters", fmt=FMT)
        if len(raw) > 2 * reg.count:
            raise EncodeError(
                f"{reg.name}: {len(raw)} bytes do not fit {2 * reg.count}", fmt=FMT, data=raw
            )
        raw = raw.ljust(2 * reg.count, b"\0")
        return struct.unpack(f">{reg.count}H", raw)
    if isinstance(value, str):
        raise EncodeError(f"{reg.name}: number expected, got {value!r}", fmt=FMT)
    raw_int = round(value / reg.scale) if reg.scale != 1.0 else int(value)
    if (reg.minimum is not None and raw_int < reg.minimum) or (
        reg.maximum is not None and raw_int > reg.maximum
    ):
        raise EncodeError(
            f"{reg.name}: {value!r} outside {reg.minimum}..{reg.maximum} "
            f"(register 0x{reg.address:04X})",
            fmt=FMT,
        )
    if reg.dtype is DataType.U16:
        if not 0 <= raw_int <= 0xFFFF:
            raise EncodeError(f"{reg.name}: {value!r} does not fit u16", fmt=FMT)
        return (raw_int,)
    if reg.dtype is DataType.I16:
        if not -0x8000 <= raw_int <= 0x7FFF:
            raise EncodeError(f"{reg.name}: {value!r} does not fit i16", fmt=FMT)
        return (raw_int & 0xFFFF,)
    if not 0 <= raw_int <= 0xFFFFFFFF:
        raise EncodeError(f"{reg.name}: {value!r} does not fit u32", fmt=FMT)
    return (raw_int >> 16, raw_int & 0xFFFF)


def decode_register(reg: Register, words: Sequence[int]) -> Value:
    """Words read from a sign as the register's engineering value."""
    data = _words_bytes(words)
    if len(words) != reg.count:
        raise DecodeError(f"{reg.name}: {reg.count} registers expected", fmt=FMT, data=data)
    if reg.dtype in (DataType.ASCII, DataType.UTF8):
        raw = data.split(b"\0", 1)[0]
        if b"\0" in data and data[data.index(b"\0") :].strip(b"\0"):
            raise DecodeError(
                f"{reg.name}: bytes after the NUL terminator", fmt=FMT, data=data, offset=len(raw)
            )
        try:
            text = raw.decode("ascii" if reg.dtype is DataType.ASCII else "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"{reg.name}: not {reg.dtype} text", fmt=FMT, data=data, offset=exc.start
            ) from None
        if reg.dtype is DataType.ASCII and not text.isprintable():
            raise DecodeError(f"{reg.name}: unprintable text", fmt=FMT, data=data)
        return text
    if reg.dtype is DataType.U16:
        raw_int = words[0]
    elif reg.dtype is DataType.I16:
        raw_int = words[0] - 0x10000 if words[0] & 0x8000 else words[0]
    else:
        raw_int = (words[0] << 16) | words[1]
    if (reg.minimum is not None and raw_int < reg.minimum) or (
        reg.maximum is not None and raw_int > reg.maximum
    ):
        raise DecodeError(
            f"{reg.name}: {raw_int} outside {reg.minimum}..{reg.maximum}", fmt=FMT, data=data
        )
    return raw_int * reg.scale if reg.scale != 1.0 else raw_int


def read_register(reg: Register, registers: Mapping[int, int]) -> Value:
    try:
        words = [registers[a] for a in reg.addresses]
    except KeyError as exc:
        raise DecodeError(
            f"{reg.name}: register 0x{exc.args[0]:04X} missing from the read", fmt=FMT
        ) from None
    return decode_register(reg, words)


def merge_writes(
    blocks: Iterable[WriteBlock], *, max_registers: int = MAX_WRITE_REGISTERS
) -> list[WriteBlock]:
    """Coalesce writes: later values win, contiguous registers share one block.

    Blocks longer than ``max_registers`` are split, because one function-16 request
    carries at most 123 registers.
    """
    latest: dict[int, int] = {}
    for address, values in blocks:
        for offset, value in enumerate(values):
            latest[address + offset] = value
    merged: list[WriteBlock] = []
    start: int | None = None
    run: list[int] = []
    for address in sorted(latest):
        if start is None or address != start + len(run) or len(run) >= max_registers:
            if start is not None:
                merged.append(WriteBlock(start, tuple(run)))
            start, run = address, []
        run.append(latest[address])
    if start is not None:
        merged.append(WriteBlock(start, tuple(run)))
    return merged
