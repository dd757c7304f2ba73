"""Migration 0009 (users' and tokens' town) both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select

from central.auth.models import Role
from central.auth.service import add_user, issue_token
from central.db import schema as t
from central.db.engine import make_engine, writer
from central.db.migrate import _config, current, differences, upgrade


def _downgrade(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    config = _config()
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _columns(engine, table: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_town_scope_migrates_up_and_down_keeping_users(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        head = current(engine)  # 0009 or a later one
        assert head is not None and head >= "0009" and differences(engine) == []
        add_user(engine, username="ann", password="secret-pw-1", role=Role.VIEWER, actor="t",
                 town="north")  # fmt: skip
        issue_token(engine, name="cam", role=Role.CAMERA, ttl_s=60, actor="t", town="north")
        _downgrade(engine, "0007")
        assert current(engine) == "0007"
        assert "town" not in _columns(engine, "users") | _columns(engine, "tokens")
        upgrade(engine)
        assert current(engine) == head and differences(engine) == []
        with engine.connect() as conn:
            rows = conn.execute(select(t.users.c.username, t.users.c.town)).all()
        assert [tuple(r) for r in rows] == [("ann", None)]  # kept; its town gone with the column
    finally:
        engine.dispose()
