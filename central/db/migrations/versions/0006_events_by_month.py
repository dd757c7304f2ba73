"""events: unique on (box_id, seq, ts); on PostgreSQL partitioned by month

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 00:40:00.000000

PostgreSQL's declarative partitioning wants the partition key (``ts``) in every unique
key, so a repeat becomes the same ``(box_id, seq, ts)`` on both engines (a seq held by
another event is refused before the insert, as before). On PostgreSQL the plain table is
turned into the partitioned one with its rows (``central.history.partitions.convert``);
SQLite rebuilds the table with the new unique key.

Backwards, the events become one plain table again, unique on ``(box_id, seq)``; a store in
which one seq holds two events (possible only by writing around the ingest) cannot keep both,
so going back is refused, naming them, and nothing changes.
"""

from __future__ import annotations

import time

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from central.history.partitions import convert

        convert(bind, time.time())
        return
    with op.batch_alter_table("events", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("uq_events_box_seq", type_="unique")
        batch_op.create_unique_constraint("uq_events_box_seq", ["box_id", "seq", "ts"])


def downgrade() -> None:
    from central.history.partitions import repeated_seqs, unconvert

    bind = op.get_bind()
    repeated = repeated_seqs(bind)
    if repeated:
        named = ", ".join(f"{box} seq {seq} ({n} events)" for box, seq, n in repeated)
        raise RuntimeError(
            f"events: cannot go back before 0006: one seq holds several events: {named}; "
            "delete the extra rows (or restore a backup) first"
        )
    if bind.dialect.name == "postgresql":
        unconvert(bind)
        return
    with op.batch_alter_table("events", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("uq_events_box_seq", type_="unique")
        batch_op.create_unique_constraint("uq_events_box_seq", ["box_id", "seq"])
