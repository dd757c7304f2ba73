"""The engine, and the only place where SQLite and PostgreSQL differ.

Everything else in central builds portable SQLAlchemy Core statements. What differs lives
here: connection set-up (SQLite: WAL, ``synchronous=FULL`` because an event acknowledged to
a box must survive a power cut, a busy timeout so several ingest processes can share one
file; PostgreSQL: no JIT) and the statements standard SQL has no single spelling for:
insert-or-ignore and upsert (both ``INSERT ... ON CONFLICT`` here, built by each dialect's
own ``insert``), an increment, and a subquery run per row of another (``per_row``).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, FromClause, Select, Table, create_engine, event, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.dml import Insert

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "parkgrid_write"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class DatabaseDriverMissing(RuntimeError):
    """PostgreSQL asked of an install without its driver (a box's runtime lock)."""


def require_driver(url: str) -> None:
    """Raise ``DatabaseDriverMissing``, saying which lock to install, where ``url`` is
    PostgreSQL's and psycopg is not installed (it comes with requirements-central.lock)."""
    if make_url(normalise_url(url)).get_backend_name() != "postgresql":
        return
    if importlib.util.find_spec("psycopg") is None:
        raise DatabaseDriverMissing(
            "a PostgreSQL database needs psycopg, which this install does not have: install "
            'requirements-central.lock (deploy/README.md, "Central\'s hosts"), not the '
            "box's requirements.lock"
        )


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url`` (sqlite:///... or postgresql+psycopg://...)."""
    require_driver(url)
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        # pysqlite's own BEGIN handling defers locking; BEGIN IMMEDIATE takes the write lock
        # up front so two writers wait on the busy timeout instead of failing mid-batch.
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=16, pool_pre_ping=True)
    event.listen(engine, "connect", _postgresql_on_connect)
    return engine


def _postgresql_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Central's statements are short; PostgreSQL's JIT compiled the history's per-window
    # plan (its row estimates run high) for 3 s of a 3.1 s query: 54 ms without it.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine (same pool) for write transactions: SQLite takes the lock at BEGIN."""
    return engine.execution_options(**{WRITE_OPTION: True})


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _dialect_insert(engine_or_dialect: Engine | str, table: Table) -> Any:
    name = (
        engine_or_dialect if isinstance(engine_or_dialect, str) else engine_or_dialect.dialect.name
    )
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"central supports sqlite and postgresql, not {name}")


def insert_ignore(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``."""
    return _insert_ignore(dialect, table, tuple(keys))


def upsert(dialect: str, table: Table, keys: Sequence[str], update: Iterable[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET col = excluded.col`` for ``update``."""
    return _upsert(dialect, table, tuple(keys), tuple(update))


def upsert_add(dialect: str, table: Table, keys: Sequence[str], add: Iterable[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET col = table.col + excluded.col``: a
    counter row incremented in one statement, whoever inserted it first."""
    return _upsert_add(dialect, table, tuple(keys), tuple(add))


# The ingest writer runs these for every batch: built once per (table, columns), not per
# batch. SQLAlchemy caches the compiled SQL by a cache key, but building the construct and
# its key again each time is Python work per statement (py-spy on the county bench's
# writers: about a fifth of their samples built statements). Statements are immutable, so
# one is safely shared.
@functools.lru_cache(maxsize=256)
def _insert_ignore(dialect: str, table: Table, keys: tuple[str, ...]) -> Insert:
    stmt = _dialect_insert(dialect, table)
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


@functools.lru_cache(maxsize=256)
def _upsert(dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...]) -> Insert:
    stmt = _dialect_insert(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
    )


@functools.lru_cache(maxsize=256)
def _upsert_add(dialect: str, table: Table, keys: tuple[str, ...], add: tuple[str, ...]) -> Insert:
    stmt = _dialect_insert(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in add},
    )


def per_row(dialect: str, outer: FromClause, inner: Select[Any]) -> Select[Any]:
    """The rows of ``inner`` (whose WHERE names ``outer``'s columns) for each row of
    ``outer``, each found through ``inner``'s index. PostgreSQL: ``CROSS JOIN LATERAL
    (inner OFFSET 0)``; without the offset its planner flattens the subquery and scans
    inner's table once against every outer row (three ts windows over a year of events:
    1.4 s, against index scans per window). SQLite's planner already loops over the small
    side: ``inner`` as it is, ``outer`` in its FROM."""
    if dialect == "postgresql":
        sub = inner.offset(0).lateral("each")
        return select(*sub.c).select_from(outer).join(sub, true())
    return inner


class BulkInsert:
    """An INSERT compiled once and run with the driver's ``executemany``.

    SQLAlchemy processes every row's parameters in Python (about 7 us a row); for the
    event insert, the hottest statement in central, the driver takes plain rows instead.
    Only for columns whose Python values the driver takes as they are (str, int, float,
    bool, bytes, None).
    """

    def __init__(self, engine: Engine, stmt: Insert) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positional = compiled.positional
        self.names: tuple[str, ...] = tuple(compiled.positiontup or compiled.params)

    def execute(self, conn: Any, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.positional:
            names = self.names
            params: Any = [tuple(row[name] for name in names) for row in rows]
        else:
            params = rows
        conn.exec_driver_sql(self.sql, params)
