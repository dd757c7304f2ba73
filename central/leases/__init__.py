"""Jobs that must run once among several central processes hold a lease.

Theory of operation
-------------------
On PostgreSQL a lease is a session advisory lock (``pg_try_advisory_lock``) taken on one
connection each process keeps for its leases (``Leases``). The server frees a session's
locks when the session ends, and a process killed with SIGKILL ends it at once: the
kernel closes its socket and the backend reading it sees the end. Every process's keeper
tries to take the leases it does not hold every ``retry_s`` (2 s), so a survivor takes a
dead holder's jobs within that. A keeper checks its connection on the same beat; when it
is gone, the process holds nothing until it takes the leases again. Start-up (migrations,
the site sync) takes ``exclusive``, a blocking lock: processes started together do it one
after another instead of racing on the same rows. On SQLite central runs one process, and
it holds every lease.

Keys are 64-bit hashes of ``schema:name`` (``lease_key``), so two deployments, or two
tests, in schemas of one database never hold each other's leases. ::

    process A  leases conn --pg_try_advisory_lock(k)--> granted: runs the job
    process B  leases conn --pg_try_advisory_lock(k)--> refused; retries every 2 s
    A killed -9 --> its session ends, k is free --> B's next try is granted
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

SITE_SYNC = "site-sync"  # start-up: migrate, load the site file (blocking, in turn)
CASES_SWEEP = "cases-sweep"  # case escalation, tow orders, cases for missed alerts
ACKS_REPUBLISH = "acks-republish"  # every stored watermark again after a (re)connect
HISTORY_RETENTION = "history-retention"  # events' month partitions ahead, raw events' cut
DROPS_WATCH = "drops-watch"  # alerts for the broker's drops and lasting seq gaps
FLEET = "fleet"  # staged rollouts' engine, pushes again to boxes back online (central/fleet)
JOBS = (CASES_SWEEP, ACKS_REPUBLISH, HISTORY_RETENTION, DROPS_WATCH, FLEET)


def lease_key(name: str) -> int:
    """The advisory lock key of ``name`` (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"parkgrid:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _scope(conn: Connection) -> str:
    return str(conn.execute(text("SELECT current_schema()")).scalar())


@contextmanager
def exclusive(engine: Engine, name: str = SITE_SYNC) -> Iterator[None]:
    """Wait until no other process holds ``name``, hold it for the block (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        key = lease_key(f"{_scope(conn)}:{name}")
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


class Leases:
    """The leases of one process: which it holds, kept and retried by a thread.

    ``on_gain(name)`` runs (in the keeper's thread) each time a lease is taken, so a job
    can catch up on what its previous holder may have left half done.
    """

    def __init__(
        self,
        engine: Engine,
        names: Iterable[str] = JOBS,
        *,
        instance: str = "central",
        retry_s: float = 2.0,
        on_gain: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.names = tuple(names)
        self.instance = instance
        self.retry_s = retry_s
        self.on_gain = on_gain
        self.shared = engine.dialect.name == "postgresql"
        self._held: set[str] = set() if self.shared else set(self.names)
        self._conn: Connection | None = None
        self._keys: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holds(self, name: str) -> bool:
        return name in self._held

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def start(self) -> Leases:
        if not self.shared:
            for name in self.names:
                self._gained(name)
            return self
        self.tick()
        self._thread = threading.Thread(target=self._run, name="central-leases", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._drop()

    def _run(self) -> None:
        while not self._stop.wait(self.retry_s):
            self.tick()

    def tick(self) -> None:
        """Check the lease connection; try to take every lease not held."""
        try:
            conn = self._connection()
            conn.execute(text("SELECT 1"))
            for name in self.names:
                if name in self._held:
                    continue
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": self._keys[name]}
                ).scalar()
                if got:
                    self._gained(name)
        except Exception:
            if self._held:
                log.warning("lost the lease connection; holding no lease: %s", sorted(self._held))
            else:
                log.warning("the lease connection failed; retrying", exc_info=True)
            self._drop()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Who holds what shows in pg_stat_activity / pg_locks under this name.
            conn.execute(text("SELECT set_config('application_name', :n, false)"),
                         {"n": f"parkgrid-central leases {self.instance}"})  # fmt: skip
            scope = _scope(conn)
            self._keys = {name: lease_key(f"{scope}:{name}") for name in self.names}
            self._conn = conn
        return self._conn

    def _gained(self, name: str) -> None:
        self._held.add(name)
        log.info("lease %s taken by %s", name, self.instance)
        if self.on_gain is not None:
            try:
                self.on_gain(name)
            except Exception:
                log.exception("catching up after taking lease %s failed", name)

    def _drop(self) -> None:
        if self.shared:
            self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never back to the pool with locks held
                conn.close()
            except Exception:
                log.debug("closing the lease connection failed", exc_info=True)
