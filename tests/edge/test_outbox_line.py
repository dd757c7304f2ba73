"""The outbox's seq line: its identity, renumbering above an older line, and the schema
migration that adds it, forward and back (an older release must still read the file)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path

from edge.outbox import Outbox
from edge.outbox_line import SCHEMA_VERSION, migrate_down, read_line
from firmware_protocols.uplink import Event, Topics, decode_message
from firmware_protocols.uplink.models import SensorFault, SensorFaultType

TS = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)

# The outbox file as the release before seq lines made it (user_version 0).
PREVIOUS_SCHEMA = (
    """CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, ts TEXT NOT NULL,
        created REAL NOT NULL, boot_id TEXT NOT NULL, body BLOB NOT NULL, size INTEGER NOT NULL)""",
    """CREATE TABLE state (topic TEXT PRIMARY KEY, payload BLOB NOT NULL, size INTEGER NOT NULL,
        dirty INTEGER NOT NULL, updated REAL NOT NULL)""",
    """CREATE TABLE drops (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL, reported INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def body(i: int) -> SensorFault:
    return SensorFault(sensor_id=f"S{i}", fault=SensorFaultType.SILENT)


def filled(path: Path, n: int) -> Outbox:
    box = Outbox(path)
    for i in range(n):
        box.append(body(i), TS)
    box.flush()
    return box


def previous_reads(path: Path) -> tuple[list[int], int]:
    """What the previous release reads at start: its events and meta.last_seq."""
    conn = sqlite3.connect(path)
    try:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
        last = conn.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()[0]
        return seqs, int(last)
    finally:
        conn.close()


def test_a_new_outbox_makes_its_line_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    """A random line id and first seq 1 with the file; the same after a reopen; a new
    file (a replaced SD card) is a new line."""
    box = filled(tmp_path / "a.sqlite", 2)
    line = box.line
    assert line.first == 1 and isinstance(line.id, uuid.UUID)
    box.close()
    again = Outbox(tmp_path / "a.sqlite")
    assert again.line == line
    again.close()
    (tmp_path / "a.sqlite").unlink()
    fresh = Outbox(tmp_path / "a.sqlite")
    assert fresh.line.id != line.id and fresh.line.first == 1
    fresh.close()


def test_a_corrupt_outbox_recreated_is_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = filled(path, 3)
    old = box.line.id
    box.close()
    path.write_bytes(b"not a database" * 100)
    fresh = Outbox(path)
    assert fresh.line.id != old and fresh.line.first == 1
    fresh.close()


def test_envelope_carries_the_line(tmp_path: Path) -> None:
    """The wire envelope names the line and its first seq and decodes as an Event."""
    box = filled(tmp_path / "o.sqlite", 1)
    [stored] = box.pending()
    data = stored.envelope("box-p1", historical=False, line=box.line)
    event = decode_message(Topics("xigang", "box-p1").event, data).payload
    assert isinstance(event, Event)
    assert (event.line, event.line_from, event.seq) == (box.line.id, 1, 1)
    legacy = stored.envelope("box-p1", historical=False)
    assert "line" not in json.loads(legacy)
    box.close()


def test_move_line_above_renumbers_and_deletes_nothing(tmp_path: Path) -> None:
    """An older line's watermark at or above this line's first seq: every event moves up
    so the line starts right above it, drop ranges too; nothing is deleted; the move is
    kept across a restart; a watermark below the line's first seq moves nothing."""
    path = tmp_path / "o.sqlite"
    box = filled(path, 5)
    assert box.move_line_above(3) == 3
    assert [e.seq for e in box.pending()] == [4, 5, 6, 7, 8]
    assert box.line.first == 4 and box.last_seq == 8 and box.depth() == 5
    assert box.move_line_above(3) == 0 and box.move_line_above(2) == 0
    assert box.move_line_above(4) == 1  # the old line's mark moved on: once more
    assert box.line.first == 5 and box.pending()[0].seq == 5
    assert box.append(body(9), TS) == 10
    box.close()
    again = Outbox(path)
    assert again.line.first == 5 and again.last_seq == 10
    again.close()


def test_advance_past_moves_the_line_start_too(tmp_path: Path) -> None:
    """The legacy renumbering (an ack without a line above the last seq) keeps the line's
    first seq true."""
    box = filled(tmp_path / "o.sqlite", 2)
    assert box.advance_past(10) == 10
    assert box.line.first == 11 and [e.seq for e in box.pending()] == [11, 12]
    box.close()


def test_migration_forward_from_the_previous_schema_and_back(tmp_path: Path) -> None:
    """A file of the previous release opens (events, counters kept, a line made); the
    migrated file still reads as the previous release reads it; migrated back it is the
    previous schema again, and forward once more it opens with its events."""
    path = tmp_path / "outbox.sqlite"
    conn = sqlite3.connect(path)
    for statement in PREVIOUS_SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO events VALUES (?, ?, ?, 0, ?, ?, ?)",
        [
            (s, str(uuid.uuid4()), '"2026-12-06T08:00:00Z"', str(uuid.UUID(int=1)), b"{}", 2)
            for s in (7, 8, 9)
        ],
    )
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("last_seq", 9), ("acked_seq", 6)])
    conn.commit()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()

    box = Outbox(path)
    assert [e.seq for e in box.pending()] == [7, 8, 9] and box.last_seq == 9
    assert box.acked_seq == 6 and box.line.first == 1
    line = box.line
    box.close()
    assert previous_reads(path) == ([7, 8, 9], 9)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert read_line(conn) == line
    migrate_down(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"events", "state", "drops", "meta"}
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    assert previous_reads(path) == ([7, 8, 9], 9)
    back = Outbox(path)
    assert [e.seq for e in back.pending()] == [7, 8, 9] and back.line.id != line.id
    back.close()
