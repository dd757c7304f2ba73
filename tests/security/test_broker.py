"""The broker configuration provision-box generates, with a real central behind it.

A box with its own credentials cannot publish under another box's id or send commands
(the broker drops it and central never stores it); anonymous clients are refused; a TLS
listener with a test CA made here with ``openssl`` lets in a box with a client certificate
and refuses one without.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.provision import password_line, upsert_password
from firmware_protocols.uplink import Topics
from simulators.broker import MosquittoBroker, free_port
from tests.badinput.test_mqtt_payloads import good_event
from tests.faults.rig import ROOT, SITE_ID, Central, plan_boxes, record, write_site

PLANS = plan_boxes(2, 2)
AS_ROOT = ["user root"] if os.geteuid() == 0 else []  # mosquitto would drop to its own user


def connect(
    broker_port: int, user: str | None, password: str | None, **tls: object
) -> tuple[paho.Client, bool]:
    """A client and whether the broker accepted it."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{time.monotonic_ns()}")
    if user:
        client.username_pw_set(user, password)
    if tls:
        client.tls_set(**tls)  # type: ignore[arg-type]
    done = threading.Event()
    result: dict[str, bool] = {}

    def on_connect(*args: object) -> None:
        result["ok"] = not args[3].is_failure  # type: ignore[attr-defined]
        done.set()

    def on_disconnect(*_args: object) -> None:
        result.setdefault("ok", False)
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("127.0.0.1", broker_port, keepalive=10)
    except OSError:
        return client, False
    client.loop_start()
    done.wait(10)
    return client, result.get("ok", False)


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Central, MosquittoBroker, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("secured")
    site = write_site(tmp / "site.toml", PLANS)
    passwd, acl = tmp / "passwd", tmp / "acl"
    secrets: dict[str, str] = {}
    for plan in PLANS:
        out = tmp / plan.box_id
        ran = subprocess.run(
            [sys.executable, "-m", "parkgrid", "central", "provision-box", plan.box_id,
             "--site", str(site), "--out", str(out),
             "--password-file", str(passwd), "--acl-file", str(acl)],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        secrets[plan.box_id] = (out / "mqtt-password").read_text().strip()
    secrets["central"] = "central-secret-for-the-test"
    upsert_password(passwd, line=password_line("central", secrets["central"]))
    broker = MosquittoBroker(
        workdir=tmp / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT],
    ).start()
    central = Central(workdir=tmp, site_file=site, mqtt_url=broker.url)
    central.proc.env.update(
        PARKGRID_MQTT_USERNAME="central", PARKGRID_MQTT_PASSWORD=secrets["central"]
    )
    central.start()
    try:
        yield central, broker, secrets
    finally:
        central.kill()
        broker.close()


def test_security_broker_box_cannot_speak_for_another_box(
    secured: tuple[Central, MosquittoBroker, dict[str, str]],
) -> None:
    """box-01's credentials: forged box-02 events and commands are dropped; its own stored."""
    central, broker, secrets = secured
    own, other = PLANS[0].box_id, PLANS[1].box_id
    client, ok = connect(broker.port, own, secrets[own])
    assert ok
    forged = [
        (Topics(SITE_ID, other).event, good_event(1, box=other)),
        (Topics(SITE_ID, other).status, b'{"v": 1}'),
        (Topics(SITE_ID, other).cmd("rebirth"), b'{"v": 1}'),
        (Topics(SITE_ID, own).cmd("rebirth"), b'{"v": 1}'),
        (Topics(SITE_ID, own).ack, b'{"v": 1, "acked_seq": 99}'),
    ]
    try:
        for topic, payload in forged:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
        client.publish(Topics(SITE_ID, own).event, good_event(1, box=own), qos=1).wait_for_publish(
            10
        )
        deadline = time.monotonic() + 20
        while central.watermarks().get(own) != 1:
            assert time.monotonic() < deadline, "box-01's own event never stored"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        client.loop_stop()
        client.disconnect()
    with central.db() as conn:
        foreign = conn.execute("SELECT count(*) FROM events WHERE box_id = ?", (other,)).fetchone()
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    assert foreign[0] == 0
    assert quarantined[0] == 0  # dropped by the broker, never even seen by central
    assert central.watermarks().get(other) is None
    anon, anon_ok = connect(broker.port, None, None)
    anon.loop_stop()
    wrong, wrong_ok = connect(broker.port, own, "not-the-password")
    wrong.loop_stop()
    assert not anon_ok and not wrong_ok
    record(
        "security",
        "broker ACL (provision-box)",
        {
            "cases": len(forged) + 2,
            "refused": len(forged) + int(not anon_ok) + int(not wrong_ok),
            "how": "forged topics dropped by the broker's ACL (nothing stored, nothing "
            "quarantined); anonymous and wrong password refused at CONNECT",
        },
    )


def make_ca(tmp: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=parkgrid test CA", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    (tmp / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "box-01")):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")  # fmt: skip
        extra = ["-extfile", "san.cnf"] if name == "server" else []
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *extra)  # fmt: skip
    return {n: tmp / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def test_security_broker_tls_needs_a_client_certificate(tmp_path: Path) -> None:
    """TLS with a test CA: a box with a client certificate gets in, one without is refused."""
    files = make_ca(tmp_path)
    port = free_port()
    with MosquittoBroker(
        workdir=tmp_path / "broker",
        extra_config=[
            f"listener {port} 127.0.0.1",
            f"cafile {files['ca.crt']}",
            f"certfile {files['server.crt']}",
            f"keyfile {files['server.key']}",
            "require_certificate true",
            "use_identity_as_username true",
            *AS_ROOT,
        ],
    ):
        with_cert, ok = connect(
            port, None, None, ca_certs=str(files["ca.crt"]),
            certfile=str(files["client.crt"]), keyfile=str(files["client.key"]),
        )  # fmt: skip
        with_cert.loop_stop()
        without, refused_ok = connect(port, None, None, ca_certs=str(files["ca.crt"]))
        without.loop_stop()
    assert ok
    assert not refused_ok
    record(
        "security",
        "broker TLS client certificates",
        {
            "cases": 2,
            "refused": 1 + int(ok),
            "how": "client with a certificate from the test CA accepted; without one the TLS "
            "handshake fails",
        },
    )
