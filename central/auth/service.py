"""Passwords (argon2), opaque bearer tokens (stored as sha256), and login throttling.

A token is 32 random bytes, URL-safe; the store keeps only its sha256, its role and its
expiry, so a leaked database does not leak working tokens. Tokens are checked on every
request through a small cache (a few seconds), so a revoked token stops working quickly.
Login attempts are counted per user name and per client address before the password is
checked (``central/auth/passwords.py``); after ``max_failures`` the next attempt is refused
until a back-off (doubling from ``login_backoff_s`` to 5 min) has passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Engine, bindparam, delete, select

from central import audit
from central.auth.models import USER_ROLES, Actor, Role
from central.auth.passwords import LoginThrottle, PasswordChecks
from central.db import schema as t
from central.db.engine import writer
from central.errors import Conflict, Invalid, NotFound, Unauthenticated

log = logging.getLogger(__name__)

CACHE_S = 5.0


def hash_password(password: str, passwords: PasswordChecks | None = None) -> str:
    """An argon2 hash; through ``passwords`` (the server's gate) when given."""
    return passwords.hash(password) if passwords is not None else PasswordHasher().hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(
    engine: Engine,
    *,
    username: str,
    password: str,
    role: Role,
    actor: str,
    replace: bool = False,
    passwords: PasswordChecks | None = None,
    town: str | None = None,
) -> int:
    """Create a user (or, with ``replace``, set an existing user's password, role and town).

    ``town``: the county's town the user belongs to; None: county-wide (every town).
    """
    if role not in USER_ROLES:
        raise Invalid(f"a user's role is one of {', '.join(USER_ROLES)}", field="role")
    if len(password) < 8:
        raise Invalid("a password has at least 8 characters", field="password")
    hashed = hash_password(password, passwords)
    with writer(engine).begin() as conn:
        existing = conn.execute(select(t.users.c.id).where(t.users.c.username == username)).scalar()
        if existing is not None:
            if not replace:
                raise Conflict(f"user {username!r} exists")
            conn.execute(
                t.users.update()
                .where(t.users.c.id == existing)
                .values(password_hash=hashed, role=role.value, disabled=False, town=town)
            )
            conn.execute(delete(t.tokens).where(t.tokens.c.user_id == existing))
            audit.record(
                conn,
                actor=actor,
                action="user.update",
                target=username,
                detail={"role": role.value, "town": town},
            )
            return int(existing)
        result = conn.execute(
            t.users.insert().values(
                username=username,
                password_hash=hashed,
                role=role.value,
                disabled=False,
                created_at=time.time(),
                town=town,
            )
        )
        audit.record(
            conn,
            actor=actor,
            action="user.add",
            target=username,
            detail={"role": role.value, "town": town},
        )
        return int(result.inserted_primary_key[0])


def update_user(
    engine: Engine,
    *,
    username: str,
    actor: str,
    disabled: bool | None = None,
    role: Role | None = None,
) -> list[str]:
    """Disable or enable a user, or change their role; returns the token hashes revoked.

    A role change or disabling revokes every token of the user (a token carries the role it
    was issued with). The last enabled admin can be neither disabled nor demoted: that
    would leave nobody to manage users.
    """
    if role is not None and role not in USER_ROLES:
        raise Invalid(f"a user's role is one of {', '.join(USER_ROLES)}", field="role")
    with writer(engine).begin() as conn:
        row = conn.execute(
            select(t.users.c.id, t.users.c.role, t.users.c.disabled).where(
                t.users.c.username == username
            )
        ).first()
        if row is None:
            raise NotFound("user", username)
        new_role = role.value if role is not None else row.role
        new_disabled = row.disabled if disabled is None else disabled
        if (
            row.role == Role.ADMIN.value
            and not row.disabled
            and (new_disabled or new_role != Role.ADMIN.value)
        ):
            others = conn.execute(
                select(t.users.c.id).where(
                    t.users.c.role == Role.ADMIN.value,
                    t.users.c.disabled.is_(False),
                    t.users.c.id != row.id,
                )
            ).first()
            if others is None:
                raise Conflict(f"user {username!r} is the last enabled admin")
        conn.execute(
            t.users.update()
            .where(t.users.c.id == row.id)
            .values(role=new_role, disabled=new_disabled)
        )
        revoked: list[str] = []
        if new_role != row.role or (new_disabled and not row.disabled):
            revoked = list(
                conn.execute(
                    select(t.tokens.c.token_hash).where(t.tokens.c.user_id == row.id)
                ).scalars()
            )
            conn.execute(delete(t.tokens).where(t.tokens.c.user_id == row.id))
        audit.record(
            conn,
            actor=actor,
            action="user.update",
            target=username,
            detail={"role": new_role, "disabled": new_disabled, "tokens_revoked": len(revoked)},
        )
    return revoked


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.users.c.id,
                t.users.c.username,
                t.users.c.role,
                t.users.c.disabled,
                t.users.c.created_at,
                t.users.c.town,
            ).order_by(t.users.c.username)
        )
        return [dict(r._mapping) for r in rows]


def issue_token(
    engine: Engine,
    *,
    name: str,
    role: Role,
    ttl_s: float,
    actor: str,
    user_id: int | None = None,
    town: str | None = None,
) -> tuple[str, float]:
    """A new bearer token; returns the token (shown once) and its expiry (epoch seconds).

    ``town``: the county's town it acts in (a login's: its user's); None: every town."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    expires = now + ttl_s
    with writer(engine).begin() as conn:
        conn.execute(
            t.tokens.insert().values(
                token_hash=token_hash(token),
                user_id=user_id,
                name=name,
                role=role.value,
                created_at=now,
                expires_at=expires,
                town=town,
            )
        )
        # Expired tokens are removed as new ones are issued: the table stays small.
        conn.execute(delete(t.tokens).where(t.tokens.c.expires_at < now))
        if user_id is None:
            audit.record(
                conn,
                actor=actor,
                action="token.issue",
                target=name,
                detail={"role": role.value, "expires_at": expires, "town": town},
            )
    return token, expires


def login_keys(username: str, client: str) -> list[str]:
    """What the back-off counts a login attempt against: the user name and the address."""
    return [f"user:{username.lower()}", f"ip:{client}"]


def login(
    engine: Engine,
    *,
    username: str,
    password: str,
    client: str,
    throttle: LoginThrottle,
    passwords: PasswordChecks,
    ttl_s: float,
) -> tuple[str, float, Role]:
    """A whole login from a thread: count the attempt, check the password, issue a token."""
    keys = login_keys(username, client)
    # Counted as a failure before the check, so concurrent guesses cannot race the back-off.
    throttle.reserve(keys)
    return check_login(
        engine,
        username=username,
        password=password,
        client=client,
        throttle=throttle,
        passwords=passwords,
        ttl_s=ttl_s,
    )


def check_login(
    engine: Engine,
    *,
    username: str,
    password: str,
    client: str,
    throttle: LoginThrottle,
    passwords: PasswordChecks,
    ttl_s: float,
) -> tuple[str, float, Role]:
    """After ``throttle.reserve``: the password check and the token, or Unauthenticated."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                t.users.c.id,
                t.users.c.password_hash,
                t.users.c.role,
                t.users.c.disabled,
                t.users.c.town,
            ).where(t.users.c.username == username)
        ).first()
    ok = passwords.verify(row.password_hash if row else None, password)
    if not ok or row is None or row.disabled:
        log.warning("login refused", extra={"user": username, "client": client})
        raise Unauthenticated("wrong user name or password")
    throttle.succeeded(login_keys(username, client))
    role = Role(row.role)
    token, expires = issue_token(
        engine,
        name=username,
        role=role,
        ttl_s=ttl_s,
        actor=f"user:{username}",
        user_id=row.id,
        town=row.town,
    )
    return token, expires, role


class TokenCache:
    """Token hash -> (actor, expires_at, cached_at): one store read per token per few s.

    ``clock`` (epoch seconds) is what expiry is judged by; tests move it to see a token
    expire without waiting out its lifetime. ``check_many`` reads many tokens in one query
    (the live streams' warden, ``central.stream.warden``) and refreshes their entries.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._entries: dict[str, tuple[Actor | None, float, float]] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def authenticate(self, engine: Engine, token: str) -> Actor:
        return self.by_digest(engine, token_hash(token))

    def by_digest(self, engine: Engine, digest: str) -> Actor:
        """The token's actor, or Unauthenticated (unknown, revoked, expired, user disabled)."""
        now = self.clock()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is None or now - hit[2] > CACHE_S:
            hit = self._read(engine, [digest], now)[digest]
        reason = _refusal(hit, now)
        if reason is not None:
            raise Unauthenticated(reason)
        return hit[0]  # type: ignore[return-value]

    def check_many(self, engine: Engine, digests: list[str]) -> dict[str, str]:
        """Read these tokens again, in one query; why each that is no longer good is not
        (unknown or revoked, expired, its user disabled)."""
        if not digests:
            return {}
        now = self.clock()
        entries = self._read(engine, digests, now)
        return {
            digest: reason
            for digest, entry in entries.items()
            if (reason := _refusal(entry, now)) is not None
        }

    def _read(
        self, engine: Engine, digests: list[str], now: float
    ) -> dict[str, tuple[Actor | None, float, float]]:
        with engine.connect() as conn:
            rows = conn.execute(_TOKENS_BY_HASH, {"digests": digests}).all()
        found: dict[str, tuple[Actor | None, float, float]] = dict.fromkeys(
            digests, (None, 0.0, now)
        )
        for row in rows:
            if row.disabled:
                continue
            actor = Actor(
                name=row.name,
                role=Role(row.role),
                user_id=row.user_id,
                token_hash=row.token_hash,
                town=row.town,
            )
            found[row.token_hash] = (actor, row.expires_at, now)
        with self._lock:
            if len(self._entries) + len(found) > 10_000:
                self._entries.clear()
            self._entries.update(found)
        return found

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)


def _refusal(entry: tuple[Actor | None, float, float], now: float) -> str | None:
    actor, expires, _ = entry
    if actor is None:
        return "unknown or revoked token"
    if expires <= now:
        return "token expired; log in again"
    return None


# A token with its user (a machine token has none).
_TOKENS_AND_USERS = t.tokens.outerjoin(t.users, t.users.c.id == t.tokens.c.user_id)
# Built once: every request whose token left the cache, and every stream check, runs it.
_TOKENS_BY_HASH = (
    select(
        t.tokens.c.token_hash,
        t.tokens.c.name,
        t.tokens.c.role,
        t.tokens.c.user_id,
        t.tokens.c.expires_at,
        t.tokens.c.town,
        t.users.c.disabled,
    )
    .select_from(_TOKENS_AND_USERS)
    .where(t.tokens.c.token_hash.in_(bindparam("digests", expanding=True)))
)


def revoke(engine: Engine, *, digest: str, actor: str) -> None:
    with writer(engine).begin() as conn:
        result = conn.execute(delete(t.tokens).where(t.tokens.c.token_hash == digest))
        if not result.rowcount:
            raise NotFound("token", digest[:8])
        audit.record(conn, actor=actor, action="token.revoke", target=digest[:8])


TOKEN_ID_LEN = 16  # hex digits of a token's sha256 that name it in the API


def list_tokens(engine: Engine, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every live token: an id from its hash (never the token), name, role, whose, times."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.tokens.c.token_hash,
                t.tokens.c.name,
                t.tokens.c.role,
                t.users.c.username,
                t.tokens.c.created_at,
                t.tokens.c.expires_at,
                t.tokens.c.town,
            )
            .select_from(_TOKENS_AND_USERS)
            .where(t.tokens.c.expires_at > now)
            .order_by(t.tokens.c.created_at)
        )
        return [
            {
                "id": r.token_hash[:TOKEN_ID_LEN],
                "name": r.name,
                "role": r.role,
                "user": r.username,
                "created_at": r.created_at,
                "expires_at": r.expires_at,
                "town": r.town,
            }
            for r in rows
        ]


def revoke_by_id(engine: Engine, *, token_id: str, actor: str) -> str:
    """Revoke the token whose hash starts with ``token_id``; its full hash (to forget)."""
    with engine.connect() as conn:
        digests = list(
            conn.execute(
                select(t.tokens.c.token_hash).where(t.tokens.c.token_hash.startswith(token_id))
            ).scalars()
        )
    if len(digests) != 1:
        raise NotFound("token", token_id)
    revoke(engine, digest=digests[0], actor=actor)
    return digests[0]


def iso(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)
