"""Screens get figures, not firehoses (issue 17, finding 5): the live stream coalesces and
sends a client only what its page shows.

A real central (uvicorn in a thread, SQLite) ingests from a real Mosquitto what a box
publishes; SSE clients read ``/api/v1/stream`` over HTTP in threads. Checked: a client
subscribed to one lot hears nothing of another; a burst of updates to one lot within the
coalescing window reaches a client as one ``lot`` event with the latest figures; a client
whose queue overflows gets a ``resync`` carrying a snapshot and ends with the database's
view. (Two processes on PostgreSQL: ``test_processes_pg.py``.)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from central.auth.models import Role
from central.auth.service import add_user
from central.db import schema as t
from central.errors import Invalid
from central.stream.hub import RESYNC, Hub, _by_town
from central.stream.subscription import Subscription, parse, place_ids
from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker
from tests.central.helpers import (
    SITE,
    SITE_FILE,
    bay_event,
    bay_state,
    central_app,
    lot_state,
    serving,
    wait_for,
)

PASSWORD = "figures-test-password"
WINDOW_S = 3.0  # long, so that a burst surely falls within one window on a busy machine
QUEUE = 10
P1 = Topics(SITE, "box-p1")
P2 = Topics(SITE, "box-p2")

pytestmark = pytest.mark.timeout(120)


class SseClient:
    """Reads one live stream in a thread: every event's kind and data, in order."""

    def __init__(self, url: str, token: str, query: str = "") -> None:
        self.events: list[tuple[str, Any]] = []
        self.status: int | None = None
        self.hello = threading.Event()
        self._stop = threading.Event()
        target = f"{url}/api/v1/stream" + (f"?{query}" if query else "")
        threading.Thread(target=self._run, args=(target, token), daemon=True).start()
        assert self.hello.wait(30), f"no hello on {target} (status {self.status})"

    def _run(self, target: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.stream("GET", target, headers=headers, timeout=None) as response:
                self.status = response.status_code
                kind = ""
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((kind, json.loads(line[6:])))
                        if kind == "hello":
                            self.hello.set()
        except httpx.HTTPError:
            return

    def of(self, kind: str) -> list[Any]:
        return [data for k, data in list(self.events) if k == kind]

    def close(self) -> None:
        self._stop.set()


def lot_figures(n: dict[str, Any]) -> tuple[Any, ...]:
    return (n["free"], n["occupied"], n["unknown"], n["closed"], n["status"])


def client_view(events: list[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a screen shows after these events: a resync's snapshot replaces the view, a
    lot or bay notice replaces that lot's or bay's figures."""
    lots: dict[str, Any] = {}
    bays: dict[str, Any] = {}
    for kind, data in events:
        if kind == "resync":
            snap = data["snapshot"]
            lots = {n["lot_id"]: lot_figures(n) for n in snap.get("lot", [])}
            bays = {n["bay_id"]: n["state"] for n in snap.get("bay", [])}
        elif kind == "lot":
            lots[data["lot_id"]] = lot_figures(data)
        elif kind == "bay":
            bays[data["bay_id"]] = data["state"]
    return {"lots": lots, "bays": bays}


def database_view(engine: Engine, lots: set[str]) -> dict[str, dict[str, Any]]:
    """The same figures as the database holds them (lots and bays with a state)."""
    with engine.connect() as conn:
        lot_rows = conn.execute(
            select(t.lots).where(t.lots.c.lot_id.in_(lots), t.lots.c.state_ts.is_not(None))
        ).mappings()
        view_lots = {r["lot_id"]: lot_figures(dict(r)) for r in lot_rows}
        bay_rows = conn.execute(
            select(t.bays.c.bay_id, t.bays.c.state).where(
                t.bays.c.lot_id.in_(lots), t.bays.c.state.is_not(None)
            )
        ).all()
    return {"lots": view_lots, "bays": {b: s for b, s in bay_rows}}


class Box:
    def __init__(self, broker: MosquittoBroker, box_id: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{box_id}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any) -> None:
        self.client.publish(topic, encode_payload(payload), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Served:
    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.lot_ts = 0.0

    @property
    def engine(self) -> Engine:
        return self.app.state.central.engine  # type: ignore[no-any-return]

    def token(self) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/login", data={"username": "wall", "password": PASSWORD}
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def next_ts(self) -> float:
        """A later state date each time: every lot state is newer than the one before."""
        self.lot_ts += 1.0
        return self.lot_ts

    def stored_free(self, lot_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(  # type: ignore[no-any-return]
                select(t.lots.c.free).where(t.lots.c.lot_id == lot_id)
            ).scalar()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(workdir=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture(scope="module")
def served(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work: Path = tmp_path_factory.mktemp("figures")
    app = central_app(
        work,
        SITE_FILE.read_text(encoding="utf-8"),
        site_name="site.toml",
        mqtt_url=broker.url,
        instance="central-figures",
        stream_coalesce_s=WINDOW_S,
        stream_queue=QUEUE,
        forecast_every_s=0,
    )
    with serving(app) as (url, _srv):
        running = Served(url, app)
        wait_for(lambda: app.state.central.mqtt.wait_connected(0.1), what="central's MQTT link")
        add_user(running.engine, username="wall", password=PASSWORD, role=Role.VIEWER, actor="t")
        yield running


def test_stream_a_lot_page_hears_only_its_lot(served: Served, broker: MosquittoBroker) -> None:
    """``?lots=P1``: P2's lot and bay updates never reach the client; P1's do."""
    client = SseClient(served.url, served.token(), "lots=P1")
    p1, p2 = Box(broker, "box-p1"), Box(broker, "box-p2")
    try:
        p2.publish(
            P2.lot("P2"), lot_state("P2", free=1, occupied=3, capacity=4, ts=served.next_ts())
        )
        p2.publish(P2.bay("P2-A"), bay_state("P2-A", lot_id="P2"))
        wait_for(lambda: served.stored_free("P2") == 1, what="P2's state to be stored")
        p1.publish(P1.lot("P1"), lot_state("P1", free=5, occupied=5, ts=served.next_ts()))
        wait_for(lambda: client.of("lot"), timeout=30, what="P1's lot notice")
        assert [n["lot_id"] for n in client.of("lot")] == ["P1"], client.events
        about = [d.get("lot_id") for k, d in client.events if k in ("lot", "bay", "bay_changed")]
        assert "P2" not in about, client.events
    finally:
        client.close()
        p1.close()
        p2.close()


def test_stream_a_burst_to_one_lot_is_one_event_with_the_latest_figure(
    served: Served, broker: MosquittoBroker
) -> None:
    """Five lot states committed one after another (five ingest batches) within the window
    reach the client as one ``lot`` event, with the last one's figures."""
    client = SseClient(served.url, served.token(), "lots=P1&kinds=lot")
    box = Box(broker, "box-p1")
    try:
        for free in (1, 2, 3, 4, 6):
            box.publish(P1.lot("P1"), lot_state("P1", free=free, occupied=10 - free,
                                                ts=served.next_ts()))  # fmt: skip
            wait_for(lambda f=free: served.stored_free("P1") == f, what=f"free={free} stored")  # type: ignore[misc]
        wait_for(lambda: client.of("lot"), timeout=30, what="the lot's notice")
        # Another window goes by: nothing more comes for this burst.
        settle(client, 2 * WINDOW_S)
        lots = client.of("lot")
        assert len(lots) == 1, lots
        assert (lots[0]["free"], lots[0]["occupied"]) == (6, 4)
    finally:
        client.close()
        box.close()


def settle(client: SseClient, seconds: float) -> None:
    """Wait until the client's events have not changed for ``seconds``."""
    last = [len(client.events), time.monotonic()]

    def quiet() -> bool:
        count = len(client.events)
        if count != last[0]:
            last[:] = [count, time.monotonic()]
            return False
        return time.monotonic() - last[1] >= seconds

    wait_for(quiet, timeout=60, what=f"{seconds} s without a new event")


def test_stream_an_overflowing_client_gets_a_snapshot_and_ends_with_the_database_view(
    served: Served, broker: MosquittoBroker
) -> None:
    """More distinct figures in one window than the client's queue holds (10): the client
    gets a ``resync`` whose snapshot is its page's state, and after later updates its view
    equals the database's."""
    client = SseClient(served.url, served.token(), "lots=P1")
    box = Box(broker, "box-p1")
    try:
        for n in range(1, 11):
            bay = f"P1-{n:03d}"
            box.publish(P1.bay(bay), bay_state(bay, "occupied" if n % 3 else "free"))
            box.publish(P1.event, bay_event("box-p1", n, bay))
        box.publish(P1.lot("P1"), lot_state("P1", free=3, occupied=7, ts=served.next_ts()))
        wait_for(lambda: client.of("resync"), timeout=30, what="a resync")
        snapshot = client.of("resync")[0]["snapshot"]
        assert {n["bay_id"] for n in snapshot["bay"]} <= {f"P1-{n:03d}" for n in range(1, 11)}
        assert {n["lot_id"] for n in snapshot["lot"]} == {"P1"}
        # Later figures arrive as notices on top of the snapshot.
        box.publish(P1.bay("P1-003"), bay_state("P1-003", "occupied"))
        box.publish(P1.lot("P1"), lot_state("P1", free=2, occupied=8, ts=served.next_ts()))
        wait_for(lambda: served.stored_free("P1") == 2, what="the last lot state to be stored")
        wait_for(
            lambda: client_view(client.events) == database_view(served.engine, {"P1"}),
            timeout=30,
            what="the client's view to equal the database's",
        )
        final = database_view(served.engine, {"P1"})
        assert final["lots"]["P1"][:2] == (2, 8)
        assert len(final["bays"]) == 10
    finally:
        client.close()
        box.close()


def test_stream_refuses_an_unknown_lot(served: Served) -> None:
    """A subscription naming a lot the site does not have is refused, saying which."""
    with httpx.stream(
        "GET",
        f"{served.url}/api/v1/stream?lots=P1,NOPE",
        headers={"Authorization": f"Bearer {served.token()}"},
        timeout=30,
    ) as r:
        assert r.status_code == 422, r.status_code
        assert "NOPE" in json.loads(r.read())["detail"]


async def test_stream_a_notice_too_large_to_relay_resyncs_every_client() -> None:
    """The relay turns a notice over NOTIFY's 8,000 bytes into ``{"type": "resync"}``:
    every client gets a real resync (a snapshot follows), whatever its subscription."""
    hub = Hub(asyncio.get_running_loop())
    subs = [
        hub.subscribe(),
        hub.subscribe(subscription=Subscription(kinds=frozenset({"lot"}))),
        hub.subscribe(subscription=Subscription(kinds=frozenset())),
    ]
    hub.deliver([{"type": "resync", "reason": "a notice too large to relay"}])
    got = [await asyncio.wait_for(sub.get(), 30) for sub in subs]
    assert got == [RESYNC, RESYNC, RESYNC]
    assert all(sub.empty() for sub in subs)


def test_stream_subscription_scopes_box_notices_to_the_lots_boxes() -> None:
    """A lot page's subscription: its box's signs and alerts pass, another box's do not;
    zones and kinds it did not ask for never do; a malformed kind is refused by name."""
    sub = parse("lot,sign,alert_raised", "P1", {"P1": "box-p1", "P2": "box-p2"})
    assert sub.wants({"type": "sign", "sign_id": "S1", "box_id": "box-p1", "up": True})
    assert not sub.wants({"type": "sign", "sign_id": "S2", "box_id": "box-p2", "up": True})
    assert sub.wants({"type": "alert_raised", "box_id": "box-p1", "alert_id": "a"})
    assert not sub.wants({"type": "alert_raised", "box_id": "box-p2", "alert_id": "a"})
    assert not sub.wants({"type": "lot", "lot_id": "P2"})
    assert not sub.wants({"type": "bay", "bay_id": "P1-001", "lot_id": "P1"})
    assert parse("", None, {}).wants({"type": "lot", "lot_id": "P1"}) is False
    with pytest.raises(Invalid) as refused:
        parse("lot,Lot!", None, {})
    assert refused.value.field == "kinds" and "Lot!" in refused.value.detail


def test_stream_hub_after_its_loop_closed_drops_notices_without_raising() -> None:
    """At shutdown the ingest may still publish: the hub's closed loop is no error for the
    publishing thread, and the next window is not left waiting for a flush never armed."""
    loop = asyncio.new_event_loop()
    hub = Hub(loop, window_s=0.25)
    hub.subscribe()
    loop.close()
    hub.deliver([{"type": "lot", "lot_id": "P1", "free": 1}])
    hub.deliver([{"type": "lot", "lot_id": "P1", "free": 2}])
    assert not hub._pending and not hub._flush_due


class _CountedPlaces(frozenset[str]):
    """A town's ids that count how often the hub asks whether a notice is the town's."""

    asked = 0

    def __contains__(self, key: object) -> bool:
        _CountedPlaces.asked += 1
        return super().__contains__(key)


async def test_stream_hub_sorts_a_window_by_town_once_not_once_per_view() -> None:
    """A county's hub asked every screen's view whether each notice of the window was in
    its town: 300 screens x the county's notices each window, the largest share of the
    serving process's CPU at the county bench's 10x. It now sorts the window's notices by
    town once per town; each view reads only its own town's. Still: every screen gets its
    town's notices for its lots, none of another town's."""
    towns = {
        f"t{n}": _CountedPlaces({f"t{n}"} | {f"t{n}-P{k}" for k in range(10)}) for n in range(3)
    }
    hub = Hub(asyncio.get_running_loop())
    subs = {
        (town, k): hub.subscribe(
            subscription=Subscription(
                lots=frozenset({f"{town}-P{k}"}), boxes=frozenset(), places=places
            )
        )
        for town, places in towns.items()
        for k in range(10)
    }
    notices = [{"type": "lot", "lot_id": f"t{n}-P{k}", "free": n + k} for n in range(3)
               for k in range(10)]  # fmt: skip
    _CountedPlaces.asked = 0
    hub.deliver(notices)
    for (town, k), sub in subs.items():
        got = await asyncio.wait_for(sub.get(), 30)
        assert isinstance(got, bytes) and got.count(b"event: lot") == 1
        assert json.loads(got.split(b"data: ")[1])["lot_id"] == f"{town}-P{k}"
    # A notice naming one id is filed by the index of ids: no town is asked about it (30
    # views x 30 notices before the window was sorted once per town, 3 x 30 after that).
    assert _CountedPlaces.asked == 0, _CountedPlaces.asked


_TOWN_IDS = [f"t{n}" for n in range(3)] + [f"t{n}-P{k}" for n in range(3) for k in range(3)]
_IDS = st.sampled_from([*_TOWN_IDS, "elsewhere"])
_FIELDS = st.sampled_from(["lot_id", "zone_id", "bay_id", "box_id", "town"])


@given(
    notices=st.lists(st.dictionaries(_FIELDS, _IDS, max_size=3), max_size=20),
    towns=st.lists(st.sets(_IDS, min_size=1), min_size=1, max_size=4),
)
def test_stream_hub_by_town_files_each_frame_as_holds_all_would(
    notices: list[dict[str, str]], towns: list[set[str]]
) -> None:
    """The index sorting a window by town gives each town exactly the frames its
    ``Subscription.holds_all`` keeps, whatever ids a notice names (several, none, one of
    no town's) and however towns overlap."""
    loop = asyncio.new_event_loop()
    hub = Hub(loop)
    places = [frozenset(town) for town in towns]
    for town in places:
        hub.subscribe(subscription=Subscription(places=town))
    frames = [({"type": "lot", **n}, "lot", b"") for n in notices]
    got = _by_town(frames, hub._owners)
    loop.close()
    for town in places:
        holds = Subscription(places=town).holds_all
        expected = [f for f in frames if holds(place_ids(f[0]))]
        assert got.get(town, []) == expected
