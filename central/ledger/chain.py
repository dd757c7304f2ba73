"""The hash chain: the canonical encoding of an entry, append, and verify.

Theory of operation
-------------------
Every ledger row is hashed over a canonical encoding of its fields, and every row carries
the previous row's hash, so changing, removing or reordering any stored row breaks the
chain at that row (or, if its own hash was recomputed too, at the next one)::

    seq 1                  seq 2                  seq 3
    +--------------+       +--------------+       +--------------+
    | fields       |       | fields       |       | fields       |
    | prev = 0*64  |   +-->| prev = h1    |   +-->| prev = h2    |
    | hash = h1 ---+---+   | hash = h2 ---+---+   | hash = h3    |
    +--------------+       +--------------+       +--------------+

The canonical encoding is the UTF-8 bytes of the JSON object of the fields in
:data:`FIELDS` with sorted keys, no whitespace (separators ``,`` and ``:``), non-ASCII
characters as they are (``ensure_ascii=False``), ``null`` for a missing value, and ``at``
as an integer count of milliseconds since the epoch (UTC). ``evidence`` is the stored JSON
text itself, as a string. ``hash`` is the lowercase hex SHA-256 of those bytes.

The head. A chain checked only against itself cannot tell that its newest entries were
deleted: what is left is a shorter chain that verifies. So the newest entry's ``seq`` and
``hash`` are also kept in the ``ledger_head`` row, moved in the same transaction as every
append, and :func:`verify` requires the chain to end exactly there::

    ledger:       ... | seq 41, hash h41 | seq 42, hash h42 |
    ledger_head:  seq 42, hash h42         (one row, id 1)

Someone who can write the database can move the head too; so the head also leaves the
database: every append logs it (INFO, after the commit), and verify, the API and
``parkgrid central verify-ledger`` print it. A head published outside (a monthly report)
lets anyone later check that the ledger still reaches it (docs/ledger.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event, select

from central.db import schema as t

log = logging.getLogger(__name__)

GENESIS = "0" * 64
HEAD_ID = 1
FIELDS = (
    "seq",
    "at",
    "kind",
    "ref_seq",
    "rule_id",
    "rule_version",
    "plate",
    "plate_color",
    "vehicle_class",
    "ga_plate_type",
    "place",
    "grid_id",
    "evidence",
    "fine_cny",
    "points",
    "status",
    "reason",
    "actor",
    "dedup_key",
    "prev_hash",
)


def canonical(entry: Mapping[str, Any]) -> bytes:
    doc = {name: entry.get(name) for name in FIELDS}
    doc["at"] = round(float(doc["at"]) * 1000)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """Evidence as stored: canonical JSON too, so equal evidence is equal text."""
    return json.dumps(evidence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The newest entry: its seq and hash (seq 0 and :data:`GENESIS` for an empty ledger)."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"seq {self.seq} hash {self.hash}"


def recorded_head(conn: Connection) -> Head | None:
    """The ``ledger_head`` row, or None when there is none (an empty ledger)."""
    row = conn.execute(
        select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == HEAD_ID)
    ).first()
    return None if row is None else Head(seq=int(row.seq), hash=str(row.hash))


def append(conn: Connection, *, at: float, **fields: Any) -> dict[str, Any]:
    """Append one entry inside the caller's transaction, move the head; return the stored row.

    Two writers racing for the same ``seq`` collide on the primary key (or, on the very
    first entry, on the head's); the loser's transaction fails and is retried whole by the
    caller (``central.ledger.service``).

    The new entry follows the recorded head when that is ahead of the newest stored entry
    (newest entries deleted): the gap stays in the chain for verify to name, instead of a
    new entry quietly taking the deleted one's place.
    """
    last = conn.execute(
        select(t.ledger.c.seq, t.ledger.c.hash).order_by(t.ledger.c.seq.desc()).limit(1)
    ).first()
    newest = Head(seq=0, hash=GENESIS) if last is None else Head(seq=int(last.seq), hash=last.hash)
    head = recorded_head(conn)
    prev = newest
    if head is not None and head != newest:
        log.error(
            "ledger head %s disagrees with the newest entry (%s): run verify-ledger", head, newest
        )
        if head.seq > newest.seq:
            prev = head
    row: dict[str, Any] = {name: None for name in FIELDS}
    row.update(fields)
    row["seq"] = prev.seq + 1
    row["prev_hash"] = prev.hash
    row["at"] = round(at, 3)
    row["hash"] = entry_hash(row)
    conn.execute(t.ledger.insert().values(**row))
    moved = {"seq": row["seq"], "hash": row["hash"], "at": time.time()}
    if head is None:
        conn.execute(t.ledger_head.insert().values(id=HEAD_ID, **moved))
    else:
        conn.execute(t.ledger_head.update().where(t.ledger_head.c.id == HEAD_ID).values(**moved))
    new_head = Head(seq=row["seq"], hash=row["hash"])
    # Logged once the transaction commits: a retried or rolled-back append moved nothing.
    # The seq and hash also go as fields of their own, for a structured log (parkgrid/logs.py).
    fields_ = {"seq": new_head.seq, "hash": new_head.hash}
    event.listen(
        conn,
        "commit",
        lambda _conn: log.info("ledger head %s", new_head, extra=fields_),
        once=True,
    )
    return row


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """What verify found: ``entries`` that verify, ending at ``head_seq``/``head_hash``.

    ``recorded`` is the ``ledger_head`` row as found (None if absent): on success it equals
    the chain's head, which is then the value to publish.
    """

    ok: bool
    entries: int
    head_hash: str
    head_seq: int = 0
    recorded: Head | None = None
    bad_seq: int | None = None
    reason: str | None = None

    @property
    def head(self) -> Head:
        return Head(seq=self.head_seq, hash=self.head_hash)


def verify(engine: Engine, *, chunk: int = 5000) -> Verification:
    """Recompute the chain from the first entry; name the first entry that does not match;
    then check that the chain ends at the recorded head."""
    prev = GENESIS
    expected = 1
    count = 0
    with engine.connect() as conn:
        recorded = recorded_head(conn)

        def broken(bad_seq: int, reason: str) -> Verification:
            return Verification(
                ok=False,
                entries=count,
                head_hash=prev,
                head_seq=expected - 1,
                recorded=recorded,
                bad_seq=bad_seq,
                reason=reason,
            )

        while True:
            rows = conn.execute(
                select(t.ledger)
                .where(t.ledger.c.seq >= expected)
                .order_by(t.ledger.c.seq)
                .limit(chunk)
            ).all()
            for row in rows:
                data = dict(row._mapping)
                seq = int(data["seq"])
                if seq != expected:
                    return broken(expected, f"entry {expected} is missing (next is {seq})")
                if data["prev_hash"] != prev:
                    return broken(seq, "prev_hash is not the previous entry's hash")
                if entry_hash(data) != data["hash"]:
                    return broken(seq, "hash does not match the entry's fields")
                prev = data["hash"]
                expected += 1
                count += 1
            if len(rows) < chunk:
                break
        return _against_head(broken, Head(seq=count, hash=prev), recorded)


def _against_head(
    broken: Callable[[int, str], Verification], chain_head: Head, recorded: Head | None
) -> Verification:
    if recorded is None:
        if chain_head.seq == 0:
            return Verification(ok=True, entries=0, head_hash=GENESIS)
        return broken(
            chain_head.seq, f"the recorded head is missing (the chain ends at {chain_head})"
        )
    if recorded.seq > chain_head.seq:
        return broken(
            chain_head.seq + 1,
            f"entry {chain_head.seq + 1} is missing: the chain ends at entry {chain_head.seq}, "
            f"the recorded head is {recorded}",
        )
    if recorded.seq < chain_head.seq:
        return broken(
            recorded.seq + 1,
            f"entry {recorded.seq + 1} is past the recorded head ({recorded})",
        )
    if recorded.hash != chain_head.hash:
        return broken(chain_head.seq, f"hash is not the recorded head's ({recorded})")
    return Verification(
        ok=True,
        entries=chain_head.seq,
        head_hash=chain_head.hash,
        head_seq=chain_head.seq,
        recorded=recorded,
    )
