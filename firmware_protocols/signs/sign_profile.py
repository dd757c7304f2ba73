"""The sign profile type: a sign model's registers as data plus its display <-> fields mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from firmware_protocols.errors import EncodeError
from firmware_protocols.signs.displays import Display
from firmware_protocols.signs.registers import FMT, Register, Table, Value

Fields = Mapping[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignProfile:
    """A sign model: its registers as data plus the display <-> fields mapping."""

    name: str
    title: str
    registers: tuple[Register, ...]
    display_type: type
    display_fields: tuple[str, ...]  # the registers encode_display writes, in order
    to_fields: Callable[[SignProfile, Display], dict[str, Value]]
    from_fields: Callable[[SignProfile, Fields], Display]
    model_code: int | None = None
    watchdog: str | None = None  # register name of the watchdog kick
    watchdog_timeout: str | None = None
    fault_bits: tuple[str, ...] = ()  # bit i of the "faults" input register
    notes: str = ""
    _by_name: dict[str, Register] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for reg in self.registers:
            self._by_name[reg.name] = reg

    def register(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise EncodeError(f"profile {self.name} has no register {name!r}", fmt=FMT) from None

    def has(self, name: str) -> bool:
        return name in self._by_name

    def table(self, table: Table) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.table is table)
