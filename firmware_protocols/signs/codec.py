"""A profile's generic codecs: displays to register writes and back, watchdog, status, faults.

Everything here works for any :class:`SignProfile`: :func:`encode_display` turns a display
into merged :class:`WriteBlock` s, :func:`decode_display` reads holding registers back into
the display, :func:`watchdog_write` kicks the watchdog, :func:`decode_status` reads the input
registers. Pure: no I/O, no clocks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.signs.displays import CUSTOM_SLOTS, Display, Message, SignStatus
from firmware_protocols.signs.registers import (
    FMT,
    Access,
    Table,
    WriteBlock,
    encode_register,
    merge_writes,
    read_register,
)
from firmware_protocols.signs.sign_profile import Fields, SignProfile


def encode_fields(profile: SignProfile, fields: Fields) -> list[WriteBlock]:
    blocks = []
    for name, value in fields.items():
        reg = profile.register(name)
        if reg.table is not Table.HOLDING or reg.access is Access.R:
            raise EncodeError(f"{profile.name}: register {name} is not writable", fmt=FMT)
        blocks.append(WriteBlock(reg.address, encode_register(reg, value)))
    return merge_writes(blocks)


def encode_display(profile: SignProfile, display: Display) -> list[WriteBlock]:
    """The holding-register writes that make the sign show ``display``."""
    if not isinstance(display, profile.display_type):
        raise EncodeError(
            f"{profile.name} shows {profile.display_type.__name__}, not {type(display).__name__}",
            fmt=FMT,
        )
    return encode_fields(profile, profile.to_fields(profile, display))


def decode_display(profile: SignProfile, registers: Mapping[int, int]) -> Display:
    """The display state held in ``registers`` (holding address -> word)."""
    fields = {
        name: read_register(profile.register(name), registers) for name in profile.display_fields
    }
    return profile.from_fields(profile, fields)


def watchdog_write(profile: SignProfile, counter: int) -> WriteBlock:
    """Kick the watchdog. Any write kicks; an incrementing counter shows liveness on read-back."""
    if profile.watchdog is None:
        raise EncodeError(f"profile {profile.name} has no watchdog", fmt=FMT)
    reg = profile.register(profile.watchdog)
    return WriteBlock(reg.address, encode_register(reg, counter & 0xFFFF))


def watchdog_timeout_write(profile: SignProfile, seconds: int) -> WriteBlock:
    """Set the watchdog timeout (0 disables it)."""
    if profile.watchdog_timeout is None:
        raise EncodeError(f"profile {profile.name} has no watchdog", fmt=FMT)
    reg = profile.register(profile.watchdog_timeout)
    return WriteBlock(reg.address, encode_register(reg, seconds))


def decode_status(profile: SignProfile, input_registers: Mapping[int, int]) -> SignStatus:
    """Model, firmware, uptime, fault bits (as names) and temperature from input registers."""
    if profile.model_code is None:
        raise DecodeError(f"profile {profile.name} has no status registers", fmt=FMT)
    values = {r.name: read_register(r, input_registers) for r in profile.table(Table.INPUT)}
    model = int(values["model"])
    if model != profile.model_code:
        raise DecodeError(
            f"model code 0x{model:04X} is not {profile.name} (0x{profile.model_code:04X})",
            fmt=FMT,
            data=struct.pack(">H", model),
        )
    firmware = int(values["firmware"])
    bits = int(values["faults"])
    faults = frozenset(name for i, name in enumerate(profile.fault_bits) if bits >> i & 1)
    return SignStatus(
        model_code=model,
        firmware=f"{firmware >> 8}.{firmware & 0xFF}",
        uptime_s=int(values["uptime"]),
        faults=faults,
        temperature_c=round(float(values["temperature"]), 1),
    )


def encode_fault_bits(profile: SignProfile, faults: Iterable[str]) -> int:
    """The fault register's word for a set of fault names (used by the simulator)."""
    word = 0
    for name in faults:
        if name not in profile.fault_bits:
            raise EncodeError(f"profile {profile.name} has no fault bit {name!r}", fmt=FMT)
        word |= 1 << profile.fault_bits.index(name)
    return word


def power_on_registers(profile: SignProfile) -> dict[Table, dict[int, int]]:
    """Every register's power-on word, per table (what a sign holds after a reboot)."""
    tables: dict[Table, dict[int, int]] = {t: {} for t in Table}
    for reg in profile.registers:
        words = encode_register(reg, reg.power_on)
        tables[reg.table].update(zip(reg.addresses, words, strict=True))
    return tables


def custom_text_writes(profile: SignProfile, slot: Message, text: str) -> list[WriteBlock]:
    """Store ``text`` (UTF-8, up to 32 bytes) in a warning sign's custom message slot."""
    if slot not in CUSTOM_SLOTS or not profile.has(f"custom_{slot.value - 15}"):
        raise EncodeError(f"profile {profile.name} has no custom slot {slot!r}", fmt=FMT)
    return encode_fields(profile, {f"custom_{slot.value - 15}": text})
