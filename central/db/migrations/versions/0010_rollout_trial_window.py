"""rollouts.trial_window_s: the trial window a rollout sends in each install command

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:30:00.000000

A box's new release has this many seconds from its first start to pass its health gate
(``install-release``'s ``confirm_within_s``); NULL: the box's own default. docs/fleet.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("trial_window_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("trial_window_s")
