"""Issue 14 item 6: the live stream ends with its authority and says every time it lost notices.

A real uvicorn server in a thread (API only), real SSE clients over HTTP reading in their
own threads, and notices published into the app's hub as the ingest would. Checked:
logout, expiry and a disabled user each end an open stream (an ``end`` event, then the
connection closes) and no notice reaches it afterwards; a viewer never receives the
``quarantine`` notices the API shows only to operators; a subscriber that overflows twice
gets two ``resync`` events.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.db import schema as t
from central.settings import CentralSettings
from central.stream.hub import Hub
from simulators.broker import free_port
from tests.central.helpers import SITE_FILE, wait_for
from tests.faults.rig import record

PASSWORD = "stream-test-password"


@dataclass
class Reader:
    """One SSE client in a thread: the events it got, in order, and whether it ended."""

    url: str
    token: str
    query: str = ""  # the subscription, "?kinds=...&lots=..."
    events: list[tuple[str, Any]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    status: int | None = None

    def start(self) -> Reader:
        threading.Thread(target=self._run, daemon=True).start()
        wait_for(lambda: self.kinds()[:1] == ["hello"], timeout=30, what="the stream's hello")
        return self

    def _run(self) -> None:
        try:
            with httpx.stream(
                "GET",
                f"{self.url}/api/v1/stream{self.query}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(60, read=120),
            ) as response:
                self.status = response.status_code
                kind = None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        self.events.append((kind, json.loads(line[6:])))
                        kind = None
        except httpx.HTTPError:
            pass
        finally:
            self.closed.set()

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


@dataclass
class Served:
    url: str
    app: Any

    @property
    def central(self) -> Any:
        return self.app.state.central

    def token(self, user: str) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/login", data={"username": user, "password": PASSWORD}
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def publish(self, *notices: dict[str, Any]) -> None:
        self.central.hub.publish(list(notices))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("stream")
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{work / 'central.db'}",
        ingest=False,
        pictures_dir=work / "pictures",
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                       timeout_graceful_shutdown=1)
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="uvicorn to start")
    running = Served(url=f"http://127.0.0.1:{port}", app=app)
    for name, role in (
        ("vic", Role.VIEWER),
        ("olga", Role.OPERATOR),
        ("dis", Role.VIEWER),
        ("ada", Role.ADMIN),
        ("demo", Role.OPERATOR),
    ):
        add_user(running.central.engine, username=name, password=PASSWORD, role=role, actor="t")
    yield running
    server.should_exit = True
    thread.join(10)


def _bay(n: int) -> dict[str, Any]:
    return {"type": "bay", "bay_id": f"P1-{n:03d}", "state": "occupied"}


def _ended(reader: Reader, what: str) -> None:
    """The stream said ``end`` and closed: within a generous deadline (re-checks are 5 s)."""
    assert reader.closed.wait(30), f"the stream stayed open after {what}: {reader.kinds()}"
    assert reader.kinds()[-1] == "end", reader.kinds()


def test_hostile_stream_ends_at_logout_expiry_and_disable(served: Served) -> None:
    central = served.central
    # Logout: the notice published after it never arrives; the stream ends.
    token = served.token("vic")
    reader = Reader(served.url, token).start()
    served.publish(_bay(1))
    wait_for(lambda: "bay" in reader.kinds(), what="a notice before logout")
    assert (
        httpx.post(
            f"{served.url}/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 204
    )
    served.publish(_bay(2))
    _ended(reader, "logout")
    assert [e["bay_id"] for k, e in reader.events if k == "bay"] == ["P1-001"]

    # Expiry, by the app's token clock.
    reader = Reader(served.url, served.token("vic")).start()
    real = central.tokens.clock
    try:
        central.tokens.clock = lambda: real() + central.settings.token_ttl_s + 1
        _ended(reader, "the token expired")
    finally:
        central.tokens.clock = real
    assert "expired" in reader.events[-1][1]["reason"]

    # A disabled user (as an admin's change to the users table leaves it).
    reader = Reader(served.url, served.token("dis")).start()
    with central.engine.begin() as conn:
        conn.execute(update(t.users).where(t.users.c.username == "dis").values(disabled=True))
    _ended(reader, "the user was disabled")
    served.publish(_bay(3))
    assert "bay" not in reader.kinds()
    record(
        "hostile",
        "live stream after its authority ended",
        {
            "attack": "keep an open /api/v1/stream after logout, token expiry, a disabled user",
            "tried": 3,
            "refused": 3,
            "notes": "each stream got an 'end' event and was closed; no notice after logout",
        },
    )


def test_hostile_stream_quarantine_notices_only_to_operators(served: Served) -> None:
    viewer = Reader(served.url, served.token("vic")).start()
    operator = Reader(served.url, served.token("olga")).start()
    served.publish(
        {"type": "quarantine", "topic": "parkgrid/x/box-p1/evt", "reason": "bad payload"},
        _bay(9),
    )
    for reader in (viewer, operator):
        wait_for(lambda r=reader: "bay" in r.kinds(), what="the bay notice")  # type: ignore[misc]
    assert "quarantine" not in viewer.kinds(), viewer.kinds()
    assert operator.kinds()[1:] == ["quarantine", "bay"], operator.kinds()
    record(
        "hostile",
        "quarantine notices to a viewer",
        {
            "attack": "a viewer's stream listens for quarantine notices (operator-only in the API)",
            "tried": 1,
            "refused": 1,
            "notes": "the viewer got the bay notice and not the quarantine one; the operator both",
        },
    )


async def test_hostile_stream_every_overflow_gets_a_resync() -> None:
    """Two overflows of one slow subscriber, each followed by a resync it can read."""
    hub = Hub(asyncio.get_running_loop(), queue_size=10)
    sub = hub.subscribe()
    got: list[bytes] = []
    for burst in range(2):
        hub.publish([_bay(n) for n in range(25)])
        await asyncio.sleep(0)  # the loop delivers (call_soon_threadsafe)
        while not sub.empty():
            got.append(sub.get_nowait())  # type: ignore[arg-type]
        assert sum(b"event: resync" in f for f in got) == burst + 1, got
    assert sub.dropped > 0
    record(
        "hostile",
        "slow stream client overflowed twice",
        {
            "attack": "a stream client that stops reading while two bursts overflow its queue",
            "tried": 2,
            "refused": 2,
            "notes": f"a resync after each overflow ({sub.dropped} notices dropped in all)",
        },
    )


def test_hostile_stream_open_streams_capped_per_token(served: Served) -> None:
    """One token cannot hold more than ``stream_max_per_token`` streams (each holds a queue)."""
    cap = served.central.settings.stream_max_per_token
    token = served.token("vic")
    headers = {"Authorization": f"Bearer {token}"}
    client = httpx.Client(base_url=served.url, timeout=httpx.Timeout(30, read=120))
    opened = []
    try:
        for _ in range(cap):
            response = client.send(
                client.build_request("GET", "/api/v1/stream", headers=headers), stream=True
            )
            assert response.status_code == 200
            opened.append(response)
        over = client.get("/api/v1/stream", headers=headers)
        assert over.status_code == 429, over.text
        assert "streams" in over.json()["detail"]
        # Another user's stream is not held back by this token's.
        other = Reader(served.url, served.token("olga")).start()
        assert other.status == 200
        opened.pop().close()
        wait_for(
            lambda: (
                served.central.hub.open_for(
                    served.central.tokens.authenticate(served.central.engine, token).token_hash
                )
                < cap
            ),
            timeout=30,
            what="the closed stream to be let go",
        )
        again = client.send(
            client.build_request("GET", "/api/v1/stream", headers=headers), stream=True
        )
        assert again.status_code == 200
        opened.append(again)
    finally:
        for response in opened:
            response.close()
        client.close()
    record(
        "hostile",
        "many streams on one token",
        {
            "attack": f"open streams with one viewer token until refused ({cap + 1} tried)",
            "tried": 1,
            "refused": 1,
            "notes": f"the stream over {cap} got 429; another user's stream opened meanwhile; "
            "a closed stream frees its place",
        },
    )


def test_hostile_admin_disables_a_user_and_their_sessions_end(served: Served) -> None:
    """PATCH /api/v1/users/{name}: disabling a user or changing their role ends their tokens
    and open streams at once; the last enabled admin cannot be disabled or demoted."""
    admin = {"Authorization": f"Bearer {served.token('ada')}"}
    users = f"{served.url}/api/v1/users"
    token = served.token("demo")
    reader = Reader(served.url, token).start()
    # Another operator may not do it.
    olga = {"Authorization": f"Bearer {served.token('olga')}"}
    assert httpx.patch(f"{users}/demo", json={"role": "viewer"}, headers=olga).status_code == 403
    # A demotion ends the operator's sessions: their tokens carried the old role.
    answer = httpx.patch(f"{users}/demo", json={"role": "viewer"}, headers=admin)
    assert answer.status_code == 200 and answer.json()["role"] == "viewer", answer.text
    _ended(reader, "a role change")
    me = httpx.get(f"{served.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    # Disabled: no login any more, and a new session's stream ends at once.
    token = served.token("demo")
    reader = Reader(served.url, token).start()
    answer = httpx.patch(f"{users}/demo", json={"disabled": True}, headers=admin)
    assert answer.status_code == 200 and answer.json()["disabled"] is True
    _ended(reader, "the user was disabled")
    assert (
        httpx.post(
            f"{served.url}/api/v1/auth/login", data={"username": "demo", "password": PASSWORD}
        ).status_code
        == 401
    )
    # The last enabled admin stays one (an admin cannot lock the town out by mistake).
    for change in ({"disabled": True}, {"role": "operator"}):
        refused = httpx.patch(f"{users}/ada", json=change, headers=admin)
        assert refused.status_code == 409 and "last" in refused.json()["detail"], refused.text
    assert httpx.patch(f"{users}/nobody", json={"disabled": True}, headers=admin).status_code == 404
    record(
        "hostile",
        "sessions of a demoted or disabled user",
        {
            "attack": "keep using an operator's token and stream after an admin demotes, then "
            "disables the user; an operator changes a user; disable the last admin",
            "tried": 5,
            "refused": 5,
            "notes": "demotion and disabling each ended the open stream ('end') and the token "
            "(401); operator 403; the last enabled admin 409 (disable and demote)",
        },
    )


ODD_SUBSCRIPTIONS = [
    # (query, status): thousands of lots, too many items, junk in lots and kinds
    ("lots=" + ",".join(f"L{i}" for i in range(5000)), 422),
    ("lots=" + ",".join(["P1"] * 201), 422),
    ("kinds=" + ",".join(["bay"] * 201), 422),
    ("lots=" + ",".join(["P1"] * 200), 200),
    ("lots=%00", 422),
    ("lots=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 422),
    ("lots=P1%00", 422),
    ("kinds=BAY", 422),
    ("kinds=%E2%80%AEyab", 422),
    ("kinds=bay%00", 422),
    ("kinds=" + "a" * 4001, 422),
    ("lots=", 200),
    ("kinds=,,,,", 200),
    ("lots=P1&lots=NOPE", 422),
]


def test_hostile_stream_odd_subscriptions_are_refused_or_served(served: Served) -> None:
    """Subscriptions an attacker or a broken page might ask for: each is refused (422,
    saying what) or served, never a server error; a viewer asking for quarantine notices
    by name gets none of them."""
    token = served.token("vic")
    got = []
    for query, _ in ODD_SUBSCRIPTIONS:
        with httpx.stream(
            "GET",
            f"{served.url}/api/v1/stream?{query}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as r:
            got.append((query[:40], r.status_code))
            if r.status_code == 422:
                assert json.loads(r.read())["detail"], query[:40]
    assert [s for _, s in got] == [s for _, s in ODD_SUBSCRIPTIONS], got
    sneaky = Reader(served.url, token, query="?kinds=quarantine,bay").start()
    served.publish({"type": "quarantine", "topic": "parkgrid/x/box-p1/evt", "reason": "x"})
    served.publish(_bay(11))
    wait_for(lambda: "bay" in sneaky.kinds(), what="the bay notice")
    assert "quarantine" not in sneaky.kinds(), sneaky.kinds()
    record(
        "hostile",
        "odd stream subscriptions",
        {
            "attack": "?lots= with 5,000 ids, 201 ids, NUL, markup; ?kinds= with upper case, "
            "RTL override, NUL, 4,001 characters; an empty list; a second lots; a viewer "
            "asking for quarantine notices by name",
            "tried": len(ODD_SUBSCRIPTIONS) + 1,
            "refused": len(ODD_SUBSCRIPTIONS) + 1,
            "notes": "422 saying what, or served as asked; no 5xx; the viewer's named "
            "quarantine kind delivered nothing",
        },
    )
