"""The sign bus owner: one task drives every sign on one Modbus bus (RS-485 RTU or TCP).

Theory of operation
-------------------
:class:`SignBus` is the only user of its bus. Agents call :meth:`SignBus.set_display`, which
encodes the display at once (a bad display fails in the caller) and queues its registers per
unit; a newer value for a register replaces the queued one, so a burst of updates costs one
request. An :class:`asyncio.Event` wakes the owner, which picks one job at a time, in this
order:

1. **write**: queued registers of a unit that is up (plus the watchdog kick when it shares
   the request);
2. **init**: on start, after a reconnect, on a unit's recovery and when a refresh finds the
   sign wrong: watchdog timeout + display + kick (one request for the parkgrid profiles);
3. **refresh** every ``refresh_interval_s``: read the display (and watchdog timeout) back and
   compare with what was written, read the status registers (faults, firmware, uptime), kick
   the watchdog. A mismatch, a reset watchdog timeout or an uptime that went backwards (a
   reboot) is counted, reported and answered by an init at once. Queued writes pre-empt a
   refresh between its requests.
4. **heartbeat** every ``heartbeat_interval_s`` between refreshes: one short read of the
   status registers (uptime, faults), or of the display for a profile without them; after
   a write, the display is read back as well, once, so what the box reports as shown is
   never older than a heartbeat. A reboot
   (uptime went back) or an expired watchdog (the sign shows "--") is reported and answered
   by an init at once, so a sign that went dark is back within about a heartbeat instead of
   a refresh interval.

Every sign has a *truth* the box reports (:class:`SignUnitStatus`): when its read-back last
matched what was written (``verified_at``, wall clock), and while it does not, the
``problem`` in words and since when (``wrong_since``). A ``VERIFIED`` event follows every
read-back that matched, so the box can report the end of a dark period at once.

One guidance-sign refresh, three frames (unit 1, guidance profile)::

    read holding 0x0000 x11   free colour arrow mode bright label(4) watchdog timeout
    read input   0x0000 x6    model firmware uptime(2) faults temperature
    write        0x0009 x1    watchdog counter

Every request waits ``inter_frame_gap_ms`` after the previous frame, is retried
``retries`` times on a timeout (or a busy / acknowledge exception), and counts towards the
unit's failures. After ``down_after_failures`` consecutive failures the unit is down: logged
once (WARNING, with the reason), reported, and probed again only every
``retry_down_after_s``, so a dead sign costs the others one timeout per probe. The first
answer brings it up (logged once, INFO) and re-initialises it. A lost TCP connection or serial
port is the bus's failure, not a unit's: the owner closes the client and reconnects with
back-off (logged once down, once up). Any other exception in a job is counted by kind, logged
the first time, charged to the unit it concerned, and the loop goes on.

Timestamps and schedules use ``clock`` (default ``time.monotonic``); idle waits sleep for the
clock difference in real seconds, and the inter-frame gap uses the event loop's own time.

Its rooms: ``sign_bus_reports`` (the events and snapshots it reports), ``sign_unit`` (one
sign's state and the register spans it reads), ``sign_requests`` (one request: the gap,
retries and the unit's up/down state); this module is the owner loop and its jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

from edge.config import SignBusConfig
from edge.drivers.errors import SignBusConnectionError, SignBusError
from edge.drivers.modbus_client import ModbusClient
from edge.drivers.sign_bus_reports import (
    SignBusEvent,
    SignBusEventKind,
    SignBusStats,
    SignUnitCounters,
    SignUnitStatus,
)
from edge.drivers.sign_requests import SignRequests
from edge.drivers.sign_unit import SignUnit, display_words, status_span, verify_spans
from firmware_protocols.errors import ProtocolError
from firmware_protocols.signs import (
    Display,
    Table,
    WriteBlock,
    decode_display,
    decode_status,
    encode_display,
    merge_writes,
    profile,
    watchdog_timeout_write,
    watchdog_write,
)

__all__ = [
    "SignBus",
    "SignBusEvent",
    "SignBusEventKind",
    "SignBusStats",
    "SignUnitCounters",
    "SignUnitStatus",
]

log = logging.getLogger(__name__)

RECONNECT_FIRST_DELAY_S = 0.1


class SignBus:
    """Owns one sign bus until cancelled: writes, verifies and watches every sign on it."""

    def __init__(
        self,
        *,
        bus_id: str,
        config: SignBusConfig,
        on_event: Callable[[SignBusEvent], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.bus_id = bus_id
        self.config = config
        self._on_event = on_event
        self._clock = clock
        self._wall = wall
        self._client = ModbusClient.from_config(bus_id, config)
        self._units: dict[str, SignUnit] = {}
        for sign_id, sign in config.signs.items():
            prof = profile(sign.profile)
            self._units[sign_id] = SignUnit(
                sign_id=sign_id, unit=sign.unit, profile=prof, verify_spans=verify_spans(prof)
            )
        self._requests = SignRequests(
            bus_id=bus_id,
            client=self._client,
            config=config,
            clock=clock,
            on_unit_event=self._unit_event,
        )
        self._dirty: dict[str, None] = {}  # signs with queued writes, oldest first
        self._wake = asyncio.Event()
        self._bus_down = False
        self._connects = 0
        self._disconnects = 0
        self._errors: Counter[str] = Counter()

    # --- the agents' side --------------------------------------------------------------

    @property
    def sign_ids(self) -> tuple[str, ...]:
        return tuple(self._units)

    @property
    def connected(self) -> bool:
        return self._client.connected

    def set_display(self, sign_id: str, display: Display) -> None:
        """Make ``sign_id`` show ``display``; EncodeError if its profile cannot show it."""
        unit = self._unit(sign_id)
        blocks = encode_display(unit.profile, display)
        if display == unit.desired:
            return
        unit.desired = display
        for address, values in blocks:
            for offset, word in enumerate(values):
                unit.pending[address + offset] = word
        self._dirty.pop(sign_id, None)
        self._dirty[sign_id] = None
        self._wake.set()

    def status(self, sign_id: str) -> SignUnitStatus:
        return self._unit(sign_id).status()

    def stats(self) -> SignBusStats:
        units = self._units.values()
        return SignBusStats(
            bus_id=self.bus_id,
            connected=self._client.connected,
            connects=self._connects,
            disconnects=self._disconnects,
            requests=sum(u.requests for u in units),
            writes=sum(u.writes for u in units),
            reads=sum(u.reads for u in units),
            timeouts=sum(u.timeouts for u in units),
            exceptions=sum(sum(u.exceptions.values()) for u in units),
            retries=sum(u.retries for u in units),
            verify_mismatches=sum(u.verify_mismatches for u in units),
            reboots_seen=sum(u.reboots_seen for u in units),
            units_up=sum(1 for u in units if u.up),
            units_down=sum(1 for u in units if not u.up),
            errors=dict(self._errors),
            signs={sign_id: self.status(sign_id) for sign_id in self._units},
        )

    def _unit(self, sign_id: str) -> SignUnit:
        try:
            return self._units[sign_id]
        except KeyError:
            raise KeyError(f"no sign {sign_id!r} on sign bus {self.bus_id}") from None

    # --- the owner loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Own the bus until cancelled."""
        try:
            while True:
                await self._ensure_connected()
                try:
                    await self._step()
                except SignBusConnectionError as exc:
                    self._connection_lost(exc)
                except Exception as exc:  # one bad cycle must not stop the signs
                    self._unexpected(exc, None)
                    await asyncio.sleep(min(1.0, self.config.refresh_interval_s))
        finally:
            self._client.close()

    async def _step(self) -> None:
        self._wake.clear()  # before choosing, so a set_display during the job is not lost
        now = self._clock()
        unit = self._next_write()
        if unit is not None:
            await self._job(unit, self._do_write(unit))
            return
        unit = next(
            (u for u in self._units.values() if u.needs_init and (u.up or now >= u.retry_at)),
            None,
        )
        if unit is not None:
            await self._job(unit, self._do_init(unit))
            return
        due = [u for u in self._units.values() if u.up and now >= u.next_refresh]
        if due:
            unit = min(due, key=lambda u: u.next_refresh)
            await self._job(unit, self._do_refresh(unit))
            return
        beat = [u for u in self._units.values() if u.up and now >= u.next_heartbeat]
        if beat:
            unit = min(beat, key=lambda u: u.next_heartbeat)
            await self._job(unit, self._do_heartbeat(unit))
            return
        await self._idle(now)

    async def _idle(self, now: float) -> None:
        times = [
            min(u.next_refresh, u.next_heartbeat) if u.up else u.retry_at
            for u in self._units.values()
        ]
        if not times:
            await self._wake.wait()
            return
        delay = max(0.0, min(times) - now)
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _next_write(self) -> SignUnit | None:
        for sign_id in self._dirty:
            unit = self._units[sign_id]
            if unit.up and not unit.needs_init:
                return unit
        return None

    async def _job(self, unit: SignUnit, job: Awaitable[None]) -> None:
        try:
            await job
        except SignBusConnectionError:
            raise  # the bus's failure, not the unit's: run() reconnects
        except SignBusError:
            pass  # already counted and charged to the unit in _request
        except Exception as exc:  # a bug for one sign must not stop the others
            self._unexpected(exc, unit)
            self._requests.failed(unit, f"{type(exc).__name__}: {exc}")

    # --- connection --------------------------------------------------------------------

    async def _ensure_connected(self) -> None:
        if self._client.connected:
            return
        delay = RECONNECT_FIRST_DELAY_S
        while True:
            try:
                await self._client.connect()
            except SignBusConnectionError as exc:
                if not self._bus_down:
                    self._bus_down = True
                    log.warning("sign bus %s down: %s", self.bus_id, exc)
                    self._emit(SignBusEventKind.BUS_DOWN, reason=str(exc))
                else:
                    log.debug("sign bus %s still down: %s", self.bus_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_down_after_s)
                continue
            break
        self._connects += 1
        if self._bus_down:
            self._bus_down = False
            log.info("sign bus %s up again (%s)", self.bus_id, self._client.where)
            self._emit(SignBusEventKind.BUS_UP, reason=f"connected to {self._client.where}")
        else:
            log.debug("sign bus %s connected to %s", self.bus_id, self._client.where)
        for unit in self._units.values():
            unit.needs_init = True  # a sign may have blanked while we could not reach it

    def _connection_lost(self, exc: SignBusConnectionError) -> None:
        self._client.close()
        self._disconnects += 1
        if not self._bus_down:
            self._bus_down = True
            log.warning("sign bus %s down: %s", self.bus_id, exc)
            self._emit(SignBusEventKind.BUS_DOWN, reason=str(exc))

    # --- jobs --------------------------------------------------------------------------

    def _kick(self, unit: SignUnit) -> WriteBlock:
        unit.kicks = (unit.kicks + 1) & 0xFFFF
        return watchdog_write(unit.profile, unit.kicks)

    async def _do_write(self, unit: SignUnit) -> None:
        sent = dict(unit.pending)
        desired = unit.desired
        unit.pending.clear()
        self._dirty.pop(unit.sign_id, None)
        blocks = merge_writes(WriteBlock(a, (w,)) for a, w in sorted(sent.items()))
        if unit.profile.watchdog is not None:
            kick = self._kick(unit)
            with_kick = merge_writes([*blocks, kick])
            if len(with_kick) == len(blocks):  # the kick rides along for free
                blocks = with_kick
        try:
            for block in blocks:
                await self._write(unit, block)
        except BaseException:
            for address, word in sent.items():
                unit.pending.setdefault(address, word)  # newer values queued meanwhile win
            if unit.pending:
                self._dirty.setdefault(unit.sign_id, None)
            raise
        if not unit.pending:
            unit.written = desired
        unit.verify_pending = True

    async def _do_init(self, unit: SignUnit) -> None:
        prof = unit.profile
        desired = unit.desired
        blocks: list[WriteBlock] = []
        if desired is not None:
            blocks.extend(encode_display(prof, desired))
        if prof.watchdog is not None:
            blocks.append(self._kick(unit))
        if prof.watchdog_timeout is not None:
            blocks.append(watchdog_timeout_write(prof, self.config.watchdog_timeout_s))
        if blocks:
            # the queued registers are part of the desired display written here
            unit.pending.clear()
            self._dirty.pop(unit.sign_id, None)
            for block in merge_writes(blocks):
                await self._write(unit, block)
            if desired is not None and desired == unit.desired:
                unit.written = desired
        else:
            address, count = unit.verify_spans[0]
            await self._read(unit, Table.HOLDING, address, count)  # a probe: is anyone there?
        unit.needs_init = False
        unit.next_refresh = self._clock()  # verify what we wrote at the next free moment
        unit.next_heartbeat = unit.next_refresh + self.config.heartbeat_interval_s

    async def _do_refresh(self, unit: SignUnit) -> None:
        prof = unit.profile
        await self._preempt()
        # the display's reads go back to back, so a write of ours never lands between them
        reinit, matched = self._verify(unit, await self._read_display(unit))
        span = status_span(prof)
        if span is not None:
            await self._preempt()
            reinit, matched = await self._read_status(unit, span, reinit, matched)
        if matched:
            self._verified(unit)
        await self._preempt()
        if reinit or unit.needs_init:
            await self._do_init(unit)
        elif prof.watchdog is not None:
            await self._write(unit, self._kick(unit))
        unit.next_refresh = self._clock() + self.config.refresh_interval_s
        unit.next_heartbeat = self._clock() + self.config.heartbeat_interval_s

    async def _read_display(self, unit: SignUnit) -> dict[int, int]:
        """The holding registers the display is verified against, address -> word."""
        holding: dict[int, int] = {}
        for address, count in unit.verify_spans:
            words = await self._read(unit, Table.HOLDING, address, count)
            holding.update(zip(range(address, address + count), words, strict=True))
        return holding

    async def _read_status(
        self, unit: SignUnit, span: tuple[int, int], reinit: bool, matched: bool
    ) -> tuple[bool, bool]:
        """Read the status span: a reboot or a dark sign means init again, and no match."""
        words = await self._read(unit, Table.INPUT, span[0], span[1])
        inputs = dict(zip(range(span[0], span[0] + span[1]), words, strict=True))
        rebooted = self._check_status(unit, inputs)
        dark = unit.faults is not None and "watchdog_expired" in unit.faults
        return reinit or rebooted or dark, matched and not (rebooted or dark)

    async def _do_heartbeat(self, unit: SignUnit) -> None:
        """One short read between refreshes: has the sign rebooted or gone dark? After a
        write, the display is read back too (once, however many writes came meanwhile)."""
        unit.next_heartbeat = self._clock() + self.config.heartbeat_interval_s
        span = status_span(unit.profile)
        reinit = matched = False
        if span is None or unit.verify_pending:
            unit.verify_pending = False
            reinit, matched = self._verify(unit, await self._read_display(unit))
        if span is not None:
            reinit, matched = await self._read_status(unit, span, reinit, matched)
        if matched:
            self._verified(unit)
        if reinit:
            unit.needs_init = True  # rewritten at the next step, before anything else is due

    async def _preempt(self) -> None:
        """Serve queued sign writes before the next refresh request."""
        while (unit := self._next_write()) is not None:
            await self._job(unit, self._do_write(unit))

    # --- verification ------------------------------------------------------------------

    def _verify(self, unit: SignUnit, holding: Mapping[int, int]) -> tuple[bool, bool]:
        """Compare the read-back with what was written: (needs an init, matched)."""
        prof = unit.profile
        try:
            shown: Display | None = decode_display(prof, holding)
        except ProtocolError as exc:
            shown = None
            unit.last_error = f"unreadable display: {exc}"
        unit.shown = shown
        needs_init = False
        if prof.watchdog_timeout is not None:
            reg = prof.register(prof.watchdog_timeout)
            if holding.get(reg.address) != self.config.watchdog_timeout_s:
                needs_init = True  # power-on default back: the sign lost its settings
        expected = unit.written
        matched = expected is not None and shown == expected
        if expected is not None and shown != expected:
            unit.verify_mismatches += 1
            self._wrong(unit, f"shows {display_words(shown)} instead of {display_words(expected)}")
            log.info(
                "sign bus %s sign %s (unit %d) shows %r instead of %r; rewriting",
                self.bus_id, unit.sign_id, unit.unit, shown, expected,
            )  # fmt: skip
            self._emit(
                SignBusEventKind.VERIFY_MISMATCH,
                unit=unit,
                reason="the sign does not show what was written",
                shown=shown,
                expected=expected,
            )
            needs_init = True
        return needs_init, matched

    def _check_status(self, unit: SignUnit, inputs: Mapping[int, int]) -> bool:
        """Record faults, firmware and uptime; True when the sign rebooted."""
        try:
            status = decode_status(unit.profile, inputs)
        except ProtocolError as exc:
            unit.last_error = f"unreadable status: {exc}"
            self._unexpected(exc, unit)
            return False
        rebooted = unit.uptime_s is not None and status.uptime_s < unit.uptime_s
        if rebooted:
            unit.reboots_seen += 1
            reason = f"uptime went back from {unit.uptime_s} s to {status.uptime_s} s"
            log.info("sign bus %s sign %s rebooted: %s", self.bus_id, unit.sign_id, reason)
            self._wrong(unit, f"rebooted ({reason}): dark until rewritten")
            self._emit(SignBusEventKind.REBOOT, unit=unit, reason=reason)
        elif "watchdog_expired" in status.faults and unit.written is not None:
            self._wrong(unit, "shows -- (its watchdog expired: not refreshed in time)")
        before = unit.faults if unit.faults is not None else frozenset()
        if status.faults != before:
            reason = ", ".join(sorted(status.faults)) or "no faults"
            log.info("sign bus %s sign %s faults: %s", self.bus_id, unit.sign_id, reason)
            self._emit(
                SignBusEventKind.FAULTS_CHANGED, unit=unit, reason=reason, faults=status.faults
            )
        unit.faults = status.faults
        unit.firmware = status.firmware
        unit.uptime_s = status.uptime_s
        return rebooted

    def _verified(self, unit: SignUnit) -> None:
        unit.verified_at = self._wall()
        was = unit.problem
        unit.problem = None
        unit.wrong_since = None
        reason = f"shows what was written again (was: {was})" if was else "read back as written"
        self._emit(SignBusEventKind.VERIFIED, unit=unit, reason=reason)

    def _wrong(self, unit: SignUnit, problem: str) -> None:
        if unit.problem is None:
            unit.wrong_since = self._wall()
        unit.problem = problem

    # --- one request, through the bus's request layer ----------------------------------

    async def _write(self, unit: SignUnit, block: WriteBlock) -> None:
        await self._requests.write(unit, block)

    async def _read(self, unit: SignUnit, table: Table, address: int, count: int) -> list[int]:
        return await self._requests.read(unit, table, address, count)

    def _unit_event(self, kind: SignBusEventKind, unit: SignUnit, reason: str) -> None:
        self._emit(kind, unit=unit, reason=reason)

    # --- reporting ---------------------------------------------------------------------

    def _unexpected(self, exc: Exception, unit: SignUnit | None) -> None:
        kind = type(exc).__name__
        self._errors[kind] += 1
        where = f"sign {unit.sign_id} (unit {unit.unit})" if unit else "the owner loop"
        if self._errors[kind] == 1:
            log.error(
                "sign bus %s: %s in %s (logged once per kind): %s",
                self.bus_id, kind, where, exc, exc_info=exc,
            )  # fmt: skip
        else:
            log.debug("sign bus %s: %s in %s: %s", self.bus_id, kind, where, exc)

    def _emit(
        self,
        kind: SignBusEventKind,
        *,
        unit: SignUnit | None = None,
        reason: str = "",
        faults: frozenset[str] = frozenset(),
        shown: Display | None = None,
        expected: Display | None = None,
    ) -> None:
        event = SignBusEvent(
            kind=kind,
            bus_id=self.bus_id,
            at=self._clock(),
            sign_id=unit.sign_id if unit else None,
            unit=unit.unit if unit else None,
            reason=reason,
            faults=faults,
            shown=shown,
            expected=expected,
        )
        try:
            self._on_event(event)
        except Exception as exc:  # a listener's bug must not stop the bus
            self._unexpected(exc, unit)
