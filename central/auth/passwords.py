"""Password checks: argon2 hashing behind a gate, and the failed-login back-off.

An argon2 check costs 64 MiB and tens of milliseconds, on purpose. So two things bound what
an unauthenticated burst can cost central:

- ``LoginThrottle.reserve`` counts an attempt as a failure *before* its password is
  checked (and forgets it on success), under one lock: 100 concurrent guesses for one
  user get ``max_failures`` checks, not as many as raced past a check-then-record.
- ``PasswordChecks`` lets at most ``slots`` checks run at once across the process (a
  semaphore); a request that cannot get a slot within ``wait_s`` is 503 with Retry-After,
  so memory stays at one or two checks' worth. A login waits for its turn on the event
  loop (``turn()``), not in a worker thread: a spray of guesses from many addresses does
  not take the threads every other route needs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from central.errors import TooManyAttempts, Unavailable

_hasher = PasswordHasher()
MAX_BACKOFF_S = 300.0


class PasswordsBusy(Unavailable):
    """Every password-check slot stayed taken for ``retry_after_s``."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("password checking (too many logins at once)")
        self.retry_after_s = retry_after_s


class PasswordChecks:
    """argon2 hash and verify, at most ``slots`` at a time in this process, counted."""

    def __init__(self, *, slots: int = 1, wait_s: float = 10.0) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._gate = threading.BoundedSemaphore(slots)
        self._turns = asyncio.Semaphore(slots)  # logins wait here, on the event loop
        self._lock = threading.Lock()
        self.checks = 0  # verifies run (the metric parkgrid_central_password_checks_total)
        self.busy = 0  # requests refused for want of a slot
        self.waiting = 0  # logins waiting for their turn now
        self._dummy: str | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A login's turn to check a password, awaited without holding a thread."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_s):
                await self._turns.acquire()
        except TimeoutError:
            with self._lock:
                self.busy += 1
            raise PasswordsBusy(self.wait_s) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._turns.release()

    def _slot(self) -> None:
        if not self._gate.acquire(timeout=self.wait_s):
            with self._lock:
                self.busy += 1
            raise PasswordsBusy(self.wait_s)

    def hash(self, password: str) -> str:
        self._slot()
        try:
            return _hasher.hash(password)
        finally:
            self._gate.release()

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; an unknown user (None) costs the same as a wrong one."""
        if self._dummy is None:
            self._dummy = self.hash("not a password anyone has")
        self._slot()
        try:
            with self._lock:
                self.checks += 1
            _hasher.verify(stored_hash or self._dummy, password)
            return stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._gate.release()


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class LoginThrottle:
    """Counts login attempts per key (user name, client address) and imposes a back-off.

    After ``max_failures`` attempts not yet forgotten (a success forgets them), the next is
    refused until ``backoff_s`` has passed since the last one, doubling with each further
    attempt up to 5 min. Keys unheard for ``window_s`` are forgotten.
    """

    def __init__(
        self, *, max_failures: int = 5, backoff_s: float = 1.0, window_s: float = 900.0
    ) -> None:
        self.max_failures = max_failures
        self.backoff_s = backoff_s
        self.window_s = window_s
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def _wait(self, entry: _Failures, now: float) -> float:
        over = entry.count - self.max_failures
        if over < 0:
            return 0.0
        backoff = min(self.backoff_s * 2.0**over, max(MAX_BACKOFF_S, self.backoff_s))
        return max(0.0, entry.last + backoff - now)

    def reserve(self, keys: list[str], now: float | None = None) -> None:
        """Count one attempt for every key, or raise TooManyAttempts and count nothing."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = 0.0
            for key in keys:
                entry = self._failures.get(key)
                if entry is not None and now - entry.last > self.window_s:
                    del self._failures[key]
                elif entry is not None:
                    wait = max(wait, self._wait(entry, now))
            if wait > 0:
                raise TooManyAttempts(wait)
            if len(self._failures) > 10_000:
                self._forget_old(now)
            for key in keys:
                entry = self._failures.setdefault(key, _Failures())
                entry.count += 1
                entry.last = now

    def _forget_old(self, now: float) -> None:
        for key in [k for k, e in self._failures.items() if now - e.last > self.window_s]:
            del self._failures[key]

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
