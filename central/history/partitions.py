"""``events`` partitioned by month on PostgreSQL (declarative ``RANGE (ts)`` partitioning).

Each UTC month is a partition ``events_YYYY_MM``; ``events_default`` takes what no month
partition covers (a box's clock years off, a month not made yet). ``ensure_ahead`` makes
this month's and the next two months' partitions (at migration and every hour, by the
retention job); a month whose rows already sit in the default partition is made as a
table, filled from it and attached. Retention drops whole month partitions
(``drop_before``). PostgreSQL wants every unique key to hold the partition key, so the
events' primary key is ``(id, ts)`` and a repeat is the same ``(box_id, seq, ts)``: a resent
event carries its own time, and a seq held with another event id is refused before the
insert (``central.ingest.events``).

``convert`` turns an existing plain ``events`` table into the partitioned one (migration
0006): rows are copied month by month in the migration's transaction, so a store of a
town-year (4.5 million rows) needs the disk for a second copy and some minutes.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Connection, text

PARENT = "events"
DEFAULT = "events_default"
MONTHS_AHEAD = 2
_NAME = re.compile(r"^events_(\d{4})_(\d{2})$")


def partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": PARENT}
    ).scalar()
    return kind == "p"


def _month(ts: float) -> tuple[int, int]:
    day = dt.datetime.fromtimestamp(ts, dt.UTC)
    return day.year, day.month


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _bounds(year: int, month: int) -> tuple[float, float]:
    lo = dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()
    ny, nm = _next(year, month)
    return lo, dt.datetime(ny, nm, 1, tzinfo=dt.UTC).timestamp()


def months(conn: Connection) -> dict[tuple[int, int], str]:
    """The month partitions there are, by (year, month)."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": PARENT},
    ).scalars()
    out = {}
    for name in rows:
        m = _NAME.match(name)
        if m:
            out[(int(m.group(1)), int(m.group(2)))] = name
    return out


def ensure_month(conn: Connection, year: int, month: int) -> str:
    """Make the partition of ``year``-``month`` if missing (moving its rows out of the
    default partition); its name."""
    name = f"events_{year:04d}_{month:02d}"
    if (year, month) in months(conn):
        return name
    lo, hi = _bounds(year, month)
    held = conn.execute(
        text(f"SELECT 1 FROM {DEFAULT} WHERE ts >= :lo AND ts < :hi LIMIT 1"),
        {"lo": lo, "hi": hi},
    ).first()
    if held is None:
        conn.execute(
            text(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM ({lo}) TO ({hi})")
        )
        return name
    conn.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    conn.execute(
        text(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE ts >= :lo AND ts < :hi RETURNING *) "
             f"INSERT INTO {name} SELECT * FROM moved"),
        {"lo": lo, "hi": hi},
    )  # fmt: skip
    conn.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})")
    )
    return name


def ensure_ahead(conn: Connection, now: float, ahead: int = MONTHS_AHEAD) -> None:
    year, month = _month(now)
    for _ in range(ahead + 1):
        ensure_month(conn, year, month)
        year, month = _next(year, month)


def drop_before(conn: Connection, before: float) -> int:
    """Drop every month partition that ends at or before ``before``; the rows they held."""
    dropped = 0
    for (year, month), name in sorted(months(conn).items()):
        _, hi = _bounds(year, month)
        if hi <= before:
            dropped += int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() or 0)
            conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {name}"))
            conn.execute(text(f"DROP TABLE {name}"))
    return dropped


_INDEXES = (
    ("ix_events_lot_ts", "lot_id, ts"),
    ("ix_events_bay_ts", "bay_id, ts"),
    ("ix_events_kind_ts", "kind, ts"),
)


def _remake(conn: Connection, old: str, *, keys: str, partition_by: str = "") -> None:
    """Rename ``events`` to ``old`` (its constraints and indexes out of the way) and make a
    new empty ``events`` like it with ``keys`` (and ``partition_by``), owning the id sequence."""
    conn.execute(text(f"ALTER TABLE {PARENT} RENAME TO {old}"))
    conn.execute(text(f"ALTER TABLE {old} RENAME CONSTRAINT pk_events TO pk_{old}"))
    conn.execute(text(f"ALTER TABLE {old} RENAME CONSTRAINT uq_events_box_seq TO uq_{old}"))
    for index, _ in _INDEXES:
        conn.execute(text(f"ALTER INDEX {index} RENAME TO {index}_{old}"))
    conn.execute(text("ALTER SEQUENCE events_id_seq OWNED BY NONE"))
    conn.execute(
        text(f"CREATE TABLE {PARENT} (LIKE {old} INCLUDING DEFAULTS, {keys}) {partition_by}")
    )
    conn.execute(text("ALTER SEQUENCE events_id_seq OWNED BY events.id"))
    for index, columns in _INDEXES:
        conn.execute(text(f"CREATE INDEX {index} ON {PARENT} ({columns})"))


def convert(conn: Connection, now: float) -> None:
    """Make a plain ``events`` table the partitioned one, rows and ids kept."""
    old = "events_unpartitioned"
    _remake(
        conn, old,
        keys="CONSTRAINT pk_events PRIMARY KEY (id, ts), "
        "CONSTRAINT uq_events_box_seq UNIQUE (box_id, seq, ts)",
        partition_by="PARTITION BY RANGE (ts)",
    )  # fmt: skip
    conn.execute(text(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT"))
    # A partition for each month that holds rows, back to ten years; older (a box's clock
    # far off) stays in the default partition.
    held = conn.execute(
        text(f"SELECT DISTINCT floor(ts / 86400) FROM {old} WHERE ts >= :since"),
        {"since": now - 10 * 366 * 86400},
    ).scalars()
    for month in sorted({_month(float(day) * 86400) for day in held}):
        ensure_month(conn, *month)
    ensure_ahead(conn, now)
    conn.execute(text(f"INSERT INTO {PARENT} SELECT * FROM {old}"))
    conn.execute(text(f"DROP TABLE {old}"))


def repeated_seqs(conn: Connection, limit: int = 5) -> list[tuple[str, int, int]]:
    """(box_id, seq, rows) held by more than one event: what a ``(box_id, seq)`` key
    cannot hold."""
    rows = conn.execute(
        text(f"SELECT box_id, seq, count(*) FROM {PARENT} GROUP BY box_id, seq "
             "HAVING count(*) > 1 ORDER BY box_id, seq LIMIT :n"),
        {"n": limit},
    )  # fmt: skip
    return [(str(box), int(seq), int(n)) for box, seq, n in rows]


def unconvert(conn: Connection) -> None:
    """Make the partitioned ``events`` a plain table again (migration 0006 backwards), rows
    and ids kept, unique on ``(box_id, seq)`` as before it."""
    old = "events_partitioned"
    _remake(
        conn, old,
        keys="CONSTRAINT pk_events PRIMARY KEY (id), "
        "CONSTRAINT uq_events_box_seq UNIQUE (box_id, seq)",
    )  # fmt: skip
    conn.execute(text(f"INSERT INTO {PARENT} SELECT * FROM {old}"))
    conn.execute(text(f"DROP TABLE {old}"))  # its month partitions with it
