"""Live first at central: one box's replay against another box's live events (issue 17 f. 3).

    .venv/bin/python bench/live_first.py [--events N] [--rate R]

1. Starts its own Mosquitto and the real central ingest (``CentralMqtt`` with its writer
   process, SQLite in a scratch folder, the Xigang site file).
2. Floor: box-p2 publishes live events at R/s (a bare paho client, QoS 1) for 5 s after
   its first ack (the writer process starts with the first batch); the
   lag of each is the time from its publish to central's ack covering it (after the
   commit). Its p99 is the floor.
3. Replay: box-p1, the real box uplink with its default send window, comes back with N
   events in its outbox and drains them while box-p2 keeps publishing live at R/s; the
   lag p99 of box-p2's events published during the replay, and the replay's drain time.
4. Prints both p99s and their ratio (goal: live p99 during the replay <= 10 x the floor:
   PASS/FAIL). Before the two lanes, a live event waited for every replayed event that
   reached central before it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from central.db.engine import make_engine  # noqa: E402
from central.db.migrate import upgrade  # noqa: E402
from central.ingest.mqtt import CentralMqtt  # noqa: E402
from central.ingest.service import IngestWriter  # noqa: E402
from central.settings import CentralSettings  # noqa: E402
from central.sites.service import sync_site  # noqa: E402
from edge.agents.uplink import Uplink  # noqa: E402
from edge.config import EdgeConfig, MqttConfig  # noqa: E402
from edge.outbox import Outbox  # noqa: E402
from firmware_protocols.uplink import (  # noqa: E402
    BayChanged,
    BoxStatus,
    CommandReply,
    Event,
    Topics,
    encode_payload,
)
from firmware_protocols.uplink.models import (  # noqa: E402
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    Online,
    OutboxHealth,
    SensorsHealth,
)
from simulators.broker import MosquittoBroker  # noqa: E402
from site_model.site import SiteIndex, load_site  # noqa: E402

SITE_FILE = REPO / "sites" / "xigang.toml"
REPLAY, LIVE = "box-p1", "box-p2"


def bay(lot: str, i: int) -> BayChanged:
    return BayChanged(
        bay_id=f"{lot}-{i % 150 + 1:03d}",
        lot_id=lot,
        from_state=BayOccupancy.FREE if i % 2 else BayOccupancy.OCCUPIED,
        to_state=BayOccupancy.OCCUPIED if i % 2 else BayOccupancy.FREE,
        sensor_ts=dt.datetime.now(dt.UTC),
    )


class LiveBox:
    """box-p2 as a bare paho client: live events at a steady rate, lag read off the acks."""

    def __init__(self, broker: MosquittoBroker, site: str) -> None:
        self.topics = Topics(site, LIVE)
        self.sent: dict[int, float] = {}
        self.lags: dict[int, float] = {}
        self.seq = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_ack
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(self.topics.ack, qos=1)
        self.client.loop_start()
        self.boot = uuid.uuid4()

    def _on_ack(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        acked, now = json.loads(msg.payload)["acked_seq"], time.monotonic()
        with self.lock:
            for seq in [s for s in self.sent if s <= acked and s not in self.lags]:
                self.lags[seq] = now - self.sent[seq]

    def run(self, rate: float, until: threading.Event) -> None:
        while not until.is_set():
            self.seq += 1
            event = Event(
                box_id=LIVE,
                boot_id=self.boot,
                seq=self.seq,
                event_id=uuid.uuid4(),
                ts=dt.datetime.now(dt.UTC),
                body=bay("P2", self.seq),
            )
            with self.lock:
                self.sent[self.seq] = time.monotonic()
            self.client.publish(self.topics.event, encode_payload(event), qos=1)
            until.wait(1 / rate)

    def p99(self, seqs: range) -> tuple[float, int]:
        """The lag p99 of these seqs (waits up to 30 s for their acks) and how many."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.lock:
                if all(s in self.lags for s in seqs):
                    break
            time.sleep(0.05)
        with self.lock:
            lags = [self.lags.get(s, float("inf")) for s in seqs]
        return statistics.quantiles(lags, n=100)[98], len(lags)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def replay(broker: MosquittoBroker, site: str, n: int, scratch: Path) -> float:
    """box-p1, the real uplink, drains ``n`` buffered events; seconds until all acked."""
    config = EdgeConfig(
        site=site, box_id=REPLAY, data_dir=scratch / "box", mqtt=MqttConfig(url=broker.url)
    )
    outbox = Outbox.for_box(data_dir=config.data_dir, boot_id=uuid.uuid4(),
                            events_max_bytes=1 << 28, state_max_bytes=1 << 20)  # fmt: skip

    def birth() -> BoxStatus:
        return BoxStatus(
            box_id=REPLAY, state=Online.ONLINE, boot_id=outbox.boot_id,
            ts=dt.datetime.now(dt.UTC), software_version="bench", config_hash="sha256:bench",
            sensor_count=180, clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(state=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 20),
                                    event=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 28)),
                sensors=SensorsHealth(total=180),
            ),
        )  # fmt: skip

    async def no_command(command: object) -> CommandReply:
        raise RuntimeError("the bench sends no commands")

    uplink = Uplink(
        config=config, outbox=outbox, boot_id=outbox.boot_id, birth=birth, states=list,
        on_command=no_command, on_remote_lot=lambda box, state: None,
        on_remote_box=lambda box, up: None, on_connection=lambda up: None,
    )  # fmt: skip
    for i in range(n):
        uplink.emit(bay("P1", i))
    outbox.flush()
    task = asyncio.create_task(uplink.run())
    started = time.perf_counter()
    while outbox.depth() or uplink.acked_seq < n:
        await asyncio.sleep(0.01)
        if time.perf_counter() - started > 600:
            raise SystemExit(f"replay: only {uplink.acked_seq} of {n} acked after 600 s")
    elapsed = time.perf_counter() - started
    await uplink.stop()
    await task
    outbox.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20.0, help="live events/s of box-p2")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="parkgrid-live-first-"))
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{scratch / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    with MosquittoBroker() as broker:
        settings = CentralSettings(site_file=SITE_FILE, mqtt_url=broker.url, instance="bench")
        writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
        central = CentralMqtt(settings=settings, site_id=site.id, writer=writer)
        central.start()
        live = LiveBox(broker, site.id)
        stop = threading.Event()
        publisher = threading.Thread(target=live.run, args=(args.rate, stop), daemon=True)
        try:
            if not central.wait_connected(10):
                raise SystemExit("central did not connect")
            publisher.start()
            # Warm-up: the writer process starts with the first batch; wait for its ack.
            live.p99(range(1, 3))
            floor_from = live.seq + 1
            time.sleep(5)
            floor_to = live.seq
            floor, floor_n = live.p99(range(floor_from, floor_to + 1))
            drain = asyncio.run(replay(broker, site.id, args.events, scratch))
            replay_to = live.seq
            during, during_n = live.p99(range(floor_to + 1, replay_to + 1))
        finally:
            stop.set()
            publisher.join(5)
            live.close()
            central.stop()
            engine.dispose()
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"floor: box-p2 live lag p99 {floor * 1000:.0f} ms ({floor_n} events at "
          f"{args.rate:g}/s, no replay)")  # fmt: skip
    print(f"replay: box-p1 drained {args.events} events in {drain:.1f} s "
          f"({args.events / drain:,.0f} events/s)")  # fmt: skip
    print(f"during the replay: box-p2 live lag p99 {during * 1000:.0f} ms ({during_n} events)")
    ratio = during / floor
    verdict = "PASS" if ratio <= 10 else "FAIL"
    print(f"live_first: live p99 during a {args.events} replay {during:.2f} s = "
          f"{ratio:.1f} x the floor (goal <= 10): {verdict}")  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
