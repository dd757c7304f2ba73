"""ledger head

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000

The ledger's head (seq and hash of the newest entry) in a row of its own, so that deleting
the newest entries is detected by verify. A ledger that already has entries gets its head
from its newest entry: whatever was deleted before this migration cannot be told any more.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )
    newest = (
        op.get_bind()
        .execute(sa.text("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"))
        .first()
    )
    if newest is not None:
        op.bulk_insert(
            head, [{"id": 1, "seq": int(newest.seq), "hash": newest.hash, "at": time.time()}]
        )


def downgrade() -> None:
    op.drop_table("ledger_head")
