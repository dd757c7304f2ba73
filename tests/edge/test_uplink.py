"""The uplink agent against a real Mosquitto, with a stand-in playing central."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from pydantic import BaseModel

from edge.agents.uplink import Uplink
from edge.config import EdgeConfig, MqttConfig, OutboxConfig
from edge.outbox import Outbox
from firmware_protocols.uplink import (
    AckWatermark,
    AlertRaised,
    AlertResolved,
    BayChanged,
    BoxStatus,
    Command,
    CommandReply,
    Event,
    EventsDropped,
    LotState,
    Rebirth,
    SignOverride,
    Topics,
    decode_message,
    encode_payload,
)
from firmware_protocols.uplink.models import (
    AlertType,
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    OfflineReason,
    Online,
    OutboxHealth,
    SensorsHealth,
    SignDisplay,
    SignMode,
    Trend,
)
from simulators.broker import MosquittoBroker
from tests.edge.central_standin import CentralStandin, wait_until
from tests.faults.rig import record

SITE = "xigang"
BOX = "box-p1"
T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lot_state(free: int = 10) -> LotState:
    return LotState(
        lot_id="P1",
        capacity=20,
        free=free,
        occupied=20 - free,
        unknown=0,
        closed=0,
        status=LotStatus.SPACES_AVAILABLE,
        trend=Trend.STEADY,
        ts=now(),
    )


def bay_event(i: int) -> BayChanged:
    return BayChanged(
        bay_id=f"P1-{i % 1000:03d}",
        lot_id="P1",
        from_state=BayOccupancy.FREE,
        to_state=BayOccupancy.OCCUPIED,
        sensor_ts=T0,
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Box:
    """One box's uplink with recording callbacks."""

    config: EdgeConfig
    outbox: Outbox
    boot_id: uuid.UUID
    uplink: Uplink | None = None
    task: asyncio.Task[None] | None = None
    lot: LotState = field(default_factory=lot_state)
    commands: list[Command] = field(default_factory=list)
    remote_lots: list[tuple[str, LotState]] = field(default_factory=list)
    remote_boxes: list[tuple[str, bool]] = field(default_factory=list)
    connection: list[bool] = field(default_factory=list)

    def birth(self) -> BoxStatus:
        return BoxStatus(
            box_id=BOX,
            state=Online.ONLINE,
            boot_id=self.boot_id,
            ts=now(),
            software_version="0.1.0",
            config_hash="sha256:test",
            sensor_count=20,
            clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(
                    state=LaneHealth(depth=0, bytes=0, cap_bytes=1),
                    event=LaneHealth(
                        depth=self.outbox.depth(), bytes=self.outbox.bytes(), cap_bytes=1
                    ),
                ),
                sensors=SensorsHealth(total=20),
            ),
        )

    def states(self) -> Iterable[tuple[str, BaseModel]]:
        return [(Topics(SITE, BOX).lot("P1"), self.lot)]

    async def on_command(self, command: Command) -> CommandReply:
        self.commands.append(command)
        return CommandReply(command_id=command.command_id, command=command.name, ok=True, ts=now())

    def make_uplink(self, ack_wait_s: float = 0.3) -> Uplink:
        self.uplink = Uplink(
            config=self.config,
            outbox=self.outbox,
            boot_id=self.boot_id,
            birth=self.birth,
            states=self.states,
            on_command=self.on_command,
            on_remote_lot=lambda box, lot: self.remote_lots.append((box, lot)),
            on_remote_box=lambda box, up: self.remote_boxes.append((box, up)),
            on_connection=self.connection.append,
            ack_wait_s=ack_wait_s,
            backoff_max_s=1.0,
        )
        return self.uplink

    async def start(self) -> Uplink:
        uplink = self.uplink or self.make_uplink()
        self.task = asyncio.create_task(uplink.run())
        await eventually(lambda: uplink.live)
        return uplink

    async def stop(self) -> None:
        if self.uplink is not None:
            await self.uplink.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)
            self.task = None


def make_box(
    tmp_path: Path,
    broker: MosquittoBroker,
    *,
    boot_id: uuid.UUID | None = None,
    resend_after_s: float = 30,
    events_max_bytes: int = 64 * 1024 * 1024,
) -> Box:
    config = EdgeConfig(
        site=SITE,
        box_id=BOX,
        data_dir=tmp_path / "box",
        mqtt=MqttConfig(url=broker.url, keepalive_s=5, max_inflight=100),
        outbox=OutboxConfig(events_max_bytes=events_max_bytes, resend_after_s=resend_after_s),
    )
    boot = boot_id or uuid.uuid4()
    outbox = Outbox.for_box(
        data_dir=config.data_dir,
        boot_id=boot,
        events_max_bytes=config.outbox.events_max_bytes,
        state_max_bytes=config.outbox.state_max_bytes,
    )
    return Box(config=config, outbox=outbox, boot_id=boot)


@pytest.fixture
async def central(mosquitto: MosquittoBroker) -> AsyncIterator[CentralStandin]:
    standin = CentralStandin(host=mosquitto.host, port=mosquitto.port, site=SITE)
    standin.start()
    await eventually(lambda: standin._client is not None and standin._client.is_connected())
    yield standin
    standin.stop()


@pytest.fixture
async def box(tmp_path: Path, mosquitto: MosquittoBroker) -> AsyncIterator[Box]:
    b = make_box(tmp_path, mosquitto)
    yield b
    await b.stop()
    b.outbox.close()


def read_retained(broker: MosquittoBroker, topic: str) -> bytes | None:
    """The retained message of ``topic`` as a fresh subscriber sees it."""
    got: list[bytes] = []
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(m.payload) if m.retain else None
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    wait_until(lambda: bool(got), timeout=1.0)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None


def events_in(central: CentralStandin) -> list[Event]:
    return [m.payload for m in central.messages() if isinstance(m.payload, Event)]


# --- birth, will, shutdown -------------------------------------------------------------------


async def test_uplink_birth_and_state_retained_on_connect(
    box: Box, mosquitto: MosquittoBroker
) -> None:
    """On connect the box leaves a retained online birth and its retained states."""
    await box.start()
    topics = Topics(SITE, BOX)
    status = await asyncio.to_thread(read_retained, mosquitto, topics.status)
    assert status is not None
    birth = decode_message(topics.status, status).payload
    assert isinstance(birth, BoxStatus)
    assert birth.state is Online.ONLINE and birth.boot_id == box.boot_id
    lot = await asyncio.to_thread(read_retained, mosquitto, topics.lot("P1"))
    assert lot is not None and decode_message(topics.lot("P1"), lot).payload == box.lot
    assert box.connection == [True]


async def test_uplink_last_will_on_abrupt_close_and_shutdown_on_stop(
    box: Box, central: CentralStandin, mosquitto: MosquittoBroker
) -> None:
    """A connection cut without DISCONNECT gives the retained will; a clean stop says shutdown."""
    uplink = await box.start()
    assert uplink.link is not None
    sock = uplink.link.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)

    def has_will() -> bool:
        return any(
            s.state is Online.OFFLINE and s.reason is OfflineReason.CONNECTION_LOST
            for s in central.statuses(BOX)
        )

    await eventually(has_will)
    # ... and the box comes back with a new birth.
    await eventually(lambda: uplink.stats().connects == 2 and uplink.connected)
    await eventually(lambda: central.statuses(BOX)[-1].state is Online.ONLINE)
    assert box.connection[:3] == [True, False, True]

    loop = asyncio.get_running_loop()
    started = loop.time()
    await box.stop()
    assert loop.time() - started < 2.5
    await eventually(lambda: central.statuses(BOX)[-1].reason is OfflineReason.SHUTDOWN)
    retained = await asyncio.to_thread(read_retained, mosquitto, Topics(SITE, BOX).status)
    assert retained is not None
    last = decode_message(Topics(SITE, BOX).status, retained).payload
    assert isinstance(last, BoxStatus)
    assert (last.state, last.reason) == (Online.OFFLINE, OfflineReason.SHUTDOWN)


# --- events and the ack watermark ------------------------------------------------------------


async def test_uplink_events_leave_outbox_only_on_watermark(
    box: Box, central: CentralStandin
) -> None:
    """PUBACK does not delete: the outbox keeps events until central's watermark covers them."""
    central.acking = False
    uplink = await box.start()
    seqs = [uplink.emit(bay_event(i)) for i in range(20)]
    assert seqs == list(range(1, 21))
    await eventually(lambda: central.seqs(BOX) == seqs)
    for event in events_in(central):
        assert event.box_id == BOX and event.boot_id == box.boot_id
        assert event.historical is False
    await asyncio.sleep(0.3)
    assert box.outbox.depth() == 20
    central.acking = True
    await eventually(lambda: box.outbox.depth() == 0)
    assert uplink.acked_seq == 20
    assert uplink.stats().outbox_depth == 0


async def test_uplink_broker_killed_mid_stream_loses_nothing(
    box: Box, central: CentralStandin, mosquitto: MosquittoBroker
) -> None:
    """SIGKILL of a broker without persistence mid-stream: every seq arrives, outbox empties."""
    uplink = await box.start()
    for i in range(150):
        uplink.emit(bay_event(i))
        if i % 10 == 0:
            await asyncio.sleep(0.005)
    mosquitto.kill()
    for i in range(150, 250):
        uplink.emit(bay_event(i))
    await asyncio.sleep(0.2)
    mosquitto.start()
    for i in range(250, 300):
        uplink.emit(bay_event(i))
        await asyncio.sleep(0.002)
    await eventually(lambda: central.seqs(BOX) == list(range(1, 301)), timeout=20)
    await eventually(lambda: box.outbox.depth() == 0, timeout=10)
    assert uplink.stats().disconnects >= 1


async def test_uplink_reconnect_sends_birth_then_state_then_historical_backlog(
    box: Box, central: CentralStandin
) -> None:
    """After a reconnect: birth, then current state, then the backlog flagged historical."""
    uplink = await box.start()
    for i in range(5):
        uplink.emit(bay_event(i))
    await eventually(lambda: central.watermark(BOX) == 5 and uplink.acked_seq == 5)
    await box.stop()
    for i in range(5, 10):
        uplink.emit(bay_event(i))
    box.lot = lot_state(free=3)
    uplink.publish_state(Topics(SITE, BOX).lot("P1"), box.lot)
    mark = len(central.messages())
    await box.start()
    await eventually(lambda: central.seqs(BOX) == list(range(1, 11)))
    after = central.messages()[mark:]
    kinds = [m.kind for m in after]
    first_event = kinds.index("event")
    births = [
        i
        for i, m in enumerate(after)
        if isinstance(m.payload, BoxStatus) and m.payload.state is Online.ONLINE
    ]
    lots = [i for i, m in enumerate(after) if isinstance(m.payload, LotState)]
    assert births and lots
    assert births[0] < lots[0] < first_event
    assert after[lots[0]].payload.free == 3
    backlog = [m.payload for m in after[first_event:] if isinstance(m.payload, Event)]
    assert [e.seq for e in backlog][:5] == [6, 7, 8, 9, 10]
    assert all(e.historical for e in backlog)
    # And new events after that are live.
    uplink.emit(bay_event(99))
    await eventually(lambda: 11 in central.seqs(BOX))
    assert central.events[(BOX, 11)].historical is False


async def test_uplink_resends_after_timeout_without_ack(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """Events above the watermark go out again, historical, after resend_after_s."""
    central.acking = False
    b = make_box(tmp_path, mosquitto, resend_after_s=0.4)
    try:
        uplink = await b.start()
        for i in range(3):
            uplink.emit(bay_event(i))
        await eventually(lambda: central.duplicates >= 3, timeout=5)
        repeats = [e for e in events_in(central) if e.seq == 1]
        assert len(repeats) >= 2
        assert repeats[0].historical is False and repeats[1].historical is True
        assert uplink.stats().resends >= 1
        assert b.outbox.depth() == 3
    finally:
        await b.stop()
        b.outbox.close()


async def test_uplink_resends_when_central_comes_back_online(
    box: Box, central: CentralStandin
) -> None:
    """Central's status going offline -> online makes the box resend what is unacked at once."""
    central.acking = False
    uplink = await box.start()
    for i in range(3):
        uplink.emit(bay_event(i))
    await eventually(lambda: central.seqs(BOX) == [1, 2, 3])
    assert central.duplicates == 0
    await asyncio.to_thread(central.go_offline)
    await asyncio.to_thread(central.go_online)
    await eventually(lambda: central.duplicates >= 3, timeout=3)
    assert uplink.stats().resends == 1


async def test_uplink_seq_continues_across_restart_with_new_boot(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """A restarted box (new Outbox, new Uplink, new boot_id) continues the seq line."""
    first = make_box(tmp_path, mosquitto)
    uplink = await first.start()
    for i in range(5):
        uplink.emit(bay_event(i))
    await eventually(lambda: first.outbox.depth() == 0 and uplink.acked_seq == 5)
    await first.stop()
    first.outbox.close()

    second = make_box(tmp_path, mosquitto)
    assert second.boot_id != first.boot_id
    try:
        uplink2 = await second.start()
        assert [uplink2.emit(bay_event(i)) for i in range(3)] == [6, 7, 8]
        await eventually(lambda: central.seqs(BOX) == list(range(1, 9)))
        assert {central.events[(BOX, s)].boot_id for s in (6, 7, 8)} == {second.boot_id}
        assert central.events[(BOX, 1)].boot_id == first.boot_id
        await eventually(lambda: second.outbox.depth() == 0)
    finally:
        await second.stop()
        second.outbox.close()


@pytest.mark.parametrize("names_lines", [True, False], ids=["lines", "legacy-central"])
async def test_uplink_recreated_outbox_renumbers_above_centrals_watermark(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin, names_lines: bool
) -> None:
    """A corrupt outbox recreated at seq 1 renumbers its events above central's retained
    ack, whether the ack names the old line or (a legacy central) none."""
    central.names_lines = names_lines
    first = make_box(tmp_path, mosquitto)
    uplink = await first.start()
    for i in range(30):
        uplink.emit(bay_event(i))
    await eventually(lambda: first.outbox.depth() == 0 and uplink.acked_seq == 30)
    await first.stop()
    first.outbox.close()
    (tmp_path / "box" / "outbox.sqlite").write_bytes(b"this is not a database" * 1000)

    second = make_box(tmp_path, mosquitto)
    assert second.outbox.stats().corrupt_recoveries == 1 and second.outbox.last_seq == 0
    # Events taken while still offline get seqs 1..20 again, which central already holds.
    uplink2 = second.make_uplink()
    assert [uplink2.emit(bay_event(100 + i)) for i in range(20)] == list(range(1, 21))
    try:
        await second.start()
        await eventually(lambda: central.seqs(BOX) == list(range(1, 51)))
        await eventually(lambda: second.outbox.depth() == 0 and uplink2.acked_seq == 50)
        assert {central.events[(BOX, s)].boot_id for s in range(31, 51)} == {second.boot_id}
        assert uplink2.stats().seq_advances == 1
        assert uplink2.emit(bay_event(200)) == 51
        await eventually(lambda: central.seqs(BOX)[-1] == 51)
    finally:
        await second.stop()
        second.outbox.close()


async def test_uplink_takes_the_retained_ack_that_comes_with_the_suback(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """The retained ack is read as the subscription is granted: the box goes live on it and
    does not sit out its whole ack wait (here a minute) for one it already had."""
    first = make_box(tmp_path, mosquitto)
    uplink = await first.start()
    uplink.emit(bay_event(1))
    await eventually(lambda: uplink.acked_seq == 1)
    await first.stop()
    first.outbox.close()
    second = make_box(tmp_path, mosquitto)
    again = second.make_uplink(ack_wait_s=60)
    try:
        await second.start()
        assert again.acked_seq == 1
    finally:
        await second.stop()
        second.outbox.close()


async def test_uplink_overflow_drops_oldest_and_reports_it(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """Offline overflow: oldest dropped, EventsDropped + one overflow alert, counter persisted."""
    cap = 64 * 1024
    b = make_box(tmp_path, mosquitto, events_max_bytes=cap)
    uplink = b.make_uplink()
    for i in range(3000):
        uplink.emit(bay_event(i))
    # The burst is committed (and the overflow dropped) on the outbox's writer thread, then
    # the uplink's reports of it (EventsDropped, the alert) are committed after it.
    await eventually(lambda: b.outbox.last_seq > 3000 and b.outbox.queued == 0)
    dropped = b.outbox.dropped_events_total
    assert dropped > 0
    assert b.outbox.bytes() <= cap
    last = b.outbox.last_seq
    try:
        await b.start()
        await eventually(lambda: central.watermark(BOX) == last, timeout=10)
        await eventually(lambda: b.outbox.depth() == 0)
        received = [central.events[k] for k in sorted(central.events)]
        drops = [e.body for e in received if isinstance(e.body, EventsDropped)]
        assert sum(d.count for d in drops) == dropped
        assert drops[0].first_seq == 1
        alerts = [
            e.body
            for e in received
            if isinstance(e.body, AlertRaised) and e.body.alert_type is AlertType.OUTBOX_OVERFLOW
        ]
        assert len(alerts) == 1
        # No seq is both dropped and delivered.
        dropped_seqs = {s for d in drops for s in range(d.first_seq, d.last_seq + 1)}
        assert not dropped_seqs & set(central.seqs(BOX))
    finally:
        await b.stop()
        b.outbox.close()
    reopened = Outbox.for_box(
        data_dir=b.config.data_dir,
        boot_id=uuid.uuid4(),
        events_max_bytes=cap,
        state_max_bytes=b.config.outbox.state_max_bytes,
    )
    assert reopened.dropped_events_total == dropped
    reopened.close()


# --- commands and bad input ------------------------------------------------------------------


def command(body: BaseModel, *, expires_at: dt.datetime | None = None) -> Command:
    return Command.model_validate(
        {
            "command_id": uuid.uuid4(),
            "issued_at": now(),
            "expires_at": expires_at,
            "body": body,
        }
    )


async def test_uplink_commands_rebirth_override_expired_repeated(
    box: Box, central: CentralStandin
) -> None:
    """Rebirth republishes birth and state; others reach on_command once; expired is refused."""
    await box.start()
    births_before = len(central.statuses(BOX))
    lots_before = sum(isinstance(m.payload, LotState) for m in central.messages())
    rebirth = command(Rebirth())
    central.send_command(BOX, rebirth)
    await eventually(lambda: any(r.command_id == rebirth.command_id for r in central.replies))
    assert len(central.statuses(BOX)) == births_before + 1
    assert sum(isinstance(m.payload, LotState) for m in central.messages()) == lots_before + 1
    assert box.commands == []

    override = command(
        SignOverride(
            sign_id="S1",
            display=SignDisplay(mode=SignMode.TEXT, text="FULL"),
            until=now() + dt.timedelta(hours=1),
        )
    )
    central.send_command(BOX, override)
    central.send_command(BOX, override)  # repeated command_id: ignored
    expired = command(
        SignOverride(sign_id="S1", display=None), expires_at=now() - dt.timedelta(seconds=1)
    )
    central.send_command(BOX, expired)
    await eventually(lambda: any(r.command_id == expired.command_id for r in central.replies))
    replies = {r.command_id: r for r in central.replies}
    assert replies[override.command_id].ok is True
    assert [c.command_id for c in box.commands] == [override.command_id]
    assert replies[expired.command_id].ok is False
    assert replies[expired.command_id].error == "expired"
    assert sum(r.command_id == override.command_id for r in central.replies) == 1

    # A malformed command with an id is answered, and the loop goes on.
    bad_id = uuid.uuid4()
    raw = json.dumps({"v": 1, "command_id": str(bad_id), "body": {"command": "open-bay"}})
    await asyncio.to_thread(central.send_raw, Topics(SITE, BOX).cmd("open-bay"), raw.encode())
    await eventually(lambda: any(r.command_id == bad_id for r in central.replies))
    assert next(r for r in central.replies if r.command_id == bad_id).ok is False
    assert box.uplink is not None and box.uplink.connected


async def test_uplink_bad_ack_and_lot_state_are_counted_not_fatal(
    box: Box, central: CentralStandin
) -> None:
    """A malformed ack or lot state is counted; remote lots and boxes still reach callbacks."""
    uplink = await box.start()
    topics = Topics(SITE, BOX)
    other = Topics(SITE, "box-p2")
    await asyncio.to_thread(central.send_raw, topics.ack, b"{not json")
    await asyncio.to_thread(central.send_raw, other.lot("P2"), b'{"v":1,"lot_id":"P2"}')
    good = lot_state(free=4).model_copy(update={"lot_id": "P2"})
    await asyncio.to_thread(central.send_raw, other.lot("P2"), encode_payload(good))
    await eventually(lambda: len(box.remote_lots) == 1)
    assert box.remote_lots[0][0] == "box-p2" and box.remote_lots[0][1].free == 4
    await eventually(lambda: uplink.stats().bad_messages >= 2)
    assert uplink.connected
    # Its own lot state, echoed back by the broker, is not a remote lot.
    assert all(box_id != BOX for box_id, _ in box.remote_lots)
    # The events path still works.
    uplink.emit(bay_event(1))
    await eventually(lambda: box.outbox.depth() == 0 and uplink.acked_seq == 1)


async def test_uplink_restart_birth_is_not_overwritten_by_the_last_boots_status(
    tmp_path: Path, mosquitto: MosquittoBroker, central: CentralStandin
) -> None:
    """A restarted box's birth stays the retained status: the previous boot's periodic status,
    kept in the outbox, is not replayed over it (it carried the old config_hash)."""
    topics = Topics(SITE, BOX)
    first = make_box(tmp_path, mosquitto)
    uplink = await first.start()
    uplink.publish_state(topics.status, first.birth())  # the periodic status, kept as state
    await eventually(lambda: any(s.boot_id == first.boot_id for s in central.statuses(BOX)))
    await first.stop()
    first.outbox.close()

    second = make_box(tmp_path, mosquitto)
    try:
        await second.start()
        await eventually(lambda: any(s.boot_id == second.boot_id for s in central.statuses(BOX)))
        await eventually(lambda: second.outbox.depth() == 0)
        retained = await asyncio.to_thread(read_retained, mosquitto, topics.status)
        assert retained is not None
        status = decode_message(topics.status, retained).payload
        assert isinstance(status, BoxStatus)
        assert (status.boot_id, status.state) == (second.boot_id, Online.ONLINE)
        last = central.statuses(BOX)[-1]
        assert (last.boot_id, last.state) == (second.boot_id, Online.ONLINE)
    finally:
        await second.stop()
        second.outbox.close()


def _ack_alerts(central: CentralStandin) -> tuple[list[Event], list[Event]]:
    events = [e for (box_id, _), e in sorted(central.events.items()) if box_id == BOX]
    raised = [
        e
        for e in events
        if isinstance(e.body, AlertRaised) and e.body.alert_type is AlertType.ACK_REFUSED
    ]
    resolved = [
        e
        for e in events
        if isinstance(e.body, AlertResolved) and e.body.alert_type is AlertType.ACK_REFUSED
    ]
    return raised, resolved


async def test_uplink_ack_beyond_its_last_seq_deletes_nothing(
    box: Box, central: CentralStandin, caplog: pytest.LogCaptureFixture
) -> None:
    """A retained ack far above the box's last seq (issue 14's poisoned watermark, here on a
    line central already acked) is a protocol error: nothing deleted, the box's watermark
    stays, logged once, counted, one alert; central's next sane ack clears the alert."""
    caplog.set_level(logging.WARNING, logger="edge.agents.uplink")
    uplink = await box.start()
    topics = Topics(SITE, BOX)
    for i in range(5):
        uplink.emit(bay_event(i))
    await eventually(lambda: box.outbox.depth() == 0 and uplink.acked_seq == 5)
    central.acking = False
    for i in range(3):
        uplink.emit(bay_event(10 + i))
    await eventually(lambda: central.seqs(BOX)[-1:] == [8])
    forged = encode_payload(AckWatermark(box_id=BOX, acked_seq=2**63 - 2, ts=now()))
    for _ in range(3):
        await asyncio.to_thread(central.send_raw, topics.ack, forged, retain=True)
    await eventually(lambda: uplink.stats().acks_refused == 3)
    assert uplink.acked_seq == 5
    assert [e.seq for e in box.outbox.pending()][:3] == [6, 7, 8]
    assert 8 <= box.outbox.last_seq < 100
    await eventually(lambda: len(_ack_alerts(central)[0]) == 1)
    raised = _ack_alerts(central)[0][0].body
    assert isinstance(raised, AlertRaised) and "nothing deleted" in raised.message
    logged = [r for r in caplog.records if "above this outbox's last committed seq" in r.message]
    assert len(logged) == 1
    central.acking = True
    await eventually(lambda: box.outbox.depth() == 0 and uplink.acked_seq == box.outbox.last_seq)
    await eventually(lambda: len(_ack_alerts(central)[1]) == 1)
    assert len(_ack_alerts(central)[0]) == 1
    record(
        "hostile",
        "ack beyond the box's last seq",
        {
            "attack": "a retained ack of 2^63-2 to a box whose line central acked up to 5 "
            "(the poisoned watermark of issue 14), sent 3 times",
            "tried": 3,
            "refused": uplink.stats().acks_refused,
            "notes": "nothing deleted, box watermark kept, logged once, one ack_refused "
            "alert resolved by central's next sane ack",
        },
    )


async def test_uplink_malformed_and_foreign_acks_delete_nothing(
    box: Box, central: CentralStandin
) -> None:
    """On an open broker anyone can publish acks: a string, negative, 2^64, fractional or
    null acked_seq, another box's id in the payload, and a huge ack on another box's topic
    are refused (counted, nothing deleted); central's real ack still works afterwards."""
    uplink = await box.start()
    topics, other = Topics(SITE, BOX), Topics(SITE, "box-p2")
    for i in range(3):
        uplink.emit(bay_event(i))
    await eventually(lambda: uplink.acked_seq == 3)
    central.acking = False
    for i in range(3):
        uplink.emit(bay_event(10 + i))
    await eventually(lambda: central.seqs(BOX)[-1:] == [6])
    ts = '"ts":"2026-12-06T04:00:00Z"'
    hostile = [
        (topics.ack, b'{"v":1,"box_id":"box-p1","acked_seq":"6",%s}' % ts.encode()),
        (topics.ack, b'{"v":1,"box_id":"box-p1","acked_seq":-1,%s}' % ts.encode()),
        (topics.ack, b'{"v":1,"box_id":"box-p1","acked_seq":%d,%s}' % (2**64, ts.encode())),
        (topics.ack, b'{"v":1,"box_id":"box-p1","acked_seq":5.5,%s}' % ts.encode()),
        (topics.ack, b'{"v":1,"box_id":"box-p1","acked_seq":null,%s}' % ts.encode()),
        (topics.ack, b'{"v":1,"box_id":"box-p2","acked_seq":6,%s}' % ts.encode()),
    ]
    before = uplink.stats().bad_messages
    for topic, payload in hostile:
        await asyncio.to_thread(central.send_raw, topic, payload, retain=True)
    foreign = encode_payload(AckWatermark(box_id="box-p2", acked_seq=2**63 - 1, ts=now()))
    await asyncio.to_thread(central.send_raw, other.ack, foreign, retain=True)
    await eventually(lambda: uplink.stats().bad_messages >= before + len(hostile))
    assert uplink.acked_seq == 3
    assert [e.seq for e in box.outbox.pending()] == [4, 5, 6]
    assert uplink.stats().acks_refused == 0  # refused by the decoder, before any trust
    central.acking = True
    await eventually(lambda: box.outbox.depth() == 0 and uplink.acked_seq == 6)
    record(
        "hostile",
        "malformed and foreign acks to a box",
        {
            "attack": "acks with a string, negative, 2^64, fractional or null acked_seq, "
            "another box's id, and 2^63-1 on another box's ack topic (open broker)",
            "tried": len(hostile) + 1,
            "refused": len(hostile) + 1,
            "notes": "refused by the decoder or not subscribed; counted as bad messages; "
            "nothing deleted",
        },
    )
