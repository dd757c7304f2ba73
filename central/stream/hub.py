"""A broadcast hub from the ingest thread to every SSE client's asyncio queue.

The ingest writer calls ``publish`` (any thread) after a commit; each notice is encoded
once as an SSE frame and handed to every subscriber's queue on the event loop, except the
kinds a subscriber's role may not read through the API (``quarantine``: operators). A
client that cannot keep up loses notices: on *every* overflow its queue is emptied and a
single ``resync`` event put in their place, telling it to reload what it shows (notices
queued before a reload are moot). ``end_token`` ends the streams of a token (logout); the
stream router also re-checks each stream's token itself (expiry, a disabled user).

With several central processes on PostgreSQL the hub has a ``relay``: ``publish`` sends
through the database and every process's relay hands what arrives to ``deliver``
(``central.stream.relay``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import TYPE_CHECKING, Any

from central.auth.models import RANK, Role
from central.errors import CentralError, Unavailable

if TYPE_CHECKING:
    from central.stream.relay import Relay

RESYNC = b'event: resync\ndata: {"reason":"client too slow; notices were dropped"}\n\n'
# Notice kinds only some roles may read (as the API that lists them).
NEEDS_ROLE = {"quarantine": Role.OPERATOR}


def sse_frame(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class TooManyStreams(CentralError):
    """429: this token already holds as many streams as it may."""

    status = 429


class Ended:
    """Put in a subscriber's queue when its authority ended: the stream says why and stops."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Subscriber:
    def __init__(self, size: int, *, role: Role = Role.VIEWER, token_hash: str = "") -> None:
        self.queue: asyncio.Queue[bytes | Ended] = asyncio.Queue(maxsize=size)
        self.role = role
        self.token_hash = token_hash
        self.dropped = 0  # notices lost to overflows, in all
        self.resyncs = 0  # resync events queued (one per overflow)
        self.ended = False

    def may_read(self, kind: str) -> bool:
        needed = NEEDS_ROLE.get(kind)
        if needed is None:
            return True
        return self.role in RANK and RANK[self.role] >= RANK[needed]

    def offer(self, frame: bytes) -> None:
        if self.ended:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Everything queued gives way to one resync (the client reloads what it shows),
            # then the new frame: a later overflow gets its own resync.
            self.dropped += sum(1 for item in self._clear() if item is not RESYNC)
            self.queue.put_nowait(RESYNC)
            self.resyncs += 1
            self.queue.put_nowait(frame)

    def _clear(self) -> list[bytes | Ended]:
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    def end(self, reason: str) -> None:
        """Nothing more is delivered; the stream reads the reason next and closes."""
        self.ended = True
        self._clear()
        self.queue.put_nowait(Ended(reason))


class Hub:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        queue_size: int = 1000,
        max_per_token: int = 8,
        max_clients: int = 500,
    ) -> None:
        self.loop = loop
        self.queue_size = queue_size
        self.max_per_token = max_per_token
        self.max_clients = max_clients
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.published = 0
        self.relay: Relay | None = None  # set when notices go through PostgreSQL

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)

    def open_for(self, token_hash: str) -> int:
        with self._lock:
            return sum(1 for s in self._subscribers if s.token_hash == token_hash)

    def subscribe(self, *, role: Role = Role.VIEWER, token_hash: str = "") -> Subscriber:
        """A new subscriber, unless this token or everyone holds as many as they may.

        Each holds a queue of up to ``queue_size`` frames: the caps bound what streams cost.
        """
        sub = Subscriber(self.queue_size, role=role, token_hash=token_hash)
        with self._lock:
            if len(self._subscribers) >= self.max_clients:
                raise Unavailable("the live stream (too many clients)")
            if token_hash and (
                sum(1 for s in self._subscribers if s.token_hash == token_hash)
                >= self.max_per_token
            ):
                raise TooManyStreams(
                    f"this token already holds {self.max_per_token} open streams; close one"
                )
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def publish(self, notices: list[dict[str, Any]]) -> None:
        """From any thread: send each notice to every subscriber that may read it; with a
        relay (several processes on PostgreSQL), to every process's subscribers."""
        if self.relay is not None:
            self.relay.send(notices)
            return
        self.deliver(notices)

    def deliver(self, notices: list[dict[str, Any]]) -> None:
        """From any thread: send each notice to this process's subscribers."""
        if not self._subscribers:
            return
        frames = [(str(n.get("type", "change")), n) for n in notices]
        encoded = [(kind, sse_frame(kind, n)) for kind, n in frames]
        self.published += len(encoded)
        self.loop.call_soon_threadsafe(self._deliver, encoded)

    def _deliver(self, frames: list[tuple[str, bytes]]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            for kind, frame in frames:
                if sub.may_read(kind):
                    sub.offer(frame)

    def resync_all(self) -> None:
        """From any thread: tell every client to reload (notices may have been missed)."""

        def resync() -> None:
            with self._lock:
                subscribers = list(self._subscribers)
            for sub in subscribers:
                sub.offer(RESYNC)

        self.loop.call_soon_threadsafe(resync)

    def end_token(self, token_hash: str, reason: str) -> None:
        """From any thread: end every stream opened with this token (it was revoked)."""

        def end() -> None:
            with self._lock:
                subscribers = [s for s in self._subscribers if s.token_hash == token_hash]
            for sub in subscribers:
                sub.end(reason)

        self.loop.call_soon_threadsafe(end)
