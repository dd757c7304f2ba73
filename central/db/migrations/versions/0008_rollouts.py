"""rollouts: staged rollouts of a release to a town's boxes, and each box's part in one

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 03:20:00.000000

``rollouts`` holds one row per rollout (its release, waves, threshold, window and state);
``rollout_boxes`` one row per box of it (wave, state, the install command sent, why it
failed). The engine (central/fleet/rollout_engine.py) moves them on; docs/fleet.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=71), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("canary", sa.Integer(), nullable=False),
        sa.Column("share", sa.Integer(), nullable=False),
        sa.Column("max_failures", sa.Integer(), nullable=False),
        sa.Column("failure_base", sa.Integer(), nullable=False),
        sa.Column("confirm_timeout_s", sa.Float(), nullable=False),
        sa.Column("window", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index(op.f("ix_rollouts_state"), "rollouts", ["state"], unique=False)
    op.create_table(
        "rollout_boxes",
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("command_id", sa.String(length=36), nullable=True),
        sa.Column("boot_id", sa.String(length=36), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("failure", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("rollout_id", "box_id", name=op.f("pk_rollout_boxes")),
    )


def downgrade() -> None:
    op.drop_table("rollout_boxes")
    op.drop_index(op.f("ix_rollouts_state"), table_name="rollouts")
    op.drop_table("rollouts")
