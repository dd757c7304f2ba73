"""Outbox replay after an outage: how fast a box drains its backlog to central.

    .venv/bin/python bench/edge_replay.py [--events N] [--window W]

1. Starts its own Mosquitto (``MosquittoBroker``) and, as a separate process, the central
   stand-in of the tests (``tests/edge/central_standin.py``: validates and stores events
   unique on (box, seq), publishes the retained ack watermark in batches every 50 ms).
2. Baseline: a bare paho QoS 1 publisher sends N valid event envelopes of the same size
   as the box's, with the same in-flight window; timed until central's watermark covers
   all N (the same finish line as the box's).
3. Outage: N events are emitted into the box's outbox while it has no connection.
4. The box connects and drains: timed from its connection until central's watermark
   covers every seq and the outbox is empty.
5. Prints both rates, the ratio (goal: the box reaches at least half the bare rate:
   PASS/FAIL), and whether the box's current state reached central before the first
   historical event.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.agents.uplink import Uplink  # noqa: E402
from edge.config import EdgeConfig, MqttConfig, OutboxConfig  # noqa: E402
from edge.outbox import Outbox  # noqa: E402
from firmware_protocols.uplink import (  # noqa: E402
    BayChanged,
    BoxStatus,
    CommandReply,
    LotState,
    Topics,
)
from firmware_protocols.uplink.models import (  # noqa: E402
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    Online,
    OutboxHealth,
    SensorsHealth,
    Trend,
)
from simulators.broker import MosquittoBroker  # noqa: E402

SITE = "bench"
BOX = "box-replay"
BARE = "box-bare"


def body(i: int) -> BayChanged:
    return BayChanged(
        bay_id=f"P1-{i % 1000:03d}",
        lot_id="P1",
        from_state=BayOccupancy.FREE,
        to_state=BayOccupancy.OCCUPIED,
        sensor_id=f"S{i % 1000:05d}",
        sensor_ts=dt.datetime.now(dt.UTC),
    )


def lot() -> LotState:
    return LotState(
        lot_id="P1",
        capacity=100,
        free=40,
        occupied=60,
        unknown=0,
        closed=0,
        status=LotStatus.SPACES_AVAILABLE,
        trend=Trend.STEADY,
        ts=dt.datetime.now(dt.UTC),
    )


def bare_paho(broker: MosquittoBroker, n: int, window: int) -> float:
    """Messages/s of a bare paho QoS 1 publisher, until central's watermark covers them."""
    scratch = Outbox(Path(tempfile.mkdtemp(prefix="parkgrid-bench-")) / "scratch.sqlite")
    for i in range(n):
        scratch.append(body(i), dt.datetime.now(dt.UTC))
    scratch.flush()
    payloads = [e.envelope(BARE, historical=True) for e in scratch.pending(0, n)]
    scratch.close()
    topics = Topics(SITE, BARE)
    room = threading.Semaphore(window)
    acked = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload and json.loads(msg.payload)["acked_seq"] >= n:
            acked.set()

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    client.on_publish = lambda *args: room.release()
    client.on_message = on_message
    client.max_inflight_messages_set(window)
    client.connect(broker.host, broker.port)
    client.subscribe(topics.ack, qos=1)
    client.loop_start()
    time.sleep(0.2)
    started = time.perf_counter()
    for payload in payloads:
        room.acquire()
        client.publish(topics.event, payload, qos=1)
    published = time.perf_counter() - started
    if not acked.wait(timeout=120):
        raise SystemExit("bare paho: central did not ack everything within 120 s")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    print(f"bare paho: all PUBACKed after {published:.2f} s, all acked after {elapsed:.2f} s")
    return n / elapsed


async def box_drain(broker: MosquittoBroker, n: int, window: int) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix="parkgrid-bench-box-"))
    config = EdgeConfig(
        site=SITE,
        box_id=BOX,
        data_dir=data_dir,
        mqtt=MqttConfig(url=broker.url, max_inflight=window),
        outbox=OutboxConfig(events_max_bytes=512 * 1024 * 1024, resend_after_s=30),
    )
    boot_id = uuid.uuid4()
    outbox = Outbox(data_dir / "outbox.sqlite", config=config.outbox, boot_id=boot_id)
    topics = Topics(SITE, BOX)

    def birth() -> BoxStatus:
        return BoxStatus(
            box_id=BOX,
            state=Online.ONLINE,
            boot_id=boot_id,
            ts=dt.datetime.now(dt.UTC),
            software_version="bench",
            config_hash="sha256:bench",
            sensor_count=100,
            clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(
                    state=LaneHealth(depth=0, bytes=0, cap_bytes=1),
                    event=LaneHealth(depth=outbox.depth(), bytes=outbox.bytes(), cap_bytes=1),
                ),
                sensors=SensorsHealth(total=100),
            ),
        )

    async def no_command(command: object) -> CommandReply:
        raise RuntimeError("the bench sends no commands")

    uplink = Uplink(
        config=config,
        outbox=outbox,
        boot_id=boot_id,
        birth=birth,
        states=lambda: [(topics.lot("P1"), lot())],
        on_command=no_command,
        on_remote_lot=lambda box, state: None,
        on_remote_box=lambda box, up: None,
        on_connection=lambda up: None,
    )
    t = time.perf_counter()
    for i in range(n):
        uplink.emit(body(i))
    outbox.flush()
    print(f"outage: {n} events into the outbox in {time.perf_counter() - t:.2f} s")

    task = asyncio.create_task(uplink.run())
    while not uplink.connected:  # noqa: ASYNC110 - polling keeps the bench free of hooks
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    while outbox.depth() or uplink.acked_seq < n:
        await asyncio.sleep(0.005)
        if time.perf_counter() - started > 120:
            raise SystemExit(f"box drain: only {uplink.acked_seq} of {n} acked after 120 s")
    elapsed = time.perf_counter() - started
    await uplink.stop()
    await task
    print(f"box stats: {uplink.stats()}")
    outbox.close()
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1000, help="QoS 1 in-flight window")
    args = parser.parse_args()
    with MosquittoBroker() as broker:
        # Central is its own process, as in real life: it must not share our GIL.
        central = subprocess.Popen(
            [sys.executable, "-m", "tests.edge.central_standin", "--port", str(broker.port),
             "--site", SITE],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert central.stdin is not None and central.stdout is not None
        try:
            if central.stdout.readline().strip() != "ready":
                raise SystemExit("the central stand-in did not start")
            bare = bare_paho(broker, args.events, args.window)
            print(f"bare paho QoS 1 publisher: {bare:,.0f} msg/s (until central acked all)")
            box = asyncio.run(box_drain(broker, args.events, args.window))
            print(f"box outbox drain:          {box:,.0f} events/s (until central acked all)")
            central.stdin.close()
            report = json.loads(central.stdout.readline())
        finally:
            central.stdin.close() if not central.stdin.closed else None
            central.wait(timeout=10)
    ratio = box / bare
    verdict = "PASS" if ratio >= 0.5 else "FAIL"
    print(f"ratio box/bare: {ratio:.2f} (goal >= 0.50): {verdict}")
    stored = report.get(BOX, {})
    ordered = bool(stored.get("state_before_historical"))
    print(f"central stored {stored.get('count')} of the box's events; duplicates absorbed: "
          f"{report['_']['duplicates']}")  # fmt: skip
    print(f"current state reached central before the first historical event: {ordered}")
    return 0 if verdict == "PASS" and ordered else 1


if __name__ == "__main__":
    raise SystemExit(main())
