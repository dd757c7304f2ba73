"""history rollups: lot_minutes, lot_hours, bay_stays, bay_tips, history_marks, events.prev_state

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 00:30:00.000000

A lot's history is read from rollups kept at ingest (``central.history``). An existing
store gets its rollups built from its events here, in the migration's transaction (a
town-year of 4.5 million changes is a few minutes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _counts(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column("lot_id", sa.String(length=64), nullable=False),
        sa.Column(key, sa.BigInteger(), nullable=False),
        sa.Column("free", sa.Integer(), nullable=False),
        sa.Column("occupied", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lot_id", key, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_state", sa.String(length=16), nullable=True))
    _counts("lot_minutes", "minute")
    _counts("lot_hours", "hour")
    op.create_table(
        "bay_stays",
        sa.Column("bay_id", sa.String(length=64), nullable=False),
        sa.Column("ended", sa.Float(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=True),
        sa.Column("began", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bay_id", "ended", "seq", name=op.f("pk_bay_stays")),
    )
    op.create_index("ix_bay_stays_lot_ended", "bay_stays", ["lot_id", "ended"], unique=False)
    op.create_table(
        "bay_tips",
        sa.Column("bay_id", sa.String(length=64), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.Float(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("run_began", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("bay_id", name=op.f("pk_bay_tips")),
    )
    op.create_table(
        "history_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_history_marks")),
    )
    from central.history.rollups import rebuild  # the one chain rule, also for old rows

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("history_marks")
    op.drop_table("bay_tips")
    op.drop_index("ix_bay_stays_lot_ended", table_name="bay_stays")
    op.drop_table("bay_stays")
    op.drop_table("lot_hours")
    op.drop_table("lot_minutes")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("prev_state")
