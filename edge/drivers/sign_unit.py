"""One sign as its bus owner keeps it: state, counters, and the register spans it reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from edge.drivers.sign_bus_reports import SignUnitCounters, SignUnitStatus
from firmware_protocols.signs import Display, GuidanceDisplay, SignProfile, Table, guidance_text

MAX_READ_REGISTERS = 125  # function 3/4 read at most 125 registers (Modbus spec 6.3)


@dataclass(slots=True)
class SignUnit:
    """One sign on the bus: what it should show, what it showed, its health and counters."""

    sign_id: str
    unit: int
    profile: SignProfile
    verify_spans: tuple[tuple[int, int], ...]  # (address, count) reads covering the display
    desired: Display | None = None
    written: Display | None = None  # last display a write of ours was acknowledged for
    shown: Display | None = None
    pending: dict[int, int] = field(default_factory=dict)  # address -> word, newest wins
    up: bool = True
    down_since: float | None = None
    failures: int = 0
    retry_at: float = 0.0
    needs_init: bool = True
    next_refresh: float = 0.0
    next_heartbeat: float = 0.0
    verify_pending: bool = False  # read the display back at the next heartbeat
    verified_at: float | None = None
    problem: str | None = None
    wrong_since: float | None = None
    faults: frozenset[str] | None = None
    firmware: str | None = None
    uptime_s: int | None = None
    kicks: int = 0
    requests: int = 0
    writes: int = 0
    reads: int = 0
    timeouts: int = 0
    exceptions: Counter[int] = field(default_factory=Counter)
    retries: int = 0
    verify_mismatches: int = 0
    reboots_seen: int = 0
    last_ok: float | None = None
    last_error: str | None = None

    def counters(self) -> SignUnitCounters:
        return SignUnitCounters(
            requests=self.requests,
            writes=self.writes,
            reads=self.reads,
            timeouts=self.timeouts,
            exceptions=dict(self.exceptions),
            retries=self.retries,
            verify_mismatches=self.verify_mismatches,
            reboots_seen=self.reboots_seen,
            last_ok=self.last_ok,
            last_error=self.last_error,
        )

    def status(self) -> SignUnitStatus:
        """A snapshot of this sign."""
        return SignUnitStatus(
            sign_id=self.sign_id,
            unit=self.unit,
            profile=self.profile.name,
            up=self.up,
            down_since=self.down_since,
            shown=self.shown,
            desired=self.desired,
            faults=self.faults,
            firmware=self.firmware,
            uptime_s=self.uptime_s,
            counters=self.counters(),
            verified_at=self.verified_at,
            problem=self.problem,
            wrong_since=self.wrong_since,
        )


def verify_spans(prof: SignProfile) -> tuple[tuple[int, int], ...]:
    """Reads covering the display (and watchdog timeout) registers, bridging only over
    registers the profile defines, since a sign may refuse an address it does not have."""
    names = list(prof.display_fields)
    if prof.watchdog_timeout is not None:
        names.append(prof.watchdog_timeout)
    wanted = sorted({a for name in names for a in prof.register(name).addresses})
    defined = {a for reg in prof.table(Table.HOLDING) for a in reg.addresses}
    spans: list[tuple[int, int]] = []
    start = end = wanted[0]
    for address in wanted[1:]:
        bridge = all(a in defined for a in range(end + 1, address))
        if bridge and address - start < MAX_READ_REGISTERS:
            end = address
        else:
            spans.append((start, end - start + 1))
            start = end = address
    spans.append((start, end - start + 1))
    return tuple(spans)


def display_words(display: Display | None) -> str:
    """A display in a few words for logs and reports."""
    if display is None:
        return "an unreadable display"
    if isinstance(display, GuidanceDisplay):
        return repr(guidance_text(display) or "dark")
    return repr(display)


def status_span(prof: SignProfile) -> tuple[int, int] | None:
    regs = prof.table(Table.INPUT)
    if prof.model_code is None or not regs:
        return None
    first = min(r.address for r in regs)
    last = max(r.address + r.count - 1 for r in regs)
    return first, last - first + 1
