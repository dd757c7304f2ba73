"""The town's broker as deploy/README.md sets it up on Debian 12, started for real.

Debian's stock ``/etc/mosquitto/mosquitto.conf`` (tests/fixtures/debian12, from the package)
includes ``/etc/mosquitto/conf.d``, where ``deploy/mosquitto/parkgrid.conf`` goes. Both are
used as written, with their paths moved under a scratch root and their ports replaced by
free ones, nothing else. The files are made in the README's order: central's password and
the initial ACL, a first start (no box yet), then ``provision-box`` and a reload (SIGHUP).
The broker must start, accept central on loopback and a provisioned box over TLS, and
refuse anonymous clients on both listeners.
"""

from __future__ import annotations

import contextlib
import grp
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "tests" / "fixtures" / "debian12" / "mosquitto.conf"
DEPLOY = ROOT / "deploy" / "mosquitto"
SITE_FILE = Path(__file__).parent / "site_small.toml"
MOVED = ("/etc/mosquitto", "/run/mosquitto", "/var/lib/mosquitto", "/var/log/mosquitto")


def substitute(text: str, root: Path, ports: dict[int, int]) -> str:
    """Paths moved under ``root``, listener ports replaced: the only changes allowed."""
    for prefix in MOVED:
        text = text.replace(prefix, f"{root}{prefix}")
    for old, new in ports.items():
        text = re.sub(rf"^(listener\s+){old}\b", rf"\g<1>{new}", text, flags=re.M)
    return text


def broker_owned(path: Path, mode: int) -> None:
    """``install -o root -g mosquitto -m MODE``, as the README does (when we are root)."""
    os.chmod(path, mode)
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError):
            os.chown(path, 0, grp.getgrnam("mosquitto").gr_gid)


def make_certificates(certs: Path) -> None:
    """The town's CA and a broker certificate for ``localhost``, as deploy/mosquitto/README."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=test parkgrid CA")  # fmt: skip
    openssl("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost")
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "broker.crt", "-days", "30",
            "-extfile", "san.ext")  # fmt: skip
    for name in ("broker.key", "broker.crt", "ca.crt"):
        broker_owned(certs / name, 0o640)


def connect(port: int, user: str | None, password: str | None, ca: Path | None = None) -> bool:
    """Whether the broker accepts this client (CONNACK success)."""
    answer: queue.Queue[bool] = queue.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user or 'anonymous'}")
    if user is not None:
        client.username_pw_set(user, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    client.on_connect = lambda _c, _u, _f, rc, _p: answer.put(not rc.is_failure)
    client.on_disconnect = lambda _c, _u, _f, rc, _p: answer.put(False)
    try:
        client.connect("localhost" if ca is not None else "127.0.0.1", port)
        client.loop_start()
        return answer.get(timeout=15)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Not pytest's tmp_path: mosquitto started as root drops to user mosquitto, which must
    # be able to walk to its files, as it can in /etc.
    root = Path(tempfile.mkdtemp(prefix="parkgrid-debian-broker-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_deploy_broker_debian_stock_config_with_our_include(scratch: Path) -> None:
    etc = scratch / "etc" / "mosquitto"
    for sub in ("conf.d", "certs"):
        (etc / sub).mkdir(parents=True)
    for path in ("run/mosquitto", "var/lib/mosquitto", "var/log/mosquitto"):
        (scratch / path).mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(scratch / path, user="mosquitto", group="mosquitto")
    for d in scratch.rglob("*"):
        if d.is_dir():
            d.chmod(0o755)
    tls_port, local_port = free_port(), free_port()
    ports = {8883: tls_port, 1883: local_port}
    (etc / "mosquitto.conf").write_text(substitute(STOCK.read_text(), scratch, ports))
    # deploy/README.md, "The broker", step by step:
    ours = substitute((DEPLOY / "parkgrid.conf").read_text(), scratch, ports)
    (etc / "conf.d" / "parkgrid.conf").write_text(ours)
    make_certificates(etc / "certs")
    passwd, acl = etc / "passwd", etc / "acl"
    passwd.touch()
    broker_owned(passwd, 0o640)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "central", "central-secret"],
                   check=True)  # fmt: skip
    shutil.copyfile(DEPLOY / "acl.initial", acl)
    broker_owned(acl, 0o640)

    log = scratch / "mosquitto.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(etc / "mosquitto.conf")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        for port in (local_port, tls_port):
            while proc.poll() is None:
                with contextlib.suppress(TimeoutError):
                    wait_for_port("127.0.0.1", port, timeout=1)
                    break
            if proc.poll() is not None:
                logged = scratch / "var/log/mosquitto/mosquitto.log"
                text = log.read_text() + (logged.read_text() if logged.exists() else "")
                pytest.fail(f"mosquitto did not start (exit {proc.poll()}): {text}")
        ca = etc / "certs" / "ca.crt"
        assert connect(local_port, "central", "central-secret")
        assert not connect(local_port, None, None), "anonymous accepted on the loopback listener"
        assert not connect(tls_port, None, None, ca=ca), "anonymous accepted on the TLS listener"

        out_dir = scratch / "box-files" / "box-p1"
        ran = subprocess.run(
            [
                sys.executable, "-m", "parkgrid", "central", "provision-box", "box-p1",
                "--site", str(SITE_FILE), "--mqtt-url", f"mqtts://localhost:{tls_port}",
                "--out", str(out_dir), "--password-file", str(passwd), "--acl-file", str(acl),
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        proc.send_signal(signal.SIGHUP)  # systemctl reload mosquitto
        secret = (out_dir / "mqtt-password").read_text().strip()
        assert not connect(tls_port, "box-p1", "wrong", ca=ca)

        def box_gets_in() -> bool:
            return connect(tls_port, "box-p1", secret, ca=ca)

        # The reload is asynchronous: the broker re-reads its files between two loops.
        for _ in range(50):
            if box_gets_in():
                break
        else:
            pytest.fail(f"the provisioned box was refused: {log.read_text()}")
        assert proc.poll() is None, "mosquitto exited after the reload"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
