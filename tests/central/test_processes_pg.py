"""Several ``central serve`` processes, one truth (issue 17, finding 1), on real PostgreSQL.

Each test starts real ``parkgrid central serve --ingest-group`` processes against a fresh
PostgreSQL schema and a real Mosquitto: they start together without deadlocking, a job
that must run once moves to the survivor when its holder is killed with SIGKILL, and a
live stream on either process sees every committed change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

from central.db.engine import normalise_url
from central.leases import lease_key
from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker, free_port
from tests.central.helpers import (
    SITE,
    SITE_FILE,
    bay_event,
    bay_state,
    event_msg,
    lot_state,
    wait_for,
)
from tests.central.test_stream_figures import client_view, database_view
from tests.faults.rig import Proc, _env

pytestmark = pytest.mark.timeout(300)


class Serve:
    """One ``parkgrid central serve`` process with its own port and instance name."""

    def __init__(
        self,
        name: str,
        db_url: str,
        broker: MosquittoBroker,
        workdir: Path,
        env: dict[str, str] | None = None,
        *,
        site_file: Path = SITE_FILE,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.proc = Proc(
            argv=[
                sys.executable, "-m", "parkgrid", "central", "serve",
                "--site", str(site_file), "--database-url", db_url,
                "--mqtt-url", broker.url, "--port", str(self.port),
                "--instance", name, "--ingest-group", "ingest", "--log-level", "info",
            ],
            log=workdir / f"central-{name}.log",
            env={"PARKGRID_FORECAST_EVERY_S": "0", **(env or {})},
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        assert self.proc.running, f"central {self.name} exited:\n{self.proc.tail()}"
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False


@contextmanager
def _started(pair: list[Serve]) -> Iterator[list[Serve]]:
    for serve in pair:
        serve.proc.start()
    try:
        yield pair
    finally:
        for serve in pair:
            serve.proc.stop()


@pytest.fixture
def two(pg_schema_url: str, mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[list[Serve]]:
    """Two processes on one fresh schema (not migrated), started at the same moment."""
    with _started([Serve(n, pg_schema_url, mosquitto, tmp_path) for n in ("a", "b")]) as pair:
        yield pair


@pytest.fixture
def two_firehose(
    pg_schema_url: str, mosquitto: MosquittoBroker, tmp_path: Path
) -> Iterator[list[Serve]]:
    """The same, with the live stream not coalescing (``STREAM_COALESCE_S=0``): every
    notice is a frame, so a test can count every committed change."""
    env = {"PARKGRID_STREAM_COALESCE_S": "0"}
    pair = [Serve(n, pg_schema_url, mosquitto, tmp_path, env) for n in ("a", "b")]
    with _started(pair) as started:
        yield started


def holder(db_url: str, lease: str) -> str | None:
    """The instance whose lease connection holds ``lease`` now, from PostgreSQL itself."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
            key = lease_key(f"{schema}:{lease}")
            name = conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted"
                    " AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).scalar()
    finally:
        engine.dispose()
    return str(name).rsplit(" ", 1)[-1] if name else None


def test_two_processes_started_together_both_become_healthy(two: list[Serve]) -> None:
    """Both migrate and sync the site file at once on an empty database: neither fails
    nor deadlocks (at main one died on the migration or the site sync)."""
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")


def test_a_lease_moves_to_the_survivor_after_kill_9(two: list[Serve], pg_schema_url: str) -> None:
    """The case sweep runs in one process; killed with SIGKILL, the other takes it within
    10 s (its lease keeper retries every 2 s)."""
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
    first = wait_for(lambda: holder(pg_schema_url, "cases-sweep"), what="a lease holder")
    assert first in ("a", "b")
    assert holder(pg_schema_url, "acks-republish") in ("a", "b")
    victim = next(s for s in two if s.name == first)
    survivor = next(s for s in two if s.name != first)
    victim.proc.kill()
    after = wait_for(
        lambda: holder(pg_schema_url, "cases-sweep"), timeout=10, what="the survivor to take it"
    )
    assert after == survivor.name
    assert survivor.healthy()


def _login(serve: Serve, db_url: str) -> str:
    subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "add-user", "vera", "--role", "viewer",
         "--password-stdin", "--database-url", db_url],
        input=b"a long enough password\n", check=True, env=_env(),
        capture_output=True,
    )  # fmt: skip
    resp = httpx.post(
        f"{serve.url}/api/v1/auth/login",
        data={"username": "vera", "password": "a long enough password"},
        timeout=30,
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


class SseClient:
    """Reads one process's live stream in a thread; keeps every event's kind and data."""

    def __init__(self, url: str, token: str, query: str = "") -> None:
        self.events: list[tuple[str, Any]] = []
        self.open = threading.Event()
        self._stop = threading.Event()
        target = f"{url}/api/v1/stream" + (f"?{query}" if query else "")
        self._thread = threading.Thread(target=self._run, args=(target, token), daemon=True)
        self._thread.start()

    def _run(self, target: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream("GET", target, headers=headers, timeout=None) as r:
                kind = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
                        if kind == "hello":
                            self.open.set()
                    if self._stop.is_set():
                        return
        except httpx.HTTPError:
            return  # the server stopped (the test is over)

    def seqs(self) -> set[int]:
        return {d["seq"] for k, d in self.events if k == "bay_changed"}

    def close(self) -> None:
        self._stop.set()


def test_every_process_stream_sees_every_committed_change(
    two_firehose: list[Serve], pg_schema_url: str, mosquitto: MosquittoBroker
) -> None:
    """60 events of one box, spread by the broker over both processes' ingest: an SSE
    client on each process sees all 60 (at main each saw only its own process's share).
    The stream does not coalesce here, so every committed change is a frame."""
    two = two_firehose
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
    token = _login(two[0], pg_schema_url)
    clients = [SseClient(serve.url, token) for serve in two]
    try:
        for client in clients:
            assert client.open.wait(30), "the stream did not say hello"
        box = paho.Client(CallbackAPIVersion.VERSION2, client_id="box-p1")
        box.connect("127.0.0.1", mosquitto.port)
        box.loop_start()
        sent = range(1, 61)
        for seq in sent:
            topic, payload, _ = event_msg(bay_event("box-p1", seq, f"P1-{seq % 10 + 1:03d}"))
            box.publish(topic, payload, qos=1).wait_for_publish(10)
        box.loop_stop()
        box.disconnect()
        for client in clients:
            wait_for(lambda c=client: c.seqs() >= set(sent), timeout=30, what="every event")
            assert not [k for k, _ in client.events if k == "resync"]
    finally:
        for client in clients:
            client.close()


def test_a_client_on_each_process_ends_with_the_database_view(
    two: list[Serve], pg_schema_url: str, mosquitto: MosquittoBroker
) -> None:
    """Lot and bay states of P1 committed by both processes (the broker spreads them): a lot
    page's client on each process ends with the same figures as the database, and hears
    nothing of P2."""
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
    token = _login(two[0], pg_schema_url)
    clients = [SseClient(serve.url, token, "lots=P1") for serve in two]
    engine = create_engine(normalise_url(pg_schema_url))
    try:
        for client in clients:
            assert client.open.wait(30), "the stream did not say hello"
        box = paho.Client(CallbackAPIVersion.VERSION2, client_id="box-p1")
        box.connect("127.0.0.1", mosquitto.port)
        box.loop_start()
        p1 = Topics(SITE, "box-p1")
        for n in range(1, 31):
            bay = f"P1-{n % 10 + 1:03d}"
            state = "occupied" if n % 3 else "free"
            box.publish(p1.bay(bay), encode_payload(bay_state(bay, state)), qos=1)
            free = n % 11
            lot = lot_state("P1", free=free, occupied=10 - free, ts=n)
            box.publish(p1.lot("P1"), encode_payload(lot), qos=1).wait_for_publish(10)
        p2 = Topics(SITE, "box-p2")
        lot2 = lot_state("P2", free=1, occupied=3, capacity=4, ts=1)
        box.publish(p2.lot("P2"), encode_payload(lot2), qos=1).wait_for_publish(10)
        box.loop_stop()
        box.disconnect()

        def settled() -> bool:
            # Both processes' shares stored: the last lot state and a state for every bay
            # (the lot's last state may be committed by one process before the other has
            # committed its bays).
            view = database_view(engine, {"P1"})
            return len(view["bays"]) == 10 and view["lots"].get("P1", (None,))[0] == 30 % 11

        wait_for(settled, timeout=60, what="the last lot state and every bay to be stored")
        for client in clients:
            # The database's view read afresh each time: a bay's older state committed
            # late by the other process is refused, a newer one is the view to end with.
            wait_for(
                lambda c=client: client_view(c.events) == database_view(engine, {"P1"}),  # type: ignore[misc]
                timeout=30,
                what=f"the client's view to equal the database's: {database_view(engine, {'P1'})}",
            )
            assert all(d.get("lot_id") in (None, "P1") for _, d in client.events)
    finally:
        for client in clients:
            client.close()
        engine.dispose()


def test_a_logout_through_one_process_ends_the_tokens_stream_on_the_other(
    two: list[Serve], pg_schema_url: str
) -> None:
    """Logout ends the token's streams on the process that took it at once; on the other
    process its warden (one query for the tokens of all its open streams every 5 s,
    ``central.stream.warden``) ends them within seconds, with the reason."""
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
    token = _login(two[0], pg_schema_url)
    client = SseClient(two[1].url, token)
    try:
        assert client.open.wait(30), "the stream did not say hello"
        resp = httpx.post(
            f"{two[0].url}/api/v1/auth/logout",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert resp.status_code == 204, resp.text
        ended = wait_for(
            lambda: [d for k, d in client.events if k == "end"],
            timeout=20,
            what="the stream on the other process to end",
        )
        assert ended[0]["reason"] == "unknown or revoked token", ended
    finally:
        client.close()
