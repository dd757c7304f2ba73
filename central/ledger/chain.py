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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from central.db import schema as t

GENESIS = "0" * 64
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


def append(conn: Connection, *, at: float, **fields: Any) -> dict[str, Any]:
    """Append one entry inside the caller's transaction; return the stored row.

    Two writers racing for the same ``seq`` collide on the primary key; the loser's
    transaction fails and is retried whole by the caller (``central.ledger.service``).
    """
    last = conn.execute(
        select(t.ledger.c.seq, t.ledger.c.hash).order_by(t.ledger.c.seq.desc()).limit(1)
    ).first()
    row: dict[str, Any] = {name: None for name in FIELDS}
    row.update(fields)
    row["seq"] = 1 if last is None else int(last.seq) + 1
    row["prev_hash"] = GENESIS if last is None else last.hash
    row["at"] = round(at, 3)
    row["hash"] = entry_hash(row)
    conn.execute(t.ledger.insert().values(**row))
    return row


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    ok: bool
    entries: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None


def verify(engine: Engine, *, chunk: int = 5000) -> Verification:
    """Recompute the chain from the first entry; name the first entry that does not match."""
    prev = GENESIS
    expected = 1
    count = 0
    with engine.connect() as conn:
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
                    return Verification(
                        ok=False,
                        entries=count,
                        head_hash=prev,
                        bad_seq=expected,
                        reason=f"entry {expected} is missing (next is {seq})",
                    )
                if data["prev_hash"] != prev:
                    return Verification(
                        ok=False,
                        entries=count,
                        head_hash=prev,
                        bad_seq=seq,
                        reason="prev_hash is not the previous entry's hash",
                    )
                if entry_hash(data) != data["hash"]:
                    return Verification(
                        ok=False,
                        entries=count,
                        head_hash=prev,
                        bad_seq=seq,
                        reason="hash does not match the entry's fields",
                    )
                prev = data["hash"]
                expected += 1
                count += 1
            if len(rows) < chunk:
                return Verification(ok=True, entries=count, head_hash=prev)
