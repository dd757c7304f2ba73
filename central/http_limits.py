"""What uvicorn lacks against slow and idle clients, added where it belongs: its HTTP protocol.

uvicorn (h11) offers a keep-alive timeout after a response, a cap on a request head's size
(``h11_max_incomplete_event_size``) and ``limit_concurrency`` (503 for a request once that
many connections or tasks exist). It has no deadline for a request head or body, and no
cap per client address, so an idle connection, a head sent a byte at a time, or a body that
never ends stays open for good, and enough of them exhaust the process's file descriptors
(issue 14: 20,400 half-open connections, /healthz down). ``GuardedH11Protocol`` adds:

- **a cap per client address** (``per_address``) and **in all** (``max_connections``): a
  connection over either is answered 503 and closed as soon as it is accepted, before it
  costs more than its socket;
- **a header deadline** (``header_timeout_s``): a request head must be complete within it
  of the connection's start (or of its first byte after a keep-alive pause), however slowly
  its bytes trickle in; the client gets 408 and the connection closes;
- **a head size cap** (``max_header_bytes``) that holds whatever the reads' sizes (431);
- **a body deadline** (``body_timeout_s``): the whole body must arrive within it of the
  head's end (not reset by each byte); while the app is not reading (flow control) the
  client is not the slow one and the deadline waits.

A streaming response (SSE) is not limited: once the request is read, no deadline applies.
Refusals and timeouts are counted (``HttpGuard``, shown in /metrics) and logged at most
once a minute each, as a summary: an attack does not fill the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def _plain(status: str, text: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for use before any app runs."""
    body = text.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8", *headers,
            "Connection: close", f"Content-Length: {len(body)}"]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


REFUSED = _plain("503 Service Unavailable", "too many connections\n", "Retry-After: 10")
TIMED_OUT = _plain("408 Request Timeout", "the request did not arrive in time\n")
TOO_LARGE = _plain("431 Request Header Fields Too Large", "the request head is too large\n")
LOG_EVERY_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    max_connections: int = 1000
    per_address: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_s: int = 5
    max_header_bytes: int = 16 * 1024


@dataclass
class HttpGuard:
    """One server's limits and what they did: open connections per address, counters."""

    limits: HttpLimits
    open_by_address: Counter[str] = field(default_factory=Counter)
    open_total: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by reason
    timed_out: Counter[str] = field(default_factory=Counter)  # header, body
    _pending: Counter[str] = field(default_factory=Counter)
    _logged_at: dict[str, float] = field(default_factory=dict)

    def note(self, what: str, address: str) -> None:
        """Count one refusal or timeout; log a summary at most once a minute per kind."""
        self._pending[what] += 1
        now = time.monotonic()
        if now - self._logged_at.get(what, -LOG_EVERY_S) >= LOG_EVERY_S:
            count = self._pending.pop(what)
            self._logged_at[what] = now
            log.warning(
                "http %s: %d connection(s) since the last such line, latest from %s",
                what,
                count,
                address,
                extra={"what": what, "count": count, "client": address},
            )

    def protocol(self) -> type[H11Protocol]:
        """The protocol class to give uvicorn (``Config(http=...)``) for this guard."""
        return type("GuardedH11", (GuardedH11Protocol,), {"guard": self})

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "http": self.protocol(),
            "limit_concurrency": self.limits.max_connections,
            "timeout_keep_alive": self.limits.keep_alive_s,
            "h11_max_incomplete_event_size": self.limits.max_header_bytes,
        }


class GuardedH11Protocol(H11Protocol):
    guard: HttpGuard

    _address = ""
    _counted = False
    _deadline: asyncio.TimerHandle | None = None
    _phase = ""  # "head", "body" or "" (the request is read: no deadline)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        self._address = self.client[0] if self.client else "unknown"
        if guard.open_total >= guard.limits.max_connections:
            self._refuse("refused (connection limit)")
            return
        if guard.open_by_address[self._address] >= guard.limits.per_address:
            self._refuse("refused (per-address limit)")
            return
        self._counted = True
        guard.open_total += 1
        guard.open_by_address[self._address] += 1
        self._enter("head")

    def _refuse(self, what: str) -> None:
        self.guard.refused[what] += 1
        self.guard.note(what, self._address)
        self.transport.write(REFUSED)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self.guard.open_total -= 1
            self.guard.open_by_address[self._address] -= 1
            if self.guard.open_by_address[self._address] <= 0:
                del self.guard.open_by_address[self._address]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            self._disarm()
            self.guard.refused["head too large"] += 1
            self.guard.note("refused (head too large)", self._address)
            self.transport.write(TOO_LARGE)
            self.transport.close()
            return
        super().data_received(data)
        self._follow()

    def _head_too_large(self, data: bytes) -> bool:
        """The request head being received, up to its blank line, is over the cap.

        h11's own cap (``max_incomplete_event_size``) only applies while a head is
        incomplete, so a large head that arrives in one read passed it whole.
        """
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        size = len(pending) if end < 0 else end + 4
        return size > self.guard.limits.max_header_bytes

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Arm the deadline of the phase the connection is in now (h11's view of the client)."""
        if self.transport.is_closing():
            self._disarm()
            return
        theirs = self.conn.their_state
        if theirs is h11.IDLE:
            # Waiting for a head: uvicorn's keep-alive timer covers an idle pause after a
            # response; once a byte of the next head arrives, the header deadline starts.
            if self.timeout_keep_alive_task is not None:
                self._enter("")
            elif self._phase != "head":
                self._enter("head")
        elif theirs is h11.SEND_BODY:
            if self._phase != "body":
                self._enter("body")
        else:
            self._enter("")

    def _enter(self, phase: str) -> None:
        self._disarm()
        self._phase = phase
        if phase:
            limits = self.guard.limits
            timeout = limits.header_timeout_s if phase == "head" else limits.body_timeout_s
            self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._phase != phase:
            return
        if phase == "body" and self.flow is not None and self.flow.read_paused:
            # The app has not read what came: the client is not the slow one.
            self._enter("body")
            return
        what = f"{phase} timeout"
        self.guard.timed_out[phase] += 1
        self.guard.note(what, self._address)
        if phase == "head":
            started = bool(self.conn.trailing_data[0])  # part of a head came: say why
        else:
            started = self.cycle is not None and not self.cycle.response_started
        if started:
            self.transport.write(TIMED_OUT)
        self.transport.close()
