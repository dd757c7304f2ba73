"""The outbox's SQLite file: its schema, opening it, recovering it, reading its meta.

The file is WAL with ``synchronous=FULL``. A file that SQLite cannot read, or that fails
``PRAGMA quick_check``, is moved aside (with its ``-wal`` and ``-shm``) as
``outbox.sqlite.corrupt-<unix time>`` and a fresh file counts the recovery in
``meta.corrupt_recoveries``. Opening also brings the schema to its current version
(``outbox_line.migrate_up``: a fresh or recreated file gets a new seq line).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Final

from edge.outbox_line import migrate_up

log = logging.getLogger("edge.outbox")  # the outbox's log, as before the split

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        created REAL NOT NULL,
        boot_id TEXT NOT NULL,
        body BLOB NOT NULL,
        size INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS state (
        topic TEXT PRIMARY KEY,
        payload BLOB NOT NULL,
        size INTEGER NOT NULL,
        dirty INTEGER NOT NULL,
        updated REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS drops (
        first_seq INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        reported INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def connect(path: Path) -> sqlite3.Connection:
    """A writing connection to the outbox file, its tables made if missing."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for statement in SCHEMA:
        conn.execute(statement)
    migrate_up(conn)
    return conn


def open_or_recover(path: Path) -> sqlite3.Connection:
    """The outbox file opened as is, or, when it is corrupt, moved aside and made afresh."""
    try:
        conn = connect(path)
        problems = integrity_problems(conn, quick=True)
        if not problems:
            return conn
        conn.close()
        reason = "; ".join(problems[:3])
    except sqlite3.DatabaseError as exc:
        reason = str(exc)
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    log.error(
        "outbox %s is corrupt (%s): moved aside to %s, starting a fresh outbox; "
        "events it held are lost and its seq counter restarts",
        path,
        reason,
        aside,
    )
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    conn = connect(path)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('corrupt_recoveries', 1) "
        "ON CONFLICT(key) DO UPDATE SET value = value + 1"
    )
    return conn


def load_meta(conn: sqlite3.Connection) -> dict[str, int]:
    """The meta counters, with their defaults for a fresh (or older) file."""
    meta = {
        "last_seq": 0,
        "dropped_events_total": 0,
        "overflow_active": 0,
        "overflow_episodes": 0,
        "corrupt_recoveries": 0,
    }
    meta.update(conn.execute("SELECT key, value FROM meta").fetchall())
    if "acked_seq" not in meta:
        # A file from before the key: what it no longer holds was acked (or dropped).
        oldest = conn.execute("SELECT min(seq) FROM events").fetchone()[0]
        meta["acked_seq"] = meta["last_seq"] if oldest is None else int(oldest) - 1
    return meta


def integrity_problems(conn: sqlite3.Connection, *, quick: bool) -> list[str]:
    """The rows of ``PRAGMA quick_check`` / ``integrity_check`` other than ``ok``."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    return [] if rows == ["ok"] else rows
