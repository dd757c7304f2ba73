"""The outbox's seq line: which numbering its seqs belong to, and the schema step adding it.

A line is one outbox file's numbering: a random id made when the file is created (a new or
recreated file, a replaced SD card: a new line) and ``first``, the lowest seq the line may
hold (1, until the box renumbers its events above an older line's watermark). Events and
births carry both; central names the line its watermark counts in every ack, so a box can
tell an ack for its own events from one for a line it never had (docs/edge-uplink.md).

Schema versions (``PRAGMA user_version``): 0 is the file before lines; 1 adds the one-row
``seq_line`` table and nothing else, so a release that knows only version 0 still reads
and writes a version 1 file (it never looks at the new table). ``migrate_up`` runs on every
open; ``migrate_down`` takes a file back to version 0 (the next ``migrate_up`` then makes
a new line: the numbering it continues is the one the older release used, which central
knows as a legacy line).
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Final

SCHEMA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class SeqLine:
    """The identity of an outbox's numbering: its id and its first seq."""

    id: uuid.UUID
    first: int

    def fields(self) -> dict[str, object]:
        """The line as the wire documents name it (``line``, ``line_from``)."""
        return {"line": self.id, "line_from": self.first}

    def envelope_tail(self) -> bytes:
        """The line's fields as the ``Event`` JSON ends with them (see ``StoredEvent``)."""
        return b',"line":"%s","line_from":%d' % (str(self.id).encode(), self.first)


def migrate_up(conn: sqlite3.Connection) -> None:
    """Bring an open outbox file to ``SCHEMA_VERSION`` (a no-op when it is there)."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS seq_line ("
            "one INTEGER PRIMARY KEY CHECK (one = 1), id TEXT NOT NULL, first INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT OR IGNORE INTO seq_line (one, id, first) VALUES (1, ?, 1)",
            (str(uuid.uuid4()),),
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def migrate_down(conn: sqlite3.Connection) -> None:
    """Take an outbox file back to version 0, the schema before seq lines."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DROP TABLE IF EXISTS seq_line")
        conn.execute("PRAGMA user_version = 0")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def read_line(conn: sqlite3.Connection) -> SeqLine:
    """The file's line (after ``migrate_up``)."""
    row = conn.execute("SELECT id, first FROM seq_line WHERE one = 1").fetchone()
    return SeqLine(id=uuid.UUID(row[0]), first=int(row[1]))


def shift_line(conn: sqlite3.Connection, offset: int) -> None:
    """In the caller's transaction: every event, drop range and the line's first seq up by
    ``offset``. Through the negatives: a new seq may equal an old one not yet moved, and
    SQLite checks the key row by row."""
    conn.execute("UPDATE events SET seq = -seq")
    conn.execute("UPDATE events SET seq = ? - seq", (offset,))
    conn.execute("UPDATE drops SET first_seq = -first_seq")
    conn.execute(
        "UPDATE drops SET first_seq = ? - first_seq, last_seq = last_seq + ?", (offset, offset)
    )
    conn.execute("UPDATE seq_line SET first = first + ? WHERE one = 1", (offset,))
