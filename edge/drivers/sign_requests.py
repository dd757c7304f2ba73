"""One request to one sign: the inter-frame gap, retries, and the sign's up/down state.

Every request waits ``inter_frame_gap_ms`` after the previous frame on the bus, is retried
``retries`` times on a timeout (or a busy / acknowledge exception), and counts towards the
unit's failures. After ``down_after_failures`` consecutive failures the unit is down (logged
once, WARNING, and reported) and probed again only every ``retry_down_after_s``; the first
answer brings it up (logged once, INFO, and reported). A lost connection is raised to the bus
owner untouched: it is the bus's failure, not a unit's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edge.config import SignBusConfig
from edge.drivers.errors import (
    SignBusConnectionError,
    SignBusError,
    SignUnitException,
    SignUnitTimeout,
)
from edge.drivers.modbus_client import ModbusClient
from edge.drivers.sign_bus_reports import SignBusEventKind
from edge.drivers.sign_unit import SignUnit
from firmware_protocols.signs import Table, WriteBlock

log = logging.getLogger("edge.drivers.sign_bus")  # the bus owner's log, as before the split

RETRYABLE_EXCEPTIONS = frozenset({5, 6})  # acknowledge, device busy: ask again
_T = TypeVar("_T")

# the bus owner's report of a unit going down or up: (kind, unit, reason)
UnitEvent = Callable[[SignBusEventKind, SignUnit, str], None]


class SignRequests:
    """Sends one bus's requests one at a time, keeping each unit's up/down state."""

    def __init__(
        self,
        *,
        bus_id: str,
        client: ModbusClient,
        config: SignBusConfig,
        clock: Callable[[], float],
        on_unit_event: UnitEvent,
    ) -> None:
        self.bus_id = bus_id
        self.config = config
        self._client = client
        self._clock = clock
        self._on_unit_event = on_unit_event
        self._gap_s = config.inter_frame_gap_ms / 1000
        self._last_frame = 0.0  # event-loop time the previous frame ended

    async def write(self, unit: SignUnit, block: WriteBlock) -> None:
        def call() -> Awaitable[None]:
            unit.writes += 1
            return self._client.write_registers(unit.unit, block.address, block.values)

        await self._request(unit, call)

    async def read(self, unit: SignUnit, table: Table, address: int, count: int) -> list[int]:
        def call() -> Awaitable[list[int]]:
            unit.reads += 1
            if table is Table.INPUT:
                return self._client.read_input(unit.unit, address, count)
            return self._client.read_holding(unit.unit, address, count)

        return await self._request(unit, call)

    async def _request(self, unit: SignUnit, call: Callable[[], Awaitable[_T]]) -> _T:
        loop = asyncio.get_running_loop()
        error: SignBusError | None = None
        for attempt in range(1 + self.config.retries):
            if attempt:
                unit.retries += 1
            wait = self._last_frame + self._gap_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            unit.requests += 1
            try:
                result = await call()
            except SignBusConnectionError:
                raise
            except SignUnitTimeout as exc:
                unit.timeouts += 1
                error = exc
                continue
            except SignUnitException as exc:
                unit.exceptions[exc.code] += 1
                error = exc
                if exc.code in RETRYABLE_EXCEPTIONS:
                    continue
                break
            except SignBusError as exc:
                error = exc
                continue
            finally:
                self._last_frame = loop.time()
            self._ok(unit)
            return result
        assert error is not None
        self.failed(unit, str(error))
        raise error

    def _ok(self, unit: SignUnit) -> None:
        unit.failures = 0
        unit.last_ok = self._clock()
        if not unit.up:
            down_for = unit.last_ok - (unit.down_since or unit.last_ok)
            unit.up = True
            unit.down_since = None
            log.info(
                "sign bus %s sign %s (unit %d) answers again after %.1f s",
                self.bus_id, unit.sign_id, unit.unit, down_for,
            )  # fmt: skip
            self._on_unit_event(SignBusEventKind.UNIT_UP, unit, "answers again")

    def failed(self, unit: SignUnit, reason: str) -> None:
        now = self._clock()
        unit.failures += 1
        unit.last_error = reason
        if unit.up and unit.failures >= self.config.down_after_failures:
            unit.up = False
            unit.down_since = now
            unit.needs_init = True
            log.warning(
                "sign bus %s sign %s (unit %d) down after %d failures: %s",
                self.bus_id, unit.sign_id, unit.unit, unit.failures, reason,
            )  # fmt: skip
            self._on_unit_event(SignBusEventKind.UNIT_DOWN, unit, reason)
        if not unit.up:
            unit.retry_at = now + self.config.retry_down_after_s

    # --- reporting ---------------------------------------------------------------------
