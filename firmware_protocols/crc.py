"""Check codes shared by parkgrid's serial formats.

``crc16_ccitt_false`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no
final XOR; check value 0x29B1 for ``b"123456789"``). The standard library's
``binascii.crc_hqx`` is that same shift register written in C; CRC-16/XMODEM is merely the
special case ``init=0``. Seeding it with 0xFFFF gives CCITT-FALSE at C speed, and the
non-zero seed makes the code notice leading zero bytes, which an init-0 CRC cannot.

``m77_checksum`` is the 433 MHz receivers' one-byte check: 0xFF minus the low byte of the
sum of the bytes between ``$`` and ``*`` (the vendor's own example, not its prose).
"""

from __future__ import annotations

from binascii import crc_hqx

from firmware_protocols.errors import DecodeError

__all__ = ["CRC16_INIT", "ChecksumError", "crc16_ccitt_false", "m77_checksum"]

CRC16_INIT = 0xFFFF


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    return crc_hqx(data, CRC16_INIT)


def m77_checksum(body: bytes | bytearray | memoryview) -> int:
    """The M76R/M77R answer checksum of the bytes between ``$`` and ``*``."""
    return 0xFF - (sum(body) & 0xFF)


class ChecksumError(DecodeError):
    """A frame whose check code does not match its content."""

    def __init__(
        self,
        reason: str,
        *,
        fmt: str,
        expected: int,
        actual: int,
        data: bytes = b"",
        port: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(reason, fmt=fmt, data=data, port=port, offset=offset)
