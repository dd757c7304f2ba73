"""Hostile people on the uplink: a box's credentials used against central's ack protocol.

Everything here runs the field configuration: a real Mosquitto with the password file and
ACL that ``provision-box`` writes, a real ``parkgrid central serve`` behind it, and raw
uplink-v1 JSON published with box-01's own credentials, as an attacker holding a box's
password would. Each check records one row of the "hostile people" table.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.provision import password_line, upsert_password
from firmware_protocols.uplink import Topics
from firmware_protocols.uplink.models import MAX_SEQ
from simulators.broker import MosquittoBroker
from tests.badinput.test_mqtt_payloads import good_event
from tests.faults.rig import ROOT, SITE_ID, Central, plan_boxes, record, write_site

PLANS = plan_boxes(2, 2)
BOX, OTHER = PLANS[0].box_id, PLANS[1].box_id
AS_ROOT = ["user root"] if os.geteuid() == 0 else []
QUARANTINE_MAX_BYTES = 1024 * 1024  # the retention cap this central runs with
OPERATOR_PASSWORD = "olga-hostile-protocol-4f1c"
OTHERS_SIGN = "sign-02"  # the site file gives it to box-02


@dataclass
class Field:
    central: Central
    broker: MosquittoBroker
    secrets: dict[str, str]
    token: str


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", *args],
        capture_output=True, text=True, cwd=ROOT, input=stdin, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Field]:
    tmp = tmp_path_factory.mktemp("hostile")
    site = write_site(tmp / "site.toml", PLANS)
    with site.open("a") as f:  # a sign of box-02's (test_hostile_box_claims.py)
        f.write(f'\n[signs.{OTHERS_SIGN}]\nbox_id = "{OTHER}"\nkind = "guidance"\n')
        f.write(f'lot = "{PLANS[1].lot_id}"\n')
    passwd, acl = tmp / "passwd", tmp / "acl"
    secrets: dict[str, str] = {}
    for plan in PLANS:
        out = tmp / plan.box_id
        ran = _run(["central", "provision-box", plan.box_id, "--site", str(site), "--out",
                    str(out), "--password-file", str(passwd), "--acl-file", str(acl)])  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        secrets[plan.box_id] = (out / "mqtt-password").read_text().strip()
    secrets["central"] = "central-secret-for-the-hostile-test"
    upsert_password(passwd, line=password_line("central", secrets["central"]))
    broker = MosquittoBroker(
        workdir=tmp / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT],
    ).start()
    central = Central(workdir=tmp, site_file=site, mqtt_url=broker.url)
    central.proc.env.update(
        PARKGRID_MQTT_USERNAME="central",
        PARKGRID_MQTT_PASSWORD=secrets["central"],
        PARKGRID_QUARANTINE_MAX_BYTES=str(QUARANTINE_MAX_BYTES),
    )
    db = ["--database-url", f"sqlite:///{central.db_path}"]
    ran = _run(["central", "migrate", *db])
    assert ran.returncode == 0, ran.stderr
    ran = _run(
        ["central", "add-user", "olga", "--role", "operator", "--password-stdin", *db],
        stdin=OPERATOR_PASSWORD + "\n",
    )
    assert ran.returncode == 0, ran.stderr
    central.start()
    try:
        status, body = _http(
            f"{central.url}/api/v1/auth/login",
            data={"username": "olga", "password": OPERATOR_PASSWORD},
        )
        assert status == 200, body
        yield Field(central, broker, secrets, json.loads(body)["access_token"])
    finally:
        central.kill()
        broker.close()


def _http(
    url: str, data: dict[str, str] | None = None, token: str | None = None
) -> tuple[int, bytes]:
    encoded = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=encoded)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Client:
    """A paho client with a user's credentials that collects what it receives."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"h-{uuid.uuid4().hex}")
        self.client.username_pw_set(user, password)
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert connected.wait(15), f"{user} could not connect"

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, bytes(message.payload)))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(15)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(15)

    def last(self, topic: str) -> bytes | None:
        with self._lock:
            found = [p for t, p in self.received if t == topic]
        return found[-1] if found else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _event(seq: int, body: dict[str, object], *, event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "box_id": BOX,
            "boot_id": "00000000-0000-0000-0000-000000000001",
            "seq": seq,
            "event_id": event_id or str(uuid.uuid4()),
            "ts": "2026-12-06T04:00:00Z",
            "historical": False,
            "body": body,
        }
    ).encode()


def _dropped(first: int, last: int, count: int = 0) -> dict[str, object]:
    return {"kind": "events_dropped", "first_seq": first, "last_seq": last, "count": count,
            "total": count}  # fmt: skip


def _quarantine_reasons(central: Central, box: str = BOX) -> list[str]:
    with central.db() as conn:
        rows = conn.execute("SELECT reason FROM quarantine WHERE box_id = ?", (box,)).fetchall()
    return [r[0] for r in rows]


def _metric(central: Central, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", central.metrics(), re.M)
    assert found, f"metric {name} missing"
    return float(found.group(1))


def test_hostile_dropped_range_claims_do_not_move_the_watermark(field: Field) -> None:
    """events_dropped beyond the event's own seq, or beyond what the box's outbox can hold
    (its birth says 64 KiB), leaves the watermark where it was and is quarantined."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, BOX)
    box = Client(broker.port, BOX, field.secrets[BOX])
    watcher = Client(broker.port, "central", field.secrets["central"])
    try:
        watcher.subscribe(topics.ack)
        for seq in (1, 2):
            box.publish(topics.event, good_event(seq, box=BOX))
        _wait(lambda: central.watermarks().get(BOX) == 2, "box-01's own events")
        birth = _birth(cap_bytes=64 * 1024)
        box.publish(topics.status, birth, retain=True)
        claims = [
            ("beyond own seq (2^63-2)", _event(5, _dropped(3, MAX_SEQ - 1))),
            ("own seq inside the range", _event(7, _dropped(3, 7))),
            ("beyond the outbox's capacity", _event(10_000_000, _dropped(3, 9_999_999))),
        ]
        for _, payload in claims:
            box.publish(topics.event, payload)
        _wait(lambda: len(_quarantine_reasons(central)) >= len(claims), "the claims quarantined")
        # A later, honest event passes through the normal path: the watermark did not move.
        box.publish(topics.event, good_event(3, box=BOX))
        _wait(lambda: central.watermarks().get(BOX) == 3, "box-01's seq 3")
        _wait(lambda: b'"acked_seq":3' in (watcher.last(topics.ack) or b""), "the ack for 3")
        # An honest drop report (below its own seq, within capacity) still settles its range.
        box.publish(topics.event, _event(10, _dropped(4, 9, 6)))
        _wait(lambda: central.watermarks().get(BOX) == 10, "an honest drop report")
    finally:
        box.close()
        watcher.close()
    reasons = _quarantine_reasons(central)
    assert any("own seq" in r for r in reasons), reasons
    assert any("capacity" in r or "can hold" in r for r in reasons), reasons
    with central.db() as conn:
        stored = conn.execute(
            "SELECT count(*) FROM dropped_ranges WHERE box_id = ? AND last_seq > 10", (BOX,)
        ).fetchone()[0]
    assert stored == 0
    record(
        "hostile",
        "ack watermark: dropped-range claims",
        {
            "attack": "a box's credentials publish events_dropped ranges beyond the event's "
            "own seq (up to 2^63-2) and beyond its outbox's capacity",
            "tried": len(claims),
            "refused": len(claims),
            "notes": "quarantined with the reason; the watermark moved only over honest seqs",
        },
    )


def _birth(*, cap_bytes: int, box: str = BOX, sensors: int = 2) -> bytes:
    lane = {"depth": 0, "bytes": 0, "cap_bytes": cap_bytes}
    return json.dumps(
        {
            "v": 1, "box_id": box, "state": "online",
            "boot_id": "00000000-0000-0000-0000-000000000001", "ts": "2026-12-06T04:00:00Z",
            "software_version": "0.1.0", "config_hash": "sha256:x", "sensor_count": sensors,
            "clock": {"synchronised": True},
            "health": {"outbox": {"state": lane, "event": lane}, "sensors": {"total": 2}},
        }
    ).encode()  # fmt: skip


def test_hostile_replayed_seq_with_another_event_id_is_flagged(field: Field) -> None:
    """A stored seq sent again as a different event is quarantined, counted and recorded
    as a site problem; an identical resend is still an ordinary repeat."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, OTHER)
    box = Client(broker.port, OTHER, field.secrets[OTHER])
    original = json.loads(good_event(1, box=OTHER))
    forged = dict(original, event_id=str(uuid.uuid4()))
    forged_in_one_batch = [dict(original, seq=2), dict(original, seq=2, event_id=str(uuid.uuid4()))]
    try:
        box.publish(topics.event, json.dumps(original).encode())
        _wait(lambda: central.watermarks().get(OTHER) == 1, "box-02's seq 1")
        box.publish(topics.event, json.dumps(original).encode())  # a resend: a plain repeat
        box.publish(topics.event, json.dumps(forged).encode())
        for doc in forged_in_one_batch:
            box.publish(topics.event, json.dumps(doc).encode())
        _wait(lambda: len(_quarantine_reasons(central, OTHER)) >= 2, "the replays quarantined")
    finally:
        box.close()
    reasons = _quarantine_reasons(central, OTHER)
    assert sum("already held as event" in r for r in reasons) == 2, reasons
    with central.db() as conn:
        kept = conn.execute(
            "SELECT seq, event_id FROM events WHERE box_id = ? ORDER BY seq", (OTHER,)
        ).fetchall()
        problems = conn.execute(
            "SELECT subject FROM site_problems WHERE box_id = ?", (OTHER,)
        ).fetchall()
    assert kept[0] == (1, original["event_id"])
    assert len(kept) == 2
    assert ("events/seq_replayed",) in problems
    assert _metric(central, 'parkgrid_central_events_refused_total{reason="seq_replayed"}') == 2
    record(
        "hostile",
        "replayed seq, another event_id",
        {
            "attack": "a stored seq sent again as a different event (a forged event or an "
            "outbox recreated behind the watermark), across batches and within one",
            "tried": 2,
            "refused": 2,
            "notes": "quarantined with both event ids, counted "
            "(parkgrid_central_events_refused_total), recorded as a site problem; an "
            "identical resend stays an ordinary repeat",
        },
    )


def _chunked_post(
    url: str, path: str, chunks: list[bytes], token: str | None = None, form: bool = False
) -> int:
    """POST a body with Transfer-Encoding: chunked (no Content-Length); the status."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    headers = {"Content-Type": kind, "Transfer-Encoding": "chunked"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the rest arrives
        return conn.getresponse().status
    finally:
        conn.close()


def test_hostile_chunked_body_over_the_limit_gets_413(field: Field) -> None:
    """A chunked body (no Content-Length) over MAX_BODY_BYTES (1 MiB) gets 413 as the docs
    say, on a JSON route and on the login form, with and without a token; one under the
    limit is parsed as usual."""
    url = field.central.url
    big = [b"x" * 65536] * 24  # 1.5 MiB
    cases = [
        ("/api/v1/auth/login", None, True),
        ("/api/v1/users", field.token, False),
        (f"/api/v1/boxes/{BOX}/commands", field.token, False),
    ]
    statuses = [_chunked_post(url, path, big, token, form) for path, token, form in cases]
    small = _chunked_post(url, "/api/v1/users", [b'{"no": "such user"}'], field.token)
    assert statuses == [413] * len(cases), statuses
    assert small in (403, 422), small  # parsed (operators may not add users: 403)
    record(
        "hostile",
        "chunked body over the limit",
        {
            "attack": "1.5 MiB request bodies sent chunked (no Content-Length) to central",
            "tried": len(cases),
            "refused": statuses.count(413),
            "notes": "413 before the route runs, as docs/central.md says (was 400)",
        },
    )


def _stored(central: Central, box: str, seq: int) -> bool:
    with central.db() as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE box_id = ? AND seq = ?", (box, seq)
        ).fetchone()
    return bool(row[0])


def _db_bytes(central: Central) -> tuple[int, int]:
    """(main file, WAL) bytes of central's SQLite database."""
    wal = central.db_path.with_name(central.db_path.name + "-wal")
    return central.db_path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def test_hostile_quarantine_flood_stays_under_its_cap(field: Field) -> None:
    """400 x 64 KiB of garbage from one box's credentials (25 times the 1 MiB cap): the
    quarantine keeps at most its cap, oldest dropped first and counted (metric and API),
    the database file stops growing, and the box's next real event is still stored."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, BOX)
    flood = 400
    before = _db_bytes(central)
    box = Client(broker.port, BOX, field.secrets[BOX])
    try:
        for i in range(flood):
            box.publish(topics.event, b"garbage %06d " % i + b"\xff" * (64 * 1024 - 15))
        box.publish(topics.event, good_event(11, box=BOX))
        _wait(lambda: _stored(central, BOX, 11), "the real event after the flood", 120)
    finally:
        box.close()
    status, body = _http(f"{central.url}/api/v1/quarantine?limit=1", token=field.token)
    assert status == 200, body
    doc = json.loads(body)
    retention = doc["retention"]
    assert retention["max_bytes"] == QUARANTINE_MAX_BYTES
    assert retention["bytes"] <= QUARANTINE_MAX_BYTES
    assert retention["dropped_by_size"] >= flood - retention["rows"]
    assert doc["items"][0]["payload"].startswith("garbage 000399")  # the newest is kept
    dropped = _metric(central, 'parkgrid_central_quarantine_dropped_total{reason="size"}')
    assert dropped == retention["dropped_by_size"] > 0
    assert _metric(central, "parkgrid_central_quarantine_bytes") <= QUARANTINE_MAX_BYTES
    main, wal = _db_bytes(central)
    grown = main - before[0]
    # The main file grows by the cap at most; the WAL is bounded by SQLite's checkpoint
    # (1000 pages, 4 MiB) plus one transaction, which the cap bounds too.
    assert grown < 2 * QUARANTINE_MAX_BYTES, f"database file grew by {grown} bytes"
    assert wal < 4 * 1024 * 1024 + 2 * QUARANTINE_MAX_BYTES, f"WAL at {wal} bytes"
    record(
        "hostile",
        "quarantine flood",
        {
            "attack": f"{flood} x 64 KiB of garbage on a box's own event topic "
            f"({flood * 64 // 1024} MiB against a {QUARANTINE_MAX_BYTES // 1024 // 1024} MiB cap)",
            "tried": flood,
            "refused": flood,
            "notes": f"all quarantined; {int(dropped)} oldest dropped by the size cap and "
            f"counted; {retention['rows']} rows / {retention['bytes']} bytes kept; database "
            f"file grew {grown // 1024} KiB (WAL {wal // 1024} KiB); the box's next event "
            "stored",
        },
    )


def test_hostile_forged_acks_never_reach_a_box(field: Field) -> None:
    """With box-01's credentials, acks forged on box-01's and box-02's ack topics (retained,
    2^63-1, negative, not a number) are dropped by the broker's ACL: a subscriber with
    box-02's credentials and central's own retained acks see none of them."""
    central, broker = field.central, field.broker
    own, other = Topics(SITE_ID, BOX), Topics(SITE_ID, OTHER)
    forged = [
        b'{"v":1,"box_id":"%s","acked_seq":%d,"ts":"2026-12-06T04:00:00Z"}' % (box, seq)
        for box, seq in ((BOX.encode(), MAX_SEQ), (OTHER.encode(), MAX_SEQ))
    ] + [b'{"v":1,"acked_seq":-1}', b'{"v":1,"acked_seq":"9e99"}']
    attacker = Client(broker.port, BOX, field.secrets[BOX])
    try:
        for i, payload in enumerate(forged):
            attacker.publish((own if i % 2 == 0 else other).ack, payload, retain=True)
    finally:
        attacker.close()
    victim = Client(broker.port, OTHER, field.secrets[OTHER])
    watcher = Client(broker.port, "central", field.secrets["central"])
    try:
        victim.subscribe(other.ack)
        watcher.subscribe(own.ack)
        watcher.subscribe(other.ack)
        # A message the victim must see, after everything forged: the retained ack central
        # publishes when box-02's next event is stored.
        box2 = Client(broker.port, OTHER, field.secrets[OTHER])
        try:
            box2.publish(other.event, good_event(3, box=OTHER))
        finally:
            box2.close()
        _wait(lambda: victim.last(other.ack) is not None, "central's ack to box-02")
        seen = [p for t, p in victim.received + watcher.received]
    finally:
        victim.close()
        watcher.close()
    assert not any(p in forged for p in seen), seen
    assert all(json.loads(p)["acked_seq"] < 100 for p in seen if p), seen
    assert central.watermarks().get(OTHER, 0) < 100
    record(
        "hostile",
        "forged acks (field ACL)",
        {
            "attack": "a box's credentials publish retained acks on its own and another "
            "box's ack topic: 2^63-1, negative, not a number",
            "tried": len(forged),
            "refused": len(forged),
            "notes": "dropped by the broker's ACL (only central writes acks); on an open "
            "broker the box itself refuses them (tests/edge/test_uplink.py)",
        },
    )


def test_hostile_lies_in_births(field: Field) -> None:
    """Births that lie: an event lane of 0 bytes (then no drop report is believed), another
    box's id on its own status topic (quarantined), a sensor count the site file does not
    give it (a site problem). None moves the watermark."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, OTHER)
    box = Client(broker.port, OTHER, field.secrets[OTHER])
    mark = central.watermarks().get(OTHER, 0)
    try:
        box.publish(topics.status, _birth(cap_bytes=0, box=OTHER), retain=True)
        _wait(lambda: _box_status_cap(central, OTHER) == 0, "the zero-lane birth stored")
        dropped = json.loads(_event(60, _dropped(1, 59, 59)))
        dropped["box_id"] = OTHER
        box.publish(topics.event, json.dumps(dropped).encode())
        box.publish(topics.status, _birth(cap_bytes=1 << 20, box=BOX), retain=True)
        box.publish(topics.status, _birth(cap_bytes=1 << 20, box=OTHER, sensors=7), retain=True)
        _wait(
            lambda: (
                sum("can hold" in r or BOX in r for r in _quarantine_reasons(central, OTHER)) >= 2
            ),
            "the lying births and drop report quarantined",
        )
        _wait(lambda: _problem(central, OTHER, "status.sensor_count"), "the sensor count lie")
    finally:
        box.close()
    assert central.watermarks().get(OTHER, 0) == mark
    record(
        "hostile",
        "lies in births",
        {
            "attack": "a birth claiming a 0-byte event lane (then a drop report of 59 seqs), "
            "a birth under another box's id, a birth with a sensor count the site does not "
            "give the box",
            "tried": 3,
            "refused": 3,
            "notes": "drop report quarantined (beyond what a 0-byte lane holds); foreign id "
            "quarantined; sensor count recorded as a site problem; watermark unmoved",
        },
    )


def _box_status_cap(central: Central, box: str) -> int | None:
    with central.db() as conn:
        row = conn.execute("SELECT status_json FROM boxes WHERE box_id = ?", (box,)).fetchone()
    if not row or not row[0]:
        return None
    return int(json.loads(row[0])["health"]["outbox"]["event"]["cap_bytes"])


def _problem(central: Central, box: str, subject: str) -> bool:
    with central.db() as conn:
        row = conn.execute(
            "SELECT count(*) FROM site_problems WHERE box_id = ? AND subject = ?", (box, subject)
        ).fetchone()
    return bool(row[0])


def test_hostile_extreme_seqs(field: Field) -> None:
    """Seqs 0, -1, 2^63, 2^64, "5", 5.0 and null are quarantined; 2^63-1 (the top of the
    line) is stored without moving the watermark over the hole below it; central keeps
    ingesting."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, OTHER)
    base = json.loads(good_event(1, box=OTHER))
    bad: list[object] = [0, -1, 2**63, 2**64, "5", 5.0, None]
    before = len(_quarantine_reasons(central, OTHER))
    mark = central.watermarks().get(OTHER, 0)
    box = Client(broker.port, OTHER, field.secrets[OTHER])
    try:
        for seq in bad:
            doc = dict(base, seq=seq, event_id=str(uuid.uuid4()))
            box.publish(topics.event, json.dumps(doc).encode())
        top = dict(base, seq=MAX_SEQ, event_id=str(uuid.uuid4()))
        box.publish(topics.event, json.dumps(top).encode())
        _wait(lambda: _stored(central, OTHER, MAX_SEQ), "the event at 2^63-1")
        _wait(
            lambda: len(_quarantine_reasons(central, OTHER)) >= before + len(bad),
            "the bad seqs quarantined",
        )
    finally:
        box.close()
    assert central.watermarks().get(OTHER, 0) == mark
    assert central.proc.running
    record(
        "hostile",
        "extreme seqs",
        {
            "attack": "events with seq 0, -1, 2^63, 2^64, a string, a float, null, and 2^63-1",
            "tried": len(bad) + 1,
            # 2^63-1 is a valid seq: stored, and it gets nothing (the watermark stays put).
            "refused": len(bad) + 1,
            "notes": "the bad ones quarantined with the reason; 2^63-1 stored, the watermark "
            "does not cross the hole below it; central unharmed",
        },
    )
