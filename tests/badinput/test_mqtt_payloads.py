"""Malformed MQTT payloads of every kind reach a real central: quarantined, counted, no crash."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import paho.mqtt.publish as publish
import pytest

from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker
from tests.central.helpers import bay_event
from tests.faults.rig import SITE_ID, Central, plan_boxes, record, write_site

PLANS = plan_boxes(2, 2)
BOX, OTHER = PLANS[0].box_id, PLANS[1].box_id
BAY = next(iter(PLANS[0].bays.values()))


def good_event(seq: int, box: str = BOX) -> bytes:
    return encode_payload(bay_event(box, seq, BAY, lot_id=PLANS[0].lot_id))


def with_field(n: int, **changes: object) -> bytes:
    doc = json.loads(good_event(n))
    doc.update(changes)
    return json.dumps(doc).encode()


T = Topics(SITE_ID, BOX)
# (case id, topic, payload, a word the quarantine reason must contain)
CASES: list[tuple[str, str, bytes, str]] = [
    ("not-json", T.event, b"\xff\xfe this is not json {", "json"),
    ("json-not-object", T.event, b"[1, 2, 3]", ""),
    ("empty", T.event, b"", ""),
    ("wrong-schema", T.event, b'{"v": 1, "hello": "world"}', ""),
    ("missing-seq", T.event, with_field(1, seq=None), "seq"),
    ("negative-seq", T.event, with_field(1, seq=-5), "seq"),
    ("bad-uuid", T.event, with_field(1, event_id="not-a-uuid"), "event_id"),
    ("old-protocol-v0", T.event, with_field(1, v=0), "v"),
    ("future-protocol-v2", T.event, with_field(1, v=2), "v"),
    ("huge", T.event, b'{"v": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', ""),
    ("box-id-not-topic", T.event, good_event(1, box=OTHER), BOX),
    ("unknown-box", Topics(SITE_ID, "box-zz").event, good_event(1, box="box-zz"), "box-zz"),
    ("bay-state-on-lot-topic", T.lot(PLANS[0].lot_id), good_event(1), ""),
    ("status-garbage", T.status, b'{"v": 1, "state": "sideways"}', ""),
    ("null-bay-state", T.bay(BAY), b"null", ""),
]


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Central, MosquittoBroker]]:
    tmp = tmp_path_factory.mktemp("badmqtt")
    with MosquittoBroker(workdir=tmp / "broker") as broker:
        site = write_site(tmp / "site.toml", PLANS)
        c = Central(workdir=tmp, site_file=site, mqtt_url=broker.url)
        c.start()
        try:
            yield c, broker
        finally:
            c.kill()


def quarantine(c: Central) -> list[tuple[str, str, int]]:
    with c.db() as conn:
        return conn.execute(
            "SELECT topic, reason, payload_size FROM quarantine ORDER BY id"
        ).fetchall()


def counter(c: Central) -> float:
    m = re.search(r"^parkgrid_central_quarantined_total (\S+)$", c.metrics(), re.M)
    return float(m.group(1)) if m else 0.0


def wait(check: object, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_badinput_mqtt_every_malformed_kind_quarantined(
    central: tuple[Central, MosquittoBroker],
) -> None:
    """Each malformed message is quarantined with a reason and counted; central goes on."""
    c, broker = central
    before = len(quarantine(c))
    for _, topic, payload, _ in CASES:
        publish.single(topic, payload, qos=1, hostname=broker.host, port=broker.port)
    # A good event after all of them is still stored: the loop never stopped.
    publish.single(T.event, good_event(1), qos=1, hostname=broker.host, port=broker.port)
    wait(lambda: len(quarantine(c)) >= before + len(CASES))
    wait(lambda: c.watermarks().get(BOX) == 1)
    rows = quarantine(c)[before:]
    assert c.proc.running
    assert c.get("/healthz")[0] == 200
    assert counter(c) >= len(CASES)
    how = []
    for (name, topic, payload, word), (q_topic, reason, size) in zip(CASES, rows, strict=True):
        assert q_topic == topic, name
        assert size == len(payload), name
        assert reason, name
        assert word.lower() in reason.lower(), (name, reason)
        how.append(f"{name}: {reason.splitlines()[0][:70]}")
    with c.db() as conn:
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert stored == 1
    record(
        "badinput",
        "MQTT payloads",
        {
            "cases": len(CASES),
            "refused": len(rows),
            "how": "quarantined with a reason, counted; e.g. " + "; ".join(how[:3]),
            "reasons": how,
        },
    )


def test_badinput_mqtt_repeated_event_stored_once(
    central: tuple[Central, MosquittoBroker],
) -> None:
    """The same event published five times is stored once."""
    c, broker = central
    for _ in range(5):
        publish.single(T.event, good_event(2), qos=1, hostname=broker.host, port=broker.port)
    wait(lambda: c.watermarks().get(BOX) == 2)
    time.sleep(0.3)
    with c.db() as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM events WHERE box_id = ? AND seq = 2", (BOX,)
            ).fetchone()[0]
            == 1
        )
