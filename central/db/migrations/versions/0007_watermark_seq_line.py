"""watermarks: the seq line whose events each box's watermark counts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:00:00.000000

A box's outbox file is one seq line (a random id and its first seq); central keeps, per
box, the line of the events its watermark counts and names it in the ack, so a box with a
new outbox no longer takes the old line's watermark for its own (central/ingest/lines.py).
Existing rows get NULL: a legacy line, as their events named none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watermarks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("line", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("line_from", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watermarks", schema=None) as batch_op:
        batch_op.drop_column("line_from")
        batch_op.drop_column("line")
