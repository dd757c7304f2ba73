"""users, tokens: the town a user or a machine token belongs to (NULL: county-wide)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:30:00.000000

A county central serves many towns (site_model/county.py); a user or a machine token is
scoped to one town or to the whole deployment. Existing rows get NULL: they saw everything
before, and a single-town central has nothing else to see.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("town", sa.String(length=64), nullable=True))
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("town", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("town")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("town")
