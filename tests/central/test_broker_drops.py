"""Central counts what the broker drops and alerts on lost messages (issue 17 finding 4).

The broker is the deploy configuration (tests/central/test_deploy_broker_replay.py's
``start_broker``: Debian's stock config with ``deploy/mosquitto/parkgrid.conf``, the ACL
``provision-box`` writes, TLS and passwords). To make it drop, one test shrinks central's
queue at the broker (``max_inflight_messages`` and ``max_queued_messages`` 10) and has it
publish ``$SYS`` every second; central's writer is held busy (as a writer that cannot keep
up is), its paho thread stops reading, and the box's events past the queue are dropped.
"""

from __future__ import annotations

import asyncio
import queue
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from central.alerts.drops import DropWatch, broker_key, gap_key
from central.context import Central
from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.broker_sys import (
    DROPPED,
    SYS_TOPICS,
    BrokerCounters,
    SysRefused,
    parse_sys,
)
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.lots.service import LotsCache
from central.ops.service import metrics_text
from central.settings import CentralSettings
from central.sites.service import sync_site
from central.stream.hub import Hub
from firmware_protocols.uplink import Topics, encode_payload
from site_model.site import SiteIndex, load_site
from tests.central.helpers import SITE, bay_event
from tests.central.test_api import _samples
from tests.central.test_deploy_broker import scratch as scratch  # the fixture, for pytest
from tests.central.test_deploy_broker_replay import SITE_FILE, start_broker

SECRET = "central-secret"


def wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:g} s: {what}")
        time.sleep(0.05)


def client(
    port: int, user: str, password: str, ca: Path | None = None
) -> tuple[paho.Client, queue.Queue[tuple[str, bytes]]]:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
    c.username_pw_set(user, password)
    if ca is not None:
        c.tls_set(ca_certs=str(ca))
    c.on_message = lambda _c, _u, m: got.put((m.topic, bytes(m.payload)))
    c.connect("localhost" if ca else "127.0.0.1", port)
    c.loop_start()
    return c, got


def box_password(scratch: Path, box: str) -> str:
    return (scratch / "box-files" / box / "mqtt-password").read_text().strip()


@pytest.fixture
def broker_stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_sys_payloads_parse_or_are_refused_and_the_count_survives_a_broker_restart() -> None:
    assert parse_sys(DROPPED, b"42") == 42
    assert parse_sys(DROPPED, b"lots") == SysRefused(DROPPED, "payload b'lots' is not a number")
    assert isinstance(parse_sys(DROPPED, b"-1"), SysRefused)
    assert isinstance(parse_sys("$SYS/broker/uptime", b"1"), SysRefused)
    counters = BrokerCounters()
    for payload in (b"5", b"\xff", b"7", b"2"):  # 2: the broker restarted and dropped 2
        counters.update(DROPPED, payload)
    assert counters.dropped_total == 9 and counters.refused == 1


def test_field_acl_lets_central_read_the_drop_counters_and_not_a_box(
    scratch: Path, broker_stop: list[subprocess.Popen[bytes]]
) -> None:
    proc, tls_port, local_port, ca = start_broker(scratch)
    broker_stop.append(proc)
    engine = make_engine(f"sqlite:///{scratch / 'central.db'}")
    upgrade(engine)
    settings = CentralSettings(
        site_file=SITE_FILE, mqtt_url=f"mqtt://127.0.0.1:{local_port}",
        mqtt_username="central", mqtt_password=SECRET,  # type: ignore[arg-type]
        instance="c-acl",
    )  # fmt: skip
    writer = IngestWriter(engine=engine, site=SiteIndex.of(load_site(SITE_FILE)), shared=False)
    link = CentralMqtt(settings=settings, site_id=SITE, writer=writer, writer_process=False)
    link.start()
    box, got = client(tls_port, "box-p1", box_password(scratch, "box-p1"), ca)
    try:
        assert link.wait_connected(20)
        wait(lambda: link.broker.reported, "central reads the broker's dropped count", 30)
        assert link.broker.refused == 0
        # A box subscribes to every $SYS counter, then to its ack topic, which holds a
        # retained message: the broker sends retained messages in subscription order, so
        # once the ack arrived any $SYS message allowed would have come before it.
        ack = Topics(SITE, "box-p1").ack
        link.publish(ack, b'{"probe": true}', True)
        box.subscribe([("$SYS/#", 1), *[(topic, 1) for topic in SYS_TOPICS], (ack, 1)])
        topic, _ = got.get(timeout=30)
        assert topic == ack, f"a box read {topic}"
        time.sleep(1.5)  # and nothing of $SYS after it either (sys_interval is 10 s here)
        assert got.empty(), got.get()
    finally:
        box.loop_stop()
        box.disconnect()
        link.stop()
        engine.dispose()


def central_of(link: CentralMqtt, engine: Engine, settings: CentralSettings) -> Central:
    """What ``/metrics`` reads, around this test's MQTT link (no HTTP server needed)."""
    site = load_site(SITE_FILE)
    return Central(
        settings=settings, engine=engine, site=site, index=SiteIndex.of(site),
        hub=Hub(asyncio.new_event_loop()), mqtt=link,
        lots=LotsCache(engine, max_age_s=1, settings=site.availability),
        stats=link.writer.stats,
    )  # fmt: skip


def small_queue(conf: str) -> str:
    conf = re.sub(r"^max_inflight_messages .*$", "max_inflight_messages 10", conf, flags=re.M)
    conf = re.sub(r"^max_queued_messages .*$", "max_queued_messages 10", conf, flags=re.M)
    return conf + "\nsys_interval 1\n"


def open_alerts(engine: Engine) -> set[tuple[str, str]]:
    a = t.alerts.c
    with engine.connect() as conn:
        rows = conn.execute(select(a.box_id, a.alert_id).where(a.state == "raised")).all()
    return {(b, i) for b, i in rows}


def test_broker_drops_and_a_lasting_seq_gap_raise_alerts_that_clear(
    scratch: Path, broker_stop: list[subprocess.Popen[bytes]]
) -> None:
    proc, tls_port, local_port, ca = start_broker(scratch, small_queue)
    broker_stop.append(proc)
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{scratch / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    settings = CentralSettings(
        site_file=SITE_FILE, mqtt_url=f"mqtt://127.0.0.1:{local_port}",
        mqtt_username="central", mqtt_password=SECRET,  # type: ignore[arg-type]
        instance="c-drops", queue_max=10, batch_max=10,
    )  # fmt: skip
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    link = CentralMqtt(settings=settings, site_id=SITE, writer=writer, writer_process=False)
    watch = DropWatch(
        engine, link.broker, lambda: dict(writer.stats.seq_gaps), gap_after_s=1, quiet_s=2
    )
    link.start()
    box, _ = client(tls_port, "box-p1", box_password(scratch, "box-p1"), ca)
    observer, seen = client(local_port, "central", SECRET)
    event_topic = Topics(SITE, "box-p1").event

    def send(seqs: range | list[int]) -> None:
        for seq in seqs:
            payload = encode_payload(bay_event("box-p1", seq, "P1-001"))
            box.publish(event_topic, payload, qos=1).wait_for_publish(30)

    try:
        assert link.wait_connected(20)
        wait(lambda: link.broker.reported, "central reads the broker's dropped count", 30)
        assert link.broker.dropped_total == 0 and not watch.check()
        observer.subscribe(DROPPED, 0)
        with writer._lock:  # central's writer busy: its queue at the broker fills
            send(range(1, 201))

            def broker_dropped() -> bool:
                while not seen.empty():
                    if int(seen.get()[1]) > 0:
                        return True
                return False

            wait(broker_dropped, "the broker reports drops", 30)
        ev = t.events.c

        def stored() -> set[int]:
            with engine.connect() as conn:
                return {s for (s,) in conn.execute(select(ev.seq).where(ev.box_id == "box-p1"))}

        # The next live event, stored after everything central got before it, opens a gap.
        # While central drains its queue the broker may drop it too: the box sends it again
        # until it is stored, as a box resends what is not acked.
        deadline = time.monotonic() + 60
        while 201 not in stored():
            assert time.monotonic() < deadline, "the live event not stored in 60 s"
            send([201])
            until = time.monotonic() + 2
            while 201 not in stored() and time.monotonic() < until:
                time.sleep(0.05)
        held = stored() - {201}
        # Every event central did not get, the broker counted as dropped (its count also
        # holds the $SYS messages it dropped for central meanwhile).
        try:
            wait(lambda: link.broker.dropped_total + len(held) >= 200, "stored + dropped", 60)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {len(held)} stored, {link.broker.dropped_total} dropped of 200"
            ) from None
        dropped = link.broker.dropped_total
        print(f"broker dropped {dropped}, central stored {len(held)} of 200 (queue 10 + 10)")
        mark = next(n for n in range(201) if n + 1 not in held)  # held 1..mark in a row
        above = min(n for n in held | {201} if n > mark)
        assert mark < 200 and dropped > 0
        metrics = _samples(metrics_text(central_of(link, engine, settings)))
        assert metrics["parkgrid_central_broker_dropped_messages_total", ()] == dropped
        assert metrics["parkgrid_central_broker_sys_reported", ()] == 1
        notices = watch.check()
        assert [n["type"] for n in notices] == ["alert_raised"]
        assert open_alerts(engine) == {broker_key()}  # the gap: not before gap_after_s
        assert writer.stats.seq_gaps["box-p1"] == above - mark - 1  # the hole it waits at
        wait(lambda: (watch.check() or True) and gap_key("box-p1") in open_alerts(engine),
             "the seq gap alert", 30)  # fmt: skip
        # No drop for quiet_s: the broker alert clears; the gap alert stays open.
        wait(lambda: (watch.check() or True) and broker_key() not in open_alerts(engine),
             "the broker alert cleared", 30)  # fmt: skip
        assert open_alerts(engine) == {gap_key("box-p1")}

        # The box resends what was lost, a window of 10 at a time (within central's queue).
        missing = sorted(set(range(1, 201)) - held)
        for i in range(0, len(missing), 10):
            chunk = missing[i : i + 10]
            send(chunk)
            wait(lambda: set(chunk) <= stored(), f"seqs {chunk[0]}..{chunk[-1]} stored")  # noqa: B023
        wait(lambda: writer.stats.seq_gaps.get("box-p1") == 0, "the gap closed")
        notices = watch.check()
        assert [(n["type"], n["alert_id"]) for n in notices] == [
            ("alert_resolved", "central:seq_gap")
        ]
        assert open_alerts(engine) == set() and stored() == set(range(1, 202))
    finally:
        for c in (box, observer):
            c.loop_stop()
            c.disconnect()
        link.stop()
        engine.dispose()


def test_a_new_process_clears_the_alerts_a_previous_one_left_open(engine: Engine) -> None:
    """Alerts raised by a process that died are read at the first check: cleared when no
    longer true, and a still-open one is not raised twice."""
    counters = BrokerCounters()
    counters.update(DROPPED, b"3")
    gaps = {"box-p1": 4, "box-p2": 2}
    first = DropWatch(engine, counters, lambda: dict(gaps), gap_after_s=0, quiet_s=60)
    first.check(now=1000.0)
    assert open_alerts(engine) == {broker_key(), gap_key("box-p1"), gap_key("box-p2")}
    gaps.update({"box-p1": 0})  # box-p1's gap closed while no process watched
    second = DropWatch(engine, BrokerCounters(), lambda: dict(gaps), gap_after_s=0, quiet_s=60)
    notices = second.check(now=1100.0)  # no drop reported to it: the broker alert stays
    assert [(n["type"], n["box_id"]) for n in notices] == [("alert_resolved", "box-p1")]
    assert open_alerts(engine) == {broker_key(), gap_key("box-p2")}
    assert second.check(now=1200.0) == [
        {"type": "alert_resolved", "box_id": "broker", "alert_id": "central:broker_drops",
         "alert_type": "broker_drops"}
    ]  # fmt: skip
