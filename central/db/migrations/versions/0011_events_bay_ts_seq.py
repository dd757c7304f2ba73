"""events: the bay index holds the seq too, (bay_id, ts, seq)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:00:00.000000

The rollups find a bay's chain around a late change (``central.history.rollups._splice``) by
``bay_id = ? AND (ts, seq) < (?, ?) ORDER BY ts DESC, seq DESC LIMIT 1`` and its like. With
``(bay_id, ts)`` and the comparison written as ``ts < ? OR (ts = ? AND seq < ?)``,
PostgreSQL's planner, whose statistics lag a month's partition that grows by the minute
(every new ``ts`` lies past its last ANALYZE), read ``ix_events_kind_ts`` instead and
filtered every bay change of the month: 40 ms for one bay in the county bench's replay
(EXPLAIN ANALYZE: 170,487 index entries read for one row), so the 200,000-event replay
drained in 442 s (108 s with this and the statements built once, the commit before). With
this index and row values ``(ts, seq) < (?, ?)`` both engines read the bay's own entries
(``tests/central/test_history_rollups.py``). Index builds take the table's write lock: on a
large store, run the upgrade in a quiet hour (docs/scale.md).
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_bay_ts", table_name="events")
    op.create_index("ix_events_bay_ts_seq", "events", ["bay_id", "ts", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_bay_ts_seq", table_name="events")
    op.create_index("ix_events_bay_ts", "events", ["bay_id", "ts"])
