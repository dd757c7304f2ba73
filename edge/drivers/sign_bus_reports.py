"""What a sign bus owner reports: its events, and snapshots of each sign and of the bus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_protocols.signs import Display


class SignBusEventKind(StrEnum):
    UNIT_DOWN = "unit-down"
    UNIT_UP = "unit-up"
    FAULTS_CHANGED = "faults-changed"
    VERIFY_MISMATCH = "verify-mismatch"
    REBOOT = "reboot"
    BUS_DOWN = "bus-down"
    BUS_UP = "bus-up"
    VERIFIED = "verified"  # a read-back matched what was written


@dataclass(frozen=True, slots=True, kw_only=True)
class SignBusEvent:
    """Something the rest of the box should know about a sign or the bus."""

    kind: SignBusEventKind
    bus_id: str
    at: float  # the bus clock
    sign_id: str | None = None  # None for bus-down / bus-up
    unit: int | None = None
    reason: str = ""
    faults: frozenset[str] = frozenset()  # faults-changed: the new set
    shown: Display | None = None  # verify-mismatch: what was read back (None: unreadable)
    expected: Display | None = None  # verify-mismatch: what had been written


@dataclass(frozen=True, slots=True, kw_only=True)
class SignUnitCounters:
    requests: int = 0  # frames sent, retries included
    writes: int = 0
    reads: int = 0
    timeouts: int = 0
    exceptions: Mapping[int, int] = field(default_factory=dict)  # exception code -> count
    retries: int = 0
    verify_mismatches: int = 0
    reboots_seen: int = 0
    last_ok: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignUnitStatus:
    """A snapshot of one sign as the bus owner knows it."""

    sign_id: str
    unit: int
    profile: str
    up: bool
    down_since: float | None
    shown: Display | None  # as last read back from the sign
    desired: Display | None
    faults: frozenset[str] | None  # None until the status registers were read
    firmware: str | None
    uptime_s: int | None
    counters: SignUnitCounters
    verified_at: float | None = None  # wall clock of the last read-back that matched
    problem: str | None = None  # why the sign does not show what was written, in words
    wrong_since: float | None = None  # wall clock since when it has not


@dataclass(frozen=True, slots=True, kw_only=True)
class SignBusStats:
    bus_id: str
    connected: bool
    connects: int
    disconnects: int
    requests: int
    writes: int
    reads: int
    timeouts: int
    exceptions: int
    retries: int
    verify_mismatches: int
    reboots_seen: int
    units_up: int
    units_down: int
    errors: Mapping[str, int]  # unexpected exceptions by kind (class name)
    signs: Mapping[str, SignUnitStatus]
