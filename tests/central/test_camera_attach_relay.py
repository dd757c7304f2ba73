"""``parkgrid camera attach`` between a Dahua camera's attach stream and a real central.

The camera is an HTTP server on a free port that answers ``GET
/cgi-bin/eventManager.cgi?action=attach`` (after a Basic challenge) with a stream that does
not end: the corpus stream's parts written one at a time with pauses, heartbeats between
events, JPEGs after them, then only heartbeats until the test ends. Central is
``create_app`` under uvicorn (SQLite). The relay runs as its own process, as a technician
starts it. Each event must reach central as one capture with exactly its own pictures
while the stream is still open.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from central.auth.models import Role
from central.auth.service import issue_token
from central.db import schema as t
from central.settings import CentralSettings
from simulators.broker import free_port
from tests.central.helpers import SITE_FILE
from tests.central.test_camera_stream_live import _chunks
from tests.central.test_captures import _recent_stream
from tests.firmware_protocols.camera_corpus import JPEG_A, JPEG_B, JPEG_C, heartbeat
from tests.test_end_to_end_central import CentralServer

DEADLINE_S = 60.0
USER, PASSWORD = "admin", "cam-password"
CREDENTIALS = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REALM, NONCE = "Login to 8M049B2PAJF3085", "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_ok(header: str, method: str) -> bool:
    """RFC 7616 Digest (MD5, qop=auth) as Dahua cameras ask for it."""
    if not header.startswith("Digest "):
        return False
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', header[len("Digest ") :]))
    ha1 = _md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = _md5(f"{method}:{fields.get('uri', '')}")
    expected = _md5(f"{ha1}:{NONCE}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
    return fields.get("username") == USER and fields.get("response") == expected


class FakeDahua:
    """A camera's attach endpoint: the stream part by part, then heartbeats until closed."""

    def __init__(self, body: bytes, scheme: str) -> None:
        self.parts = list(_chunks(body))
        self.done = threading.Event()
        self.requests: list[str] = []
        self.authorized = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                camera.requests.append(self.path)
                given = self.headers.get("Authorization", "")
                ok = (
                    _digest_ok(given, "GET")
                    if scheme == "digest"
                    else given == f"Basic {CREDENTIALS}"
                )
                if ok:
                    camera.authorized += 1
                else:
                    self.send_response(401)
                    challenge = (
                        f'Digest realm="{REALM}", qop="auth", nonce="{NONCE}", opaque=""'
                        if scheme == "digest"
                        else f'Basic realm="{REALM}"'
                    )
                    self.send_header("WWW-Authenticate", challenge)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=myboundary")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for part in camera.parts:
                        self.wfile.write(part)
                        self.wfile.flush()
                        time.sleep(0.05)
                    while not camera.done.wait(0.5):
                        self.wfile.write(heartbeat())
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = (
            f"http://127.0.0.1:{self.server.server_port}/cgi-bin/eventManager.cgi"
            "?action=attach&codes=[All]&heartbeat=5"
        )

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("scheme", ["digest", "basic"])
def test_relay_forwards_each_event_with_its_pictures_while_the_stream_is_open(
    tmp_path: Path, scheme: str
) -> None:
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        ingest=False,
        pictures_dir=tmp_path / "pictures",
    )
    camera = FakeDahua(_recent_stream(), scheme)

    async def run() -> None:
        server = await CentralServer(settings).start()
        relay: subprocess.Popen[str] | None = None
        try:
            engine = server.central.engine
            token, _ = issue_token(engine, name="C2", role=Role.CAMERA, ttl_s=600, actor="test")
            (tmp_path / "cam.token").write_text(token)
            relay = await asyncio.to_thread(
                subprocess.Popen,
                [
                    sys.executable, "-m", "parkgrid", "camera", "attach",
                    "--url", camera.url, "--user", USER, "--password", PASSWORD,
                    "--central", server.url, "--token-file", str(tmp_path / "cam.token"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

            def stored() -> dict[str, list[str]]:
                with engine.connect() as conn:
                    rows = conn.execute(select(t.captures.c.event_id, t.captures.c.pictures))
                    return {
                        r.event_id: sorted(p["sha256"] for p in json.loads(r.pictures))
                        for r in rows
                    }

            end = time.monotonic() + DEADLINE_S
            while len(await asyncio.to_thread(stored)) < 3:
                assert relay.poll() is None, "the relay stopped"
                assert time.monotonic() < end, "the relay never forwarded three events"
                await asyncio.sleep(0.2)
            assert not camera.done.is_set()  # the stream is still open: forwarded live
            pictures = await asyncio.to_thread(stored)
            digest = {d: hashlib.sha256(d).hexdigest() for d in (JPEG_A, JPEG_B, JPEG_C)}
            assert pictures == {
                "TrafficJunction/175706653/516/Pulse": [digest[JPEG_A]],
                "TrafficJunction/175706654/517/Pulse": sorted([digest[JPEG_B], digest[JPEG_C]]),
                "TrafficParking/8803/9121/Start": [hashlib.sha256(JPEG_A + b"-3").hexdigest()],
            }
            with engine.connect() as conn:
                held = conn.execute(select(t.captures.c.held)).scalars().all()
            assert held == [None, None, None]
        finally:
            if relay is not None:
                relay.terminate()
                output = (await asyncio.to_thread(relay.communicate, timeout=DEADLINE_S))[0]
                assert "attached to" in output and "201 capture" in output, output
            camera.close()
            await server.stop()

    asyncio.run(run())
    # challenged first, then let in with the camera's credentials
    assert len(camera.requests) >= 2 and camera.requests[0].startswith("/cgi-bin/eventManager.cgi")
    assert camera.authorized == 1
