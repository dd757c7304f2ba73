"""The outbox's commits, on their own thread: nothing on the event loop waits for storage.

On a box's SD card an fsync takes tens to hundreds of milliseconds, and each group commit
run on the event loop held every sign update behind it (issue 15 finding 7). ``Commits``
runs every outbox write (the group commit, the deletes an ack allows, the state lane's
"clean" mark) on one ``outbox-writer`` thread (a single-worker ``ThreadPoolExecutor``), in
the order they were asked for. The loop only queues in memory (``Outbox.append``,
``put_state``) and reads through the outbox's reading connection.

``schedule()`` asks for a commit ``delay_s`` after the first request of a burst; while one
commit is on disk, what arrives waits for the next, which starts as soon as it is done (so
the group grows with the disk's slowness). ``on_committed(n)`` runs on the loop after each
commit: only then may its events be published. ``ack(seq)`` deletes after every commit
asked for before it, so only committed events are ever deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from edge.outbox import Outbox

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0


class Commits:
    """The writer thread of one outbox, driven from the event loop."""

    def __init__(
        self, outbox: Outbox, *, delay_s: float, on_committed: Callable[[int], None]
    ) -> None:
        self._outbox = outbox
        self._delay_s = delay_s
        self._on_committed = on_committed
        self._writer: ThreadPoolExecutor | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._running = False
        self._again = False
        outbox.flush_at = 0  # this thread commits; an append never does

    def _pool(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-writer")
        return self._writer

    def schedule(self) -> None:
        """Commit what is queued soon (at once when no loop runs: a tool, or shutdown)."""
        if self._running:
            self._again = True
            return
        if self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._outbox.flush()
            return
        self._handle = loop.call_later(self._delay_s, self._start)

    def _start(self) -> None:
        self._handle = None
        if self._running:
            self._again = True
            return
        self._running = True
        self._again = False
        future = self._pool().submit(self._outbox.flush)
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(self._done, f))

    def _done(self, future: Future[int]) -> None:
        self._running = False
        if self._writer is None or self._outbox.closed:
            return  # stopped (stop() committed what was left) or the box shut the outbox
        exc = future.exception()
        if exc is not None:
            log.error("outbox flush failed; retrying in %g s", RETRY_AFTER_S, exc_info=exc)
            if self._handle is None:
                self._handle = asyncio.get_running_loop().call_later(RETRY_AFTER_S, self._start)
            return
        self._on_committed(future.result())
        if self._handle is None and (self._again or self._outbox.queued):
            self._start()  # what came while the last commit was on disk goes now

    async def commit_now(self) -> None:
        """Commit what is queued now and wait for it (and for every commit before it)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        loop = asyncio.get_running_loop()
        committed = await loop.run_in_executor(self._pool(), self._outbox.flush)
        self._on_committed(committed)

    async def mark_state_clean(self) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._pool(), self._outbox.mark_state_clean
        )

    def ack(self, acked: int) -> None:
        """Delete what central's watermark covers, after every commit asked for before."""

        def delete() -> None:
            try:
                self._outbox.ack(acked)
            except Exception:
                log.exception("uplink: deleting events up to %d failed", acked)

        self._pool().submit(delete)

    async def stop(self) -> None:
        """Commit what is queued, then end the thread (a later request starts a new one)."""
        await self.commit_now()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await asyncio.to_thread(writer.shutdown, wait=True)
        self._running = False
        self._outbox.flush()  # anything a commit's callback would have asked for
