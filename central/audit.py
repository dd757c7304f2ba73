"""The audit trail: every write through the API or the CLI, with who did it."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, select

from central.db import schema as t


def record(
    conn: Connection, *, actor: str, action: str, target: str | None = None, detail: Any = None
) -> None:
    """Add one audit row inside the caller's transaction (so the write and its record agree)."""
    conn.execute(
        t.audit.insert(),
        {
            "at": time.time(),
            "actor": actor,
            "action": action,
            "target": target,
            "detail": None if detail is None else json.dumps(detail, default=str),
        },
    )


def recent(engine: Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.audit).order_by(t.audit.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]
