"""The box's clock loop: wakes at the earliest deadline of any stage that keeps time (a
sensor's heartbeat expiring, a zone's phase, an override's end) and lets each look.

Stages are watched in the order given; each is asked its next deadline before the wait and
told the time after it. ``wake`` makes the loop look at every deadline again at once (a new
observation moved one, or the clock was stepped).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

Deadline = Callable[[], float | None]
OnTime = Callable[[float], None]

IDLE_WAKE_S = 60.0  # the longest the loop sleeps, deadlines or not


class Ticker:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._watches: list[tuple[Deadline, OnTime]] = []
        self._wake = asyncio.Event()

    def watch(self, next_deadline: Deadline, on_time: OnTime) -> None:
        self._watches.append((next_deadline, on_time))

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            now = self._clock()
            deadlines = [d for d in (deadline() for deadline, _ in self._watches) if d is not None]
            delay = max(0.0, min(deadlines) - now) if deadlines else IDLE_WAKE_S
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, IDLE_WAKE_S) + 0.001)
            now = self._clock()
            for _, on_time in self._watches:
                on_time(now)
