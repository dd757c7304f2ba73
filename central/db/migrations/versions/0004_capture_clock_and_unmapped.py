"""captures: the camera's stated time, clock skew, hold, unmapped enumeration values

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 18:00:00.000000

A capture far from its receipt time is kept with both times and held ("camera_clock")
until a person confirms which time is right; values of a camera's enumerations no table
knows are kept raw so the office sees them. Existing captures get the camera time they
were stored with and no hold.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("camera_time", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("clock_skew_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("held", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("unmapped", sa.Text(), nullable=True))
    op.execute("UPDATE captures SET camera_time = captured_at")


def downgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_column("unmapped")
        batch_op.drop_column("held")
        batch_op.drop_column("clock_skew_s")
        batch_op.drop_column("camera_time")
