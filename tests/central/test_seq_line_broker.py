"""A box with a new outbox meets central's retained ack of its old seq line.

Real parts: Mosquitto, the real central ingest (``IngestWriter`` + ``CentralMqtt``) on SQLite
and PostgreSQL, and the real box uplink and outbox. Before seq lines, a box whose outbox
was new (replaced SD card, recreated file) and whose last seq was at or above central's
retained watermark took the watermark for its own and deleted its events 1..watermark,
which central never stored (seen as a flaky CI failure of
tests/simulators/test_embedded_broker.py, where a module-scoped broker kept the previous
test's retained ack). Now every event of the new outbox reaches central exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel
from sqlalchemy import Engine, select

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from central.sites.service import sync_site
from edge.agents.uplink import Uplink
from edge.config import EdgeConfig, MqttConfig, OutboxConfig
from edge.outbox import Outbox
from firmware_protocols.uplink import (
    AckWatermark,
    BayChanged,
    BoxStatus,
    Command,
    CommandReply,
    Topics,
    encode_payload,
)
from firmware_protocols.uplink.models import (
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    Online,
    OutboxHealth,
    SensorsHealth,
)
from simulators.broker import MosquittoBroker
from site_model.site import Site, SiteIndex
from tests.central.helpers import SITE, SITE_FILE

BOX = "box-p1"
T0 = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not in {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


def bay_event(i: int) -> BayChanged:
    return BayChanged(
        bay_id=f"P1-{i % 10 + 1:03d}",
        lot_id="P1",
        from_state=BayOccupancy.FREE if i % 2 else BayOccupancy.OCCUPIED,
        to_state=BayOccupancy.OCCUPIED if i % 2 else BayOccupancy.FREE,
        sensor_ts=T0 + dt.timedelta(seconds=i),
    )


def open_outbox(data_dir: Path) -> Outbox:
    return Outbox.for_box(
        data_dir=data_dir, boot_id=uuid.uuid4(), events_max_bytes=1 << 26, state_max_bytes=1 << 20
    )


def make_uplink(broker: MosquittoBroker, outbox: Outbox, data_dir: Path) -> Uplink:
    config = EdgeConfig(
        site=SITE,
        box_id=BOX,
        data_dir=data_dir,
        mqtt=MqttConfig(url=broker.url, keepalive_s=5, max_inflight=100),
        outbox=OutboxConfig(resend_after_s=2),
    )

    def birth() -> BoxStatus:
        return BoxStatus(
            box_id=BOX,
            state=Online.ONLINE,
            boot_id=outbox.boot_id,
            ts=dt.datetime.now(dt.UTC),
            software_version="test",
            config_hash="sha256:test",
            sensor_count=10,
            clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(
                    state=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 20),
                    event=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 26),
                ),
                sensors=SensorsHealth(total=10),
            ),
        )

    def states() -> list[tuple[str, BaseModel]]:
        return []

    async def on_command(command: Command) -> CommandReply:
        return CommandReply(
            command_id=command.command_id, command=command.name, ok=True, ts=T0
        )  # pragma: no cover - no commands here

    return Uplink(
        config=config,
        outbox=outbox,
        boot_id=outbox.boot_id,
        birth=birth,
        states=states,
        on_command=on_command,
        on_remote_lot=lambda box, lot: None,
        on_remote_box=lambda box, up: None,
        on_connection=lambda up: None,
        ack_wait_s=1.0,
        backoff_max_s=1.0,
    )


@asynccontextmanager
async def running(uplink: Uplink) -> AsyncIterator[Uplink]:
    task = asyncio.create_task(uplink.run())
    try:
        await eventually(lambda: uplink.live, "the box live")
        yield uplink
    finally:
        await uplink.stop()
        await asyncio.wait_for(task, 10)


@contextmanager
def central(engine: Engine, site: Site, broker: MosquittoBroker) -> Iterator[CentralMqtt]:
    settings = CentralSettings(site_file=SITE_FILE, mqtt_url=broker.url, instance="c-lines")
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    link = CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)
    link.start()
    try:
        assert link.wait_connected(10)
        yield link
    finally:
        link.stop()


def held_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(t.events.c.event_id).where(t.events.c.box_id == BOX)).scalars()
        )


def pending_ids(outbox: Outbox) -> list[str]:
    outbox.flush()
    return [e.event_id for e in outbox.pending(0, 1_000_000)]


async def first_line(broker: MosquittoBroker, data_dir: Path, n: int) -> list[str]:
    """The box's first outbox: ``n`` events, all acked by central; the file then replaced."""
    outbox = open_outbox(data_dir)
    uplink = make_uplink(broker, outbox, data_dir)
    async with running(uplink):
        for i in range(n):
            uplink.emit(bay_event(i))
        ids = pending_ids(outbox)
        await eventually(lambda: uplink.acked_seq == n, f"central's ack of {n}")
    outbox.close()
    shutil.rmtree(data_dir)  # a replaced SD card
    return ids


async def new_line_delivers_every_event(
    broker: MosquittoBroker, data_dir: Path, engine: Engine, old_ids: list[str], n: int
) -> None:
    """A new outbox with ``n`` events taken while offline; once online every one of them
    reaches central exactly once and the outbox empties."""
    outbox = open_outbox(data_dir)
    assert outbox.last_seq == 0
    uplink = make_uplink(broker, outbox, data_dir)
    for i in range(n):
        uplink.emit(bay_event(1000 + i))
    new_ids = pending_ids(outbox)
    assert len(new_ids) == n
    try:
        async with running(uplink):
            await eventually(
                lambda: set(new_ids) <= set(held_ids(engine)) and outbox.depth() == 0,
                "every new event held by central and the outbox empty",
            )
            live = uplink.emit(bay_event(5000))
            await eventually(
                lambda: outbox.last_seq >= live and outbox.depth() == 0, "a live event acked"
            )
    except AssertionError:
        held = set(held_ids(engine))
        lost = [i for i in new_ids if i not in held and i not in pending_ids(outbox)]
        raise AssertionError(
            f"{len(lost)} of {n} new events neither at central nor in the outbox"
        ) from None
    finally:
        outbox.close()
    held = held_ids(engine)
    assert len(held) == len(set(held)), "an event stored twice"
    assert set(old_ids + new_ids) <= set(held)
    assert len(held) == len(old_ids) + n + 1


async def test_new_outbox_at_or_above_the_old_lines_ack_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoBroker, engine: Engine, site: Site
) -> None:
    """Central acked 30 of the old line; the new outbox holds 40 (last seq 40 >= 30): the
    box deletes none of them on the old line's ack and central ends with all 70 once."""
    data_dir = tmp_path / "box"
    with central(engine, site, mosquitto):
        old_ids = await first_line(mosquitto, data_dir, 30)
        await new_line_delivers_every_event(mosquitto, data_dir, engine, old_ids, 40)


async def test_stale_retained_ack_of_another_central_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoBroker, engine: Engine, site: Site
) -> None:
    """The CI flake: the broker keeps a retained ack (12) an earlier central published;
    a new central with an empty store and a box with a new outbox (20 events) meet there.
    Every event of the box reaches the new central once."""
    data_dir = tmp_path / "box"
    earlier = make_engine(f"sqlite:///{tmp_path / 'earlier.db'}")
    upgrade(earlier)
    sync_site(earlier, site)
    with central(earlier, site, mosquitto):
        await first_line(mosquitto, data_dir, 12)
    earlier.dispose()
    with central(engine, site, mosquitto):
        await new_line_delivers_every_event(mosquitto, data_dir, engine, [], 20)


async def test_forged_ack_for_the_boxs_own_line_beyond_its_last_seq_is_refused(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """An ack naming the box's own line above its last committed seq deletes nothing."""
    data_dir = tmp_path / "box"
    outbox = open_outbox(data_dir)
    uplink = make_uplink(mosquitto, outbox, data_dir)
    for i in range(5):
        uplink.emit(bay_event(i))
    ids = pending_ids(outbox)
    line = outbox.line
    forged = AckWatermark(box_id=BOX, acked_seq=2**62, line=line.id, line_from=line.first, ts=T0)
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        client.publish(
            Topics(SITE, BOX).ack, encode_payload(forged), qos=1, retain=True
        ).wait_for_publish(5)
        async with running(uplink):
            await eventually(lambda: uplink.stats().acks_refused >= 1, "the forged ack refused")
            # Nothing deleted, nothing renumbered (it is the box's own line); the only new
            # event is the box's ack_refused alert.
            kept = outbox.pending(0, 100)
            expected = list(zip(range(1, 6), ids, strict=True))
            assert [(e.seq, e.event_id) for e in kept[:5]] == expected
            assert len(kept) == 6 and b"ack_refused" in kept[5].body
            assert outbox.line == line and uplink.acked_seq == 0
    finally:
        client.publish(Topics(SITE, BOX).ack, b"", qos=1, retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        outbox.close()
