"""Sign profiles: declarative Modbus register maps for LED signs, and their codecs.

Theory of operation
-------------------
Every sign on a bus is one Modbus unit. A :class:`SignProfile` lists the unit's registers as
data (address, table, type, scale, access, meaning, power-on value) and carries two small
functions that map a typed display state (:class:`NumericDisplay`, :class:`GuidanceDisplay`,
:class:`WarningDisplay`) to register fields and back. Everything else is generic:

* :func:`encode_display` turns a display into :class:`WriteBlock` s, contiguous registers
  merged so that one function-16 "write multiple registers" request carries them;
* :func:`decode_display` turns holding registers read back into the display, so the driver
  can verify that a sign shows what it was told (and the simulator knows what it shows);
* :func:`watchdog_write` kicks the watchdog, :func:`decode_status` reads the input registers
  (model, firmware, uptime, fault bits), :func:`identify` recognises a profile by its model
  code and :func:`shown_text` says in words what the sign shows.

The guidance profile puts the watchdog register right after the display registers, so a
refresh (display + kick) is one request::

    Modbus RTU, function 16, guidance sign unit 1, holding 0x0000..0x0009 (10 registers)

    +------+----+-----------+-----------+-------+-------------------------------------+-------+
    | unit | 10 | addr 0000 | count 000A| bytes | free colour arrow mode bright label |  CRC  |
    |  01  |    |   2 B BE  |   2 B BE  |  14   | (4 regs) watchdog                   | 2B LE |
    +------+----+-----------+-----------+-------+-------------------------------------+-------+

Register words are big-endian 16-bit values; a u32 spans two registers, high word first;
text carries two bytes per register, high byte first, NUL-padded at the end.

The package is pure: no I/O, no clocks. The watchdog's timing lives in the sign (or the
simulator); this package only names the registers and the fault bit that reports it.

Modules: ``registers`` (the register vocabulary and single-register codecs), ``displays``
(the typed display states), ``sign_profile`` (the profile type), ``codec`` (displays, watchdog
and status to registers and back, for any profile), ``face_text`` (what a face shows, in
words), ``profiles`` (the three sign models, a declarative table). Import from the package.
"""

from firmware_protocols.signs.codec import (
    custom_text_writes,
    decode_display,
    decode_status,
    encode_display,
    encode_fault_bits,
    encode_fields,
    power_on_registers,
    watchdog_timeout_write,
    watchdog_write,
)
from firmware_protocols.signs.displays import (
    ARROW_ASCII,
    ARROW_GLYPH,
    CUSTOM_SLOTS,
    CUSTOM_TEXT_BASE,
    CUSTOM_TEXT_REGISTERS,
    FULL_WORDS,
    FULL_WORDS_ASCII,
    GUIDANCE_MAX_COUNT,
    MESSAGE_TEXT,
    UNKNOWN_TEXT,
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    SignStatus,
    WarningDisplay,
)
from firmware_protocols.signs.face_text import (
    format_numeric,
    guidance_text,
    numeric_full_text,
    shown_text,
)
from firmware_protocols.signs.profiles import (
    BAUD_CODES,
    FAULT_BITS,
    FIRMWARE_1_0,
    GENERIC_DIGITS,
    GENERIC_LED,
    GENERIC_TEXT_REGISTERS,
    MODEL_GUIDANCE,
    MODEL_WARNING,
    PARKGRID_GUIDANCE,
    PARKGRID_WARNING,
    PROFILES,
    identify,
    looks_like_generic_led,
    profile,
)
from firmware_protocols.signs.registers import (
    FMT,
    MAX_WRITE_REGISTERS,
    Access,
    DataType,
    Register,
    Table,
    Value,
    WriteBlock,
    decode_register,
    encode_register,
    merge_writes,
    read_register,
)
from firmware_protocols.signs.sign_profile import (
    Fields,
    SignProfile,
)

__all__ = [
    "ARROW_ASCII",
    "ARROW_GLYPH",
    "BAUD_CODES",
    "CUSTOM_SLOTS",
    "CUSTOM_TEXT_BASE",
    "CUSTOM_TEXT_REGISTERS",
    "FAULT_BITS",
    "FIRMWARE_1_0",
    "FMT",
    "FULL_WORDS",
    "FULL_WORDS_ASCII",
    "GENERIC_DIGITS",
    "GENERIC_LED",
    "GENERIC_TEXT_REGISTERS",
    "GUIDANCE_MAX_COUNT",
    "MAX_WRITE_REGISTERS",
    "MESSAGE_TEXT",
    "MODEL_GUIDANCE",
    "MODEL_WARNING",
    "PARKGRID_GUIDANCE",
    "PARKGRID_WARNING",
    "PROFILES",
    "UNKNOWN_TEXT",
    "Access",
    "Arrow",
    "Colour",
    "DataType",
    "Display",
    "Fields",
    "GuidanceDisplay",
    "GuidanceMode",
    "Message",
    "NumericDisplay",
    "Register",
    "SignProfile",
    "SignStatus",
    "Table",
    "Value",
    "WarningDisplay",
    "WriteBlock",
    "custom_text_writes",
    "decode_display",
    "decode_register",
    "decode_status",
    "encode_display",
    "encode_fault_bits",
    "encode_fields",
    "encode_register",
    "format_numeric",
    "guidance_text",
    "identify",
    "looks_like_generic_led",
    "merge_writes",
    "numeric_full_text",
    "power_on_registers",
    "profile",
    "read_register",
    "shown_text",
    "watchdog_timeout_write",
    "watchdog_write",
]
