"""The load balancer in ``deploy/haproxy/haproxy.cfg`` in front of two real central
processes on PostgreSQL (issue 17: "a real load balancer in front").

Debian's HAProxy runs the deploy file as written, with only what a test machine needs
changed: the ports (a free one for the frontend, the two processes' for the servers), the
stats socket in the test's directory, the log to standard output, plain HTTP (and HTTP/2
without TLS on a second port) in place of the TLS bind and its redirect, ``maxconn`` 1000
(a container's open-files limit may not allow the deploy file's 20,000), and in the
foreground as the test's user (no ``daemon``,
``chroot``, ``user``, ``group``). Checked: both processes serve requests; a client's
own ``X-Forwarded-For`` is replaced (central logs the refused login from the balancer's
view of the client); the live stream passes through unbuffered (a notice arrives while
the stream stays open); after ``kill -9`` of one process every request keeps succeeding
and the health check marks it DOWN.
Long (``make test-long``): a quiet stream stays open 75 s through the timeouts as written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker, free_port
from tests.central.helpers import SITE, SITE_FILE, lot_state, wait_for
from tests.central.test_processes_pg import Serve, _login
from tests.faults.rig import Proc, _env

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"

pytestmark = pytest.mark.timeout(300)


def balancer_config(text: str, *, port: int, h2_port: int, servers: list[int], sock: Path) -> str:
    """The deploy file with a test machine's changes only (see the module's docstring)."""
    out = []
    for line in text.splitlines():
        bare = line.strip()
        if bare in ("daemon", "bind :80") or bare.split(" ")[0] in ("chroot", "user", "group"):
            continue
        if bare.startswith("http-request redirect scheme https"):
            continue
        if bare.startswith("bind :443 "):
            # Plain HTTP/1.1, and HTTP/2 without TLS on the next port (what browsers speak
            # to the deploy bind's `alpn h2,http/1.1`).
            line = f"    bind 127.0.0.1:{port}\n    bind 127.0.0.1:{h2_port} proto h2"
        elif bare.startswith("maxconn "):
            line = "    maxconn 1000"  # a test machine's open-files limit may be lower
        elif bare.startswith("log /dev/log"):
            line = "    log stdout format raw local0"
        elif bare.startswith("stats socket "):
            line = f"    stats socket {sock} mode 600 level admin"
        out.append(line)
    cfg = "\n".join(out) + "\n"
    for n, server_port in enumerate(servers, start=1):
        cfg, count = re.subn(rf"127\.0\.0\.1:800{n}\b", f"127.0.0.1:{server_port}", cfg)
        assert count == 2, f"server c{n} should appear in both backends"
    return cfg


class Balancer:
    def __init__(self, workdir: Path, servers: list[int]) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        assert Path(binary).exists(), "haproxy is not installed (make system-deps)"
        self.port = free_port()
        self.h2_port = free_port()
        self.sock = workdir / "haproxy.sock"
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(
            balancer_config(
                DEPLOY_CFG.read_text(encoding="utf-8"),
                port=self.port,
                h2_port=self.h2_port,
                servers=servers,
                sock=self.sock,
            ),
            encoding="utf-8",
        )
        self.proc = Proc(argv=[binary, "-db", "-f", str(cfg)], log=workdir / "haproxy.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` from the admin socket: (proxy, server) -> its row."""
        assert self.proc.running, f"haproxy exited:\n{self.proc.tail()}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.sock))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
        return {(r["pxname"], r["svname"]): r for r in rows}

    def status(self, server: str) -> str:
        return self.stats()[("central", server)]["status"]


class Stream:
    """An SSE client through the balancer, reading in a thread."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.hello = threading.Event()
        self.headers: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self._thread.start()

    def _run(self, url: str, token: str) -> None:
        try:
            with httpx.stream(
                "GET",
                f"{url}/api/v1/stream?lots=P1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=httpx.Timeout(30, read=None),
            ) as r:
                self.headers = dict(r.headers)
                kind = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
                        if kind == "hello":
                            self.hello.set()
        except httpx.HTTPError:
            return

    def frees(self) -> list[int]:
        return [d["free"] for k, d in list(self.events) if k == "lot"]


@pytest.fixture
def rig(
    pg_schema_url: str, mosquitto: MosquittoBroker, tmp_path: Path
) -> Iterator[tuple[list[Serve], Balancer]]:
    pair = [Serve(name, pg_schema_url, mosquitto, tmp_path) for name in ("a", "b")]
    balancer = Balancer(tmp_path, [s.port for s in pair])
    try:
        for serve in pair:
            serve.proc.start()
        for serve in pair:
            wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
        balancer.proc.start()
        wait_for(
            lambda: (
                balancer.sock.exists() and balancer.status("c1") == balancer.status("c2") == "UP"
            ),
            timeout=30,
            what="haproxy to see both processes UP",
        )
        yield pair, balancer
    finally:
        balancer.proc.stop()
        for serve in pair:
            serve.proc.stop()


def _publish_lot(broker: MosquittoBroker, free: int, ts: float) -> None:
    box = paho.Client(CallbackAPIVersion.VERSION2, client_id="box-p1")
    box.connect("127.0.0.1", broker.port)
    box.loop_start()
    try:
        topic = Topics(SITE, "box-p1").lot("P1")
        payload = encode_payload(lot_state("P1", free=free, occupied=10 - free, ts=ts))
        box.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        box.loop_stop()
        box.disconnect()


def _refused_clients(pair: list[Serve]) -> set[str]:
    """The client addresses central logged for refused logins (JSON log lines)."""
    found = set()
    for serve in pair:
        for line in serve.proc.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == "login refused":
                found.add(record.get("client"))
    return found


def test_balancer_spreads_streams_unbuffered_and_survives_a_kill_9(
    rig: tuple[list[Serve], Balancer], pg_schema_url: str, mosquitto: MosquittoBroker
) -> None:
    pair, balancer = rig
    lb = httpx.Client(base_url=balancer.url, timeout=30)
    try:
        # Both processes serve requests through the balancer.
        for _ in range(20):
            assert lb.get("/api/v1/lots").status_code == 200
        served = {s: int(balancer.stats()[("central", s)]["stot"]) for s in ("c1", "c2")}
        assert served["c1"] > 0 and served["c2"] > 0, served

        # A client's own X-Forwarded-For is replaced: central's login back-off counts the
        # address HAProxy saw, not one the client claims.
        refused = lb.post(
            "/api/v1/auth/login",
            data={"username": "nobody", "password": "wrong password here"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert refused.status_code == 401
        wait_for(lambda: _refused_clients(pair), timeout=30, what="the refused login's log line")
        assert _refused_clients(pair) == {"127.0.0.1"}

        # The live stream passes through unbuffered: a notice arrives while it stays open.
        token = _login(pair[0], pg_schema_url)
        stream = Stream(balancer.url, token)
        assert stream.hello.wait(30), "no hello through the balancer"
        assert stream.headers.get("content-type", "").startswith("text/event-stream")
        _publish_lot(mosquitto, free=4, ts=1)
        wait_for(lambda: 4 in stream.frees(), timeout=30, what="the lot notice through haproxy")
        assert stream._thread.is_alive(), "the stream should still be open"

        # kill -9 one process: requests keep succeeding, the check takes it out.
        victim, survivor = pair[0], pair[1]
        victim.proc.kill()
        failures: list[str] = []
        answered = 0

        def one_request() -> bool:
            nonlocal answered
            r = lb.get("/api/v1/lots")
            answered += 1
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
            return balancer.status("c1").startswith("DOWN")

        wait_for(one_request, timeout=30, what="haproxy to mark the killed process DOWN")
        for _ in range(20):
            one_request()
        assert not failures, failures
        assert balancer.status("c2") == "UP"
        assert survivor.healthy()

        # A screen reconnecting through the balancer reaches the survivor and hears on.
        again = Stream(balancer.url, token)
        assert again.hello.wait(30), "no hello after the kill"
        _publish_lot(mosquitto, free=7, ts=2)
        wait_for(lambda: 7 in again.frees(), timeout=30, what="a notice after the kill")
        print(f"requests answered while and after the process died: {answered}, failed: 0")
    finally:
        lb.close()


@pytest.mark.long
def test_balancer_keeps_a_quiet_stream_past_its_timeouts(tmp_path: Path) -> None:
    """A stream with nothing to say but central's 15 s keep-alive comment stays open
    through the deploy file's timeouts as written (client 60 s, server 2 min): watched for
    75 s. One central process on SQLite (no ingest) behind both server lines. Long: 75 s."""
    central = Proc(
        argv=[sys.executable, "-m", "parkgrid", "central", "serve",
              "--site", str(SITE_FILE), "--database-url", f"sqlite:///{tmp_path / 'c.db'}",
              "--no-ingest", "--port", str(port := free_port())],
        log=tmp_path / "central.log",
        env={"PARKGRID_FORECAST_EVERY_S": "0"},
    )  # fmt: skip
    balancer = Balancer(tmp_path, [port, port])
    try:
        central.start()
        balancer.proc.start()
        wait_for(
            lambda: balancer.sock.exists() and balancer.status("c1") == "UP",
            timeout=90,
            what="central up behind haproxy",
        )
        subprocess.run(
            [sys.executable, "-m", "parkgrid", "central", "add-user", "vera", "--role",
             "viewer", "--password-stdin", "--database-url", f"sqlite:///{tmp_path / 'c.db'}"],
            input=b"a long enough password\n", check=True, env=_env(), capture_output=True,
        )  # fmt: skip
        token = httpx.post(
            f"{balancer.url}/api/v1/auth/login",
            data={"username": "vera", "password": "a long enough password"},
            timeout=30,
        ).json()["access_token"]
        opened = time.monotonic()
        comments = 0
        with httpx.stream(
            "GET",
            f"{balancer.url}/api/v1/stream",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30, read=40),
        ) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                comments += line.startswith(": keep-alive")
                if time.monotonic() - opened > 75:
                    break
        assert time.monotonic() - opened > 75, "the stream closed early"
        assert comments >= 4
    finally:
        balancer.proc.stop()
        central.stop()
