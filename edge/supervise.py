"""Supervision: a loop that crashes is logged and restarted with back-off, never fatal.

Each agent's ``run()`` is wrapped by ``supervised``; the box's TaskGroup holds the wrappers,
so one agent's bug costs that agent a restart, not the box its signs. A loop that ran
healthily for a while before failing starts its back-off again from the beginning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Restarts:
    """How often each supervised loop had to be restarted."""

    counts: dict[str, int] = field(default_factory=dict)


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    restarts: Restarts,
    first_delay_s: float = 1.0,
    max_delay_s: float = 60.0,
    healthy_after_s: float = 60.0,
) -> None:
    """Run ``run()`` forever; restart it with exponential back-off when it ends or fails."""
    delay = first_delay_s
    while True:
        started = time.monotonic()
        try:
            await run()
            log.warning("%s stopped by itself; restarting in %.1f s", name, delay)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in %.1f s", name, delay)
        restarts.counts[name] = restarts.counts.get(name, 0) + 1
        if time.monotonic() - started >= healthy_after_s:
            delay = first_delay_s
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
