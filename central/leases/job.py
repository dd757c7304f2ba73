"""A job that runs on a beat in its own thread, only while this process holds its lease.

The case sweep, the history retention and the broker-drops watch are each "every N seconds,
if this process holds the lease, do one step; log a failure once, then again only after it
worked". One loop serves them all; each job keeps its own step and lease name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class LeasedJob:
    """``step()`` every ``interval_s`` while ``holds()``; ``first_at_start`` runs it once
    at start too. A step that raises is logged (once until a step works) and tried again on
    the next beat: the loop never dies of it."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        *,
        interval_s: float,
        holds: Callable[[], bool] = lambda: True,
        first_at_start: bool = False,
    ) -> None:
        self.name = name
        self.step = step
        self.interval_s = interval_s
        self.holds = holds
        self.first_at_start = first_at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> LeasedJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        if not self.first_at_start and self._stop.wait(self.interval_s):
            return
        while True:
            if self.holds():
                try:
                    self.step()
                    if failing:
                        log.info("%s works again", self.name)
                    failing = False
                except Exception:
                    if not failing:
                        log.exception("%s failed; retrying every %s s", self.name, self.interval_s)
                    failing = True
            if self._stop.wait(self.interval_s):
                return
