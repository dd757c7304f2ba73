"""Which of ``deploy/haproxy/haproxy.cfg``'s backends a request goes to (issue 17).

Live streams go to ``central_stream`` (open streams spread by ``leastconn``, frames sent
at once, a 2-minute server timeout); everything else to ``central`` (requests round the
processes). Found by the county bench: a county's screens open their town's stream,
``/api/v1/towns/{town}/stream``, and the deploy file sent only ``/api/v1/stream`` to
``central_stream``, so every town's stream went round-robin with the API requests.

The servers here are two small HTTP servers standing in for central's processes (the
routing is HAProxy's alone); HAProxy is Debian's, the deploy file as the balancer tests
run it (``balancer_config``).
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.central.helpers import wait_for
from tests.central.test_balancer_pg import Balancer

pytestmark = pytest.mark.timeout(120)


class _Central(http.server.BaseHTTPRequestHandler):
    """Answers every GET 200; ``/healthz`` as central does with its database up."""

    def do_GET(self) -> None:  # http.server's name for it
        body = b'{"database": true, "mqtt": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # a login refused as central refuses a wrong password
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"detail": "wrong user name or password"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[Balancer]:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Central) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    balancer = Balancer(tmp_path, [s.server_address[1] for s in servers])
    balancer.proc.start()
    try:
        wait_for(balancer.sock.exists, timeout=30, what="haproxy's stats socket")
        wait_for(
            lambda: all(balancer.status(s) == "UP" for s in ("c1", "c2")),
            timeout=30,
            what="both servers UP",
        )
        yield balancer
    finally:
        balancer.proc.stop()
        for server in servers:
            server.shutdown()
            server.server_close()


def _sessions(balancer: Balancer, backend: str) -> int:
    return int(balancer.stats()[(backend, "BACKEND")]["stot"])


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        ("/api/v1/stream", "central_stream"),
        ("/api/v1/stream?lots=P1", "central_stream"),
        ("/api/v1/towns/t07/stream", "central_stream"),
        ("/api/v1/towns/t07/stream?kinds=lot", "central_stream"),
        ("/api/v1/lots", "central"),
        ("/api/v1/towns/t07/lots", "central"),
        ("/api/v1/towns/t07/streamer", "central"),
        ("/api/v1/towns/t07/lots/stream", "central"),
    ],
)
def test_a_stream_and_only_a_stream_goes_to_the_stream_backend(
    balancer: Balancer, path: str, backend: str
) -> None:
    before = {name: _sessions(balancer, name) for name in ("central", "central_stream")}
    assert httpx.get(balancer.url + path, timeout=10).status_code == 200
    after = {name: _sessions(balancer, name) for name in ("central", "central_stream")}
    other = "central" if backend == "central_stream" else "central_stream"
    assert after[backend] == before[backend] + 1, (path, before, after)
    assert after[other] == before[other], (path, before, after)


def _curl_login(balancer: Balancer, *http: str) -> tuple[int, str]:
    """curl's exit code and the status it got for one login POST, with a form body."""
    port = balancer.h2_port if "--http2-prior-knowledge" in http else balancer.port
    out = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *http,
         "--data", "username=nobody&password=wrong-password",
         f"http://127.0.0.1:{port}/api/v1/auth/login"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("http", [("--http1.1",), ("--http2-prior-knowledge",)], ids=["h1", "h2"])
def test_logins_past_the_rate_get_a_clean_429(balancer: Balancer, http: tuple[str, ...]) -> None:
    """Browsers speak HTTP/2 to the deploy bind. The balancer's login rate answered a login
    POST's 11th attempt of the minute 429 and then cancelled the stream, its body unread:
    curl failed with "HTTP/2 stream 1 was not closed cleanly: CANCEL", and a browser shows
    a network error where it should say "too many attempts"."""
    answers = [_curl_login(balancer, *http) for _ in range(12)]
    assert answers[:10] == [(0, "401")] * 10, answers
    assert answers[10:] == [(0, "429")] * 2, answers
