"""A Dahua camera's attach stream into the receiving endpoint of a real central.

Central is ``create_app`` served by uvicorn on a free port (SQLite); the "camera" writes
its ``eventManager.cgi?action=attach`` stream over a real HTTP connection with chunked
transfer encoding, one part per chunk, heartbeats between events and JPEG parts after
them, as the camera writes it. Every event must come out as one capture carrying exactly
its own pictures, at its real UTC time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from central.auth.models import Role
from central.auth.service import issue_token
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE
from tests.central.test_captures import _recent_stream
from tests.firmware_protocols.camera_corpus import JPEG_A, JPEG_B, JPEG_C, STREAM_TYPE
from tests.test_end_to_end_central import CentralServer


def _chunks(body: bytes) -> Iterator[bytes]:
    """The stream as the camera writes it: one part at a time."""
    marker = b"--myboundary"
    start = 0
    while True:
        nxt = body.find(marker, start + len(marker))
        if nxt < 0:
            yield body[start:]
            return
        yield body[start:nxt]
        start = nxt


def test_attach_stream_into_a_real_central(tmp_path: Path) -> None:
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        ingest=False,
        pictures_dir=tmp_path / "pictures",
    )

    async def run() -> None:
        server = await CentralServer(settings).start()
        try:
            engine = server.central.engine
            camera, _ = issue_token(engine, name="C2", role=Role.CAMERA, ttl_s=600, actor="test")
            staff, _ = issue_token(engine, name="office", role=Role.VIEWER, ttl_s=600, actor="test")
            body = _recent_stream()

            def push() -> httpx.Response:
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    return client.post(
                        "/api/v1/cameras/dahua",
                        content=_chunks(body),
                        headers={"Authorization": f"Bearer {camera}", "Content-Type": STREAM_TYPE},
                    )

            response = await asyncio.to_thread(push)
            assert response.status_code == 201, response.text
            assert response.request.headers.get("transfer-encoding") == "chunked"
            out = response.json()
            assert out["heartbeats"] == 4 and out["refused"] == []
            assert len(out["captures"]) == 3

            def stored() -> list[dict]:
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    got = client.get(
                        "/api/v1/captures", headers={"Authorization": f"Bearer {staff}"}
                    )
                    assert got.status_code == 200, got.text
                    return list(got.json())

            rows = await asyncio.to_thread(stored)
            pictures = {
                row["event_id"]: sorted(p["sha256"] for p in row["pictures"]) for row in rows
            }
            digest = {d: hashlib.sha256(d).hexdigest() for d in (JPEG_A, JPEG_B, JPEG_C)}
            assert pictures["TrafficJunction/175706653/516/Pulse"] == [digest[JPEG_A]]
            assert pictures["TrafficJunction/175706654/517/Pulse"] == sorted(
                [digest[JPEG_B], digest[JPEG_C]]
            )
            assert pictures["TrafficParking/8803/9121/Start"] == [
                hashlib.sha256(JPEG_A + b"-3").hexdigest()
            ]
            now = dt.datetime.now(dt.UTC)
            for row in rows:  # real UTC: a minute ago, not eight hours off
                when = dt.datetime.fromisoformat(row["captured_at"])
                assert abs((now - when).total_seconds() - 60) < 600, row
                assert row["held"] is None
        finally:
            await server.stop()

    asyncio.run(run())
