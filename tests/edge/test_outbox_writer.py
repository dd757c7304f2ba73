"""The outbox commits from its own thread: nothing on the event loop (the sign path, the
lot state) waits for storage (issue 15 finding 7: on a box's SD card an fsync takes tens
to hundreds of milliseconds and every sign update waited behind it).

The commit is made to block on an Event (as a stalled fsync would) by wrapping the outbox's
writing connection; the test asserts on the order of what happened, never on time."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from firmware_protocols.uplink import Event, LotState, Topics
from simulators.broker import MosquittoBroker
from tests.edge.central_standin import CentralStandin
from tests.edge.test_uplink import BOX, SITE, Box, bay_event, eventually, lot_state
from tests.edge.test_uplink import box as box  # the fixtures, for pytest
from tests.edge.test_uplink import central as central

RELEASE_DEADLINE_S = 20.0


class StalledCommits:
    """Wraps an sqlite3 connection: every COMMIT waits until ``release()``."""

    def __init__(self, conn: sqlite3.Connection, order: list[str]) -> None:
        self._conn = conn
        self._order = order
        self.stalled = threading.Event()
        self._gate = threading.Event()

    def release(self) -> None:
        self._gate.set()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        if sql == "COMMIT" and not self._gate.is_set():
            self.stalled.set()
            self._gate.wait(RELEASE_DEADLINE_S * 3)
            self._order.append("commit")
        return self._conn.execute(sql, tuple(params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


async def test_lot_state_reaches_central_while_the_outbox_commit_is_stalled(
    box: Box, central: CentralStandin, mosquitto: MosquittoBroker
) -> None:
    """An arrival's event is stuck in a stalled commit; the lot state the same arrival
    changes (what the sign shows) is still published at once, and the event itself goes
    out only after its commit (nothing unsaved leaves the box)."""
    uplink = await box.start()
    await eventually(lambda: box.outbox.depth() == 0 and box.outbox.queued == 0)
    order: list[str] = []
    stalled = StalledCommits(box.outbox._conn, order)
    box.outbox._conn = stalled  # type: ignore[assignment]
    topics = Topics(SITE, BOX)

    lot_published = threading.Event()

    def release_when_the_lot_is_out() -> None:
        # Without the fix the loop itself is stuck in the commit and the lot never goes out:
        # free the commit after a deadline, so the test fails on the order, not by hanging.
        lot_published.wait(RELEASE_DEADLINE_S)
        stalled.release()

    releaser = threading.Thread(target=release_when_the_lot_is_out, daemon=True)
    releaser.start()

    seq = uplink.emit(bay_event(1))
    await asyncio.to_thread(stalled.stalled.wait, RELEASE_DEADLINE_S * 3)
    new_lot = lot_state(free=9)
    uplink.publish_state(topics.lot("P1"), new_lot)

    def lot_seen() -> bool:
        return any(
            isinstance(m.payload, LotState) and m.payload.free == new_lot.free
            for m in central.messages()
        )

    await eventually(lot_seen, timeout=RELEASE_DEADLINE_S * 3)
    order.append("lot")
    lot_published.set()
    events_before_commit = [m for m in central.messages() if isinstance(m.payload, Event)]
    await asyncio.to_thread(releaser.join, RELEASE_DEADLINE_S * 3)
    await eventually(lambda: seq in central.seqs(BOX), timeout=RELEASE_DEADLINE_S)
    assert order == ["lot", "commit"]
    assert events_before_commit == []
