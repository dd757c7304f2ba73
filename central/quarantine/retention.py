"""Quarantine retention: the refused messages central keeps, bounded by size and by age.

Any box credential can send garbage, and every refused message is kept (up to 64 KiB of its
bytes) so an operator can see what a box sent. Without a bound that is a way to fill
central's disk (issue 14: 1,000 x 64 KiB took the database from 85 to 195 MB). So:

* **by size**: when the rows' stored bytes (payload + topic + reason) pass
  ``max_bytes``, the oldest rows go until the total is under 90 % of it (one prune per
  flood, not one per message);
* **by age**: rows received more than ``max_age_s`` ago go, checked at most once a minute.

Both run inside the ingest writer's transaction, just before its quarantine rows are
inserted (``admit``), so the table never holds more than the cap, not even in the middle
of a batch larger than the cap (then only the batch's newest rows go in). What is dropped
is counted by reason (``size``, ``age``) in the writer's stats
(``parkgrid_central_quarantine_dropped_total``) and in the log (once per prune). The
running total is read from the table once and then kept by the writer; another central
process sharing the database prunes too, and the total is read again every ``RECOUNT_S``
so each converges on the truth.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, delete, func, select

from central.db import schema as t

log = logging.getLogger(__name__)

PRUNE_TO_FRACTION: Final = 0.9
AGE_CHECK_EVERY_S: Final = 60.0
RECOUNT_S: Final = 300.0
_PAGE: Final = 1000

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_AGE_S: Final = 30 * 86400.0


def row_bytes(row: dict[str, Any]) -> int:
    """What one quarantine row stores, as the retention counts it."""
    return len(row["payload"]) + len(row["topic"].encode()) + len(row["reason"].encode())


def _stored_bytes() -> Any:
    q = t.quarantine.c
    return func.length(q.payload) + func.length(q.topic) + func.length(q.reason)


def stored_total(conn: Connection) -> tuple[int, int]:
    """(rows, stored bytes) of the quarantine table now."""
    rows, total = conn.execute(
        select(func.count(), func.coalesce(func.sum(_stored_bytes()), 0)).select_from(t.quarantine)
    ).one()
    return int(rows), int(total)


@dataclass
class QuarantineRetention:
    """Keeps the quarantine under ``max_bytes`` and younger than ``max_age_s``.

    One per ingest writer; ``enforce`` is called in the writer's transaction.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_s: float = DEFAULT_MAX_AGE_S
    _total: int | None = None
    _counted_at: float = 0.0
    _age_checked_at: float = 0.0

    def admit(
        self, conn: Connection, rows: list[dict[str, Any]], now: float | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Make room for ``rows`` (about to be inserted, oldest first) and return the ones to
        insert with the rows dropped by reason. Room is made before the insert, so even one
        batch of garbage larger than the cap never takes more than the cap on disk."""
        now = time.time() if now is None else now
        clock = time.monotonic()
        dropped: dict[str, int] = {}
        if self._total is None or clock - self._counted_at > RECOUNT_S:
            self._total = stored_total(conn)[1]
            self._counted_at = clock
        if clock - self._age_checked_at >= AGE_CHECK_EVERY_S or not self._age_checked_at:
            self._age_checked_at = clock
            aged = self._drop_older_than(conn, now - self.max_age_s)
            if aged:
                dropped["age"] = aged
        target = int(self.max_bytes * PRUNE_TO_FRACTION)
        sizes = [row_bytes(row) for row in rows]
        keep = len(rows)
        incoming = sum(sizes)
        while keep and incoming > target:  # the batch alone passes the cap: newest win
            keep -= 1
            incoming -= sizes[len(rows) - keep - 1]
        kept = rows[len(rows) - keep :]
        if len(kept) < len(rows):
            dropped["size"] = len(rows) - len(kept)
        if self._total + incoming > self.max_bytes:
            sized = self._drop_oldest(conn, self._total + incoming - target)
            if sized:
                dropped["size"] = dropped.get("size", 0) + sized
        self._total += incoming
        if dropped:
            log.warning(
                "quarantine retention dropped %s oldest rows (cap %d bytes, %g days); %d "
                "bytes kept",
                " and ".join(f"{n} by {why}" for why, n in sorted(dropped.items())),
                self.max_bytes,
                self.max_age_s / 86400,
                self._total,
            )
        return kept, dropped

    def _drop_older_than(self, conn: Connection, cutoff: float) -> int:
        q = t.quarantine
        rows, freed = conn.execute(
            select(func.count(), func.coalesce(func.sum(_stored_bytes()), 0)).where(
                q.c.received_at < cutoff
            )
        ).one()
        if not rows:
            return 0
        conn.execute(delete(q).where(q.c.received_at < cutoff))
        self._total = max(0, (self._total or 0) - int(freed))
        return int(rows)

    def _drop_oldest(self, conn: Connection, excess: int) -> int:
        """Delete the oldest rows (lowest id) until ``excess`` bytes are freed."""
        q = t.quarantine
        freed = count = 0
        last_id: int | None = None
        after = -1
        while freed < excess:
            page = conn.execute(
                select(q.c.id, _stored_bytes()).where(q.c.id > after).order_by(q.c.id).limit(_PAGE)
            ).all()
            if not page:
                break
            for row_id, size in page:
                last_id = row_id
                freed += int(size)
                count += 1
                if freed >= excess:
                    break
            after = page[-1][0]
        if last_id is None:
            return 0
        conn.execute(delete(q).where(q.c.id <= last_id))
        self._total = max(0, (self._total or 0) - freed)
        return count
