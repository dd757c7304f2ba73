"""A broadcast hub from the ingest thread to every SSE client's asyncio queue.

The ingest writer calls ``publish`` (any thread) after a commit. Notices are coalesced
for ``window_s`` (``STREAM_COALESCE_S``): within a window only the latest notice of each
figure (a lot's counts, a bay's, a sign's, a zone's, a box's link:
``subscription.figure_key``) is kept, so a screen gets figures, not every event. At the
end of the window each notice is encoded once as an SSE frame, and the frames of each
distinct view are joined once into one chunk for every subscriber with that view: those it
asked for (``Subscription``: its page's kinds and lots) and whose role
may read it (``quarantine``: operators). A client that cannot keep up loses notices: on
*every* overflow (more than ``queue_size`` frames waiting) its queue is emptied and a
single ``resync`` put in their place; the
stream router sends it with a snapshot of what the client shows, read from the database
when the client takes it (notices queued before are moot, later ones follow it).
``end_token`` ends the streams of a token (logout, and the warden's refusals: expiry,
revocation elsewhere, a disabled user; ``central.stream.warden``).

With several central processes on PostgreSQL the hub has a ``relay``: ``publish`` sends
through the database and every process's relay hands what arrives to ``deliver``
(``central.stream.relay``), so every process coalesces the same notices in the same order.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from central.auth.models import RANK, Role
from central.errors import CentralError, Unavailable
from central.stream.subscription import Subscription, coalesce, place_ids

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


Frame = tuple[dict[str, Any], str, bytes]  # (notice, kind, encoded)


def _by_town(
    frames: list[Frame], owners: dict[str, list[frozenset[str]]]
) -> dict[frozenset[str], list[Frame]]:
    """A county's window sorted by town, once: each frame under every town's places that
    hold all the ids it names (``Subscription.holds_all``), found through the index of
    ids rather than by asking each town about each frame (with 50 towns that was most of
    a flush)."""
    towns: dict[frozenset[str], list[Frame]] = {}
    if not owners:
        return towns
    for frame in frames:
        ids = place_ids(frame[0])
        if not ids:
            continue  # names no place: no town's (a case sweep, a ledger entry)
        first, rest = ids[0], ids[1:]
        for places in owners.get(first, ()):
            if all(i in places for i in rest):
                towns.setdefault(places, []).append(frame)
    return towns


class Subscriber:
    """One stream's queue of chunks (a window's frames for it, joined), bounded in frames."""

    def __init__(
        self,
        size: int,
        *,
        role: Role = Role.VIEWER,
        token_hash: str = "",
        subscription: Subscription | None = None,
    ) -> None:
        self.queue: asyncio.Queue[bytes | Ended] = asyncio.Queue()  # bounded by ``size``
        self.size = size  # frames queued at most
        self.queued = 0  # frames in the queue now
        self._counts: deque[int] = deque()  # frames of each queued item, in queue order
        self.role = role
        self.subscription = subscription or Subscription()
        self.token_hash = token_hash
        self.dropped = 0  # notices lost to overflows, in all
        self.resyncs = 0  # resync events queued (one per overflow)
        self.ended = False
        # Streams with the same view get the same frames: a window's chunk is built once.
        self.view = (self.subscription, tuple(self.may_read(kind) for kind in NEEDS_ROLE))

    def may_read(self, kind: str) -> bool:
        needed = NEEDS_ROLE.get(kind)
        if needed is None:
            return True
        return self.role in RANK and RANK[self.role] >= RANK[needed]

    def wants_in_town(self, notice: dict[str, Any], kind: str) -> bool:
        return self.may_read(kind) and self.subscription.wants_in_town(notice)

    def offer(self, count: int, chunk: bytes) -> bool:
        """Queue a window's ``count`` frames (``chunk``); past ``size`` frames, one resync
        instead of everything queued and of this chunk (its snapshot, read when the client
        takes it, holds them all). Whether the chunk was queued."""
        if self.ended or count == 0:
            return False
        if self.queued + count > self.size:
            self.resync(extra=count)
            return False
        self._put(chunk, count)
        return True

    def resync(self, extra: int = 0) -> None:
        """Everything queued gives way to one resync (a later overflow gets its own)."""
        if self.ended:
            return
        self.dropped += extra + self._clear()
        self._put(RESYNC, 0)
        self.resyncs += 1

    async def get(self) -> bytes | Ended:
        item = await self.queue.get()
        self.queued -= self._counts.popleft()
        return item

    def get_nowait(self) -> bytes | Ended:
        item = self.queue.get_nowait()
        self.queued -= self._counts.popleft()
        return item

    def empty(self) -> bool:
        return self.queue.empty()

    def _put(self, item: bytes | Ended, count: int) -> None:
        self.queue.put_nowait(item)
        self._counts.append(count)
        self.queued += count

    def _clear(self) -> int:
        """Empty the queue; the frames it held."""
        frames = self.queued
        while not self.queue.empty():
            self.queue.get_nowait()
        self._counts.clear()
        self.queued = 0
        return frames

    def end(self, reason: str) -> None:
        """Nothing more is delivered; the stream reads the reason next and closes."""
        self.ended = True
        self._clear()
        self._put(Ended(reason), 0)


class Hub:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        queue_size: int = 1000,
        max_per_token: int = 8,
        max_clients: int = 500,
        window_s: float = 0.0,
    ) -> None:
        self.loop = loop
        self.window_s = window_s
        self.queue_size = queue_size
        self.max_per_token = max_per_token
        self.max_clients = max_clients
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.published = 0  # notices that reached the hub while someone listened
        self.frames = 0  # frames queued to clients (after coalescing and filters)
        self.resyncs = 0  # resyncs queued (overflows, relay gaps)
        self.relay: Relay | None = None  # set when notices go through PostgreSQL
        self._pending: dict[Any, dict[str, Any]] = {}
        self._serial = 0
        self._flush_due = False
        self._pending_lock = threading.Lock()
        # A county's towns: each id -> the places (a town's ids) of streams holding it.
        self._owners: dict[str, list[frozenset[str]]] = {}
        self._indexed: set[frozenset[str]] = set()

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)

    def token_hashes(self) -> list[str]:
        """From any thread: the distinct tokens of the open streams (the warden's round)."""
        with self._lock:
            return sorted({s.token_hash for s in self._subscribers if s.token_hash and not s.ended})

    def open_for(self, token_hash: str) -> int:
        with self._lock:
            return sum(1 for s in self._subscribers if s.token_hash == token_hash)

    def subscribe(
        self,
        *,
        role: Role = Role.VIEWER,
        token_hash: str = "",
        subscription: Subscription | None = None,
    ) -> Subscriber:
        """A new subscriber, unless this token or everyone holds as many as they may.

        Each holds a queue of up to ``queue_size`` frames: the caps bound what streams cost.
        """
        sub = Subscriber(
            self.queue_size, role=role, token_hash=token_hash, subscription=subscription
        )
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
            self._index(sub.subscription.places)
        return sub

    def _index(self, places: frozenset[str] | None) -> None:
        """Under ``_lock``: file a town's ids once (a county has a few dozen towns)."""
        if places is None or places in self._indexed:
            return
        self._indexed.add(places)
        owners = dict(self._owners)  # a new dict: a flush may be reading the old one
        for ident in places:
            owners[ident] = [*owners.get(ident, ()), places]
        self._owners = owners

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
        """From any thread: coalesce ``notices`` into the window; its end sends them to
        this process's subscribers."""
        if not self._subscribers:
            return
        gap = any(n.get("type") == "resync" for n in notices)  # the relay lost one
        figures = [n for n in notices if n.get("type") != "resync"]
        with self._pending_lock:
            self._serial = coalesce(self._pending, figures, self._serial, merge=self.window_s > 0)
            self.published += len(figures)
            arm = not self._flush_due and bool(self._pending)
            self._flush_due = self._flush_due or arm
        if arm:
            try:
                self.loop.call_soon_threadsafe(self._arm)
            except RuntimeError:  # the loop is closed (shutting down): nothing to send to
                with self._pending_lock:
                    self._pending.clear()
                    self._flush_due = False
                return
        if gap:
            self.resync_all()

    def _arm(self) -> None:
        if self.window_s > 0:
            self.loop.call_later(self.window_s, self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
            self._flush_due = False
        frames: list[Frame] = []
        for notice in pending.values():
            kind = str(notice.get("type", "change"))
            frames.append((notice, kind, sse_frame(kind, notice)))
        with self._lock:
            subscribers = list(self._subscribers)
            owners = self._owners
        towns = _by_town(frames, owners)
        chunks: dict[Any, tuple[int, bytes]] = {}
        for sub in subscribers:
            if sub.ended:
                continue
            chunk = chunks.get(sub.view)
            if chunk is None:
                places = sub.subscription.places
                local = frames if places is None else towns.get(places, [])
                picked = [frame for notice, kind, frame in local if sub.wants_in_town(notice, kind)]
                chunk = chunks[sub.view] = (len(picked), b"".join(picked))
            if sub.offer(*chunk):
                self.frames += chunk[0]
            elif chunk[0]:
                self.resyncs += 1

    def resync_all(self) -> None:
        """From any thread: tell every client to resync (notices may have been missed)."""

        def resync() -> None:
            with self._lock:
                subscribers = list(self._subscribers)
            for sub in subscribers:
                sub.resync()
                self.resyncs += 1

        self.loop.call_soon_threadsafe(resync)

    def end_token(self, token_hash: str, reason: str) -> None:
        """From any thread: end every stream opened with this token (it was revoked)."""

        def end() -> None:
            with self._lock:
                subscribers = [s for s in self._subscribers if s.token_hash == token_hash]
            for sub in subscribers:
                sub.end(reason)

        self.loop.call_soon_threadsafe(end)
