"""Is the broker reachable again? The uplink's back-off, cut short when the path returns.

``PathWatch.back_off(delay)`` waits ``delay`` seconds, probing the broker's address with a
bare TCP connect every ``PROBE_INTERVAL_S`` (closed at once, nothing sent). A probe that
succeeds after one that failed means a fresh network path (the cable, route or broker is
back): the wait ends after a short jitter and returns True, so the caller resets its
back-off and reconnects (issue 15 finding 6: a box stale for 37 s after a 30 s cut). A path
that never went down (a broker refusing the box's login) does not cut the wait short, so
such a broker is not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

PROBE_INTERVAL_S: Final = 1.0
PROBE_TIMEOUT_S: Final = 2.0
RETURN_JITTER_S: Final = 0.5


class PathWatch:
    """The probes of one broker address, with their counters."""

    def __init__(
        self, host: str, port: int, *, url: str, stopping: Callable[[], bool], wake: asyncio.Event
    ) -> None:
        self._host = host
        self._port = port
        self._url = url
        self._stopping = stopping
        self._wake = wake
        self.probes = 0
        """TCP probes made."""
        self.returns = 0
        """Waits cut short because the path answered again after it did not."""

    async def back_off(self, delay: float) -> bool:
        """Wait ``delay`` s or until ``stopping()`` (checked when ``wake`` is set); True
        when the path came back during the wait (then reconnect now)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        path_was_down = False
        self._wake.clear()
        while not self._stopping():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if remaining > PROBE_INTERVAL_S:
                if not await self.answers(min(PROBE_TIMEOUT_S, remaining)):
                    path_was_down = True
                elif path_was_down:
                    self.returns += 1
                    log.info(
                        "uplink: %s answers again; reconnecting now (back-off reset)", self._url
                    )
                    await asyncio.sleep(random.uniform(0, RETURN_JITTER_S))
                    return not self._stopping()
            wait = max(0.0, min(PROBE_INTERVAL_S, deadline - loop.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
        return False

    async def answers(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True when a TCP connection to the broker's address opens (closed at once)."""
        self.probes += 1
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(self._host, self._port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        return True
