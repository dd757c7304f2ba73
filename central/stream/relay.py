"""Every process's live stream sees every committed change: PostgreSQL ``LISTEN/NOTIFY``.

Theory of operation
-------------------
With several central processes each ingests a share of the boxes' messages and serves
its own SSE clients; a notice published only to the committing process's hub reached
about half of the screens (issue 17, finding 1). On PostgreSQL every notice goes through
the database instead:

* the ingest writer sends its batch's notices with ``pg_notify`` *inside* the batch's
  transaction (``notify_in``): PostgreSQL delivers them when, and only if, the
  transaction commits, in commit order, to every listening session;
* a notice made outside the ingest (an operator's case, the sweep, a capture) is sent by
  ``Relay.send`` from a thread of its own, after its change was committed;
* each process's ``Relay`` listens on the channel and hands what arrives to its hub,
  which delivers it to its own clients, the committing process's included.

If the listening connection drops, notices may have been missed: every client is told to
``resync`` (reload) and the relay listens again. One channel per database schema and site
(``channel_for``), so deployments or tests sharing a database do not hear each other. A
notification's payload is at most 8,000 bytes: notices go in JSON arrays under
``CHUNK_BYTES``. On SQLite (one process) the hub delivers directly and none of this runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

log = logging.getLogger(__name__)

CHUNK_BYTES = 7000
Deliver = Callable[[list[dict[str, Any]]], None]


def channel_for(engine: Engine, site_id: str) -> str:
    """The NOTIFY channel of this database schema's site."""
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
    digest = hashlib.sha256(f"{schema}:{site_id}".encode()).hexdigest()[:16]
    return f"parkgrid_stream_{digest}"


def chunks(notices: Iterable[dict[str, Any]], limit: int = CHUNK_BYTES) -> list[str]:
    """JSON arrays of notices, each under ``limit`` bytes; a notice too big alone becomes a
    ``resync`` (the client reloads instead)."""
    out: list[str] = []
    current: list[str] = []
    size = 2
    for notice in notices:
        encoded = json.dumps(notice, separators=(",", ":"))
        if len(encoded.encode()) + 2 > limit:
            encoded = '{"type":"resync","reason":"a notice too large to relay"}'
        if current and size + len(encoded.encode()) + 1 > limit:
            out.append("[" + ",".join(current) + "]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded.encode()) + 1
    if current:
        out.append("[" + ",".join(current) + "]")
    return out


def notify_in(conn: Connection, channel: str, notices: list[dict[str, Any]]) -> None:
    """Send ``notices`` in the transaction of ``conn``: delivered only if it commits."""
    for payload in chunks(notices):
        conn.execute(select(func.pg_notify(channel, payload)))


class Relay:
    """One process's end of the channel: sends notices, and listens for everyone's."""

    def __init__(
        self, engine: Engine, channel: str, deliver: Deliver, on_gap: Callable[[], None]
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.deliver = deliver
        self.on_gap = on_gap
        self.listening = threading.Event()
        self.received = 0
        self._outbox: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen, name="stream-listen", daemon=True),
            threading.Thread(target=self._send_loop, name="stream-send", daemon=True),
        ]

    def start(self) -> Relay:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(5)

    def send(self, notices: list[dict[str, Any]]) -> None:
        """From any thread, without waiting: notify everyone (after a committed change)."""
        if notices:
            self._outbox.put(notices)

    # --- threads --------------------------------------------------------------------------

    def _send_loop(self) -> None:
        conn: Connection | None = None
        while True:
            notices = self._outbox.get()
            if notices is None:
                break
            try:
                if conn is None:
                    conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                notify_in(conn, self.channel, notices)
            except Exception:
                log.exception("could not relay %d live notices", len(notices))
                if conn is not None:
                    conn.invalidate()
                    conn = None
        if conn is not None:
            conn.close()

    def _listen(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text(f'LISTEN "{self.channel}"'))
                    self.listening.set()
                    if not first:
                        self.on_gap()  # notices may have gone by while not listening
                    first = False
                    raw = conn.connection.driver_connection
                    while not self._stop.is_set():
                        for note in raw.notifies(timeout=1.0):  # type: ignore[union-attr]
                            self._arrived(note.payload)
                    conn.invalidate()  # LISTEN is a session's: never back to the pool
            except Exception:
                self.listening.clear()
                if not self._stop.is_set():
                    log.warning("live stream relay lost its connection; listening again")
                    self._stop.wait(1.0)

    def _arrived(self, payload: str) -> None:
        try:
            notices = json.loads(payload)
        except ValueError:
            log.warning("a live notice that is not JSON was ignored")
            return
        self.received += len(notices)
        try:
            self.deliver(notices)
        except Exception:
            log.exception("delivering relayed notices failed")
