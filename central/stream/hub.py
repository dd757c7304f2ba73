"""A broadcast hub from the ingest thread to every SSE client's asyncio queue.

The ingest writer calls ``publish`` (any thread) after a commit; each notice is encoded
once as an SSE frame and handed to every subscriber's queue on the event loop. A client
that cannot keep up loses notices, and gets a ``resync`` event telling it to reload.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

RESYNC = b'event: resync\ndata: {"reason":"client too slow; notices were dropped"}\n\n'


def sse_frame(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Subscriber:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, frame: bytes) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                # Make room for the resync notice; the client reloads what it shows.
                self.queue.get_nowait()
                self.queue.put_nowait(RESYNC)


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, queue_size: int = 1000) -> None:
        self.loop = loop
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self.published = 0

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.queue_size)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def publish(self, notices: list[dict[str, Any]]) -> None:
        """From any thread: send each notice to every subscriber."""
        if not self._subscribers:
            return
        frames = [sse_frame(str(n.get("type", "change")), n) for n in notices]
        self.published += len(frames)
        self.loop.call_soon_threadsafe(self._deliver, frames)

    def _deliver(self, frames: list[bytes]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            for frame in frames:
                sub.offer(frame)
