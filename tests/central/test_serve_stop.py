"""``central serve`` stops on SIGTERM while screens hold live streams open.

An SSE stream never ends by itself, and uvicorn's graceful shutdown waited for every
connection to close: with one dashboard open, `central serve` ignored SIGTERM until it was
killed (systemd's stop timeout, then SIGKILL: no clean shutdown of the ingest). Seen as 14 s
teardowns in tests/central/test_processes_pg.py (the rig kills after 10 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from simulators.broker import MosquittoBroker
from tests.central.helpers import SITE_FILE
from tests.central.test_processes_pg import SseClient
from tests.faults.rig import Central, _env

PASSWORD = "a long enough password"


def test_serve_stops_on_sigterm_with_a_stream_open(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    central = Central(workdir=tmp_path, site_file=SITE_FILE, mqtt_url=mosquitto.url)
    central.start()
    try:
        subprocess.run(
            [sys.executable, "-m", "parkgrid", "central", "add-user", "vera", "--role",
             "viewer", "--password-stdin", "--database-url", f"sqlite:///{central.db_path}"],
            input=PASSWORD.encode() + b"\n", check=True, env=_env(), capture_output=True,
        )  # fmt: skip
        import httpx

        token = httpx.post(
            f"{central.url}/api/v1/auth/login",
            data={"username": "vera", "password": PASSWORD},
            timeout=30,
        ).json()["access_token"]
        client = SseClient(central.url, token)
        assert client.open.wait(30), "the stream did not say hello"
        proc = central.proc.proc
        assert proc is not None
        os.killpg(proc.pid, signal.SIGTERM)
        # Without a bound on the graceful shutdown this waited for the stream forever.
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is not None, "central serve still running 30 s after SIGTERM"
        # uvicorn re-raises the signal once it has shut down (so -SIGTERM, as systemd expects).
        assert proc.returncode in (0, -signal.SIGTERM), central.proc.tail()
        client.close()
    finally:
        central.kill()
