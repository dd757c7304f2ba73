"""The uplink after a fault, against a real Mosquitto: prompt reconnect when the network
path returns (issue 15 finding 6) and a bounded resend window while central does not ack
(issue 15 finding 8). No wall-clock assertions: the tests read the uplink's own counters."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from edge.agents.uplink import Uplink
from simulators.broker import MosquittoBroker
from tests.edge.central_standin import CentralStandin
from tests.edge.test_uplink import BOX, Box, bay_event, events_in, eventually, make_box
from tests.edge.test_uplink import central as central  # the fixture, for pytest


def uplink_for(box: Box, *, backoff_min_s: float, backoff_max_s: float) -> Uplink:
    box.uplink = Uplink(
        config=box.config,
        outbox=box.outbox,
        boot_id=box.boot_id,
        birth=box.birth,
        states=box.states,
        on_command=box.on_command,
        on_remote_lot=lambda b, lot: box.remote_lots.append((b, lot)),
        on_remote_box=lambda b, up: box.remote_boxes.append((b, up)),
        on_connection=box.connection.append,
        ack_wait_s=0.3,
        backoff_min_s=backoff_min_s,
        backoff_max_s=backoff_max_s,
    )
    return box.uplink


async def test_uplink_reconnects_when_the_broker_answers_again_not_after_its_backoff(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Broker gone, then back on the same port while the uplink sits in a 10-minute back-off:
    the uplink sees the path answer again, resets its back-off and reconnects at once
    (finding 6: P3 stale for 37 s after a 30 s cut). Without the probe the test's deadline
    (60 s) passes long before the back-off (at least 300 s with jitter) would end."""
    box = make_box(tmp_path, mosquitto, boot_id=uuid.uuid4())
    uplink = uplink_for(box, backoff_min_s=600.0, backoff_max_s=600.0)
    try:
        await box.start()
        assert uplink.stats().connects == 1
        await asyncio.to_thread(mosquitto.kill)
        await eventually(lambda: not uplink.connected, timeout=30)
        await eventually(lambda: uplink.stats().backoff_s >= 300.0, timeout=30)
        # A second probe starts only once the first is done, and the first found no broker.
        await eventually(lambda: uplink.stats().path_probes >= 2, timeout=30)
        assert uplink.stats().network_returns == 0
        await asyncio.to_thread(mosquitto.start)
        await eventually(lambda: uplink.live, timeout=60)
        stats = uplink.stats()
        assert stats.connects == 2
        assert stats.network_returns == 1
        # The back-off was reset: the next wait would start from its minimum again.
        assert stats.backoff_s == 0.0
    finally:
        await box.stop()
        box.outbox.close()


async def test_uplink_keeps_its_backoff_while_the_path_stays_up(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A server that takes the TCP connection but ends every session (as a broker refusing
    the box's login does) is not hammered: a path that never went down is not a fresh one,
    so the probes do not cut the back-off short."""
    server = await asyncio.start_server(_close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    box = make_box(tmp_path, mosquitto, boot_id=uuid.uuid4())
    box.config = box.config.model_copy(
        update={"mqtt": box.config.mqtt.model_copy(update={"url": f"mqtt://127.0.0.1:{port}"})}
    )
    uplink = uplink_for(box, backoff_min_s=600.0, backoff_max_s=600.0)
    task = asyncio.create_task(uplink.run())
    try:
        await eventually(lambda: uplink.stats().backoff_s >= 300.0, timeout=30)
        probes_before = uplink.stats().path_probes
        await eventually(lambda: uplink.stats().path_probes >= probes_before + 3, timeout=30)
        stats = uplink.stats()
        assert stats.network_returns == 0
        assert stats.connect_failures == 1
    finally:
        await uplink.stop()
        await asyncio.wait_for(task, 5)
        server.close()
        box.outbox.close()


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def test_uplink_resends_a_bounded_window_oldest_first_while_central_does_not_ack(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """Central connected but not acking (its disk is full): each resend publishes at most
    ``resend_window_min`` events, the oldest unacked first, not the whole backlog (finding 8:
    14k events per box every 2 s); when acks come the window widens and everything drains."""
    central.acking = False
    box = make_box(tmp_path, mosquitto, resend_after_s=0.3)
    box.config = box.config.model_copy(
        update={"outbox": box.config.outbox.model_copy(update={"resend_window_min": 50})}
    )
    uplink = uplink_for(box, backoff_min_s=0.5, backoff_max_s=1.0)
    try:
        await box.start()
        for i in range(1000):
            uplink.emit(bay_event(i))
        await eventually(lambda: central.count(BOX) == 1000, timeout=30)
        sent_once = uplink.stats().events_published
        await eventually(lambda: uplink.stats().resends >= 4, timeout=30)
        stats = uplink.stats()
        resent = stats.events_published - sent_once
        assert resent <= stats.resends * 50
        assert stats.send_window == 50
        repeats = [e.seq for e in events_in(central) if e.historical]
        assert repeats and set(repeats) <= set(range(1, 51))
        central.acking = True
        await eventually(lambda: box.outbox.depth() == 0, timeout=60)
        assert uplink.acked_seq == 1000
        assert uplink.stats().send_window > 50
    finally:
        await box.stop()
        box.outbox.close()


async def test_uplink_never_has_more_than_its_send_window_out_above_the_ack(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """The send window bounds what a replaying box has out above central's ack, so the
    broker's queue for central holds at most boxes x window (docs/scale.md): with a window
    of 300, a central that does not ack receives 300 of the 1,000 buffered events, and the
    box sends nothing more once they are all PUBACKed; acks let the rest through."""
    central.acking = False
    box = make_box(tmp_path, mosquitto)
    box.config = box.config.model_copy(
        update={"outbox": box.config.outbox.model_copy(update={"send_window_max": 300})}
    )
    uplink = uplink_for(box, backoff_min_s=0.5, backoff_max_s=1.0)
    for i in range(1000):
        uplink.emit(bay_event(i))
    try:
        await box.start()
        await eventually(lambda: central.count(BOX) >= 300, timeout=30)
        link = uplink.link
        assert link is not None
        await eventually(lambda: link.in_flight == 0, timeout=30)
        assert uplink.stats().events_published == 300
        assert central.seqs(BOX) == list(range(1, 301))
        central.acking = True
        await eventually(lambda: box.outbox.depth() == 0, timeout=60)
        assert central.seqs(BOX) == list(range(1, 1001))
    finally:
        await box.stop()
        box.outbox.close()
