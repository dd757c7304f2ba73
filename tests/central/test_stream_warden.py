"""The live streams' warden: the tokens of every open stream in one query, and the streams
of each refused token ended with the refusal (``central.stream.warden``).

The end-to-end case (a served stream ends at logout, expiry and a disabled user) is
``tests/security/test_hostile_stream.py``; here the round itself, on both engines.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine, event, update

from central.auth.models import Role
from central.auth.service import TokenCache, add_user, issue_token, revoke, token_hash
from central.db import schema as t
from central.stream.hub import Ended, Hub
from central.stream.warden import check_streams


def _token(engine: Engine, name: str, *, ttl_s: float = 3600, user: str | None = None) -> str:
    user_id = None
    if user is not None:
        user_id = add_user(engine, username=user, password="pw-" * 6, role=Role.VIEWER, actor="t")
    token, _ = issue_token(
        engine, name=name, role=Role.VIEWER, ttl_s=ttl_s, actor="t", user_id=user_id
    )
    return token


def _selects(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    return seen


def test_check_many_reads_every_token_in_one_query_and_says_why(engine: Engine) -> None:
    good = token_hash(_token(engine, "good"))
    revoked = token_hash(_token(engine, "revoked"))
    disabled = token_hash(_token(engine, "disabled", user="dora"))
    expired = token_hash(_token(engine, "expired", ttl_s=0.01))  # last: issuing clears expired
    unknown = token_hash("never issued")
    revoke(engine, digest=revoked, actor="t")
    with engine.begin() as conn:
        conn.execute(update(t.users).where(t.users.c.username == "dora").values(disabled=True))
    time.sleep(0.02)
    cache = TokenCache()
    selects = _selects(engine)

    refused = cache.check_many(engine, [good, revoked, expired, disabled, unknown])

    assert len(selects) == 1, selects
    assert refused == {
        revoked: "unknown or revoked token",
        expired: "token expired; log in again",
        disabled: "unknown or revoked token",
        unknown: "unknown or revoked token",
    }
    # The round refreshed the cache: a request with the good token reads nothing more.
    assert cache.by_digest(engine, good).name == "good"
    assert len(selects) == 1, selects


async def test_a_round_ends_the_streams_of_refused_tokens_only(engine: Engine) -> None:
    hub = Hub(asyncio.get_running_loop())
    good, bad = _token(engine, "good"), _token(engine, "bad")
    kept = [hub.subscribe(token_hash=token_hash(good)) for _ in range(2)]
    ended = [hub.subscribe(token_hash=token_hash(bad)) for _ in range(3)]
    assert hub.token_hashes() == sorted({token_hash(good), token_hash(bad)})
    revoke(engine, digest=token_hash(bad), actor="t")

    assert check_streams(hub, TokenCache(), engine) == 1
    await asyncio.sleep(0)  # end_token runs on the loop

    for sub in ended:
        item = sub.get_nowait()
        assert isinstance(item, Ended) and item.reason == "unknown or revoked token"
    assert all(sub.empty() and not sub.ended for sub in kept)
    # The ended streams' token is not asked about again.
    assert hub.token_hashes() == [token_hash(good)]


def test_a_round_with_no_streams_reads_nothing(engine: Engine) -> None:
    hub = Hub(asyncio.new_event_loop())
    selects = _selects(engine)
    assert check_streams(hub, TokenCache(), engine) == 0
    assert selects == []
