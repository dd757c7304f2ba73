"""``parkgrid camera listen``: a real process on a free port, real pushes, what it prints."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from simulators.broker import free_port
from tests.firmware_protocols.camera_corpus import (
    STREAM_TYPE,
    attach_stream,
    hik_pid_multipart,
    sample,
)

DEADLINE_S = 60.0


class Listener:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parkgrid",
                "camera",
                "listen",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--timezone",
                "Asia/Bangkok",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, words: str) -> list[str]:
        end = time.monotonic() + DEADLINE_S
        with self._changed:
            while not any(words in line for line in self.lines):
                left = end - time.monotonic()
                assert left > 0, f"{words!r} never printed; got {self.lines}"
                self._changed.wait(left)
            return list(self.lines)

    def post(self, path: str, body: bytes, content_type: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_S)
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener(free_port())
    running.wait_for("listening on")
    yield running
    running.proc.terminate()
    running.proc.wait(timeout=DEADLINE_S)


def test_listen_prints_each_capture_of_a_dahua_stream(listener: Listener) -> None:
    summary = listener.post("/dahua", attach_stream(), STREAM_TYPE)
    assert summary == {"captures": 3, "refused": 0, "heartbeats": 4}
    lines = listener.wait_for("heartbeats: 4")
    text = "\n".join(lines)
    assert "plate 浙A12345 colour yellow class truck GA 01 present" in text
    assert "2024-01-30T07:34:55.305000+00:00 (RealUTC)" in text
    assert "UTC as local time in Asia/Bangkok" in text
    assert "CAMERA CLOCK" in text  # a 2024 sample is far from now
    assert "ignored (not plate events): VideoMotion" in text
    assert "lane 2 direction Leave; pictures: picture-2.jpg (scene," in text


def test_listen_prints_hikvision_lane_pictures_and_refusals(listener: Listener) -> None:
    body, content_type = hik_pid_multipart()
    listener.post("/", body, content_type)
    text = "\n".join(listener.wait_for("lane 2 direction reverse"))
    assert "read as hikvision" in text and "(plate," in text
    odd = sample("hikvision-anpr-cn-pid.xml").replace(b"heavyTruck", b"excavator")
    odd = odd.replace(b"<vehicleTypeByGAT>H11</vehicleTypeByGAT>", b"")
    listener.post("/hikvision", odd, "text/xml")
    listener.wait_for("UNMAPPED vehicle_type 'excavator'")
    listener.post("/hikvision", b"<EventNotificationAlert><eventType>ANPR", "text/xml")
    listener.wait_for("REFUSED whole body: malformed XML")
